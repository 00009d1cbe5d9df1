// Replicated-map snapshots: a map written to disk on demand and periodically (as ETS's
// tab2file) and loaded at boot, before the node joins (the seed's preload).
//
// File format (integers little-endian):
//   "SHOALRM1" | u32 format version (2) | u32 name length | name
//   | u64 horizon wall | u32 horizon logical | u64 saved at, unix ms (version 2 only)
//   | u64 record count
//   | record count x (u32 length | one change, msgpack as in sync.h)
//   | u64 xxh3 of every byte before it | "SHOALEND"
// Tombstones are saved too (a preloaded node must not resurrect a key deleted elsewhere), with the
// collection horizon.
//
// Files go through an Env (common/env.h). Saving is WriteFileAtomically (tmp, fsync, rename, fsync
// of the folder), so a crash leaves the old snapshot or the new one, never a torn file. Loading
// reads the whole file and checks magic, version, every length, the record count and the checksum
// before returning anything: a truncated or corrupt file is an error naming the file and the fault,
// and the caller changes nothing (the file is left as it is).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/env.h"
#include "common/result.h"
#include "replicated/lww_map.h"
#include "replicated/sync.h"

namespace shoal::replicated {

struct Snapshot {
  std::string map;
  HlcTime horizon;
  int64_t saved_unix_ms = 0;    // when it was written (0: unknown, a version-1 file)
  std::vector<Change> changes;  // every entry, tombstones included
};

// Builds a snapshot entry by entry, so that a caller can read its map in pieces (a node takes
// the map's lock per storage group, not for the whole map). Entries changed while it runs are in
// the snapshot as they were when their group was read: a state merge tolerates that (as an
// older snapshot), and the node syncs after loading.
class SnapshotWriter {
 public:
  SnapshotWriter(std::string_view name, HlcTime horizon, int64_t saved_unix_ms);
  void Add(const std::string& key, const LwwMap::Entry& e);
  // The file's bytes: the record count, the checksum and the end marker filled in.
  std::string Finish();

 private:
  std::string out_;
  size_t count_at_;
  uint64_t count_ = 0;
};

// The bytes of a snapshot of `map` named `name`.
std::string EncodeSnapshot(std::string_view name, const LwwMap& map, int64_t saved_unix_ms = 0);
// Parses and verifies snapshot bytes; `what` names the source in errors.
Result<Snapshot> DecodeSnapshot(std::string_view bytes, std::string_view what = "snapshot");

// Replaces `map`'s contents by the snapshot's: clears it, applies every change, then collects
// at the snapshot's horizon (in that order: a live entry may be older than the horizon, and
// applying it after setting the horizon would refuse it).
void RestoreSnapshot(const Snapshot& snapshot, LwwMap* map);

// Reads and verifies the snapshot at `path`.
Result<Snapshot> LoadSnapshotFile(Env& env, const std::string& path);

}  // namespace shoal::replicated
