#include "engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/log.h"
#include "common/wire.h"
#include "net/runtime.h"

namespace shoal::engine {

struct Engine::Tx {
  uint64_t id;
  unsigned home;
  std::vector<unsigned> shards;  // ascending
  LockedFn fn;
  StepFn step;  // instead of fn, for RunLockedAllInSteps
  uint64_t client_id;
  resp::Connection::ReplyToken token;
  int protocol;
  std::vector<uint16_t> buckets;  // must still be ACTIVE here once locked
};

Engine::Engine(const config::ServerConfig& cfg, net::Runtime* runtime, const Clock* clock)
    : start_unix_ms(clock->NowUnixMillis()),
      runtime_(runtime),
      clock_(clock),
      cfg_(cfg),
      replicated_(std::make_unique<ReplicatedMaps>(clock, cfg)) {
  if (AllCommands().empty()) {
    // A programming error, not a user's: every command would answer "unknown command".
    std::fprintf(stderr, "shoal: an Engine was built before any command family was installed\n");
    std::abort();
  }
  const unsigned n = runtime->size();
  shards_.reserve(n);
  for (unsigned i = 0; i < n; ++i) shards_.push_back(nullptr);
  for (unsigned i = 0; i < n; ++i) {
    shards_[i] = std::make_unique<Shard>(i, runtime->loop(i), this, clock);
    ApplySettingsTo(*shards_[i], cfg, n);
  }
  redirect_.store(cfg.cluster_redirect);
  metrics_ = std::make_unique<metrics::Registry>(n);
  command_metrics_ = std::make_unique<CommandMetrics>(metrics_.get());
  RegisterServerMetrics(this);
  RegisterReplicatedMetrics(this);
}

Engine::~Engine() = default;

void Engine::InitWorker(unsigned i) { shards_[i]->StartTimers(); }

Shard* Engine::CurrentShard() const {
  const int i = net::Runtime::CurrentIndex();
  return i < 0 ? shards_[0].get() : shards_[static_cast<unsigned>(i)].get();
}

void Engine::ApplySettingsTo(Shard& s, const config::ServerConfig& cfg, unsigned shards) {
  ShardSettings& st = s.settings();
  st.maxmemory_share = cfg.maxmemory > 0 ? std::max<int64_t>(cfg.maxmemory / shards, 1) : 0;
  switch (cfg.maxmemory_policy) {
    case config::MaxmemoryPolicy::kNoEviction:
      st.policy = storage::EvictionPolicy::kNoEviction;
      break;
    case config::MaxmemoryPolicy::kAllKeysLru:
      st.policy = storage::EvictionPolicy::kAllKeysLru;
      break;
    case config::MaxmemoryPolicy::kVolatileLru:
      st.policy = storage::EvictionPolicy::kVolatileLru;
      break;
    case config::MaxmemoryPolicy::kAllKeysRandom:
      st.policy = storage::EvictionPolicy::kAllKeysRandom;
      break;
  }
  st.samples = cfg.maxmemory_samples;
  st.requirepass = cfg.requirepass;
  st.hz = cfg.hz;
  st.idle_timeout_ms = cfg.timeout * 1000;
  st.max_clients = cfg.max_clients;
  resp::ConnectionLimits& l = s.limits();
  l.parser.max_bulk_len = cfg.proto_max_bulk_len;
  l.query_buffer_limit = cfg.query_buffer_limit;
  l.output_buffer_limit = cfg.output_buffer_limit;
}

config::ServerConfig Engine::Config() const {
  std::lock_guard<std::mutex> lock(cfg_mu_);
  return cfg_;
}

Status Engine::UpdateConfig(std::string_view name, std::string_view value) {
  config::ServerConfig next;
  {
    std::lock_guard<std::mutex> lock(cfg_mu_);
    next = cfg_;
    Status st = next.SetAtRuntime(name, value);
    if (!st.ok()) return st;
    cfg_ = next;
  }
  if (name == "loglevel") log::SetLevel(next.log_level);
  redirect_.store(next.cluster_redirect);
  PushSettings(next);
  return Status::Ok();
}

void Engine::PushSettings(const config::ServerConfig& cfg) {
  const unsigned n = num_shards();
  for (auto& s : shards_) {
    Shard* sp = s.get();
    sp->loop()->Post([sp, cfg, n] { ApplySettingsTo(*sp, cfg, n); });
  }
}

void Engine::PublishMembers(std::shared_ptr<const membership::MemberTable> table) {
  for (auto& s : shards_) {
    Shard* sp = s.get();
    sp->loop()->Post([sp, table] { sp->set_members(table); });
  }
}

void Engine::PublishMap(std::shared_ptr<const sharding::BucketMap> map) {
  for (auto& s : shards_) {
    Shard* sp = s.get();
    sp->loop()->Post([sp, map] { sp->set_map(map); });
  }
}

void Engine::OnConnect(resp::Connection* c) {
  c->set_state(std::make_unique<ClientInfo>());
  CurrentShard()->AddClient(c);
  connected_clients.fetch_add(1, std::memory_order_relaxed);
  total_connections.fetch_add(1, std::memory_order_relaxed);
}

void Engine::OnDisconnect(resp::Connection* c) {
  for (const CommandFamily& family : CommandFamilies()) {
    if (family.on_client_close != nullptr) family.on_client_close(*this, c);
  }
  CurrentShard()->RemoveClient(c->id());
  connected_clients.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

// A RESP2 connection with subscriptions may only (un)subscribe, ping, quit or reset (Redis), and
// serve the bus.
bool AllowedWhileSubscribed(std::string_view name) {
  static constexpr std::string_view kAllowed[] = {
      "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
      "bus.subscribe", "bus.unsubscribe", "ping", "quit", "reset",
      // A bus handler that also subscribes must still answer its requests.
      "bus.reply", "bus.serve", "bus.unserve"};
  return std::find(std::begin(kAllowed), std::end(kAllowed), name) != std::end(kAllowed);
}

}  // namespace

resp::DispatchResult Engine::Dispatch(resp::Connection* c, Args args, resp::ReplyBuilder* out) {
  const CommandSpec* spec = nullptr;
  const resp::DispatchResult r = DispatchCommand(c, args, out, &spec);
  // Counted once it is taken: a blocked command comes back through Dispatch.
  if (spec != nullptr && r != resp::DispatchResult::kBlocked) {
    command_metrics_->Count(CurrentShard()->index(), *spec);
  }
  return r;
}

resp::DispatchResult Engine::DispatchCommand(resp::Connection* c, Args args,
                                             resp::ReplyBuilder* out, const CommandSpec** counted) {
  auto* info = static_cast<ClientInfo*>(c->state());
  if (info->in_barrier) return resp::DispatchResult::kBlocked;
  const CommandSpec* spec = FindCommand(args[0]);
  if (spec == nullptr) {
    std::string list;
    for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
      list += fmt::format("'{}' ", args[i].substr(0, 128));
    }
    out->Error(fmt::format("ERR unknown command '{}', with args beginning with: {}",
                           args[0].substr(0, 128), list));
    return resp::DispatchResult::kDone;
  }
  const int argc = static_cast<int>(args.size());
  if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
    out->Error(fmt::format("ERR wrong number of arguments for '{}' command", spec->name));
    return resp::DispatchResult::kDone;
  }
  *counted = spec;
  Shard* home = CurrentShard();
  if (!info->authenticated && !(spec->flags & kCmdNoAuth) &&
      !home->settings().requirepass.empty()) {
    out->Error("NOAUTH Authentication required.");
    return resp::DispatchResult::kDone;
  }
  if (info->subscribed && c->protocol() == 2 && !AllowedWhileSubscribed(spec->name)) {
    out->Error(fmt::format(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        "are allowed in this context",
        spec->name));
    return resp::DispatchResult::kDone;
  }
  if (!info->tx_buckets.empty()) info->tx_buckets.clear();  // left by a command that did not lock
  if (spec->first_key > 0 && !replicated_->empty()) {
    if (auto r = DispatchReplicated(c, *spec, args, out)) return *r;
  }
  if (spec->first_key > 0 && plane_.enabled()) {
    return DispatchClustered(c, info, *spec, args, out);
  }
  unsigned target = 0;
  if (spec->conn_handler != nullptr) {
    if (spec->key_handler == nullptr) return RunConnHandler(home, *spec, c, args, out);
    // A multi-key command: when all its keys live on one worker it runs there like any keyed
    // command; otherwise its ConnHandler coordinates the workers.
    const KeyPosList pos = KeyPositions(*spec, args);
    target = ShardOf(args[pos[0]]);
    for (size_t p : pos) {
      if (ShardOf(args[p]) != target) return RunConnHandler(home, *spec, c, args, out);
    }
  } else {
    target = ShardOf(args[static_cast<size_t>(spec->first_key)]);
  }
  return DispatchLocal(c, info, *spec, args, out, target);
}

