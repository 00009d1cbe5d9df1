#include "engine/shard.h"

#include <fmt/format.h>

#include "common/keyslot.h"
#include "common/wire.h"
#include "engine/engine.h"

namespace shoal::engine {

Shard::Shard(unsigned index, net::EventLoop* loop, Engine* engine, const Clock* clock)
    : index_(index),
      loop_(loop),
      engine_(engine),
      clock_(clock),
      table_(clock, 0x5eed0000ULL + index),
      outboxes_(engine->num_shards()) {
  table_.set_journal(&journal_);
  limits_.input_bytes = &stats_.net_input_bytes;
  limits_.output_bytes = &stats_.net_output_bytes;
}

bool Shard::EnsureMemory() {
  if (settings_.maxmemory_share <= 0) return true;
  int budget = 64;  // evictions per command at most; the cron keeps going
  while (table_.used_bytes() > settings_.maxmemory_share && budget-- > 0) {
    if (!table_.EvictOne(settings_.policy, settings_.samples)) break;
  }
  if (table_.used_bytes() > settings_.maxmemory_share) {
    ++stats_.rejected_oom;
    return false;
  }
  return true;
}

void Shard::Execute(const CommandSpec& spec, Args args, resp::ReplyBuilder* out) {
  ++stats_.commands;
  if ((spec.flags & kCmdDenyOom) && !EnsureMemory()) {
    out->Error("OOM command not allowed when used memory > 'maxmemory'.");
    return;
  }
  ExecContext ctx{args, out, this, &table_, clock_->NowUnixMillis(), limits_.output_buffer_limit};
  const uint64_t t0 = CommandMetrics::Now();
  journal_.BeginUnit();
  spec.key_handler(ctx);
  journal_.EndUnit();
  engine_->command_metrics().Observe(index_, spec, CommandMetrics::Now() - t0);
}

void Shard::Submit(absl::AnyInvocable<void()> task) {
  if (Busy()) {
    queue_.push_back(Queued{0, std::move(task)});
  } else {
    task();
  }
}

void Shard::Lock(uint64_t tx, absl::AnyInvocable<void()> on_locked) {
  if (Busy()) {
    queue_.push_back(Queued{tx, std::move(on_locked)});
    return;
  }
  locked_by_ = tx;
  on_locked();
}

void Shard::Unlock(uint64_t tx) {
  if (locked_by_ != tx) return;
  locked_by_ = 0;
  Drain();
}

void Shard::Drain() {
  while (locked_by_ == 0 && !queue_.empty()) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    if (q.lock_tx != 0) locked_by_ = q.lock_tx;
    q.fn();
  }
}

void Shard::SendOp(unsigned target, RemoteOp op) {
  auto& box = outboxes_[target];
  box.push_back(std::move(op));
}

void Shard::FlushOutboxes() {
  for (unsigned t = 0; t < outboxes_.size(); ++t) {
    if (outboxes_[t].empty()) continue;
    std::vector<RemoteOp> batch;
    batch.swap(outboxes_[t]);
    const unsigned from = index_;
    Shard* target = engine_->shard(t);
    target->loop()->Post([target, from, batch = std::move(batch)]() mutable {
      target->Submit([target, from, batch = std::move(batch)]() mutable {
        target->ExecuteBatch(from, std::move(batch));
      });
    });
  }
}

void RemoteOp::Views(std::vector<std::string_view>* out) const {
  out->clear();
  uint32_t start = 0;
  for (uint32_t end : arg_ends) {
    out->emplace_back(argbuf.data() + start, end - start);
    start = end;
  }
}

RemoteOp RemoteOp::From(const CommandSpec* spec, Args args, int protocol) {
  RemoteOp op;
  op.spec = spec;
  op.protocol = protocol;
  size_t total = 0;
  for (auto a : args) total += a.size();
  op.argbuf.reserve(total);
  op.arg_ends.reserve(args.size());
  for (auto a : args) {
    op.argbuf.append(a);
    op.arg_ends.push_back(static_cast<uint32_t>(op.argbuf.size()));
  }
  return op;
}

