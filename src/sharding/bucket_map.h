// The bucket map: which replica set serves each of the 16384 buckets, in one versioned (epoch)
// immutable value, and the per-node state of a bucket during migration.
//
// A bucket is CRC16(key or its {hash tag}) mod 16384, exactly Redis Cluster's slot
// (common/keyslot.h). The map is computed by the coordinator (sharding/core.h) from what the nodes
// report they hold, and published to every node; nodes keep the highest epoch they have seen and
// route by it. A map names, for each replica set, its leader's addresses, so that a worker thread
// can route or redirect from the map alone, without looking anything else up.
//
// Thread-safety: a BucketMap is immutable once published (shared_ptr<const BucketMap>).
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/result.h"
#include "common/transport.h"
#include "membership/types.h"

namespace shoal::sharding {

enum class Errc {
  kMalformed = 1,  // a message or map that does not decode
  kRefused,        // a request the receiver will not carry out now (not its coordinator, busy)
  kConflict,       // a migration step that does not match the receiver's bucket states
};
SHOAL_ERROR_CATEGORY_DECL(Errc)

// In `auto` topology every storage node forms a replica set of its own; its id is derived from
// the member id (never 0).
ReplicaSetId AutoSetId(const membership::MemberId& id);

// One replica set as the map names it: enough to route to it.
struct SetInfo {
  ReplicaSetId id;
  uint32_t weight = 1;
  membership::MemberId leader;
  Endpoint cluster;   // leader's cluster address (internal RPC: forwarding)
  Endpoint client;    // leader's RESP address (MOVED / ASK, CLUSTER SLOTS)
  uint64_t keys = 0;  // keys held, as last reported (for status displays)
  bool operator==(const SetInfo&) const = default;
};

class BucketMap {
 public:
  static constexpr uint16_t kNoOwner = 0xFFFF;

  BucketMap() { owner_.fill(kNoOwner); }

  Epoch epoch() const { return epoch_; }
  void set_epoch(Epoch e) { epoch_ = e; }

  const std::vector<SetInfo>& sets() const { return sets_; }
  // Adds a set (or returns the index of the one with this id).
  uint16_t AddSet(const SetInfo& info);
  void Assign(BucketId b, uint16_t set_index) { owner_[b.value()] = set_index; }

  // The set serving `b`, or null when the bucket has no owner.
  const SetInfo* OwnerOf(BucketId b) const {
    const uint16_t i = owner_[b.value()];
    return i == kNoOwner ? nullptr : &sets_[i];
  }
  uint16_t OwnerIndex(BucketId b) const { return owner_[b.value()]; }
  // Buckets served by set index `i`.
  uint32_t CountOf(uint16_t i) const;
  uint32_t Unowned() const;

  // Maximal runs of consecutive buckets with the same owner (CLUSTER SLOTS / SHARDS).
  struct Range {
    uint16_t first, last;  // inclusive
    uint16_t set_index;
  };
  std::vector<Range> Ranges() const;

  // Same owners and sets (epochs and key counts aside).
  bool SameAssignment(const BucketMap& other) const;

  std::string Encode() const;
  static Result<BucketMap> Decode(std::string_view bytes);

 private:
  Epoch epoch_;
  std::vector<SetInfo> sets_;
  std::array<uint16_t, kNumBuckets> owner_;
};

using BucketSet = std::bitset<kNumBuckets>;

// A bucket's state on one node (vshard's states).
enum class BucketState : uint8_t {
  kNone = 0,   // not here
  kActive,     // here, serving reads and writes
  kSending,    // here, being copied to `peer`: reads served, writes held until the cut-over
  kReceiving,  // arriving from `peer`: not served yet
  kGarbage,    // handed over to `peer`: redirect there until the map says so; data dropped
};
std::string_view ToString(BucketState s);

}  // namespace shoal::sharding

template <>
struct std::is_error_code_enum<shoal::sharding::Errc> : std::true_type {};