resp::DispatchResult Engine::RunConnHandler(Shard* home, const CommandSpec& spec,
                                            resp::Connection* c, Args args,
                                            resp::ReplyBuilder* out) {
  const uint64_t t0 = CommandMetrics::Now();
  const resp::DispatchResult r = spec.conn_handler(*this, c, args, out);
  if (r != resp::DispatchResult::kBlocked) {
    command_metrics_->Observe(home->index(), spec, CommandMetrics::Now() - t0);
  }
  return r;
}

resp::DispatchResult Engine::DispatchLocal(resp::Connection* c, ClientInfo* info,
                                           const CommandSpec& spec, Args args,
                                           resp::ReplyBuilder* out, unsigned target) {
  Shard* home = CurrentShard();
  if (target == home->index() && info->inflight_local == 0 && !home->Busy()) {
    home->Execute(spec, args, out);
    return resp::DispatchResult::kDone;
  }
  RemoteOp op = RemoteOp::From(&spec, args, c->protocol());
  op.client_id = c->id();
  op.token = c->ReserveReply();
  op.origin = home->index();
  if (target == home->index()) {
    ++info->inflight_local;
    op.counted_local = true;
  }
  home->SendOp(target, std::move(op));
  return resp::DispatchResult::kAsync;
}

namespace {

// How the parts of a command split over buckets merge into its reply.
enum class SplitKind { kMget, kMset, kSum };

std::optional<SplitKind> SplitKindOf(std::string_view name) {
  if (name == "mget") return SplitKind::kMget;
  if (name == "mset") return SplitKind::kMset;
  if (name == "del" || name == "unlink" || name == "exists" || name == "touch") {
    return SplitKind::kSum;
  }
  return std::nullopt;
}

// Collects the parts' replies (from any thread) and completes the client's reply on its worker.
class Gather final : public OpSink {
 public:
  Gather(SplitKind kind, size_t n, Shard* home, uint64_t client_id,
         resp::Connection::ReplyToken token, int protocol)
      : kind_(kind),
        parts_(n),
        remaining_(n),
        home_(home),
        client_id_(client_id),
        token_(token),
        protocol_(protocol) {}

