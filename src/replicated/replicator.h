// Replicator: how a node keeps its copies of the replicated maps in step with its peers — the
// scheduling half of replication, over interfaces, so that the node (node/replicated_driver.h)
// and the simulator (replicated_sim_test.cc) run this same class.
//
//   * Broadcast. Flush(map) takes the map's queued local writes and hands them to `broadcast` as
//     change batches (EncodeChanges), split above `max_batch_bytes`; the node publishes them on
//     the bus, at most once, to every node that declared the map. OnBatch applies a peer's batch
//     (last writer wins).
//   * Sync. A node syncs a map from one peer (sync.h) when the peer is first seen alive — at
//     start, when a node joins, and when a node comes back after a crash or a partition — and
//     otherwise every `sync_interval_us` with a random live peer (anti-entropy, which also
//     repairs batches the at-most-once broadcast lost). A periodic round waits while the map is
//     being written (`quiet_us`), for at most `max_quiet_wait_rounds` intervals: batches in
//     flight would otherwise show as differences and travel twice. One session per map at a
//     time, each step a call of RpcChannel method kSyncMethod that the peer's Answer serves. A
//     node whose copy is fresh (no session of its own completed yet) refuses the sessions of
//     peers that are not, while its own first session runs or is due: that session repairs both
//     copies, and the peers' would move the whole map to it once more each. A peer seen alive
//     again by a node that has synced already gets a session after one to two intervals, so that
//     a restarted node pulls first and the others find nothing left to move.
//   * Maintenance, every `maintain_every_us`: expiry, and every `collect_every_us` tombstone
//     collection older than `tombstone_ttl_ms` — but not before the node's first completed sync
//     (unless it runs standalone, alone by configuration): the horizon refuses older changes, and
//     a node that has not yet received its peers' old entries would refuse them for good.
//
// Time comes in as arguments (monotonic microseconds for scheduling, unix milliseconds for
// expiry). Callbacks of calls in flight are ignored once the Replicator is destroyed.
// Single-threaded: the node's control thread, or the simulator.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/member_id.h"
#include "common/result.h"
#include "common/rpc_channel.h"
#include "common/transport.h"
#include "replicated/lww_map.h"
#include "replicated/sync.h"

namespace shoal::replicated {

inline constexpr std::string_view kSyncMethod = "replicated.sync";

// Per map, readable from any thread (INFO, metrics).
struct MapStats {
  std::atomic<uint64_t> local_writes{0};
  std::atomic<uint64_t> remote_applied{0};  // changes from peers that won
  std::atomic<uint64_t> remote_stale{0};    // changes from peers that lost (older or known)
  std::atomic<uint64_t> batches_sent{0};
  std::atomic<uint64_t> batches_received{0};
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> syncs{0};
  std::atomic<uint64_t> sync_failures{0};
  std::atomic<uint64_t> sync_deferred{0};  // sessions a fresh peer refused (it pulls itself)
  std::atomic<uint64_t> sync_bytes{0};
  std::atomic<uint64_t> sync_entries_received{0};
  std::atomic<uint64_t> sync_entries_sent{0};
  std::atomic<uint64_t> expired{0};
  std::atomic<uint64_t> tombstones_collected{0};
  std::atomic<uint64_t> saves{0};
  std::atomic<int64_t> last_save_unix{0};
  std::atomic<bool> synced{false};  // a first sync with a peer completed (or no peer exists)
};

// Where changes from peers come from: a broadcast batch, or a sync session (counted apart).
enum class ChangeSource { kBatch, kSync };
// Whether a maintenance pass may collect tombstones.
enum class Tombstones { kKeep, kCollect };

// What the Replicator needs of a node's copy of one map (the engine's ReplicatedMap in the
// node, a plain LwwMap in the simulator).
class LocalCopy {
 public:
  virtual ~LocalCopy() = default;
  virtual const std::string& name() const = 0;
  // The local writes queued for broadcast since the last call.
  virtual std::vector<Change> TakeOutbox() = 0;
  // Runs `fn` on the copy under its read lock.
  virtual void Read(const std::function<void(const LwwMap&)>& fn) const = 0;
  // Applies changes from a peer; returns how many won.
  virtual size_t ApplyRemote(const std::vector<Change>& changes, ChangeSource source) = 0;
  // Expires a budget of entries and, with kCollect, collects tombstones older than
  // now - tombstone_ttl_ms.
  virtual void Maintain(int64_t now_unix_ms, int64_t tombstone_ttl_ms, Tombstones tombstones) = 0;
  virtual MapStats& stats() = 0;
};

struct ReplicatorOptions {
  int64_t sync_interval_us = 5'000'000;
  int64_t tombstone_ttl_ms = 3'600'000;
  int64_t call_timeout_us = 10'000'000;
  int64_t quiet_us = 500'000;  // no writes for this long: a periodic round may start
  int max_quiet_wait_rounds = 5;
  int64_t maintain_every_us = 100'000;
  int64_t collect_every_us = 10'000'000;
  size_t max_batch_bytes = 4 << 20;
  // Alone by configuration (no seeds, no discovery): tombstones are collected without a sync.
  bool standalone = false;
};

class Replicator {
 public:
  using BroadcastFn = std::function<void(const std::string& map, std::string batch)>;

