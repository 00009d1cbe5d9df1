// ShardingDriver: runs this node's sharding::ShardingCore on the control thread, with real I/O —
// the internal RPC for the protocol's messages (sharding/peer_rpc.h), the worker threads' tables
// for bucket contents, and the engine's BucketPlane and published map for the data plane.
//
// Store operations go to the worker that owns each bucket (bucket % workers) through
// Shard::Submit, so they queue behind a multi-worker command holding that shard's lock: a copy
// taken for migration never misses a write that was acknowledged before the bucket became
// SENDING. Results come back to the control thread by message; the core's callbacks always run
// from the control loop, never from inside the call that started them.
//
// Large keys: the core sends a chunk larger than `max_transfer_bytes` (kept at a quarter of the
// RPC frame limit) in pieces; this node refuses an incoming key larger than its maxmemory (when
// set, as read at start) or the core's default bound.
//
// Thread-safety: everything on the control thread, except snapshot(), which any thread may call
// (INFO, the admin API, and the leave's wait on its `drained` field).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "node/service.h"
#include "sharding/core.h"

namespace shoal::engine {
class Engine;
}  // namespace shoal::engine

namespace shoal::node {

class ShardingDriver final : public sharding::CoreIo, public Service {
 public:
  // REQUIRES: ctx.engine.
  explicit ShardingDriver(const ServiceContext& ctx, sharding::CoreOptions options = {});
  ~ShardingDriver() override;

  // Service. Start registers the "shard" (protocol) and "kv" (forwarded commands) methods and
  // turns the engine's bucket plane on.
  Status Start(net::RpcServer* server) override;
  void OnView(std::shared_ptr<const membership::MemberTable> view) override;
  void Tick(int64_t now_us) override;
  // Starts handing this node's buckets to the others (graceful leave). Control thread.
  void SetLeaving();

  // For INFO, the admin API and shutdown. Any thread.
  struct Snapshot {
    bool coordinator = false;
    membership::MemberId coordinator_id;
    bool leaving = false;
    bool drained = false;
    uint64_t epoch = 0;
    uint32_t active = 0, sending = 0, receiving = 0, garbage = 0;
    sharding::CoreCounters counters;
    std::vector<sharding::ShardingCore::Flight> flights;
    std::shared_ptr<const sharding::BucketMap> map;
    // While leaving (for the leave's decisions and log): the buckets still held here, the
    // members that could take them, outgoing migrations, keys held, and why the last outgoing
    // migration failed.
    std::vector<uint16_t> held;
    std::vector<membership::MemberId> takers;
    uint32_t outgoing = 0;
    uint64_t keys = 0;
    std::string last_failure;
  };
  Snapshot snapshot() const;

  // CoreIo (control thread).
  void Call(const membership::MemberId& to, const Endpoint& cluster, std::string body,
            int64_t timeout_us, ReplyFn done) override;
  void SetStates(const std::vector<uint16_t>& buckets, sharding::BucketState state,
                 const membership::MemberId& peer) override;
  void PublishMap(std::shared_ptr<const sharding::BucketMap> map) override;
  void ReadBuckets(const std::vector<uint16_t>& buckets, ChunksFn done) override;
  void ApplyChunk(std::string chunk, DoneFn done) override;
  void DropBuckets(const std::vector<uint16_t>& buckets) override;
  uint64_t KeyCount() override;

 private:
  void UpdateSnapshot();

  engine::Engine* const engine_;
  net::EventLoop* const loop_;
  net::RpcClientChannel channel_;
  const membership::MemberId self_;
  const Clock* const clock_;
  sharding::ShardingCore core_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted callbacks

  mutable std::mutex mu_;
  Snapshot snapshot_;  // guarded by mu_
};

}  // namespace shoal::node
