// Tests of the simulator core: event ordering, timers, run loops, derived Rngs, the trace,
// SimClock.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/transport.h"
#include "sim/sim_clock.h"
#include "sim/simulator.h"

namespace shoal::sim {
namespace {

TEST(Endpoint, PrintsComparesAndHashes) {
  const Endpoint a{"10.0.0.1", 7000}, b{"10.0.0.1", 7001}, c{"10.0.0.2", 7000};
  EXPECT_EQ(a.ToString(), "10.0.0.1:7000");
  EXPECT_EQ((Endpoint{"::1", 7000}.ToString()), "[::1]:7000");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);  // host first, then port
  EXPECT_EQ(a, (Endpoint{"10.0.0.1", 7000}));
  EXPECT_EQ(std::hash<Endpoint>()(a), std::hash<Endpoint>()(Endpoint{"10.0.0.1", 7000}));
  EXPECT_NE(std::hash<Endpoint>()(a), std::hash<Endpoint>()(b));
}

TEST(Simulator, RunsEventsInTimeOrderAndTiesInInsertionOrder) {
  Simulator sim(1);
  std::vector<std::string> order;
  sim.Schedule(20, [&] { order.push_back("c@20"); });
  sim.Schedule(10, [&] { order.push_back("a@10"); });
  sim.Schedule(10, [&] { order.push_back("b@10"); });
  sim.ScheduleAt(5, [&] {
    order.push_back("x@5");
    // Scheduled later for the same instant as a@10/b@10: runs after them.
    sim.Schedule(5, [&] { order.push_back("d@10"); });
    // Zero delay from inside a callback: runs next, at the same instant.
    sim.Schedule(0, [&] { order.push_back("y@5"); });
  });
  sim.RunFor(100);
  EXPECT_EQ(order, (std::vector<std::string>{"x@5", "y@5", "a@10", "b@10", "d@10", "c@20"}));
  EXPECT_EQ(sim.Now(), 100);
  EXPECT_EQ(sim.events_run(), 6u);
}

TEST(Simulator, StepAdvancesToTheNextEventOnly) {
  Simulator sim(1);
  int fired = 0;
  sim.Schedule(7, [&] { ++fired; });
  sim.Schedule(9, [&] { ++fired; });
  EXPECT_EQ(sim.NextEventTime(), 7);
  EXPECT_TRUE(sim.Step());
  EXPECT_EQ(sim.Now(), 7);
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(sim.Step());
  EXPECT_EQ(sim.Now(), 9);
  EXPECT_FALSE(sim.Step());
  EXPECT_EQ(sim.Now(), 9);
  EXPECT_EQ(sim.NextEventTime(), std::nullopt);
}

TEST(Simulator, RunForIncludesTheEndInstantAndNotLater) {
  Simulator sim(1);
  int fired = 0;
  sim.Schedule(100, [&] { ++fired; });
  sim.Schedule(101, [&] { ++fired; });
  sim.RunFor(100);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(sim.Now(), 100);
  sim.RunFor(0);
  EXPECT_EQ(fired, 1);
  sim.RunFor(1);
  EXPECT_EQ(fired, 2);
}

TEST(Simulator, PastTimesAreClampedToNow) {
  Simulator sim(1);
  sim.RunFor(50);
  int64_t ran_at = -1;
  TimerHandle h = sim.ScheduleAt(10, [&] { ran_at = sim.Now(); });
  EXPECT_EQ(h.at(), 50);
  sim.Schedule(-5, [] {});
  sim.RunFor(0);
  EXPECT_EQ(ran_at, 50);
}

TEST(Simulator, CancelledTimersDoNotFire) {
  Simulator sim(1);
  int a = 0, b = 0;
  TimerHandle ha = sim.Schedule(10, [&] { ++a; });
  TimerHandle hb = sim.Schedule(10, [&] { ++b; });
  TimerHandle copy = ha;
  EXPECT_TRUE(sim.Cancel(ha));
  EXPECT_FALSE(ha.valid());
  EXPECT_FALSE(sim.Cancel(copy));  // already cancelled through the other copy
  EXPECT_EQ(sim.PendingEvents(), 1u);
  sim.RunFor(20);
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_FALSE(sim.Cancel(hb));  // already ran
  TimerHandle none;
  EXPECT_FALSE(sim.Cancel(none));
}

TEST(Simulator, CallbackMayCancelAnotherEventDueAtTheSameInstant) {
  Simulator sim(1);
  int fired = 0;
  TimerHandle second;
  sim.Schedule(10, [&] { EXPECT_TRUE(sim.Cancel(second)); });
  second = sim.Schedule(10, [&] { ++fired; });
  sim.RunFor(10);
  EXPECT_EQ(fired, 0);
}

TEST(Simulator, RunUntilStopsWhenThePredicateHolds) {
  Simulator sim(1);
  int count = 0;
  for (int i = 1; i <= 10; ++i) sim.Schedule(i * 10, [&] { ++count; });
  EXPECT_TRUE(sim.RunUntil([&] { return count == 3; }, 1000));
  EXPECT_EQ(sim.Now(), 30);
  EXPECT_EQ(count, 3);
  EXPECT_TRUE(sim.RunUntil([&] { return count == 3; }, 1000));  // already holds: runs nothing
  EXPECT_EQ(count, 3);
}

TEST(Simulator, RunUntilGivesUpAtTheDeadline) {
  Simulator sim(1);
  int count = 0;
  for (int i = 1; i <= 10; ++i) sim.Schedule(i * 10, [&] { ++count; });
  EXPECT_FALSE(sim.RunUntil([&] { return count == 100; }, 55));
  EXPECT_EQ(count, 5);
  EXPECT_EQ(sim.Now(), 55);
  EXPECT_EQ(sim.PendingEvents(), 5u);
}

TEST(Simulator, DerivedRngsArePureFunctionsOfSeedAndName) {
  Simulator s1(7), s2(7), s3(8);
  SeededRng a = s1.DeriveRng("network");
  s2.DeriveRng("something else first");  // order and number of derivations do not matter
  SeededRng b = s2.DeriveRng("network");
  SeededRng c = s1.DeriveRng("node/a:1");
  SeededRng d = s3.DeriveRng("network");
  bool c_differs = false, d_differs = false;
  for (int i = 0; i < 16; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    c_differs |= x != c.Next();
    d_differs |= x != d.Next();
  }
  EXPECT_TRUE(c_differs);
  EXPECT_TRUE(d_differs);
}

TEST(Trace, RecordsLabeledTimersAndHashesLines) {
  auto run = [](uint64_t seed, bool keep) {
    Simulator sim(seed);
    sim.trace().set_keep_lines(keep);
    sim.Schedule(
        1500, [] {}, "tick");
    sim.Schedule(2500, [] {});  // unlabeled: internal, not traced
    sim.Schedule(3 * kSecond, [&] { sim.trace().Record("note", "hello"); });
    sim.RunFor(10 * kSecond);
    return std::make_pair(sim.TraceHash(), sim.trace().lines());
  };
  auto [hash, lines] = run(1, true);
  EXPECT_EQ(lines, (std::vector<std::string>{"0.001500 timer tick", "3.000000 note hello"}));
  EXPECT_EQ(run(1, false).first, hash);  // keeping lines does not change the hash
  EXPECT_TRUE(run(1, false).second.empty());
  EXPECT_NE(hash, 0u);
}

TEST(Trace, FormatTime) {
  EXPECT_EQ(FormatTime(0), "0.000000");
  EXPECT_EQ(FormatTime(12'000'345), "12.000345");
  EXPECT_EQ(FormatTime(-1), "-0.000001");
}

TEST(SimClock, FollowsVirtualTimeWithStartValues) {
  Simulator sim(1);
  SimClock clock(sim, ClockConfig{});
  EXPECT_EQ(clock.NowUnixMicros(), 1'700'000'000'000'000);
  EXPECT_EQ(clock.MonotonicMicros(), 1'000'000);
  sim.RunFor(2500);
  EXPECT_EQ(clock.NowUnixMicros(), 1'700'000'000'002'500);
  EXPECT_EQ(clock.MonotonicMicros(), 1'002'500);
  EXPECT_EQ(clock.MonotonicMillis(), 1'002);
  EXPECT_EQ(clock.GlobalDelayFor(1000), 1000);
}

TEST(SimClock, DriftAndOffset) {
  Simulator sim(1);
  SimClock fast(sim, ClockConfig{.rate = 1.0001, .unix_offset = 5 * kSecond});
  SimClock slow(sim, ClockConfig{.rate = 0.999});
  const int64_t unix0 = fast.NowUnixMicros();
  EXPECT_EQ(unix0, 1'700'000'000'000'000 + 5 * kSecond);
  sim.RunFor(100 * kSecond);
  EXPECT_EQ(fast.Elapsed(), 100'010'000);  // 100 s at +100 ppm
  EXPECT_EQ(fast.NowUnixMicros() - unix0, 100'010'000);
  EXPECT_EQ(slow.Elapsed(), 99'900'000);
  EXPECT_EQ(slow.MonotonicMicros(), 1'000'000 + 99'900'000);

  // A local delay of 1 s takes less global time on the fast clock, more on the slow one, and is
  // the smallest global delay that achieves it.
  for (SimClock* c : {&fast, &slow}) {
    const int64_t g = c->GlobalDelayFor(kSecond);
    const int64_t before = c->Elapsed();
    sim.RunFor(g - 1);
    EXPECT_LT(c->Elapsed() - before, kSecond);
    sim.RunFor(1);
    EXPECT_GE(c->Elapsed() - before, kSecond);
  }
  EXPECT_LT(fast.GlobalDelayFor(kSecond), kSecond);
  EXPECT_GT(slow.GlobalDelayFor(kSecond), kSecond);
}

TEST(SimClock, RateChangeIsContinuousAndStepMovesOnlyUnix) {
  Simulator sim(1);
  SimClock clock(sim, ClockConfig{.rate = 2.0});
  sim.RunFor(10);
  EXPECT_EQ(clock.Elapsed(), 20);
  clock.SetRate(0.5);
  EXPECT_EQ(clock.Elapsed(), 20);
  EXPECT_DOUBLE_EQ(clock.rate(), 0.5);
  sim.RunFor(10);
  EXPECT_EQ(clock.Elapsed(), 25);
  const int64_t mono = clock.MonotonicMicros(), unix = clock.NowUnixMicros();
  clock.StepUnix(-kSecond);
  EXPECT_EQ(clock.MonotonicMicros(), mono);
  EXPECT_EQ(clock.NowUnixMicros(), unix - kSecond);
}

TEST(SimClock, MonotonicNeverGoesBackUnderAnyRate) {
  Simulator sim(3);
  SimClock clock(sim, ClockConfig{.rate = 0.7});
  int64_t last = clock.MonotonicMicros();
  for (int i = 0; i < 1000; ++i) {
    if (i % 100 == 0) clock.SetRate(0.5 + static_cast<double>(sim.rng().Uniform(100)) / 50.0);
    sim.RunFor(static_cast<int64_t>(sim.rng().Uniform(1000)));
    EXPECT_GE(clock.MonotonicMicros(), last);
    last = clock.MonotonicMicros();
  }
}

}  // namespace
}  // namespace shoal::sim
