// Replicated maps in the node: every map declared here is held in full on every node,
// read locally by any thread, written locally and then sent to every node on the bus.
//
// Threads. A ReplicatedMap is shared by the workers (RESP commands on its keys), the control
// thread (changes from peers, sync, expiry, snapshots) and the embedding application's threads.
// Its LwwMap is guarded by a reader-writer lock: reads (GET, HGET, the embedded Get) take it
// shared and never wait for each other; writes take it exclusively for the few microseconds of
// one command. This departs from DESIGN.md's shared-nothing rule on purpose: a replicated map is
// read-mostly data that every worker must read without a hop, and a copy per worker would
// multiply its memory by the worker count.
//
// Values. An entry's value is a small blob: 's' + the string's bytes, or 'h' + the hash's fields
// sorted by name (u32 length | field | u32 length | value)*; the expiry travels beside it in the
// LwwMap entry. A RESP command on a replicated key runs the ordinary command handler on a
// one-key scratch table of the worker: the blob is loaded as a storage::Entry, the handler runs,
// and if it was a write the entry is encoded again and, when it differs, stamped and applied.
// Last writer wins per key: two nodes that HINCRBY the same key at once keep one of the two.
//
// Broadcast. Local changes queue in the map's outbox; the first one posts a flush to the control
// thread, which publishes the whole outbox as one change batch on the bus (space 'r', one
// message per node whatever the batch size). Delivery is at most once; anti-entropy
// (replicated_driver.h) repairs whatever was lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/env.h"
#include "common/hlc.h"
#include "common/result.h"
#include "config/server_config.h"
#include "engine/command.h"
#include "membership/types.h"
#include "replicated/lww_map.h"
#include "replicated/replicator.h"
#include "replicated/snapshot.h"
#include "storage/entry.h"
#include "storage/table.h"

namespace shoal::engine {

class Shard;

// The largest argument a write to a replicated map takes (a value travels whole in one bus
// message and one sync answer, both under the 64 MiB RPC frame limit).
inline constexpr size_t kMaxReplicatedValue = 32 << 20;

// Value blobs (see the header comment).
std::string EncodeValue(const storage::Entry& e);
std::string StringValue(std::string_view s);
// The storage entry for `key` holding blob `v`; nullptr if the blob is malformed.
storage::Entry* DecodeValue(std::string_view key, std::string_view v, int64_t expire_ms);
bool ValidValue(std::string_view v);

// A change as the embedded API's watchers see it.
struct MapChange {
  std::string key;
  bool deleted = false;
  bool is_hash = false;
  std::string value;                                        // a string's value
  std::vector<std::pair<std::string, std::string>> fields;  // a hash's fields
  int64_t expire_ms = -1;
  bool local = false;  // made on this node (else received from `origin`)
  membership::MemberId origin;
};

using ReplicatedMapStats = replicated::MapStats;

class ReplicatedMap final : public replicated::LocalCopy {
 public:
  ReplicatedMap(std::string name, std::string prefix, membership::MemberId self,
                const Clock* clock);

  const std::string& name() const override { return name_; }
  const std::string& prefix() const { return prefix_; }
  bool Owns(std::string_view key) const { return key.starts_with(prefix_); }

  // ---- Embedded API (any thread) ----
  // The value of a string key (nullopt: absent, expired, deleted, or a hash).
  std::optional<std::string> Get(std::string_view key) const;
  // The fields of a hash key (nullopt: absent or not a hash).
  std::optional<std::vector<std::pair<std::string, std::string>>> GetHash(
      std::string_view key) const;
  // Sets a string value; ttl_ms > 0 expires it that many ms from now. Fails only for a key or
  // value larger than kMaxReplicatedValue.
  Status Put(std::string_view key, std::string_view value, int64_t ttl_ms = 0);
  // Deletes the key; true if it existed.
  bool Erase(std::string_view key);
  // Live string/hash keys in [begin, end) in byte order (end "" = no bound), at most `limit`,
  // with their values (a hash's value is empty; use GetHash). O(n log n) over the whole map.
  std::vector<std::pair<std::string, std::string>> Range(std::string_view begin,
                                                         std::string_view end,
                                                         size_t limit = SIZE_MAX) const;
  // Resumable scan (as Redis SCAN): keys matching `glob` ("" = all) of `type` ("string",
  // "hash"; "" = any); returns the next cursor.
  uint64_t Scan(uint64_t cursor, size_t count, std::string_view glob, std::string_view type,
                std::vector<std::string>* keys) const;
  size_t size() const;
  // Change notifications, local and remote. The callback runs on the thread that applied the
  // change (the writer's for local ones, the control thread for remote ones), after the map's
  // lock is released: keep it short and do not block.
  using WatchFn = std::function<void(const MapChange&)>;
  uint64_t Watch(WatchFn fn);
  void Unwatch(uint64_t id);
  // Writes a snapshot to `path` now, through `env` (WriteFileAtomically), creating its folder.
  Status Save(const std::string& path, Env& env = Env::Posix());

