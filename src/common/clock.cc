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

}  // namespace shoal
