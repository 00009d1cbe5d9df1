#include "node/sharding_driver.h"

#include <algorithm>
#include <map>

#include "common/log.h"
#include "engine/engine.h"
#include "sharding/peer_rpc.h"
#include "storage/dump.h"

namespace shoal::node {

using engine::BucketPlane;
using engine::Engine;
using engine::Shard;

using sharding::BucketState;

namespace {
constexpr size_t kChunkBytes = 1 << 20;

sharding::CoreOptions WithLimits(sharding::CoreOptions o, const Engine* engine) {
  o.max_transfer_bytes =
      std::min<uint64_t>(o.max_transfer_bytes, net::rpc::kDefaultMaxFrameSize / 4);
  const int64_t maxmemory = engine->Config().maxmemory;
  if (maxmemory > 0) {
    o.max_assembly_bytes =
        std::min<uint64_t>(o.max_assembly_bytes, static_cast<uint64_t>(maxmemory));
  }
  return o;
}
}  // namespace

ShardingDriver::ShardingDriver(const ServiceContext& ctx, sharding::CoreOptions options)
    : Service("sharding"),
      engine_(ctx.engine),
      loop_(ctx.loop),
      channel_(ctx.rpc_client),
      self_(ctx.self),
      clock_(ctx.clock),
      core_(ctx.self, WithLimits(options, ctx.engine), this) {}

ShardingDriver::~ShardingDriver() { *alive_ = false; }

Status ShardingDriver::Start(net::RpcServer* server) {
  ServeMethod(server, sharding::kShardMethod,
              [this](std::string_view body, net::Responder responder) {
                sharding::ServeRequest(core_, body,
                                       [r = std::make_shared<net::Responder>(std::move(responder))](
                                           Result<std::string> reply) mutable {
                                         if (reply.ok()) {
                                           r->Reply(std::move(reply).value());
                                         } else {
                                           r->Fail(reply.error().message());
                                         }
                                       });
              });
  ServeMethod(server, engine::kForwardMethod,
              [this](std::string_view body, net::Responder responder) {
                engine_->ExecuteForwarded(body, std::move(responder));
              });
  engine_->plane().set_enabled(true);
  return Status::Ok();
}

void ShardingDriver::OnView(std::shared_ptr<const membership::MemberTable> view) {
  core_.OnView(std::move(view), clock_->MonotonicMicros());
  UpdateSnapshot();
}

void ShardingDriver::Tick(int64_t now_us) {
  core_.Tick(now_us);
  UpdateSnapshot();
}

void ShardingDriver::SetLeaving() {
  core_.SetLeaving();
  UpdateSnapshot();
}

ShardingDriver::Snapshot ShardingDriver::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void ShardingDriver::UpdateSnapshot() {
  Snapshot s;
  s.coordinator = core_.is_coordinator();
  s.coordinator_id = core_.coordinator();
  s.leaving = core_.leaving();
  s.drained = core_.leaving() && core_.Drained();
  s.epoch = core_.map()->epoch().value();
  s.active = core_.CountIn(BucketState::kActive);
  s.sending = core_.CountIn(BucketState::kSending);
  s.receiving = core_.CountIn(BucketState::kReceiving);
  s.garbage = core_.CountIn(BucketState::kGarbage);
  s.counters = core_.counters();
  s.flights = core_.InFlight();
  s.map = core_.map();
  if (s.leaving) {
    s.held = core_.HeldBuckets();
    s.takers = core_.Takers();
    s.outgoing = core_.send_batches();
    s.keys = KeyCount();
    s.last_failure = core_.last_failure();
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(s);
}

void ShardingDriver::Call(const membership::MemberId& to, const Endpoint& cluster, std::string body,
                          int64_t timeout_us, ReplyFn done) {
  sharding::CallPeer(channel_, self_, cluster, body, timeout_us,
                     [this, done = std::move(done)](Result<std::string> r) mutable {
                       done(std::move(r));
                       UpdateSnapshot();
                     });
}

void ShardingDriver::SetStates(const std::vector<uint16_t>& buckets, BucketState state,
                               const membership::MemberId& peer) {
  BucketPlane& plane = engine_->plane();
  const unsigned n = engine_->num_shards();
  std::map<unsigned, std::vector<uint16_t>> released;
  for (uint16_t b : buckets) {
    const BucketState old = plane.state(b);
    plane.Set(b, state, peer);
    if (old == BucketState::kSending && state != BucketState::kSending) {
      released[b % n].push_back(b);
    }
  }
  // Writes held for a bucket that stopped SENDING run now: here if it came back, redirected if
  // it moved on.
  for (auto& [i, list] : released) {
    Shard* shard = engine_->shard(i);
    shard->loop()->Post([shard, list = std::move(list)] {
      for (uint16_t b : list) shard->ReleaseHeld(b);
    });
  }
}

void ShardingDriver::PublishMap(std::shared_ptr<const sharding::BucketMap> map) {
  engine_->PublishMap(std::move(map));
}

void ShardingDriver::ReadBuckets(const std::vector<uint16_t>& buckets, ChunksFn done) {
  const unsigned n = engine_->num_shards();
  std::map<unsigned, std::vector<uint16_t>> by_shard;
  for (uint16_t b : buckets) by_shard[b % n].push_back(b);
  struct Gather {
    size_t remaining;
    std::vector<std::string> chunks;
    ChunksFn done;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = by_shard.size();
  g->done = std::move(done);
  if (by_shard.empty()) {
    loop_->Post([g] { g->done({}); });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  for (auto& [i, list] : by_shard) {
    Shard* shard = engine_->shard(i);
    net::EventLoop* control = loop_;
    shard->loop()->Post([shard, list = std::move(list), g, control, alive]() mutable {
      shard->Submit([shard, list = std::move(list), g, control, alive]() mutable {
        std::vector<std::string> chunks;
        std::string cur;
        storage::Table& t = shard->table();
        for (uint16_t b : list) {
          t.ForEachInBucket(BucketId(b), [&](const storage::Entry* e) {
            if (t.IsExpired(e)) return;
            storage::DumpEntry(BucketId(b), *e, &cur);
            if (cur.size() >= kChunkBytes) chunks.push_back(std::move(cur)), cur.clear();
          });
        }
        if (!cur.empty()) chunks.push_back(std::move(cur));
        control->Post([g, chunks = std::move(chunks), alive]() mutable {
          if (alive.expired()) return;
          for (auto& c : chunks) g->chunks.push_back(std::move(c));
          if (--g->remaining == 0) g->done(std::move(g->chunks));
        });
      });
    });
  }
}

void ShardingDriver::ApplyChunk(std::string chunk, DoneFn done) {
  const unsigned n = engine_->num_shards();
  std::vector<std::string> parts(n);
  Status st = storage::ForEachRecord(
      chunk, [&](BucketId b, std::string_view rec) { parts[b.value() % n].append(rec); });
  if (!st.ok()) {
    loop_->Post([done = std::move(done), st]() mutable { done(st); });
    return;
  }
  struct Gather {
    size_t remaining = 0;
    DoneFn done;
  };
  auto g = std::make_shared<Gather>();
  g->done = std::move(done);
  for (const auto& p : parts) g->remaining += p.empty() ? 0 : 1;
  if (g->remaining == 0) {
    loop_->Post([g] { g->done(Status::Ok()); });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  for (unsigned i = 0; i < n; ++i) {
    if (parts[i].empty()) continue;
    Shard* shard = engine_->shard(i);
    net::EventLoop* control = loop_;
    shard->loop()->Post([shard, part = std::move(parts[i]), g, control, alive]() mutable {
      shard->Submit([shard, part = std::move(part), g, control, alive]() mutable {
        (void)storage::ForEachRecord(part, [&](BucketId b, std::string_view rec) {
          shard->table().Put(b, storage::LoadRecord(rec));
        });
        control->Post([g, alive] {
          if (alive.expired()) return;
          if (--g->remaining == 0) g->done(Status::Ok());
        });
      });
    });
  }
}

void ShardingDriver::DropBuckets(const std::vector<uint16_t>& buckets) {
  const unsigned n = engine_->num_shards();
  std::map<unsigned, std::vector<uint16_t>> by_shard;
  for (uint16_t b : buckets) by_shard[b % n].push_back(b);
  for (auto& [i, list] : by_shard) {
    Shard* shard = engine_->shard(i);
    shard->loop()->Post([shard, list = std::move(list)]() mutable {
      shard->Submit([shard, list = std::move(list)] {
        for (uint16_t b : list) shard->table().ClearBucket(BucketId(b));
      });
    });
  }
}

uint64_t ShardingDriver::KeyCount() {
  uint64_t n = 0;
  for (unsigned i = 0; i < engine_->num_shards(); ++i) {
    n += engine_->shard(i)->approx_keys.load(std::memory_order_relaxed);
  }
  return n;
}

}  // namespace shoal::node
