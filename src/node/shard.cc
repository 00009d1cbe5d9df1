#include "node/shard.h"

#include "node/engine.h"

namespace shoal::node {

Shard::Shard(unsigned index, net::EventLoop* loop, Engine* engine, const Clock* clock)
    : index_(index),
      loop_(loop),
      engine_(engine),
      clock_(clock),
      table_(clock, 0x5eed0000ULL + index),
      outboxes_(engine->num_shards()) {}

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
  ExecContext ctx{args, out, this, &table_, clock_->NowUnixMillis()};
  spec.key_handler(ctx);
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

void Shard::ExecuteBatch(unsigned from, std::vector<RemoteOp> ops) {
  std::vector<std::string_view> args;
  for (RemoteOp& op : ops) {
    args.clear();
    uint32_t start = 0;
    for (uint32_t end : op.arg_ends) {
      args.emplace_back(op.argbuf.data() + start, end - start);
      start = end;
    }
    resp::ReplyBuilder rb(&op.reply, op.protocol);
    Execute(*op.spec, Args(args.data(), args.size()), &rb);
  }
  const unsigned target = index_;
  Shard* origin = engine_->shard(from);
  origin->loop()->Post([origin, target, ops = std::move(ops)]() mutable {
    origin->CompleteBatch(target, std::move(ops));
  });
}

void Shard::CompleteBatch(unsigned target, std::vector<RemoteOp> ops) {
  for (RemoteOp& op : ops) {
    resp::Connection* c = FindClient(op.client_id);
    if (c == nullptr) continue;
    if (target == index_) {
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
  loop_->AddBeforeSleep([this] { FlushOutboxes(); });
  loop_->RunEvery(1000 / std::max(settings_.hz, 1), [this] { Cron(); });
  table_.set_lru_clock(static_cast<uint32_t>(clock_->MonotonicMillis() / 1000));
}

}  // namespace shoal::node
