// A replicated map's local copy (issue 7, groundwork): last-writer-wins entries ordered by
// (hybrid logical clock time, origin node), deletes as tombstones, and per-range digests for
// anti-entropy. Sans-I/O and single-threaded; the node and the bus carry its changes.
//
//   * Merge is a join: applying the same set of changes in any order, any number of times, gives
//     the same map on every node (commutative, associative, idempotent). A change wins over the
//     entry it meets iff its (time, origin) is greater.
//   * A delete leaves a tombstone with its own (time, origin), so a late older write cannot
//     resurrect the key. Tombstones older than `tombstone_ttl` are collected (CollectTombstones);
//     a change older than the collection horizon is refused, so a collected delete cannot be
//     undone by a node that was away longer than the ttl (it must resync).
//   * Digests: keys fall into kRanges ranges by xxh3; each range's digest is the XOR of
//     xxh3(key, time, origin, tombstone) over its entries, maintained incrementally. Two copies
//     compare kRanges digests and exchange only the ranges that differ.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bus/registry.h"

namespace shoal::replicated {

using bus::HlcTime;
using membership::MemberId;

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
};

inline constexpr size_t kRanges = 256;

class LwwMap {
 public:
  // Applies a change; true if it won (the map changed).
  bool Apply(const Change& c);
  // The live value (nullptr if absent or deleted).
  const std::string* Get(std::string_view key) const;
  size_t size() const { return live_; }  // live keys
  size_t tombstones() const { return entries_.size() - live_; }

  // Drops tombstones stamped before `horizon`; later changes older than it are refused.
  size_t CollectTombstones(HlcTime horizon);

  static size_t RangeOf(std::string_view key);
  const std::array<uint64_t, kRanges>& digests() const { return digests_; }
  // The ranges whose digests differ from `other`.
  std::vector<size_t> DiffRanges(const std::array<uint64_t, kRanges>& other) const;
  // Every entry (tombstones included) of a range, as changes.
  std::vector<Change> RangeChanges(size_t range) const;

 private:
  struct Entry {
    std::optional<std::string> value;
    Stamp stamp;
  };
  static uint64_t EntryHash(std::string_view key, const Entry& e);

  absl::flat_hash_map<std::string, Entry> entries_;
  size_t live_ = 0;
  std::array<uint64_t, kRanges> digests_{};
  HlcTime horizon_;
};

}  // namespace shoal::replicated