  void Complete(uint32_t index, std::string reply) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      parts_[index] = std::move(reply);
      if (--remaining_ > 0) return;
    }
    RemoteOp done;
    done.client_id = client_id_;
    done.token = token_;
    done.reply = Merge();
    Shard* home = home_;
    std::vector<RemoteOp> one;
    one.push_back(std::move(done));
    home->loop()->Post(
        [home, one = std::move(one)]() mutable { home->CompleteBatch(std::move(one)); });
  }

 private:
  std::string Merge() {
    for (const std::string& p : parts_) {
      if (p.starts_with("-") && !(kind_ == SplitKind::kMget && p.starts_with("-WRONGTYPE"))) {
        return p;  // the first error (a part that could not run)
      }
    }
    std::string out;
    switch (kind_) {
      case SplitKind::kMget: {
        out = fmt::format("*{}\r\n", parts_.size());
        for (const std::string& p : parts_) {
          out += p.starts_with("-") ? (protocol_ >= 3 ? "_\r\n" : "$-1\r\n") : p;
        }
        return out;
      }
      case SplitKind::kMset:
        return "+OK\r\n";
      case SplitKind::kSum: {
        int64_t sum = 0;
        for (const std::string& p : parts_) {
          if (p.size() > 3 && p[0] == ':') sum += std::strtoll(p.c_str() + 1, nullptr, 10);
        }
        return fmt::format(":{}\r\n", sum);
      }
    }
    return "-ERR internal: bad split\r\n";
  }

  const SplitKind kind_;
  std::mutex mu_;
  std::vector<std::string> parts_;
  size_t remaining_;
  Shard* const home_;
  const uint64_t client_id_;
  const resp::Connection::ReplyToken token_;
  const int protocol_;
};

}  // namespace

