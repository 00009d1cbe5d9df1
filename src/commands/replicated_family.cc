// The replicated maps' own commands: RMAP.LIST, RMAP.SCAN, RMAP.SAVE (also SAVE) and RMAP.SYNC.
// Keyed commands on map keys are served by the engine (engine/replicated_dispatch.cc).
#include <fmt/format.h>

#include <algorithm>

#include "commands/families.h"
#include "commands/keyspace.h"
#include "common/keyslot.h"
#include "engine/engine.h"
#include "engine/replicated_maps.h"
#include "engine/resp_error.h"
#include "node/cluster.h"
#include "node/replicated_driver.h"

namespace shoal::commands {

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
using node::ClusterNode;

using resp::DispatchResult;

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
  ClusterNode* cluster = node::ClusterOf(e);
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

}  // namespace shoal::commands
