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

#include <absl/functional/any_invocable.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "membership/types.h"
#include "net/event_loop.h"
#include "node/command.h"
#include "resp/connection.h"
#include "storage/table.h"

namespace shoal::node {

class Engine;

// A keyed command travelling to the worker that owns its key, and its reply travelling back.
struct RemoteOp {
  const CommandSpec* spec = nullptr;
  uint64_t client_id = 0;
  resp::Connection::ReplyToken token = 0;
  int protocol = 2;
  std::string argbuf;              // all arguments, concatenated
  std::vector<uint32_t> arg_ends;  // end offset of each argument in argbuf
  std::string reply;               // encoded reply, filled by the target
};

// Per-worker copy of the settings the hot path reads.
struct ShardSettings {
  int64_t maxmemory_share = 0;  // this worker's part of maxmemory; 0 = no limit
  storage::EvictionPolicy policy = storage::EvictionPolicy::kNoEviction;
  int samples = 5;
  std::string requirepass;
  int hz = 10;
  int64_t idle_timeout_ms = 0;  // close clients idle this long; 0 = never (Redis "timeout")
};

struct ShardStats {
  uint64_t commands = 0;
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  uint64_t rejected_oom = 0;
};

class Shard {
 public:
  Shard(unsigned index, net::EventLoop* loop, Engine* engine, const Clock* clock);

  unsigned index() const { return index_; }
  net::EventLoop* loop() const { return loop_; }
  storage::Table& table() { return table_; }
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
  void CompleteBatch(unsigned target, std::vector<RemoteOp> ops);
  void Drain();
  void Cron();
  void CloseIdleClients();

  const unsigned index_;
  net::EventLoop* const loop_;
  Engine* const engine_;
  const Clock* const clock_;
  storage::Table table_;
  ShardSettings settings_;
  resp::ConnectionLimits limits_;
  ShardStats stats_;

  uint64_t locked_by_ = 0;
  std::deque<Queued> queue_;
  std::vector<std::vector<RemoteOp>> outboxes_;  // by target worker
  std::unordered_map<uint64_t, resp::Connection*> clients_;
  std::vector<resp::Connection*> to_flush_;
  std::shared_ptr<const membership::MemberTable> members_;
};

}  // namespace shoal::node
