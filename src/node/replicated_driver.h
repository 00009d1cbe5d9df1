// ReplicatedDriver: the control-thread side of the replicated maps — a replicated::Replicator
// (replicated/replicator.h: broadcast, anti-entropy sync, expiry and tombstone collection) run
// with the node's I/O:
//   * the maps are the engine's ReplicatedMaps, attached as they are declared (at start or by
//     the embedded API at run time); a map's outbox posts its flush to the control loop;
//   * change batches go out on the bus (space 'r', subject = map name: one message per node that
//     declared the map, at most once), and the bus's deliveries come back as OnBatch;
//   * sync rounds are internal RPC calls (replicated::kSyncMethod) through an RpcClientChannel;
//   * views come from membership; ticks from the service registry;
//   * snapshots (with a data dir): loaded before joining, saved every
//     `replicated-save-interval` and at stop.
//
// Thread-safety: everything on the control thread, except SyncNow (any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "engine/replicated_maps.h"
#include "membership/types.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "node/bus.h"
#include "node/service.h"
#include "replicated/replicator.h"

namespace shoal::node {

class ReplicatedDriver final : public Service {
 public:
  // REQUIRES: ctx.engine, and a Bus among ctx.services.
  explicit ReplicatedDriver(const ServiceContext& ctx);
  ~ReplicatedDriver() override;

  // Service. Load reads the maps' snapshots (with a data dir; a corrupt one stops the boot and is
  // left as it is). Start serves replicated::kSyncMethod and subscribes to the maps (those
  // declared now and later). Stop saves every map (with a data dir) and lets go of their
  // outboxes.
  Status Load() override;
  Status Start(net::RpcServer* server) override;
  void OnView(std::shared_ptr<const membership::MemberTable> view) override;
  void Tick(int64_t now_us) override;
  void Stop() override;
  // Starts an anti-entropy round of `map` with a random live peer (any thread).
  void SyncNow(std::string map);

 private:
  // Lets go of the maps' outboxes (idempotent).
  void Detach();
  void Attach(engine::ReplicatedMap* m);

  engine::ReplicatedMaps* maps_;
  Bus* bus_;
  net::EventLoop* loop_;
  net::RpcClientChannel channel_;
  membership::MemberId self_;
  const Clock* clock_;
  const config::ServerConfig& cfg_;
  replicated::Replicator replicator_;
  int64_t next_save_us_ = 0;
  std::shared_ptr<bool> alive_flag_ = std::make_shared<bool>(true);
};

}  // namespace shoal::node
