// Shard: what one worker thread owns — its Table (the buckets b with b % workers == index), its
// clients, its outboxes to the other workers, and the lock that multi-worker commands take.
//
// Messages between workers: a keyed command for another worker becomes a RemoteOp (the command
// and a copy of its arguments) appended to the outbox for that worker; outboxes are flushed once
// per loop iteration, so a pipeline of 16 commands costs one message each way, not 16. The target
// executes the batch and sends it back with the replies filled in; the origin completes the
// clients' reply slots in order.
//
// Locking: a command over several workers' keys (MSET, DEL k1 k2, KEYS, ...) locks each involved
// shard in ascending index order (so two such commands cannot deadlock), runs on the client's
// worker with exclusive access to those tables, then unlocks. A locked shard queues every other
// piece of work, in arrival order, until it is unlocked.
//
// Thread-safety: all methods on the shard's own thread, except that while a shard is locked by a
// transaction, the transaction's coordinator may use table() from its own thread.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/functional/any_invocable.h>

#include <atomic>
#include <map>
#include <optional>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "engine/command.h"
#include "engine/pubsub.h"
#include "membership/types.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "resp/connection.h"
#include "sharding/bucket_map.h"
#include "storage/table.h"

namespace shoal::engine {

class Engine;

inline constexpr size_t kMaxHeldPerBucket = 100'000;  // then TRYAGAIN
inline constexpr uint8_t kMaxHops = 5;                // forwards of one command
inline constexpr int64_t kForwardTimeoutMs = 10'000;
// Arguments per forwarded batch; one command larger than the RPC frame limit (64 MiB) cannot be
// forwarded and fails with an error naming the limit.
inline constexpr size_t kForwardBatchBytes = 4 << 20;

// Where the reply of an op goes when it is not a client's: the parts of a command split over
// buckets, or a batch forwarded by another node. Complete() may be called from any thread.
class OpSink {
 public:
  virtual ~OpSink() = default;
  virtual void Complete(uint32_t index, std::string reply) = 0;
};

// A keyed command travelling to the worker that owns its key (on this node or, forwarded, on
// another), and its reply travelling back.
struct RemoteOp {
  const CommandSpec* spec = nullptr;
  uint64_t client_id = 0;
  resp::Connection::ReplyToken token = 0;
  int protocol = 2;
  std::string argbuf;              // all arguments, concatenated
  std::vector<uint32_t> arg_ends;  // end offset of each argument in argbuf
  std::string reply;               // encoded reply, filled by the target
  unsigned origin = 0;             // the worker of the client it answers
  bool counted_local = false;      // counted in the client's inflight_local
  bool redirect = false;           // answer MOVED/ASK rather than forward (cluster-mode redirect)
  bool foreign = false;            // forwarded here by another node: never forwarded again
  uint8_t hops = 0;                // times forwarded
  std::shared_ptr<OpSink> sink;    // when set, the reply goes there instead of to a client
  uint32_t sink_index = 0;

  // The arguments as views into argbuf.
  void Views(std::vector<std::string_view>* out) const;
  static RemoteOp From(const CommandSpec* spec, Args args, int protocol);
};

// Per-worker copy of the settings the hot path reads.
struct ShardSettings {
  int64_t maxmemory_share = 0;  // this worker's part of maxmemory; 0 = no limit
  storage::EvictionPolicy policy = storage::EvictionPolicy::kNoEviction;
  int samples = 5;
  std::string requirepass;
  int hz = 10;
  int64_t idle_timeout_ms = 0;  // close clients idle this long; 0 = never (Redis "timeout")
  int max_clients = 10000;      // connections refused past this many on the node ("maxclients")
};

// Counters the worker writes and any thread reads (INFO, the metrics registry: server_probe.cc).
struct alignas(metrics::kCacheLine) ShardStats {
  metrics::OwnedValue<uint64_t> commands{0};
  metrics::OwnedValue<uint64_t> forwarded_batches{0};  // batches of commands sent to other nodes
  metrics::OwnedValue<uint64_t> forwarded_ops{0};
  metrics::OwnedValue<uint64_t> held_writes{0};  // writes that waited for a bucket's cut-over
  metrics::OwnedValue<uint64_t> keyspace_hits{0};
  metrics::OwnedValue<uint64_t> keyspace_misses{0};
  metrics::OwnedValue<uint64_t> rejected_oom{0};
  metrics::OwnedValue<uint64_t> replicated_commands{0};  // commands on replicated-map keys
  metrics::OwnedValue<uint64_t> net_input_bytes{0};      // read from this worker's clients
  metrics::OwnedValue<uint64_t> net_output_bytes{0};     // written to them
};

class Shard {
 public:
  Shard(unsigned index, net::EventLoop* loop, Engine* engine, const Clock* clock);

  unsigned index() const { return index_; }
  net::EventLoop* loop() const { return loop_; }
  storage::Table& table() { return table_; }
  // Every change to table() is recorded here (storage/journal.h).
  storage::Journal& journal() { return journal_; }
  Engine* engine() const { return engine_; }
  ShardSettings& settings() { return settings_; }
  resp::ConnectionLimits& limits() { return limits_; }
  ShardStats& stats() { return stats_; }

  // Runs a keyed command against this shard's table now, writing its reply to `out`.
  void Execute(const CommandSpec& spec, Args args, resp::ReplyBuilder* out);
  // Makes room under maxmemory by evicting; false (and counts a rejection) if it cannot.
  bool EnsureMemory();

