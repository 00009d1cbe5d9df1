// The hybrid logical clock shared by the bus's registry and the replicated maps. Every `physical`
// is the node's wall clock in microseconds.
#pragma once

#include <compare>
#include <cstdint>

namespace shoal {

// A hybrid logical clock timestamp: wall microseconds plus a logical counter (Kulkarni et al.).
struct HlcTime {
  uint64_t wall = 0;
  uint32_t logical = 0;
  constexpr auto operator<=>(const HlcTime&) const = default;
};

// Never goes backwards, stays close to the physical clock, and orders causally related events.
class HybridClock {
 public:
  // Remote times more than this ahead of our physical clock are not adopted (a broken clock must
  // not drag the cluster's HLC into the future).
  static constexpr int64_t kMaxAheadMicros = 60'000'000;

  HlcTime Now(int64_t physical);
  void Observe(HlcTime remote, int64_t physical);
  HlcTime last() const { return last_; }

 private:
  HlcTime last_;
};

}  // namespace shoal
