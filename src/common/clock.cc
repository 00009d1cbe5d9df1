#include "common/clock.h"

#include <time.h>

namespace shoal {
namespace {
int64_t Read(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}
}  // namespace

int64_t SystemClock::NowUnixMicros() const { return Read(CLOCK_REALTIME); }
int64_t SystemClock::MonotonicMicros() const { return Read(CLOCK_MONOTONIC); }
SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

uint64_t CycleClock::SteadyNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t CycleClock::NanosPerTickQ32() {
  static const uint64_t rate = [] {
#if defined(__x86_64__)
    const uint64_t n0 = SteadyNanos();
    const uint64_t t0 = Now();
    uint64_t n1 = n0;
    while (n1 - n0 < 2'000'000) n1 = SteadyNanos();
    const uint64_t t1 = Now();
    if (t1 <= t0) return uint64_t{1} << 32;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(n1 - n0) << 32) / (t1 - t0));
#else
    return uint64_t{1} << 32;
#endif
  }();
  return rate;
}

}  // namespace shoal
