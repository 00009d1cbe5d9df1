// Time as an interface, so protocol cores and the storage engine run on virtual time in tests
// and the simulator. All times are integers: milliseconds or microseconds since an epoch.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace shoal {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (Unix epoch), used for absolute expiry times (EXPIREAT) and TIME.
  virtual int64_t NowUnixMicros() const = 0;
  // Monotonic time, used for timeouts and durations.
  virtual int64_t MonotonicMicros() const = 0;

  int64_t NowUnixMillis() const { return NowUnixMicros() / 1000; }
  int64_t MonotonicMillis() const { return MonotonicMicros() / 1000; }
};

// The real clocks of the machine. Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t NowUnixMicros() const override;
  int64_t MonotonicMicros() const override;
  static SystemClock& Instance();
};

// A clock that moves only when told. Thread-safe (atomics), so tests may read it from workers.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_unix_micros = 1'700'000'000'000'000)
      : unix_(start_unix_micros), mono_(1'000'000) {}
  int64_t NowUnixMicros() const override { return unix_.load(std::memory_order_relaxed); }
  int64_t MonotonicMicros() const override { return mono_.load(std::memory_order_relaxed); }
  void AdvanceMicros(int64_t us) {
    unix_.fetch_add(us, std::memory_order_relaxed);
    mono_.fetch_add(us, std::memory_order_relaxed);
  }
  void AdvanceMillis(int64_t ms) { AdvanceMicros(ms * 1000); }

 private:
  std::atomic<int64_t> unix_;
  std::atomic<int64_t> mono_;
};

// CycleClock: a tick counter for timing short spans on the hot path (one command's handler). On
// x86-64 it is the time-stamp counter (one instruction, no vDSO call; the kernel only keeps tsc
// as its clocksource where the counter is invariant); elsewhere steady_clock's nanoseconds.
// Ticks are turned into nanoseconds with a rate measured once, on the first call of ToNanos
// (it waits about 2 ms against CLOCK_MONOTONIC; call it once at start-up). Thread-safe.
class CycleClock {
 public:
  static uint64_t Now() {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return SteadyNanos();
#endif
  }
  // A span of `ticks` in nanoseconds.
  static uint64_t ToNanos(uint64_t ticks) {
    const uint64_t mult = NanosPerTickQ32();
    return static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * mult) >> 32);
  }

 private:
  static uint64_t SteadyNanos();
  // Nanoseconds per tick, as a 32.32 fixed-point number.
  static uint64_t NanosPerTickQ32();
};

}  // namespace shoal