  // True while locked or while earlier work waits in the queue: new work must queue behind it.
  bool Busy() const { return locked_by_ != 0 || !queue_.empty(); }
  // Runs `task` now, or after the work queued before it.
  void Submit(absl::AnyInvocable<void()> task);
  // Takes the lock for `tx` (now, or when the work queued before it is done), then runs
  // `on_locked` on this thread.
  void Lock(uint64_t tx, absl::AnyInvocable<void()> on_locked);
  void Unlock(uint64_t tx);

  // Queues `op` for worker `target` (which may be this one); sent before the loop sleeps.
  void SendOp(unsigned target, RemoteOp op);
  // Runs a keyed op arriving at this worker, honouring the bucket states: executes it (true, its
  // reply filled), or holds it while its bucket is SENDING, or redirects/forwards it (false: it
  // completes later by itself).
  bool RunOp(RemoteOp& op);
  // Runs the ops held for bucket b (it stopped SENDING).
  void ReleaseHeld(uint16_t b);
  // Completes an op that left its batch (held, forwarded): to its sink or its client's worker.
  void FinishDeferred(RemoteOp op);
  // Queues `op` for the node at `to` (cluster address); sent before the loop sleeps.
  void ForwardOp(const Endpoint& to, RemoteOp op);
  // Routes a keyed op from this (the client's) worker: to the worker owning its bucket here, or
  // to the node serving it. REQUIRES: single-bucket op.
  void RouteOp(RemoteOp op);
  // The redirect reply for bucket b ("-MOVED b host:port", "-ASK ...", "-TRYAGAIN", ...), and the
  // cluster address of the node to forward to (port 0: none, answer the reply).
  std::string RedirectFor(uint16_t b, Endpoint* forward_to) const;
  // Completes ops whose replies are ready, for clients of this worker.
  void CompleteBatch(std::vector<RemoteOp> ops);
  // A table that holds one command's replicated-map keys while it runs (replicated_dispatch.cc).
  storage::Table& scratch() {
    if (scratch_ == nullptr) scratch_ = std::make_unique<storage::Table>(clock_, index_ + 77);
    return *scratch_;
  }
  // Keys in this worker's table, refreshed by the cron (read by any thread).
  std::atomic<uint64_t> approx_keys{0};

  // Clients of this worker, by id.
  void AddClient(resp::Connection* c) { clients_[c->id()] = c; }
  void RemoveClient(uint64_t id) { clients_.erase(id); }
  resp::Connection* FindClient(uint64_t id) const {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second;
  }
  const std::unordered_map<uint64_t, resp::Connection*>& clients() const { return clients_; }

  // The cluster's member table as last published by the control thread (read without locks).
  const std::shared_ptr<const membership::MemberTable>& members() const { return members_; }
  void set_members(std::shared_ptr<const membership::MemberTable> m) { members_ = std::move(m); }
  // The bucket map as last published (never null: an empty map, epoch 0, before the first).
  const std::shared_ptr<const sharding::BucketMap>& map() const { return map_; }
  void set_map(std::shared_ptr<const sharding::BucketMap> m) { map_ = std::move(m); }

  // Which clients of this worker subscribe to what (commands/pubsub_family.cc).
  WorkerPubSub& pubsub() { return pubsub_; }
  // A client got pushes without a flush: flushed once before the loop sleeps, so the messages
  // of many publications handled in one iteration leave in one write.
  void FlushBeforeSleep(resp::Connection* c) { push_flush_.insert(c->id()); }

  // Closes every client of this worker (shutdown).
  void CloseAllClients(std::string_view reason);

  // Starts the periodic work: active expiry, LRU clock. Call on the shard's thread.
  void StartTimers();

 private:
  struct Queued {
    uint64_t lock_tx;  // 0: plain work
    absl::AnyInvocable<void()> fn;
  };
  void FlushOutboxes();
  void ExecuteBatch(unsigned from, std::vector<RemoteOp> ops);
  void FlushForwards();
  void OnForwardReply(const Endpoint& to, std::vector<RemoteOp> ops, Result<std::string> r);
  std::optional<Endpoint> ClusterAddressOf(const Endpoint& client) const;
  void Drain();
  void Cron();
  void CloseIdleClients();

  const unsigned index_;
  net::EventLoop* const loop_;
  Engine* const engine_;
  const Clock* const clock_;
  storage::Journal journal_;  // before table_: the table records into it until destroyed
  storage::Table table_;
  std::unique_ptr<storage::Table> scratch_;
  ShardSettings settings_;
  resp::ConnectionLimits limits_;
  ShardStats stats_;

  uint64_t locked_by_ = 0;
  std::deque<Queued> queue_;
  std::vector<std::vector<RemoteOp>> outboxes_;  // by target worker
  std::unordered_map<uint64_t, resp::Connection*> clients_;
  std::vector<resp::Connection*> to_flush_;
  std::shared_ptr<const membership::MemberTable> members_;
  std::shared_ptr<const sharding::BucketMap> map_ = std::make_shared<const sharding::BucketMap>();
  absl::flat_hash_map<uint16_t, std::deque<RemoteOp>> held_;  // writes waiting for a cut-over
  std::map<Endpoint, std::vector<RemoteOp>> forward_out_;
  std::unique_ptr<net::RpcClient> rpc_;  // created on first forward, on this thread
  WorkerPubSub pubsub_;
  absl::flat_hash_set<uint64_t> push_flush_;
};

}  // namespace shoal::engine