void Shard::ExecuteBatch(unsigned from, std::vector<RemoteOp> ops) {
  std::vector<RemoteOp> done;
  done.reserve(ops.size());
  for (RemoteOp& op : ops) {
    if (!RunOp(op)) continue;  // held or forwarded: completes by itself
    if (op.sink != nullptr) {
      op.sink->Complete(op.sink_index, std::move(op.reply));
      continue;
    }
    done.push_back(std::move(op));
  }
  if (done.empty()) return;
  Shard* origin = engine_->shard(from);
  origin->loop()->Post(
      [origin, done = std::move(done)]() mutable { origin->CompleteBatch(std::move(done)); });
}

bool Shard::RunOp(RemoteOp& op) {
  thread_local std::vector<std::string_view> args;
  op.Views(&args);
  const BucketPlane& plane = engine_->plane();
  if (plane.enabled() && op.spec->first_key > 0) {
    const KeyPosList pos = KeyPositions(*op.spec, Args(args.data(), args.size()));
    const bool write = (op.spec->flags & kCmdWrite) != 0;
    for (size_t p : pos) {
      const uint16_t b = KeyBucket(args[p]).value();
      const sharding::BucketState st = plane.state(b);
      const bool has_held = !held_.empty() && held_.find(b) != held_.end();
      if (st == sharding::BucketState::kActive && !has_held) continue;
      if (st == sharding::BucketState::kSending || st == sharding::BucketState::kActive) {
        if (!write && !has_held) continue;  // reads are served while a bucket is copied
        // Writes wait for the cut-over (and reads behind them, to keep a client's order).
        auto& q = held_[b];
        if (q.size() >= kMaxHeldPerBucket) {
          resp::ReplyBuilder rb(&op.reply, op.protocol);
          rb.Error("TRYAGAIN bucket is migrating and too many writes are waiting");
          return true;
        }
        ++stats_.held_writes;
        q.push_back(std::move(op));
        return false;
      }
      // Not served here (any more).
      Endpoint to;
      std::string redirect = RedirectFor(b, &to);
      if (op.redirect || op.foreign || to.port == 0 || op.hops >= kMaxHops) {
        op.reply = std::move(redirect);
        return true;
      }
      ++op.hops;
      ForwardOp(to, std::move(op));
      return false;
    }
  }
  resp::ReplyBuilder rb(&op.reply, op.protocol);
  Execute(*op.spec, Args(args.data(), args.size()), &rb);
  return true;
}

void Shard::ReleaseHeld(uint16_t b) {
  auto it = held_.find(b);
  if (it == held_.end()) return;
  std::deque<RemoteOp> q = std::move(it->second);
  held_.erase(it);
  for (RemoteOp& op : q) {
    if (RunOp(op)) FinishDeferred(std::move(op));
  }
}

void Shard::FinishDeferred(RemoteOp op) {
  if (op.sink != nullptr) {
    op.sink->Complete(op.sink_index, std::move(op.reply));
    return;
  }
  Shard* origin = engine_->shard(op.origin);
  std::vector<RemoteOp> one;
  one.push_back(std::move(op));
  if (origin == this) {
    CompleteBatch(std::move(one));
    return;
  }
  origin->loop()->Post(
      [origin, one = std::move(one)]() mutable { origin->CompleteBatch(std::move(one)); });
}

std::string Shard::RedirectFor(uint16_t b, Endpoint* forward_to) const {
  *forward_to = Endpoint{};
  const BucketPlane& plane = engine_->plane();
  const sharding::BucketState st = plane.state(b);
  if (st == sharding::BucketState::kGarbage) {
    // Handed over, and the map may not say so yet: ASK the new owner.
    if (members_ != nullptr) {
      if (const membership::Member* m = members_->Find(plane.peer(b))) {
        *forward_to = m->record.address;
        return fmt::format("-ASK {} {}:{}\r\n", b, m->record.address.host, m->record.client_port);
      }
    }
    return "-TRYAGAIN bucket is moving\r\n";
  }
  const sharding::SetInfo* owner = map_->OwnerOf(BucketId(b));
  if (owner == nullptr) return "-CLUSTERDOWN Hash slot not served\r\n";
  const ClusterLink* cluster = engine_->cluster();
  if (cluster != nullptr && owner->leader == cluster->id()) {
    return "-TRYAGAIN bucket is changing hands here\r\n";
  }
  *forward_to = owner->cluster;
  return fmt::format("-MOVED {} {}\r\n", b, owner->client.ToString());
}

