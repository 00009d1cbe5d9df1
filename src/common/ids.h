// Strong id types: BucketId, ReplicaSetId, Epoch, ... are distinct types, not bare ints,
// so they cannot be mixed up at a call site.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace shoal {

template <typename Tag, typename T>
class StrongId {
 public:
  using value_type = T;
  constexpr StrongId() = default;
  constexpr explicit StrongId(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const StrongId& id) { return os << id.v_; }

 private:
  T v_{};
};

using BucketId = StrongId<struct BucketIdTag, uint16_t>;
using ShardId = StrongId<struct ShardIdTag, uint32_t>;  // a worker thread's index
using ClientId = StrongId<struct ClientIdTag, uint64_t>;
using ReplicaSetId = StrongId<struct ReplicaSetIdTag, uint64_t>;
using Epoch = StrongId<struct EpochTag, uint64_t>;
using Incarnation = StrongId<struct IncarnationTag, uint64_t>;
using Lsn = StrongId<struct LsnTag, uint64_t>;
using Term = StrongId<struct TermTag, uint64_t>;

inline constexpr uint32_t kNumBuckets = 16384;

}  // namespace shoal

template <typename Tag, typename T>
struct std::hash<shoal::StrongId<Tag, T>> {
  size_t operator()(const shoal::StrongId<Tag, T>& id) const { return std::hash<T>()(id.value()); }
};
