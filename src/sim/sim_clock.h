// SimClock: a node's `shoal::Clock` in the simulator, derived from the simulator's virtual time.
//
// Real clocks differ between machines in two ways a membership or lease protocol must survive:
// they run at slightly different rates (crystal drift, typically tens of ppm; we allow any rate > 0
// to exaggerate it) and they disagree on the absolute time (unsynchronised or stepped by NTP). So
// a node's clock is
//
//   elapsed(t) = elapsed_at_anchor + floor((t - anchor) * rate)       (t = global virtual time)
//   MonotonicMicros() = monotonic_start + elapsed(t)
//   NowUnixMicros()   = unix_start + unix_offset + elapsed(t)
//
// The rate is held as an integer in parts per billion and the arithmetic is integer (128-bit), so
// a clock reading is exact and identical on every platform. Changing the rate re-anchors at the
// current instant, so readings stay continuous; `StepUnix` moves only the Unix clock (like an NTP
// step), never the monotonic one.
//
// Owns nothing but its parameters; reads the Simulator it was built with, which must outlive it.
// Single-threaded (see simulator.h).
#pragma once

#include <cstdint>

#include "common/clock.h"
#include "sim/simulator.h"

namespace shoal::sim {

struct ClockConfig {
  // Local seconds per global second. 1.0001 = runs 100 ppm fast. REQUIRES: rate > 0.
  double rate = 1.0;
  // Added to the Unix reading only: this node's disagreement with true time.
  int64_t unix_offset = 0;
  // Readings at global virtual time 0 (before the offset). The defaults match FakeClock's.
  int64_t unix_start = 1'700'000'000'000'000;
  int64_t monotonic_start = 1'000'000;
};

class SimClock final : public Clock {
 public:
  SimClock(const Simulator& sim, const ClockConfig& config);

  int64_t NowUnixMicros() const override;
  int64_t MonotonicMicros() const override;

  // Local time elapsed since global time 0 (the clock's own notion), at the current instant.
  int64_t Elapsed() const { return ElapsedAt(sim_->Now()); }
  // The smallest global delay after which this clock has advanced by at least `local_delay`: what a
  // node's timer of `local_delay` (measured on its own clock) takes in virtual time.
  int64_t GlobalDelayFor(int64_t local_delay) const;

  // Changes the rate from now on (readings stay continuous). REQUIRES: rate > 0.
  void SetRate(double rate);
  double rate() const;
  int64_t rate_ppb() const { return rate_ppb_; }  // 1'000'000'000 = exactly 1.0
  // Jumps the Unix clock by `delta` (may be negative). The monotonic clock is unaffected.
  void StepUnix(int64_t delta) { unix_offset_ += delta; }

 private:
  int64_t ElapsedAt(int64_t global) const;

  const Simulator* sim_;
  int64_t rate_ppb_;
  int64_t anchor_global_ = 0;
  int64_t anchor_elapsed_ = 0;
  int64_t unix_start_;
  int64_t unix_offset_;
  int64_t monotonic_start_;
};

}  // namespace shoal::sim
