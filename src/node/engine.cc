#include "node/engine.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/log.h"
#include "net/runtime.h"

namespace shoal::node {

struct Engine::Tx {
  uint64_t id;
  unsigned home;
  std::vector<unsigned> shards;  // ascending
  LockedFn fn;
  uint64_t client_id;
  resp::Connection::ReplyToken token;
  int protocol;
};

Engine::Engine(const config::ServerConfig& cfg, net::Runtime* runtime, const Clock* clock)
    : start_unix_ms(clock->NowUnixMillis()), runtime_(runtime), clock_(clock), cfg_(cfg) {
  const unsigned n = runtime->size();
  shards_.reserve(n);
  for (unsigned i = 0; i < n; ++i) shards_.push_back(nullptr);
  for (unsigned i = 0; i < n; ++i) {
    shards_[i] = std::make_unique<Shard>(i, runtime->loop(i), this, clock);
    ApplySettingsTo(*shards_[i], cfg, n);
  }
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

void Engine::OnConnect(resp::Connection* c) {
  c->set_state(std::make_unique<ClientInfo>());
  CurrentShard()->AddClient(c);
  connected_clients.fetch_add(1, std::memory_order_relaxed);
  total_connections.fetch_add(1, std::memory_order_relaxed);
}

void Engine::OnDisconnect(resp::Connection* c) {
  CurrentShard()->RemoveClient(c->id());
  connected_clients.fetch_sub(1, std::memory_order_relaxed);
}

resp::DispatchResult Engine::Dispatch(resp::Connection* c, Args args, resp::ReplyBuilder* out) {
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
  Shard* home = CurrentShard();
  if (!info->authenticated && !(spec->flags & kCmdNoAuth) &&
      !home->settings().requirepass.empty()) {
    out->Error("NOAUTH Authentication required.");
    return resp::DispatchResult::kDone;
  }
  unsigned target = 0;
  if (spec->conn_handler != nullptr) {
    if (spec->key_handler == nullptr) return spec->conn_handler(*this, c, args, out);
    // A multi-key command: when all its keys live on one worker it runs there like any keyed
    // command; otherwise its ConnHandler coordinates the workers.
    const std::vector<size_t> pos = KeyPositions(*spec, args);
    target = ShardOf(args[pos[0]]);
    for (size_t p : pos) {
      if (ShardOf(args[p]) != target) return spec->conn_handler(*this, c, args, out);
    }
  } else {
    target = ShardOf(args[static_cast<size_t>(spec->first_key)]);
  }
  if (target == home->index() && info->inflight_local == 0 && !home->Busy()) {
    home->Execute(*spec, args, out);
    return resp::DispatchResult::kDone;
  }
  RemoteOp op;
  op.spec = spec;
  op.client_id = c->id();
  op.token = c->ReserveReply();
  op.protocol = c->protocol();
  size_t total = 0;
  for (auto a : args) total += a.size();
  op.argbuf.reserve(total);
  op.arg_ends.reserve(args.size());
  for (auto a : args) {
    op.argbuf.append(a);
    op.arg_ends.push_back(static_cast<uint32_t>(op.argbuf.size()));
  }
  if (target == home->index()) ++info->inflight_local;
  home->SendOp(target, std::move(op));
  return resp::DispatchResult::kAsync;
}

resp::DispatchResult Engine::RunLocked(resp::Connection* c, std::vector<unsigned> shards,
                                       LockedFn fn) {
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
  tx->client_id = c->id();
  tx->token = c->ReserveReply();
  tx->protocol = c->protocol();
  AcquireNext(std::move(tx), 0);
  return resp::DispatchResult::kAsync;
}

resp::DispatchResult Engine::RunLockedAll(resp::Connection* c, LockedFn fn) {
  std::vector<unsigned> all(num_shards());
  for (unsigned i = 0; i < all.size(); ++i) all[i] = i;
  return RunLocked(c, std::move(all), std::move(fn));
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
  tx->fn(rb);
  for (unsigned s : tx->shards) {
    Shard* sh = shards_[s].get();
    const uint64_t id = tx->id;
    sh->loop()->Post([sh, id] { sh->Unlock(id); });
  }
  Shard* home = shards_[tx->home].get();
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

}  // namespace shoal::node