resp::DispatchResult Engine::DispatchClustered(resp::Connection* c, ClientInfo* info,
                                               const CommandSpec& spec, Args args,
                                               resp::ReplyBuilder* out) {
  const bool redirect = Config_redirect();
  info->asking = false;
  const KeyPosList pos = KeyPositions(spec, args);
  const uint16_t first = KeyBucket(args[pos[0]]).value();
  bool one_bucket = true;
  bool all_active = true;
  for (size_t p : pos) {
    const uint16_t b = KeyBucket(args[p]).value();
    one_bucket &= b == first;
    all_active &= plane_.state(b) == sharding::BucketState::kActive;
  }
  Shard* home = CurrentShard();
  if (!one_bucket) {
    if (redirect) {
      out->Error("CROSSSLOT Keys in request don't hash to the same slot");
      return resp::DispatchResult::kDone;
    }
    if (all_active) {
      // Every key served here: the command runs as on a single node (atomic across workers).
      const unsigned target = ShardOf(args[pos[0]]);
      bool one_worker = true;
      for (size_t p : pos) one_worker &= ShardOf(args[p]) == target;
      if (one_worker || spec.conn_handler == nullptr) {
        return DispatchLocal(c, info, spec, args, out, target);
      }
      info->tx_buckets.clear();
      for (size_t p : pos) info->tx_buckets.push_back(KeyBucket(args[p]).value());
      return spec.conn_handler(*this, c, args, out);
    }
    // Keys over several nodes: split into one command per key, merge the replies.
    const auto kind = SplitKindOf(spec.name);
    if (!kind) {
      out->Error("CROSSSLOT Keys in request don't hash to the same slot");
      return resp::DispatchResult::kDone;
    }
    const size_t step = *kind == SplitKind::kMset ? 2 : 1;
    const CommandSpec* part_spec = FindCommand(*kind == SplitKind::kMget   ? "get"
                                               : *kind == SplitKind::kMset ? "set"
                                                                           : spec.name);
    auto gather = std::make_shared<Gather>(*kind, pos.size(), home, c->id(), c->ReserveReply(),
                                           c->protocol());
    for (size_t i = 0; i < pos.size(); ++i) {
      std::string_view part[3] = {part_spec->name, args[pos[i]], {}};
      if (step == 2) part[2] = args[pos[i] + 1];
      RemoteOp op = RemoteOp::From(part_spec, Args(part, step + 1), c->protocol());
      op.origin = home->index();
      op.sink = gather;
      op.sink_index = static_cast<uint32_t>(i);
      home->RouteOp(std::move(op));
    }
    return resp::DispatchResult::kAsync;
  }
  const sharding::BucketState st = plane_.state(first);
  if (st == sharding::BucketState::kActive || st == sharding::BucketState::kSending) {
    const unsigned target = ShardOfBucket(first);  // CRC16 computed once above
    if (st == sharding::BucketState::kSending && target == home->index()) {
      // Not inline: the worker's check decides whether it waits for the cut-over.
      RemoteOp op = RemoteOp::From(&spec, args, c->protocol());
      op.client_id = c->id();
      op.token = c->ReserveReply();
      op.origin = home->index();
      op.counted_local = true;
      ++info->inflight_local;
      home->SendOp(target, std::move(op));
      return resp::DispatchResult::kAsync;
    }
    return DispatchLocal(c, info, spec, args, out, target);
  }
  Endpoint to;
  std::string reply = home->RedirectFor(first, &to);
  if (redirect || to.port == 0) {
    out->out()->append(reply);
    return resp::DispatchResult::kDone;
  }
  RemoteOp op = RemoteOp::From(&spec, args, c->protocol());
  op.client_id = c->id();
  op.token = c->ReserveReply();
  op.origin = home->index();
  op.hops = 1;
  home->ForwardOp(to, std::move(op));
  return resp::DispatchResult::kAsync;
}