void Shard::RouteOp(RemoteOp op) {
  thread_local std::vector<std::string_view> args;
  op.Views(&args);
  const std::string_view key = args[static_cast<size_t>(op.spec->first_key)];
  const uint16_t b = KeyBucket(key).value();
  if (!engine_->plane().enabled() || engine_->plane().Serves(b)) {
    SendOp(engine_->ShardOf(key), std::move(op));
    return;
  }
  Endpoint to;
  std::string redirect = RedirectFor(b, &to);
  if (op.redirect || to.port == 0) {
    op.reply = std::move(redirect);
    FinishDeferred(std::move(op));
    return;
  }
  ForwardOp(to, std::move(op));
}

void Shard::ForwardOp(const Endpoint& to, RemoteOp op) {
  forward_out_[to].push_back(std::move(op));
}

// A forwarded batch: [[protocol, arg...]...]; the answer: [reply...], RESP-encoded each.
void Shard::FlushForwards() {
  if (forward_out_.empty()) return;
  if (rpc_ == nullptr) {
    rpc_ = std::make_unique<net::RpcClient>(loop_, engine_->cluster_cookie());
  }
  std::map<Endpoint, std::vector<RemoteOp>> out;
  out.swap(forward_out_);
  for (auto& [to, all] : out) {
    // Batches of at most kForwardBatchBytes of arguments (a pipeline of big values must not
    // make one frame over the RPC limit); sent in order on one connection, so they run in order.
    size_t i = 0;
    while (i < all.size()) {
      std::vector<RemoteOp> ops;
      size_t bytes = 0;
      while (i < all.size() &&
             (ops.empty() || bytes + all[i].argbuf.size() <= kForwardBatchBytes)) {
        bytes += all[i].argbuf.size();
        ops.push_back(std::move(all[i++]));
      }
      wire::Writer w;
      w.Array(static_cast<uint32_t>(ops.size()));
      std::vector<std::string_view> args;
      for (const RemoteOp& op : ops) {
        op.Views(&args);
        w.Array(static_cast<uint32_t>(args.size() + 1));
        w.U64(static_cast<uint64_t>(op.protocol));
        for (auto a : args) w.Bin(a);
      }
      ++stats_.forwarded_batches;
      stats_.forwarded_ops += ops.size();
      rpc_->Call(to, kForwardMethod, w.Take(), kForwardTimeoutMs,
                 [this, to = to, ops = std::move(ops)](Result<std::string> r) mutable {
                   OnForwardReply(to, std::move(ops), std::move(r));
                 });
    }
  }
}

void Shard::OnForwardReply(const Endpoint& to, std::vector<RemoteOp> ops, Result<std::string> r) {
  std::vector<std::string> replies;
  std::string failure;
  if (!r.ok()) {
    failure = r.error().message();
  } else {
    try {
      auto oh = wire::Unpack(*r);
      wire::Reader rd(oh.get());
      if (rd.Array() != ops.size()) throw wire::WireError("reply count mismatch");
      for (uint32_t i = 0; i < rd.Array(); ++i) replies.emplace_back(rd.At(i).Bin());
    } catch (const wire::WireError& e) {
      failure = e.what();
    }
  }
  // Replies for this worker's own clients complete together: one write per client per batch.
  std::vector<RemoteOp> mine;
  auto finish = [&](RemoteOp&& op) {
    if (op.sink == nullptr && op.origin == index_) {
      mine.push_back(std::move(op));
    } else {
      FinishDeferred(std::move(op));
    }
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    RemoteOp& op = ops[i];
    if (!failure.empty()) {
      op.reply = fmt::format("-ERR forwarding to {} failed: {}\r\n", to.ToString(), failure);
      finish(std::move(op));
      continue;
    }
    std::string& rep = replies[i];
    // The owner moved on meanwhile: follow it (a plain client never sees MOVED or ASK).
    const bool moved = rep.starts_with("-MOVED ") || rep.starts_with("-ASK ");
    if (moved && op.hops < kMaxHops) {
      const size_t sp = rep.rfind(' ');
      std::string_view addr(rep);
      addr = addr.substr(sp + 1);
      while (!addr.empty() && (addr.back() == '\n' || addr.back() == '\r')) addr.remove_suffix(1);
      if (auto client = Endpoint::Parse(addr)) {
        if (auto cluster = ClusterAddressOf(*client)) {
          ++op.hops;
          ForwardOp(*cluster, std::move(op));
          continue;
        }
      }
    }
    if (rep.starts_with("-TRYAGAIN") && op.hops < kMaxHops) {
      // The bucket is changing hands: try again shortly, from the start.
      ++op.hops;
      loop_->RunAfter(20, [this, op = std::move(op)]() mutable { RouteOp(std::move(op)); });
      continue;
    }
    op.reply = std::move(rep);
    finish(std::move(op));
  }
  if (!mine.empty()) CompleteBatch(std::move(mine));
}

