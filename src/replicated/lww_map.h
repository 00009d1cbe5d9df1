// A replicated map's local copy: last-writer-wins entries ordered by (hybrid logical
// clock time, origin node), deletes as tombstones, expiry, and a hash tree of digests for
// anti-entropy. Sans-I/O and single-threaded; the node (engine/replicated_maps.h) guards it with a
// lock and carries its changes over the bus.
//
// Design note.
//   * Merge is a join: applying the same set of changes in any order, any number of times, gives
//     the same map on every node (commutative, associative, idempotent). A change wins over the
//     entry it meets iff its stamp (time, origin) is greater. A stamp names one write: a node's
//     HLC never gives the same time twice, and origins differ between nodes.
//   * A delete leaves a tombstone with its own stamp, so a late older write cannot resurrect the
//     key. Tombstones stamped before a horizon are collected (CollectTombstones), and from then on
//     changes stamped before that horizon are refused: a collected delete cannot be undone by a
//     node that was away for longer than the tombstone ttl (Cassandra's gc_grace rule).
//   * Expiry is part of the value: an entry carries an absolute expiry time. Expired entries read
//     as absent; ExpireSome turns them into tombstones that keep their stamp (expiry is the same
//     decision on every node, so it is not a new write and sends nothing).
//   * Digests. An entry's hash is xxh3(key, stamp) — the stamp names the write, so value and
//     liveness need no hashing. Keys fall into 2^16 leaves by the top bits of xxh3(key); a tree
//     node at level L (8, 12 or 16 bits) covers the leaves under its L-bit prefix and its digest
//     is the XOR of its entries' hashes. Entries are stored in 4096 groups (the level-12 nodes),
//     each with an incrementally kept digest; level-8 digests XOR 16 groups, level-16 digests
//     scan one group (~n/4096 entries). Two copies descend the tree from level 8 and exchange
//     only the leaves that differ (sync.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/hlc.h"
#include "membership/types.h"

namespace shoal::replicated {

using membership::MemberId;

inline constexpr int64_t kNoExpire = -1;

struct Stamp {
  HlcTime time;
  MemberId origin;
  auto operator<=>(const Stamp&) const = default;
  bool operator==(const Stamp&) const = default;
};

struct Change {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
  Stamp stamp;
  int64_t expire_ms = kNoExpire;  // absolute unix ms; with a value only
  bool operator==(const Change&) const = default;
};

// Tree geometry (see the design note).
inline constexpr int kTopBits = 8;
inline constexpr int kGroupBits = 12;
inline constexpr int kLeafBits = 16;
inline constexpr uint32_t kGroups = 1u << kGroupBits;
inline constexpr uint32_t kLeaves = 1u << kLeafBits;

class LwwMap {
 public:
  struct Entry {
    std::string value;  // empty for a tombstone
    Stamp stamp;
    int64_t expire_ms = kNoExpire;
    bool live = false;
  };

  LwwMap();

  // Applies a change; true if it won (the map changed).
  bool Apply(const Change& c);
  // The entry for `key`, tombstones and expired values included (nullptr if none).
  const Entry* Find(std::string_view key) const;
  // The live, unexpired value (nullptr if absent, deleted or expired at `now_ms`).
  const Entry* Get(std::string_view key, int64_t now_ms) const;
  // The entry as a change (what a peer would need to reproduce it).
  static Change ToChange(std::string_view key, const Entry& e);

  size_t size() const { return live_; }  // live entries (expired ones until ExpireSome)
  size_t tombstones() const { return entries_ - live_; }
  size_t entries() const { return entries_; }
  // Bytes of every entry as a peer receives it (key, value, stamp, expiry): the cost of sending
  // the whole map, against which a sync's traffic is measured.
  uint64_t wire_bytes() const { return wire_bytes_; }
  static uint64_t WireBytes(size_t key_len, size_t value_len) { return key_len + value_len + 36; }

  // Turns entries expired at `now_ms` into tombstones, examining at most `budget` groups from a
  // rotating cursor. `on_expired` (optional) sees each key. Returns the number expired.
  size_t ExpireSome(int64_t now_ms, size_t budget,
                    const std::function<void(std::string_view key)>& on_expired = {});
  // Drops tombstones stamped before `horizon`; later changes older than it are refused.
  size_t CollectTombstones(HlcTime horizon);
  HlcTime horizon() const { return horizon_; }
  // Removes every entry and forgets the horizon: the map is as new (tests, and a snapshot load
  // that replaces the map, which then applies the snapshot's entries and horizon).
  void Clear();

  // ---- Digests ----
  static uint64_t KeyHash(std::string_view key);
  static uint32_t LeafOf(std::string_view key) {
    return static_cast<uint32_t>(KeyHash(key) >> (64 - kLeafBits));
  }
  static uint64_t EntryHash(std::string_view key, const Stamp& s);
  // The digest of tree node `node` at level `bits` (0, 8, 12 or 16).
  uint64_t Digest(int bits, uint32_t node) const;
  // Calls fn(key, entry) for every entry of leaf `leaf`.
  void ForEachInLeaf(uint32_t leaf,
                     const std::function<void(const std::string& key, const Entry& e)>& fn) const;

  // ---- Scans ----
  // Calls fn(key, entry) for every entry, tombstones included; fn returns false to stop.
  void ForEach(const std::function<bool(const std::string& key, const Entry& e)>& fn) const;
  // The same for one of the kGroups storage groups (a caller that takes a lock per group).
  void ForEachInGroup(uint32_t group,
                      const std::function<void(const std::string& key, const Entry& e)>& fn) const;
  // Resumable scan over live entries: starts at `cursor` (0 first), visits about `count` entries,
  // returns the next cursor (0: done). Entries present for the whole scan are seen at least once.
  uint64_t Scan(uint64_t cursor, size_t count, int64_t now_ms,
                const std::function<void(const std::string& key, const Entry& e)>& fn) const;

 private:
  using Entries = absl::flat_hash_map<std::string, Entry>;
  struct Group {
    Entries entries;
    uint64_t digest = 0;
  };
  static uint32_t GroupOf(uint64_t key_hash) {
    return static_cast<uint32_t>(key_hash >> (64 - kGroupBits));
  }

  std::vector<Group> groups_;
  size_t live_ = 0;
  size_t entries_ = 0;
  uint64_t wire_bytes_ = 0;
  HlcTime horizon_;
  uint32_t expire_cursor_ = 0;
};

}  // namespace shoal::replicated