namespace {

// The replies of a forwarded batch, answered when the last one is in.
class ForeignBatch final : public OpSink {
 public:
  ForeignBatch(size_t n, net::Responder responder)
      : replies_(n), remaining_(n), responder_(std::move(responder)) {}
  void Complete(uint32_t index, std::string reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    replies_[index] = std::move(reply);
    if (--remaining_ > 0) return;
    wire::Writer w;
    w.Array(static_cast<uint32_t>(replies_.size()));
    for (const std::string& r : replies_) w.Bin(r);
    responder_.Reply(w.Take());
  }

 private:
  std::mutex mu_;
  std::vector<std::string> replies_;
  size_t remaining_;
  net::Responder responder_;
};

}  // namespace

void Engine::ExecuteForwarded(std::string_view body, net::Responder responder) {
  std::vector<RemoteOp> ops;
  try {
    auto oh = wire::Unpack(body);
    wire::Reader r(oh.get());
    const uint32_t n = r.Array();
    if (n == 0) throw wire::WireError("empty batch");
    ops.reserve(n);
    std::vector<std::string_view> args;
    for (uint32_t i = 0; i < n; ++i) {
      wire::Reader cmd = r.At(i);
      const uint32_t argc = cmd.Array();
      if (argc < 2) throw wire::WireError("command without arguments");
      const int protocol = static_cast<int>(cmd.At(0).U64Max(3));
      args.clear();
      for (uint32_t a = 1; a < argc; ++a) args.push_back(cmd.At(a).Bin());
      const CommandSpec* spec = FindCommand(args[0]);
      RemoteOp op = RemoteOp::From(spec, Args(args.data(), args.size()), protocol);
      op.foreign = true;
      op.sink_index = i;
      ops.push_back(std::move(op));
    }
  } catch (const wire::WireError& e) {
    responder.Fail(std::string("kv: ") + e.what());
    return;
  }
  auto batch = std::make_shared<ForeignBatch>(ops.size(), std::move(responder));
  std::vector<std::vector<RemoteOp>> per_shard(num_shards());
  std::vector<std::string_view> args;
  for (RemoteOp& op : ops) {
    op.sink = batch;
    op.Views(&args);
    const int argc = static_cast<int>(args.size());
    const CommandSpec* spec = op.spec;
    if (spec == nullptr || spec->first_key <= 0 || spec->first_key >= argc ||
        (spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
      batch->Complete(op.sink_index, "-ERR command cannot be forwarded\r\n");
      continue;
    }
    per_shard[ShardOf(args[static_cast<size_t>(spec->first_key)])].push_back(std::move(op));
  }
  for (unsigned i = 0; i < num_shards(); ++i) {
    if (per_shard[i].empty()) continue;
    Shard* s = shards_[i].get();
    s->loop()->Post([s, ops = std::move(per_shard[i])]() mutable {
      s->Submit([s, ops = std::move(ops)]() mutable {
        for (RemoteOp& op : ops) {
          if (s->RunOp(op)) op.sink->Complete(op.sink_index, std::move(op.reply));
        }
      });
    });
  }
}

resp::DispatchResult Engine::RunLocked(resp::Connection* c, std::vector<unsigned> shards,
                                       LockedFn fn) {
  return StartTx(c, std::move(shards), std::move(fn), StepFn());
}

resp::DispatchResult Engine::StartTx(resp::Connection* c, std::vector<unsigned> shards, LockedFn fn,
                                     StepFn step) {
  if (c->pending_replies() > 0) return resp::DispatchResult::kBlocked;
  auto* info = static_cast<ClientInfo*>(c->state());
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  info->in_barrier = true;
  auto tx = std::make_shared<Tx>();
  tx->id = next_tx_.fetch_add(1);
  tx->home = CurrentShard()->index();
  tx->shards = std::move(shards);
  tx->fn = std::move(fn);
  tx->step = std::move(step);
  tx->client_id = c->id();
  tx->token = c->ReserveReply();
  tx->protocol = c->protocol();
  tx->buckets = std::move(info->tx_buckets);
  info->tx_buckets.clear();
  AcquireNext(std::move(tx), 0);
  return resp::DispatchResult::kAsync;
}

resp::DispatchResult Engine::RunLockedAll(resp::Connection* c, LockedFn fn) {
  std::vector<unsigned> all(num_shards());
  for (unsigned i = 0; i < all.size(); ++i) all[i] = i;
  return RunLocked(c, std::move(all), std::move(fn));
}

resp::DispatchResult Engine::RunLockedAllInSteps(resp::Connection* c, StepFn step) {
  std::vector<unsigned> all(num_shards());
  for (unsigned i = 0; i < all.size(); ++i) all[i] = i;
  return StartTx(c, std::move(all), LockedFn(), std::move(step));
}

void Engine::AcquireNext(std::shared_ptr<Tx> tx, size_t i) {
  if (i == tx->shards.size()) {
    FinishTx(std::move(tx));
    return;
  }
  Shard* target = shards_[tx->shards[i]].get();
  Shard* home = shards_[tx->home].get();
  target->loop()->Post([this, target, home, tx = std::move(tx), i]() mutable {
    const uint64_t id = tx->id;
    target->Lock(id, [this, home, tx = std::move(tx), i]() mutable {
      home->loop()->Post(
          [this, tx = std::move(tx), i]() mutable { AcquireNext(std::move(tx), i + 1); });
    });
  });
}

void Engine::FinishTx(std::shared_ptr<Tx> tx) {
  std::string reply;
  resp::ReplyBuilder rb(&reply, tx->protocol);
  bool served = true;
  for (uint16_t b : tx->buckets) served &= plane_.state(b) == sharding::BucketState::kActive;
  bool done = true;
  if (!served) {
    rb.Error("TRYAGAIN Multiple keys request during rehashing of slot");
  } else {
    // The transaction's records on every worker form one group.
    for (unsigned s : tx->shards) shards_[s]->journal().BeginUnit();
    if (tx->step) {
      done = tx->step(rb);
    } else {
      tx->fn(rb);
    }
    uint32_t parts = 0;
    for (unsigned s : tx->shards) parts += shards_[s]->journal().MovedInUnit() ? 1 : 0;
    const uint64_t group = parts > 0 ? storage::Journal::NewGroupId() : 0;
    for (unsigned s : tx->shards) shards_[s]->journal().EndGroup(group, parts);
  }
  for (unsigned s : tx->shards) {
    Shard* sh = shards_[s].get();
    const uint64_t id = tx->id;
    sh->loop()->Post([sh, id] { sh->Unlock(id); });
  }
  Shard* home = shards_[tx->home].get();
  if (!done) {
    // Yield: the unlocks above reach each worker before the next step's locks (one queue per
    // worker, in order), so the work they queued meanwhile runs in between.
    if (home->FindClient(tx->client_id) == nullptr) return;
    tx->id = next_tx_.fetch_add(1);
    home->loop()->Post([this, tx = std::move(tx)]() mutable { AcquireNext(std::move(tx), 0); });
    return;
  }
  if (resp::Connection* c = home->FindClient(tx->client_id)) {
    static_cast<ClientInfo*>(c->state())->in_barrier = false;
    c->CompleteReply(tx->token, reply);
    c->FlushOutput();
  }
}

resp::DispatchResult Engine::FanOut(resp::Connection* c, PerShardFn per_shard, CombineFn combine) {
  struct State {
    std::vector<std::string> parts;
    size_t remaining;
    PerShardFn per_shard;
    CombineFn combine;
    uint64_t client_id;
    resp::Connection::ReplyToken token;
    int protocol;
    Shard* home;
  };
  auto st = std::make_shared<State>();
  st->parts.resize(num_shards());
  st->remaining = num_shards();
  st->per_shard = std::move(per_shard);
  st->combine = std::move(combine);
  st->client_id = c->id();
  st->token = c->ReserveReply();
  st->protocol = c->protocol();
  st->home = CurrentShard();
  for (unsigned i = 0; i < num_shards(); ++i) {
    Shard* s = shards_[i].get();
    s->loop()->Post([s, st, i] {
      std::string part = st->per_shard(*s);
      st->home->loop()->Post([st, i, part = std::move(part)]() mutable {
        st->parts[i] = std::move(part);
        if (--st->remaining > 0) return;
        std::string reply;
        resp::ReplyBuilder rb(&reply, st->protocol);
        st->combine(st->parts, rb);
        if (resp::Connection* conn = st->home->FindClient(st->client_id)) {
          conn->CompleteReply(st->token, reply);
          conn->FlushOutput();
        }
      });
    });
  }
  return resp::DispatchResult::kAsync;
}

}  // namespace shoal::engine
