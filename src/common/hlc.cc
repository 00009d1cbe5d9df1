#include "common/hlc.h"

#include <algorithm>

namespace shoal {

HlcTime HybridClock::Now(int64_t physical) {
  const uint64_t p = physical > 0 ? static_cast<uint64_t>(physical) : 0;
  if (p > last_.wall) {
    last_ = {p, 0};
  } else {
    ++last_.logical;
  }
  return last_;
}

void HybridClock::Observe(HlcTime remote, int64_t physical) {
  const uint64_t p = physical > 0 ? static_cast<uint64_t>(physical) : 0;
  if (remote.wall > p + kMaxAheadMicros) return;  // a broken clock: not adopted
  const uint64_t m = std::max({last_.wall, remote.wall, p});
  uint32_t l = 0;
  if (m == last_.wall && m == remote.wall) {
    l = std::max(last_.logical, remote.logical) + 1;
  } else if (m == last_.wall) {
    l = last_.logical + 1;
  } else if (m == remote.wall) {
    l = remote.logical + 1;
  }
  last_ = {m, l};
}

}  // namespace shoal
