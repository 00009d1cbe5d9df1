// Deterministic simulation: the virtual-time event loop at the bottom of `sim/`.
//
// Design note. Protocol cores (SWIM, 2PC, replication, ...) are sans-I/O: they consume messages and
// timer firings and produce messages and timers, through the `DatagramTransport`, `Clock` and `Rng`
// interfaces. The simulator runs many of them in one thread over a faulty network, so a run with
// weeks of virtual time, partitions and crashes takes milliseconds and replays bit for bit from a
// single 64-bit seed (the approach of FoundationDB's simulator, TigerBeetle's VOPR and Tarantool's
// swim_cluster tests). The pieces:
//
//   Simulator  virtual time + event queue + the root seed + the trace (this file)
//   SimClock   a node's `Clock`: a function of virtual time with drift and offset (sim_clock.h)
//   Network    nodes, their `DatagramTransport`s, per-link delay/loss/duplication, partitions,
//              crash/restart, per-node counters (network.h)
//
// Determinism rules (a run is a pure function of the seed and the test's code):
//   * Nothing reads the wall clock, sleeps or starts threads. Time is `Simulator::Now()`, which
//     moves only when the next event is taken from the queue.
//   * Events are ordered by (virtual time, insertion sequence): two events at the same instant run
//     in the order they were scheduled, never in an order that depends on addresses or hashing.
//   * Every random choice comes from the seed: either `rng()` or a stream from `DeriveRng(name)`,
//     which is a pure function of (seed, name), so adding a component does not shift the random
//     numbers every other component sees. Within one build, floating-point sampling (exponential
//     delays) is deterministic; across compilers/libm versions it may differ, so a trace hash is
//     compared only between runs of the same binary.
//   * Nothing iterates an unordered container to decide an order of effects (std::map, or sorted
//     vectors, where order is observable).
//
// Time is int64_t microseconds, like `shoal::Clock`; the simulation starts at virtual time 0.
//
// Threading: single-threaded. Every class in `sim/` is owned by and called from the one thread
// that runs the simulation, including from inside event callbacks (re-entrancy is allowed: a
// callback may schedule, cancel, send, crash nodes...).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/rng.h"

namespace shoal::sim {

inline constexpr int64_t kMicrosecond = 1;
inline constexpr int64_t kMillisecond = 1000;
inline constexpr int64_t kSecond = 1'000'000;

// Identifies one scheduled event so it can be cancelled. A plain value: copying it does not copy
// the event, destroying it does not cancel it. Default-constructed = refers to nothing.
class TimerHandle {
 public:
  TimerHandle() = default;
  bool valid() const { return seq_ != 0; }
  int64_t at() const { return at_; }  // virtual time the event is (was) due

 private:
  friend class Simulator;
  TimerHandle(int64_t at, uint64_t seq) : at_(at), seq_(seq) {}
  int64_t at_ = 0;
  uint64_t seq_ = 0;
};

// An append-only log of what happened, one line per event ("<time> <kind> <detail>"), folded into
// a running 64-bit hash. Two runs are the same run iff their hashes (and line counts) are equal;
// keep the lines (`set_keep_lines(true)`) to see where two runs diverge. Anything may record into
// it: the network records sends, deliveries and drops; node timers record their firing; a protocol
// harness may record its own observations (e.g. "member 10.0.0.2:7000 dead").
class Trace {
 public:
  explicit Trace(const int64_t* now) : now_(now) {}

  // Appends "<now> <kind> <detail>". `kind` is one word.
  void Record(std::string_view kind, std::string_view detail);

  uint64_t hash() const { return hash_; }
  uint64_t size() const { return size_; }
  // Lines are kept only from the moment keeping is turned on. Off by default (memory).
  void set_keep_lines(bool keep) { keep_lines_ = keep; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  const int64_t* now_;
  uint64_t hash_ = 0;
  uint64_t size_ = 0;
  bool keep_lines_ = false;
  std::vector<std::string> lines_;
};

// Formats a virtual time as seconds with microsecond precision: "12.000345".
std::string FormatTime(int64_t micros);

// Owns virtual time, the event queue, the root seed/Rng and the trace.
class Simulator {
 public:
  using EventFn = std::function<void()>;

  explicit Simulator(uint64_t seed);
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  uint64_t seed() const { return seed_; }
  // Current virtual time in microseconds since the start of the simulation.
  int64_t Now() const { return now_; }

  // The root random stream. Prefer `DeriveRng` for a component's own stream.
  Rng& rng() { return rng_; }
  // An independent stream that is a pure function of (seed, name). The same name always yields the
  // same stream: put a generation in the name ("node/a:1/boot2") when a fresh stream is wanted.
  SeededRng DeriveRng(std::string_view name) const;

  // Runs `fn` at Now() + delay (delay < 0 is treated as 0). If `label` is non-empty, the firing is
  // recorded in the trace as "timer <label>"; unlabeled events are internal (the network's
  // deliveries trace themselves).
  TimerHandle Schedule(int64_t delay, EventFn fn, std::string label = {});
  // Runs `fn` at virtual time `at`; a time in the past is clamped to Now() (time never goes back).
  TimerHandle ScheduleAt(int64_t at, EventFn fn, std::string label = {});
  // Removes the event if it is still pending and returns true; returns false if it already ran or
  // was cancelled. Resets `handle` either way.
  bool Cancel(TimerHandle& handle);

  // Runs the earliest pending event (advancing Now() to its time). Returns false if none is
  // pending.
  bool Step();
  // Runs every event due at or before Now() + duration, then sets Now() to exactly that time.
  void RunFor(int64_t duration);
  // Runs events until `pred()` holds (checked before the first event and after each one) or the
  // next event is due after `deadline` (absolute virtual time). Returns whether `pred()` held; on
  // false, Now() is set to `deadline` (if it was earlier). On true, Now() is the time of the event
  // that made it hold.
  bool RunUntil(const std::function<bool()>& pred, int64_t deadline);

  size_t PendingEvents() const { return queue_.size(); }
  std::optional<int64_t> NextEventTime() const;
  uint64_t events_run() const { return events_run_; }

  Trace& trace() { return trace_; }
  const Trace& trace() const { return trace_; }
  uint64_t TraceHash() const { return trace_.hash(); }

 private:
  struct Event {
    EventFn fn;
    std::string label;
  };
  using Key = std::pair<int64_t, uint64_t>;  // (due time, insertion sequence)

  const uint64_t seed_;
  int64_t now_ = 0;
  uint64_t next_seq_ = 1;  // 0 marks an invalid TimerHandle
  uint64_t events_run_ = 0;
  SeededRng rng_;
  std::map<Key, Event> queue_;
  Trace trace_{&now_};
};

}  // namespace shoal::sim