  // `seed` draws which peer each round goes to.
  Replicator(MemberId self, RpcChannel* rpc, BroadcastFn broadcast, ReplicatorOptions options,
             uint64_t seed, int64_t now_us);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Starts replicating `copy` (once per name; it must outlive the Replicator) and flushes what it
  // queued already.
  void Attach(LocalCopy* copy, int64_t now_us);
  // The map's batches reach every peer that declared it (its subscription is known clusterwide):
  // sessions may start.
  void SetInterestReady(const std::string& map);
  void Flush(const std::string& map);
  // A change batch for `map` from `origin` (a batch of this node's own is ignored).
  void OnBatch(const MemberId& origin, const std::string& map, std::string_view payload);
  // Serves a peer's sync request (method kSyncMethod): the answer, or the error to send back.
  Result<std::string> Answer(std::string_view request);
  // The live peers (not this node) and their cluster addresses.
  void OnView(std::map<MemberId, Endpoint> alive, int64_t now_us);
  void Tick(int64_t now_us, int64_t now_unix_ms);
  // An anti-entropy round of `map` with a random live peer at the next tick, not put off by
  // writes in flight.
  void SyncNow(const std::string& map);

  // Whether a session of this node completed for `map`: its copy is no longer fresh.
  bool pulled(const std::string& map) const;
  bool in_session(const std::string& map) const;

 private:
  struct PerMap {
    LocalCopy* copy = nullptr;
    bool interest_ready = false;
    std::unique_ptr<SyncSession> session;
    MemberId peer;
    int64_t next_sync_us = 0;
    // Writes seen (local + batches received) and when they last changed.
    uint64_t activity = 0;
    int64_t active_us = 0;
    int64_t last_round_us = 0;
    std::set<MemberId> pending_peers;           // sync with them first, now
    std::map<MemberId, int64_t> delayed_peers;  // -> due, monotonic us
    bool pulled = false;
  };
  void MaybeStartSync(PerMap& pm, int64_t now_us);
  void StartSession(PerMap& pm, const MemberId& peer);
  void SendStep(const std::string& name, std::string request);
  void EndSession(PerMap& pm, bool ok);
  bool RefuseAsFresh(const SyncRequest& req) const;
  uint64_t NextRandom();

  const MemberId self_;
  RpcChannel* const rpc_;
  const BroadcastFn broadcast_;
  const ReplicatorOptions options_;
  uint64_t rng_;
  std::map<std::string, PerMap, std::less<>> per_map_;
  std::map<MemberId, Endpoint> alive_;
  int64_t next_maintain_us_ = 0;
  int64_t next_collect_us_;
  std::shared_ptr<bool> alive_flag_ = std::make_shared<bool>(true);
};

}  // namespace shoal::replicated
