// ReplicatedDriver: the control-thread side of the replicated maps.
//
//   * Broadcast. Each map's outbox (replicated_maps.h) is flushed by a task posted to the control
//     loop when it becomes non-empty: the queued changes leave as one change batch published on
//     the bus (space 'r', subject = map name): one message per node that declared the map. A
//     batch larger than kMaxBatchBytes is split. Batches from peers are applied with LWW.
//   * Sync. A node syncs a map from one peer (replicated/sync.h) when the peer is first seen
//     alive — at start, when a node joins, and when a node comes back after a crash or a
//     partition — and otherwise every `replicated-sync-interval` with a random live peer
//     (anti-entropy, which also repairs batches the at-most-once bus lost). A periodic round
//     waits while the map is being written (kQuietUs), for at most kMaxQuietWaitRounds
//     intervals: batches in flight would otherwise show as differences and travel twice. One
//     session per map at a time; the internal RPC method "replicated.sync" answers the peer's
//     requests. A node whose copy is fresh (no session of its own completed yet) refuses the
//     sessions of peers that are not, while its own first session runs or is due: that session
//     repairs both copies, and the peers' would move the whole map to it once more each.
//   * Maintenance: expiry (a budget of groups every 100 ms), tombstone collection (every 10 s,
//     `replicated-tombstone-ttl`), snapshots every `replicated-save-interval` with a data dir.
//
// Thread-safety: everything on the control thread, except SyncNow (any thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/clock.h"
#include "engine/replicated_maps.h"
#include "membership/types.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "node/bus.h"
#include "node/service.h"
#include "replicated/sync.h"

namespace shoal::node {

inline constexpr std::string_view kReplicatedSyncMethod = "replicated.sync";
inline constexpr size_t kMaxBatchBytes = 4 << 20;
inline constexpr int64_t kSyncCallTimeoutMs = 10'000;
inline constexpr int64_t kQuietUs = 500'000;  // no writes for this long: a round may start
inline constexpr int kMaxQuietWaitRounds = 5;

class ReplicatedDriver final : public Service {
 public:
  // REQUIRES: ctx.engine, and a Bus among ctx.services.
  explicit ReplicatedDriver(const ServiceContext& ctx);
  ~ReplicatedDriver() override;

  // Service. Load reads the maps' snapshots (with a data dir; a corrupt one stops the boot and is
  // left as it is). Start registers "replicated.sync" and subscribes to the maps (those declared
  // now and later). Stop saves every map (with a data dir) and lets go of their outboxes.
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
  struct PerMap {
    engine::ReplicatedMap* map = nullptr;
    bool interest_ready = false;  // subscribed cluster-wide
    std::unique_ptr<replicated::SyncSession> session;
    membership::MemberId peer;
    int64_t next_sync_us = 0;
    // Writes seen (local + batches received) and when they last changed: a periodic round is
    // put off while writes are in flight (their batches would show as differences and be sent
    // twice), but never for more than kMaxQuietWaitRounds intervals.
    uint64_t activity = 0;
    int64_t active_us = 0;
    int64_t last_round_us = 0;
    std::set<membership::MemberId> pending_peers;  // sync with them first, now
    // Peers seen coming (back) alive by a node that has synced already: a session with each
    // after a delay of one to two intervals. The peer, if it restarted, pulls from one of us at
    // once; were every node to start a session with it at once, it would get the map once per
    // node (the seed's n-1 copies). After a partition both sides are synced: the random delay
    // lets one session go first and the later ones find nothing to move.
    std::map<membership::MemberId, int64_t> delayed_peers;  // -> due, monotonic us
    bool pulled = false;  // a session of this node's completed: not a fresh copy any more
  };
  void Attach(engine::ReplicatedMap* m);
  void Flush(PerMap& pm);
  void OnBatch(const bus::Publication& p);
  void MaybeStartSync(PerMap& pm, int64_t now_us);
  void StartSession(PerMap& pm, const membership::MemberId& peer);
  void SendStep(const std::string& name, std::string request);
  void EndSession(PerMap& pm, bool ok);
  // A sync request this node refuses while it takes its own first copy (see SyncRequest::fresh).
  bool RefuseAsFresh(const replicated::SyncRequest& req) const;
  std::vector<membership::MemberId> AlivePeers() const;
  uint64_t NextRandom();  // xorshift: which peer a round goes to

  engine::ReplicatedMaps* maps_;
  Bus* bus_;
  net::EventLoop* loop_;
  net::RpcClient* client_;
  membership::MemberId self_;
  const Clock* clock_;
  const config::ServerConfig& cfg_;
  std::map<std::string, PerMap> per_map_;
  std::shared_ptr<const membership::MemberTable> view_;
  std::set<membership::MemberId> alive_;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  int64_t next_maintain_us_ = 0;
  int64_t next_collect_us_ = 0;
  int64_t next_save_us_ = 0;
  std::shared_ptr<bool> alive_flag_ = std::make_shared<bool>(true);
};

}  // namespace shoal::node