std::optional<Endpoint> Shard::ClusterAddressOf(const Endpoint& client) const {
  for (const sharding::SetInfo& s : map_->sets()) {
    if (s.client == client) return s.cluster;
  }
  if (members_ != nullptr) {
    for (const membership::Member& m : members_->members()) {
      if (m.record.address.host == client.host && m.record.client_port == client.port) {
        return m.record.address;
      }
    }
  }
  return std::nullopt;
}

void Shard::CompleteBatch(std::vector<RemoteOp> ops) {
  for (RemoteOp& op : ops) {
    resp::Connection* c = FindClient(op.client_id);
    if (c == nullptr) continue;
    if (op.counted_local) {
      auto* info = static_cast<ClientInfo*>(c->state());
      --info->inflight_local;
    }
    c->CompleteReply(op.token, op.reply);
    if (to_flush_.empty() || to_flush_.back() != c) to_flush_.push_back(c);
  }
  // Flushing may resume a client's pipeline, which may close it: re-check by id.
  std::vector<resp::Connection*> flush;
  flush.swap(to_flush_);
  std::vector<uint64_t> ids;
  ids.reserve(flush.size());
  for (auto* c : flush) ids.push_back(c->id());
  for (uint64_t id : ids) {
    if (resp::Connection* c = FindClient(id)) c->FlushOutput();
  }
}

void Shard::Cron() {
  CloseIdleClients();
  if (locked_by_ != 0) return;  // a transaction's coordinator is using the table
  approx_keys.store(table_.size(), std::memory_order_relaxed);
  table_.set_lru_clock(static_cast<uint32_t>(clock_->MonotonicMillis() / 1000));
  // Active expiry: like Redis's slow cycle, keep going while a round finds many expired keys,
  // within ~25% of one cron period.
  const int64_t deadline = clock_->MonotonicMicros() + 250'000 / std::max(settings_.hz, 1);
  for (int round = 0; round < 16; ++round) {
    const size_t expired = table_.ActiveExpireCycle(1000);
    if (expired < 250 || clock_->MonotonicMicros() > deadline) break;
  }
  if (settings_.maxmemory_share > 0 && settings_.policy != storage::EvictionPolicy::kNoEviction) {
    int budget = 10000;
    while (table_.used_bytes() > settings_.maxmemory_share && budget-- > 0) {
      if (!table_.EvictOne(settings_.policy, settings_.samples)) break;
    }
  }
}

void Shard::CloseIdleClients() {
  if (settings_.idle_timeout_ms <= 0) return;
  const int64_t now = loop_->NowMs();
  std::vector<resp::Connection*> idle;
  for (auto& [id, c] : clients_) {
    // As Redis: a client waiting for replies is not idle.
    if (c->pending_replies() == 0 && now - c->last_active_ms() > settings_.idle_timeout_ms) {
      idle.push_back(c);
    }
  }
  for (auto* c : idle) c->Close("idle timeout");
}

void Shard::CloseAllClients(std::string_view reason) {
  std::vector<resp::Connection*> all;
  for (auto& [id, c] : clients_) all.push_back(c);
  for (auto* c : all) c->Close(reason);
}

void Shard::StartTimers() {
  loop_->AddBeforeSleep([this] {
    FlushOutboxes();
    FlushForwards();
    if (!push_flush_.empty()) {
      std::vector<uint64_t> ids(push_flush_.begin(), push_flush_.end());
      push_flush_.clear();
      for (uint64_t id : ids) {
        if (resp::Connection* c = FindClient(id)) c->FlushOutput();
      }
    }
  });
  loop_->RunEvery(1000 / std::max(settings_.hz, 1), [this] { Cron(); });
  table_.set_lru_clock(static_cast<uint32_t>(clock_->MonotonicMillis() / 1000));
}

}  // namespace shoal::engine
