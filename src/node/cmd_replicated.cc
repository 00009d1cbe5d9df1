// RESP access to replicated maps: any keyed command whose keys all start with one
// map's prefix runs here, on the client's own worker, against the local full copy — never
// forwarded, never MOVED, in both cluster modes. Plus RMAP.* and SAVE.
#include <fmt/format.h>

#include <algorithm>

#include "common/keyslot.h"
#include "node/cluster.h"
#include "node/engine.h"
#include "node/keyspace.h"
#include "node/replicated_driver.h"
#include "node/replicated_maps.h"
#include "node/resp_error.h"

namespace shoal::node {

using resp::DispatchResult;

void ReplicatedMap::ExecuteCommand(const CommandSpec& spec, Args args, const KeyPosList& pos,
                                   resp::ReplyBuilder* out, Shard* shard, storage::Table* scratch) {
  const bool write = (spec.flags & kCmdWrite) != 0;
  absl::InlinedVector<std::string_view, 4> keys;
  for (size_t p : pos) {
    if (std::find(keys.begin(), keys.end(), args[p]) == keys.end()) keys.push_back(args[p]);
  }
  const int64_t now = clock_->NowUnixMillis();
  auto load = [&] {
    for (std::string_view k : keys) {
      const auto* e = map_.Get(k, now);
      if (e == nullptr) continue;
      if (storage::Entry* x = DecodeValue(k, e->value, e->expire_ms)) scratch->Put(KeyBucket(k), x);
    }
  };
  auto unload = [&] {
    for (std::string_view k : keys) scratch->Erase(KeyBucket(k), k);
  };
  if (spec.name == "get") {
    // The hot read, straight from the blob (same replies as the string handler).
    std::shared_lock lock(mu_);
    const auto* e = map_.Get(keys[0], now);
    if (e == nullptr) {
      ++shard->stats().keyspace_misses;
      return out->NullBulk();
    }
    if (e->value.empty() || e->value[0] != 's') return out->Error(kWrongTypeErr);
    ++shard->stats().keyspace_hits;
    return out->Bulk(std::string_view(e->value).substr(1));
  }
  ExecContext ctx{args, out, shard, scratch, now, shard->limits().output_buffer_limit};
  if (!write) {
    std::shared_lock lock(mu_);
    load();
    spec.key_handler(ctx);
    unload();
    return;
  }
  std::vector<MapChange> notes;
  bool was_empty;
  {
    std::unique_lock lock(mu_);
    was_empty = outbox_.empty();
    load();
    spec.key_handler(ctx);
    for (std::string_view k : keys) {
      storage::Entry* e = scratch->Peek(KeyBucket(k), k);
      const auto* old = map_.Get(k, now);
      std::optional<std::string> value;
      int64_t expire = replicated::kNoExpire;
      if (e != nullptr) {
        value = EncodeValue(*e);
        expire = e->has_expire() ? e->expire_ms() : replicated::kNoExpire;
      }
      if (old == nullptr && !value) continue;  // absent before and after
      if (old != nullptr && value && old->value == *value && old->expire_ms == expire) continue;
      bool changed = false;
      MapChange n = ApplyLocalLocked(k, std::move(value), expire, &changed);
      if (has_watchers_.load(std::memory_order_relaxed)) notes.push_back(std::move(n));
    }
    unload();
  }
  // A value grown past the limit (APPEND, SETRANGE, HSET after HSET) is applied here but may
  // not reach the peers: documented in docs/replicated.md.
  Wake(was_empty);
  Notify(std::move(notes));
}

std::optional<DispatchResult> Engine::DispatchReplicated(resp::Connection* c,
                                                         const CommandSpec& spec, Args args,
                                                         resp::ReplyBuilder* out) {
  // The common case, a command on one key outside every map, costs one prefix check.
  if (spec.first_key == spec.last_key && static_cast<size_t>(spec.first_key) < args.size() &&
      replicated_->MatchKey(args[static_cast<size_t>(spec.first_key)]) == nullptr) {
    return std::nullopt;
  }
  const KeyPosList pos = KeyPositions(spec, args);
  ReplicatedMap* map = nullptr;
  size_t matched = 0;
  for (size_t p : pos) {
    ReplicatedMap* m = replicated_->MatchKey(args[p]);
    if (m == nullptr) continue;
    if (map != nullptr && m != map) {
      out->Error(fmt::format("CROSSSLOT Keys in request belong to replicated maps '{}' and '{}'",
                             map->name(), m->name()));
      return DispatchResult::kDone;
    }
    map = m;
    ++matched;
  }
  if (map == nullptr) return std::nullopt;
  if (matched != pos.size()) {
    out->Error(fmt::format("CROSSSLOT Keys in request mix replicated map '{}' with keys outside it",
                           map->name()));
    return DispatchResult::kDone;
  }
  if (spec.key_handler == nullptr) {
    out->Error(fmt::format("ERR '{}' is not supported on replicated map keys", spec.name));
    return DispatchResult::kDone;
  }
  if (spec.flags & kCmdWrite) {
    size_t total = 0;
    for (std::string_view a : args) total += a.size();
    if (total > kMaxReplicatedValue) {
      out->Error(
          fmt::format("ERR writes to replicated map '{}' are limited to 32 MiB of "
                      "arguments",
                      map->name()));
      return DispatchResult::kDone;
    }
  }
  static_cast<ClientInfo*>(c->state())->asking = false;
  Shard* home = CurrentShard();
  ++home->stats().commands;
  ++home->stats().replicated_commands;
  map->ExecuteCommand(spec, args, pos, out, home, &home->scratch());
  return DispatchResult::kDone;
}

namespace {

DispatchResult RmapList(Engine& e, resp::Connection*, Args, resp::ReplyBuilder* out) {
  const auto maps = e.replicated().All();
  out->ArrayHeader(maps.size());
  for (ReplicatedMap* m : maps) {
    out->ArrayHeader(6);
    out->Bulk("name");
    out->Bulk(m->name());
    out->Bulk("prefix");
    out->Bulk(m->prefix());
    out->Bulk("keys");
    out->Integer(static_cast<int64_t>(m->size()));
  }
  return DispatchResult::kDone;
}

// RMAP.SCAN map cursor [MATCH pattern] [COUNT n] [TYPE string|hash]
DispatchResult RmapScan(Engine& e, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  ReplicatedMap* m = e.replicated().Find(a[1]);
  if (m == nullptr) {
    out->Error(fmt::format("ERR no replicated map '{}'", a[1].substr(0, 64)));
    return DispatchResult::kDone;
  }
  int64_t cursor = 0;
  if (!ParseInt64(a[2], &cursor) || cursor < 0) {
    out->Error("ERR invalid cursor");
    return DispatchResult::kDone;
  }
  ScanOptions opts;
  if (!ParseScanOptions(a, 3, &opts, out)) return DispatchResult::kDone;
  std::vector<std::string> keys;
  const uint64_t next = m->Scan(static_cast<uint64_t>(cursor), static_cast<size_t>(opts.count),
                                opts.pattern, opts.type, &keys);
  out->ArrayHeader(2);
  out->Bulk(std::to_string(next));
  out->ArrayHeader(keys.size());
  for (const std::string& k : keys) out->Bulk(k);
  return DispatchResult::kDone;
}

// SAVE / RMAP.SAVE [map]: writes snapshots of the replicated maps into data-dir now.
DispatchResult RmapSave(Engine& e, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  Status st = Status::Ok();
  if (a.size() >= 2) {
    ReplicatedMap* m = e.replicated().Find(a[1]);
    if (m == nullptr) {
      out->Error(fmt::format("ERR no replicated map '{}'", a[1].substr(0, 64)));
      return DispatchResult::kDone;
    }
    const std::string path = e.replicated().SnapshotPath(*m);
    if (path.empty()) {
      out->Error("ERR no data-dir is set: replicated maps cannot be saved");
      return DispatchResult::kDone;
    }
    st = m->Save(path, e.replicated().env());
  } else if (!e.replicated().All().empty()) {
    st = e.replicated().SaveAll();
  }
  if (!st.ok()) {
    ReplyError(out, st.error());
  } else {
    out->Ok();
  }
  return DispatchResult::kDone;
}

// RMAP.SYNC map: runs an anti-entropy round with a random live peer now.
DispatchResult RmapSync(Engine& e, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  ReplicatedMap* m = e.replicated().Find(a[1]);
  if (m == nullptr) {
    out->Error(fmt::format("ERR no replicated map '{}'", a[1].substr(0, 64)));
    return DispatchResult::kDone;
  }
  ClusterNode* cluster = e.cluster();
  if (cluster == nullptr || cluster->replicated() == nullptr) {
    out->Error("ERR the cluster is not running");
    return DispatchResult::kDone;
  }
  cluster->replicated()->SyncNow(m->name());
  out->Ok();
  return DispatchResult::kDone;
}

constexpr uint32_t kC = kCmdConnection;

constexpr CommandSpec kReplicatedCommands[] = {
    {"rmap.list", 1, kC, 0, 0, 0, nullptr, RmapList, "replicated",
     "Lists the replicated maps: name, key prefix, live keys."},
    {"rmap.save", -1, kC | kCmdAdmin, 0, 0, 0, nullptr, RmapSave, "replicated",
     "Saves the replicated maps' snapshots into data-dir: RMAP.SAVE [map]."},
    {"rmap.scan", -3, kC, 0, 0, 0, nullptr, RmapScan, "replicated",
     "Iterates a replicated map's keys: RMAP.SCAN map cursor [MATCH pattern] [COUNT n] [TYPE t]."},
    {"rmap.sync", 2, kC | kCmdAdmin, 0, 0, 0, nullptr, RmapSync, "replicated",
     "Runs an anti-entropy round of a replicated map with a random peer now."},
    {"save", 1, kC | kCmdAdmin, 0, 0, 0, nullptr, RmapSave, "server",
     "Saves the replicated maps' snapshots (the sharded keyspace has no persistence yet)."},
};

}  // namespace

std::span<const CommandSpec> ReplicatedCommands() { return kReplicatedCommands; }

std::string InfoReplicatedSection(Engine& e) {
  std::string s = "# Replicated\r\n";
  const auto maps = e.replicated().All();
  s += fmt::format("replicated_maps:{}\r\n", maps.size());
  for (ReplicatedMap* m : maps) {
    const ReplicatedMapStats& k = m->stats();
    size_t keys = 0, tombs = 0;
    uint64_t bytes = 0;
    m->WithShared([&](const replicated::LwwMap& lm) {
      keys = lm.size();
      tombs = lm.tombstones();
      bytes = lm.wire_bytes();
      return 0;
    });
    s += fmt::format(
        "map_{}:prefix={},keys={},tombstones={},bytes={},synced={},local_writes={},"
        "remote_applied={},remote_stale={},batches_sent={},batches_received={},syncs={},"
        "sync_failures={},sync_deferred={},sync_bytes={},sync_entries_received={},sync_entries_"
        "sent={},expired={},"
        "tombstones_collected={},malformed={},saves={},last_save={}\r\n",
        m->name(), m->prefix(), keys, tombs, bytes, k.synced.load() ? 1 : 0, k.local_writes.load(),
        k.remote_applied.load(), k.remote_stale.load(), k.batches_sent.load(),
        k.batches_received.load(), k.syncs.load(), k.sync_failures.load(), k.sync_deferred.load(),
        k.sync_bytes.load(), k.sync_entries_received.load(), k.sync_entries_sent.load(),
        k.expired.load(), k.tombstones_collected.load(), k.malformed.load(), k.saves.load(),
        k.last_save_unix.load());
  }
  return s + "\r\n";
}

}  // namespace shoal::node