  // ---- Node internals ----
  // Runs `fn` on the map under the shared (read) or exclusive lock.
  template <typename F>
  auto WithShared(F&& fn) const {
    std::shared_lock lock(mu_);
    return fn(map_);
  }
  // Applies a write made on this node: stamps it, applies it, queues it for broadcast and
  // notifies. `value` nullopt deletes.
  void LocalWrite(std::string_view key, std::optional<std::string> value, int64_t expire_ms);
  // Several writes under one lock (a RESP command over several keys).
  struct Write {
    std::string key;
    std::optional<std::string> value;
    int64_t expire_ms = -1;
  };
  void LocalWrites(std::vector<Write> writes);
  // Where remote changes come from: a peer's broadcast batch, or a sync session (counted apart).
  using ChangeSource = replicated::ChangeSource;
  // Applies changes from a peer; returns how many won.
  size_t ApplyRemote(const std::vector<replicated::Change>& changes, ChangeSource source) override;
  // Loads a verified snapshot into an empty map (boot), observing its stamps.
  Status Load(const replicated::Snapshot& snap);
  // Takes the queued changes for broadcast.
  std::vector<replicated::Change> TakeOutbox() override;
  void Read(const std::function<void(const replicated::LwwMap&)>& fn) const override {
    WithShared([&fn](const replicated::LwwMap& m) { fn(m); });
  }
  // Called (once per burst) when the outbox becomes non-empty; set by the driver.
  void set_on_outbox(std::function<void()> fn) {
    std::lock_guard lock(watch_mu_);
    on_outbox_ = std::move(fn);
  }
  // Expiry and, with kCollect, tombstone collection (control thread timer; the driver decides
  // when collecting is safe).
  using Tombstones = replicated::Tombstones;
  void Maintain(int64_t now_ms, int64_t tombstone_ttl_ms, Tombstones tombstones) override;
  ReplicatedMapStats& stats() override { return stats_; }
  const ReplicatedMapStats& stats() const { return stats_; }
  void set_self(membership::MemberId self) { self_ = self; }
  // Runs a RESP command whose keys are all this map's (replicated_dispatch.cc): reads under the
  // shared lock, writes under the exclusive one, on the worker's scratch table. `pos`: the
  // command's key positions (KeyPositions), computed once by the caller.
  void ExecuteCommand(const CommandSpec& spec, Args args, const KeyPosList& pos,
                      resp::ReplyBuilder* out, Shard* shard, storage::Table* scratch);

 private:
  void Notify(std::vector<MapChange> changes);
  // REQUIRES: mu_ held exclusively. Returns the change applied (for notification).
  MapChange ApplyLocalLocked(std::string_view key, std::optional<std::string> value,
                             int64_t expire_ms, bool* changed);
  void Wake(bool was_empty);

  const std::string name_;
  const std::string prefix_;
  membership::MemberId self_;  // set before the node serves
  const Clock* clock_;

  mutable std::shared_mutex mu_;
  replicated::LwwMap map_;                  // guarded by mu_
  HybridClock hlc_;                         // guarded by mu_
  std::vector<replicated::Change> outbox_;  // guarded by mu_

  mutable std::mutex watch_mu_;
  std::map<uint64_t, WatchFn> watchers_;  // guarded by watch_mu_
  uint64_t next_watch_ = 1;               // guarded by watch_mu_
  std::function<void()> on_outbox_;       // guarded by watch_mu_
  std::atomic<bool> has_watchers_{false};
  ReplicatedMapStats stats_;
};

// The node's replicated maps. Declared at start (config) or at run time (embedded API); never
// removed while the node runs. Lookup by key prefix is lock-free (an immutable catalog).
class ReplicatedMaps {
 public:
  // Snapshots are kept through `env`.
  ReplicatedMaps(const Clock* clock, const config::ServerConfig& cfg, Env* env = &Env::Posix());
  ~ReplicatedMaps();

  // The node's id is known once the control plane loaded it; maps declared before get it then.
  void set_self(membership::MemberId self);
  // Declares a map (any thread). Declaring an existing name with the same prefix returns it.
  Result<ReplicatedMap*> Declare(std::string name, std::string prefix);
  ReplicatedMap* Find(std::string_view name) const;
  // The map whose prefix `key` starts with, or nullptr (hot path: no lock).
  ReplicatedMap* MatchKey(std::string_view key) const {
    const Catalog* c = catalog_.load(std::memory_order_acquire);
    if (c == nullptr) return nullptr;
    for (ReplicatedMap* m : c->maps) {
      if (m->Owns(key)) return m;
    }
    return nullptr;
  }
  bool empty() const { return catalog_.load(std::memory_order_acquire) == nullptr; }
  std::vector<ReplicatedMap*> All() const;
  // A callback for each map declared from now on (the driver subscribes it); called at once for
  // those declared already.
  void OnDeclare(std::function<void(ReplicatedMap*)> fn);

  // Snapshots in data-dir/replicated/<name>.snap ("" without a data dir).
  std::string SnapshotPath(const ReplicatedMap& m) const;
  // Loads every map's snapshot that exists (boot, before joining). Any error stops the boot.
  Status LoadSnapshots();
  // Saves every map (SAVE, shutdown, the periodic timer). Returns the first error.
  Status SaveAll();

  const config::ServerConfig& config() const { return cfg_; }
  Env& env() const { return *env_; }

 private:
  struct Catalog {
    std::vector<ReplicatedMap*> maps;
  };
  const Clock* clock_;
  const config::ServerConfig cfg_;
  Env* env_;
  membership::MemberId self_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<ReplicatedMap>> maps_;             // guarded by mu_
  std::vector<std::unique_ptr<Catalog>> catalogs_;               // every one published (kept alive)
  std::vector<std::function<void(ReplicatedMap*)>> on_declare_;  // guarded by mu_
  std::atomic<const Catalog*> catalog_{nullptr};
};

}  // namespace shoal::engine
