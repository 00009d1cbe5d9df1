#include "sim/sim_clock.h"

#include <cassert>
#include <cmath>

namespace shoal::sim {
namespace {

constexpr int64_t kPpbOne = 1'000'000'000;

int64_t ToPpb(double rate) {
  assert(rate > 0);
  const auto ppb = static_cast<int64_t>(std::llround(rate * static_cast<double>(kPpbOne)));
  return ppb > 0 ? ppb : 1;  // the slowest clock that still moves
}

// floor(a / b) for b > 0, also for negative a.
__int128 FloorDiv(__int128 a, __int128 b) {
  __int128 q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}

}  // namespace

SimClock::SimClock(const Simulator& sim, const ClockConfig& config)
    : sim_(&sim),
      rate_ppb_(ToPpb(config.rate)),
      unix_start_(config.unix_start),
      unix_offset_(config.unix_offset),
      monotonic_start_(config.monotonic_start) {}

int64_t SimClock::ElapsedAt(int64_t global) const {
  const __int128 dt = global - anchor_global_;
  return anchor_elapsed_ + static_cast<int64_t>(FloorDiv(dt * rate_ppb_, kPpbOne));
}

int64_t SimClock::NowUnixMicros() const { return unix_start_ + unix_offset_ + Elapsed(); }
int64_t SimClock::MonotonicMicros() const { return monotonic_start_ + Elapsed(); }

int64_t SimClock::GlobalDelayFor(int64_t local_delay) const {
  if (local_delay <= 0) return 0;
  const int64_t now = sim_->Now();
  const int64_t target = ElapsedAt(now) + local_delay;
  // ElapsedAt(t) >= target  <=>  (t - anchor) * ppb >= (target - anchor_elapsed) * 1e9, so the
  // earliest such t is anchor + ceil(...). It is after `now` because target > ElapsedAt(now).
  const __int128 need = static_cast<__int128>(target - anchor_elapsed_) * kPpbOne;
  const __int128 dt = -FloorDiv(-need, rate_ppb_);  // ceil(need / ppb)
  return anchor_global_ + static_cast<int64_t>(dt) - now;
}

void SimClock::SetRate(double rate) {
  const int64_t now = sim_->Now();
  anchor_elapsed_ = ElapsedAt(now);
  anchor_global_ = now;
  rate_ppb_ = ToPpb(rate);
}

double SimClock::rate() const {
  return static_cast<double>(rate_ppb_) / static_cast<double>(kPpbOne);
}

}  // namespace shoal::sim
