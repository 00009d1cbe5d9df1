#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/hash.h"

namespace shoal::sim {

std::string FormatTime(int64_t micros) {
  const char* sign = micros < 0 ? "-" : "";
  const uint64_t abs = micros < 0 ? -static_cast<uint64_t>(micros) : micros;
  return fmt::format("{}{}.{:06}", sign, abs / 1'000'000, abs % 1'000'000);
}

void Trace::Record(std::string_view kind, std::string_view detail) {
  std::string line = fmt::format("{} {} {}", FormatTime(*now_), kind, detail);
  hash_ = Hash64(line, hash_);
  ++size_;
  if (keep_lines_) lines_.push_back(std::move(line));
}

Simulator::Simulator(uint64_t seed) : seed_(seed), rng_(seed) {}

SeededRng Simulator::DeriveRng(std::string_view name) const {
  // Hashing the name with the seed (rather than drawing from rng_) makes the stream independent of
  // how many streams were derived before it and in which order.
  return SeededRng(Hash64(name, seed_ ^ 0x5eed'5eed'5eed'5eedULL));
}

TimerHandle Simulator::Schedule(int64_t delay, EventFn fn, std::string label) {
  return ScheduleAt(now_ + std::max<int64_t>(delay, 0), std::move(fn), std::move(label));
}

TimerHandle Simulator::ScheduleAt(int64_t at, EventFn fn, std::string label) {
  at = std::max(at, now_);
  const uint64_t seq = next_seq_++;
  queue_.emplace(Key{at, seq}, Event{std::move(fn), std::move(label)});
  return TimerHandle(at, seq);
}

bool Simulator::Cancel(TimerHandle& handle) {
  const bool erased = handle.valid() && queue_.erase(Key{handle.at_, handle.seq_}) > 0;
  handle = TimerHandle();
  return erased;
}

bool Simulator::Step() {
  if (queue_.empty()) return false;
  auto it = queue_.begin();
  now_ = it->first.first;
  // Take the event out before running it: the callback may schedule or cancel freely.
  Event event = std::move(it->second);
  queue_.erase(it);
  ++events_run_;
  if (!event.label.empty()) trace_.Record("timer", event.label);
  event.fn();
  return true;
}

void Simulator::RunFor(int64_t duration) {
  const int64_t end = now_ + std::max<int64_t>(duration, 0);
  while (!queue_.empty() && queue_.begin()->first.first <= end) Step();
  now_ = end;
}

bool Simulator::RunUntil(const std::function<bool()>& pred, int64_t deadline) {
  if (pred()) return true;
  while (!queue_.empty() && queue_.begin()->first.first <= deadline) {
    Step();
    if (pred()) return true;
  }
  now_ = std::max(now_, deadline);
  return false;
}

std::optional<int64_t> Simulator::NextEventTime() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first.first;
}

}  // namespace shoal::sim
