// Tests of the simulated network: delay bounds, loss rates, duplication, reordering, partitions,
// crash/restart, node timers, counters, and reproducibility of the trace.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "common/transport.h"
#include "sim/network.h"
#include "sim/simulator.h"

namespace shoal::sim {
namespace {

const Endpoint kA{"10.0.0.1", 7000};
const Endpoint kB{"10.0.0.2", 7000};
const Endpoint kC{"10.0.0.3", 7000};

struct Received {
  int64_t at;
  Endpoint from;
  std::string payload;
};

// Three nodes, each recording what it receives.
class NetworkTest : public ::testing::Test {
 protected:
  explicit NetworkTest(uint64_t seed = 1) : sim_(seed), net_(sim_) {
    for (const Endpoint& e : {kA, kB, kC}) {
      net_.AddNode(e, [this, e](const Endpoint& from, std::string payload) {
        inbox_[e].push_back({sim_.Now(), from, std::move(payload)});
      });
    }
  }
  DatagramTransport& T(const Endpoint& e) { return net_.node(e).transport(); }
  std::vector<Received>& Inbox(const Endpoint& e) { return inbox_[e]; }
  // Sends `n` numbered datagrams from -> to, one every `spacing`, starting now.
  void SendMany(const Endpoint& from, const Endpoint& to, int n, int64_t spacing = 0) {
    for (int i = 0; i < n; ++i) {
      sim_.Schedule(i * spacing, [this, from, to, i] { T(from).Send(to, std::to_string(i)); });
    }
  }
  void ExpectConservation() {
    const NodeCounters t = net_.Totals();
    EXPECT_EQ(t.sent + t.duplicated, t.delivered + t.dropped_total() + net_.InFlight());
  }

  Simulator sim_;
  Network net_;
  std::map<Endpoint, std::vector<Received>> inbox_;
};

TEST_F(NetworkTest, DeliversAfterTheConstantDelayWithSenderAndPayload) {
  net_.SetDefaultLink({.delay = DelayDistribution::Constant(3 * kMillisecond)});
  sim_.RunFor(10);
  T(kA).Send(kB, "hello");
  sim_.RunFor(kSecond);
  ASSERT_EQ(Inbox(kB).size(), 1u);
  EXPECT_EQ(Inbox(kB)[0].at, 10 + 3 * kMillisecond);
  EXPECT_EQ(Inbox(kB)[0].from, kA);
  EXPECT_EQ(Inbox(kB)[0].payload, "hello");
  EXPECT_TRUE(Inbox(kA).empty());
  EXPECT_EQ(net_.node(kA).counters().sent, 1u);
  EXPECT_EQ(net_.node(kB).counters().delivered, 1u);
  ExpectConservation();
}

TEST_F(NetworkTest, NodeCanSendToItself) {
  T(kA).Send(kA, "me");
  sim_.RunFor(kSecond);
  ASSERT_EQ(Inbox(kA).size(), 1u);
  EXPECT_EQ(Inbox(kA)[0].from, kA);
}

TEST_F(NetworkTest, UniformDelaysStayInBoundsCoverThemAndReorder) {
  const int64_t lo = 2 * kMillisecond, hi = 9 * kMillisecond;
  net_.SetLink(kA, kB, {.delay = DelayDistribution::Uniform(lo, hi)});
  std::map<std::string, int64_t> sent_at;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    sim_.Schedule(i * 100, [&, i] {
      sent_at[std::to_string(i)] = sim_.Now();
      T(kA).Send(kB, std::to_string(i));
    });
  }
  sim_.RunFor(10 * kSecond);
  ASSERT_EQ(Inbox(kB).size(), static_cast<size_t>(n));
  int64_t min_seen = hi, max_seen = lo;
  double sum = 0;
  int reordered = 0;
  int last = -1;
  for (const Received& r : Inbox(kB)) {
    const int64_t d = r.at - sent_at.at(r.payload);
    EXPECT_GE(d, lo);
    EXPECT_LE(d, hi);
    min_seen = std::min(min_seen, d);
    max_seen = std::max(max_seen, d);
    sum += static_cast<double>(d);
    const int seq = std::stoi(r.payload);
    if (seq < last) ++reordered;
    last = std::max(last, seq);
  }
  EXPECT_LT(min_seen, lo + 50);  // the whole range is used
  EXPECT_GT(max_seen, hi - 50);
  EXPECT_NEAR(sum / n, (lo + hi) / 2.0, 100.0);  // std error of the mean is ~29 us
  EXPECT_GT(reordered, n / 10);  // datagrams 100 us apart with 7 ms of jitter overtake each other
}

TEST_F(NetworkTest, ExponentialDelaysRespectFloorCapAndMean) {
  const int64_t floor = 1 * kMillisecond, mean = 3 * kMillisecond, cap = 50 * kMillisecond;
  const auto dist = DelayDistribution::Exponential(floor, mean, cap);
  EXPECT_EQ(dist.min(), floor);
  EXPECT_EQ(dist.max(), cap);
  SeededRng rng(5);
  double sum = 0;
  int near_floor = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const int64_t d = dist.Sample(rng);
    ASSERT_GE(d, floor);
    ASSERT_LE(d, cap);
    sum += static_cast<double>(d);
    near_floor += d < floor + (mean - floor);
  }
  EXPECT_NEAR(sum / n, static_cast<double>(mean), 60.0);  // cap at 24 means cuts ~nothing
  EXPECT_NEAR(static_cast<double>(near_floor) / n, 1 - std::exp(-1.0), 0.02);
  // A tight cap is a hard bound.
  const auto capped = DelayDistribution::Exponential(100, 1000, 1200);
  for (int i = 0; i < 1000; ++i) ASSERT_LE(capped.Sample(rng), 1200);
  EXPECT_EQ(DelayDistribution::Constant(7).Sample(rng), 7);
}

class LossRateTest : public NetworkTest, public ::testing::WithParamInterface<double> {};

TEST_P(LossRateTest, DropsAboutTheConfiguredFraction) {
  const double p = GetParam();
  net_.SetLink(kA, kB, {.loss = p});
  const int n = 20000;
  SendMany(kA, kB, n, 10);
  sim_.RunFor(10 * kSecond);
  const NodeCounters& a = net_.node(kA).counters();
  EXPECT_EQ(a.sent, static_cast<uint64_t>(n));
  EXPECT_EQ(a.dropped_by(DropReason::kLoss), a.dropped_total());
  EXPECT_EQ(a.dropped_total() + Inbox(kB).size(), static_cast<uint64_t>(n));
  // Binomial std dev is at most sqrt(n/4) = 71 datagrams = 0.35%; 1.5% is > 4 sigma.
  EXPECT_NEAR(static_cast<double>(a.dropped_total()) / n, p, 0.015);
  if (p == 0) {
    EXPECT_EQ(a.dropped_total(), 0u);
  }
  if (p == 1) {
    EXPECT_TRUE(Inbox(kB).empty());
  }
  // Other links are untouched.
  SendMany(kB, kA, 100);
  sim_.RunFor(kSecond);
  EXPECT_EQ(Inbox(kA).size(), 100u);
  ExpectConservation();
}

INSTANTIATE_TEST_SUITE_P(Rates, LossRateTest, ::testing::Values(0.0, 0.01, 0.1, 0.5, 1.0));

TEST_F(NetworkTest, DuplicationDeliversTwoCopies) {
  net_.SetLink(
      kA, kB,
      {.delay = DelayDistribution::Uniform(kMillisecond, 5 * kMillisecond), .duplicate = 1.0});
  SendMany(kA, kB, 100);
  sim_.RunFor(kSecond);
  EXPECT_EQ(Inbox(kB).size(), 200u);
  std::map<std::string, int> copies;
  for (const Received& r : Inbox(kB)) ++copies[r.payload];
  for (const auto& [payload, count] : copies) EXPECT_EQ(count, 2) << payload;
  EXPECT_EQ(net_.node(kA).counters().duplicated, 100u);
  EXPECT_EQ(net_.node(kB).counters().delivered, 200u);
  ExpectConservation();
}

TEST_F(NetworkTest, SymmetricPartitionBlocksBothDirectionsAndHeals) {
  net_.Partition({kA}, {kB, kC});
  EXPECT_TRUE(net_.IsBlocked(kA, kB));
  EXPECT_TRUE(net_.IsBlocked(kC, kA));
  EXPECT_FALSE(net_.IsBlocked(kB, kC));
  T(kA).Send(kB, "a->b");
  T(kB).Send(kA, "b->a");
  T(kC).Send(kA, "c->a");
  T(kB).Send(kC, "b->c");  // same side: unaffected
  sim_.RunFor(kSecond);
  EXPECT_TRUE(Inbox(kA).empty());
  EXPECT_TRUE(Inbox(kB).empty());
  ASSERT_EQ(Inbox(kC).size(), 1u);
  EXPECT_EQ(net_.node(kA).counters().dropped_by(DropReason::kPartition), 1u);
  EXPECT_EQ(net_.node(kB).counters().dropped_by(DropReason::kPartition), 1u);

  net_.Heal({kA}, {kB, kC});
  EXPECT_FALSE(net_.IsBlocked(kA, kB));
  T(kA).Send(kB, "a->b");
  T(kB).Send(kA, "b->a");
  sim_.RunFor(kSecond);
  EXPECT_EQ(Inbox(kA).size(), 1u);
  EXPECT_EQ(Inbox(kB).size(), 1u);
  ExpectConservation();
}

TEST_F(NetworkTest, PartitionAlsoCutsDatagramsInFlight) {
  net_.SetDefaultLink({.delay = DelayDistribution::Constant(10 * kMillisecond)});
  T(kA).Send(kB, "in flight");
  sim_.RunFor(5 * kMillisecond);
  net_.Partition({kA}, {kB});
  sim_.RunFor(kSecond);
  EXPECT_TRUE(Inbox(kB).empty());
  EXPECT_EQ(net_.node(kA).counters().dropped_by(DropReason::kPartition), 1u);
  EXPECT_EQ(net_.InFlight(), 0u);
}

TEST_F(NetworkTest, OneWayPartitionBlocksOneDirectionOnly) {
  net_.PartitionOneWay({kA}, {kB});
  EXPECT_TRUE(net_.IsBlocked(kA, kB));
  EXPECT_FALSE(net_.IsBlocked(kB, kA));
  SendMany(kA, kB, 10);
  SendMany(kB, kA, 10);
  SendMany(kA, kC, 10);
  sim_.RunFor(kSecond);
  EXPECT_TRUE(Inbox(kB).empty());
  EXPECT_EQ(Inbox(kA).size(), 10u);
  EXPECT_EQ(Inbox(kC).size(), 10u);
  net_.HealAll();
  SendMany(kA, kB, 10);
  sim_.RunFor(kSecond);
  EXPECT_EQ(Inbox(kB).size(), 10u);
}

TEST_F(NetworkTest, IsolateCutsANodeOffFromEveryone) {
  net_.Isolate(kB);
  for (const Endpoint& e : {kA, kC}) {
    EXPECT_TRUE(net_.IsBlocked(e, kB));
    EXPECT_TRUE(net_.IsBlocked(kB, e));
  }
  EXPECT_FALSE(net_.IsBlocked(kA, kC));
}

TEST_F(NetworkTest, CrashedNodeReceivesNothingAndRestartResumes) {
  net_.SetDefaultLink({.delay = DelayDistribution::Constant(10 * kMillisecond)});
  T(kA).Send(kB, "queued before crash");
  sim_.RunFor(5 * kMillisecond);
  net_.Crash(kB);
  EXPECT_FALSE(net_.node(kB).up());
  T(kA).Send(kB, "sent while down");
  T(kB).Send(kA, "sent by the dead");
  sim_.RunFor(2 * kMillisecond);
  net_.Restart(kB);  // before the first datagram would arrive: still dropped (old incarnation)
  EXPECT_TRUE(net_.node(kB).up());
  EXPECT_EQ(net_.node(kB).generation(), 1u);
  sim_.RunFor(kSecond);
  EXPECT_TRUE(Inbox(kB).empty());
  EXPECT_TRUE(Inbox(kA).empty());
  const NodeCounters& a = net_.node(kA).counters();
  EXPECT_EQ(a.dropped_by(DropReason::kReceiverDown), 2u);
  EXPECT_EQ(net_.node(kB).counters().dropped_by(DropReason::kSenderDown), 1u);

  T(kA).Send(kB, "after restart");
  T(kB).Send(kA, "alive again");
  sim_.RunFor(kSecond);
  ASSERT_EQ(Inbox(kB).size(), 1u);
  EXPECT_EQ(Inbox(kB)[0].payload, "after restart");
  ASSERT_EQ(Inbox(kA).size(), 1u);
  ExpectConservation();
}

TEST_F(NetworkTest, DatagramsSentBeforeTheSenderCrashesStillArrive) {
  T(kA).Send(kB, "last words");
  net_.Crash(kA);
  sim_.RunFor(kSecond);
  ASSERT_EQ(Inbox(kB).size(), 1u);
}

TEST_F(NetworkTest, RestartedNodeCanGetAFreshReceiver) {
  net_.Crash(kB);
  net_.Restart(kB);
  std::vector<std::string> fresh;
  net_.node(kB).SetReceiver([&](const Endpoint&, std::string p) { fresh.push_back(p); });
  T(kA).Send(kB, "x");
  sim_.RunFor(kSecond);
  EXPECT_EQ(fresh, std::vector<std::string>{"x"});
  EXPECT_TRUE(Inbox(kB).empty());
}

TEST_F(NetworkTest, UnknownDestinationsAndOversizedPayloadsAreDropped) {
  T(kA).Send(Endpoint{"10.9.9.9", 1}, "nobody home");
  T(kA).Send(kB, std::string(kMaxDatagramPayload + 1, 'x'));
  T(kA).Send(kB, std::string(kMaxDatagramPayload, 'x'));
  sim_.RunFor(kSecond);
  const NodeCounters& a = net_.node(kA).counters();
  EXPECT_EQ(a.dropped_by(DropReason::kNoSuchNode), 1u);
  EXPECT_EQ(a.dropped_by(DropReason::kTooLarge), 1u);
  EXPECT_EQ(Inbox(kB).size(), 1u);
  ExpectConservation();
}

TEST_F(NetworkTest, NodeTimersRunOnTheNodeClockAndDieWithTheIncarnation) {
  Network net(sim_);
  SimNode& fast = net.AddNode({"f", 1}, nullptr, {.rate = 2.0});
  SimNode& normal = net.AddNode({"n", 1}, nullptr);
  int64_t fast_fired = -1, normal_fired = -1;
  fast.ScheduleTimer(
      kSecond, [&] { fast_fired = sim_.Now(); }, "t");
  normal.ScheduleTimer(
      kSecond, [&] { normal_fired = sim_.Now(); }, "t");
  int stale = 0;
  normal.ScheduleTimer(
      2 * kSecond, [&] { ++stale; }, "stale");
  TimerHandle cancelled = normal.ScheduleTimer(
      kSecond, [&] { ++stale; }, "cancelled");
  EXPECT_TRUE(sim_.Cancel(cancelled));
  sim_.RunFor(1500 * kMillisecond);
  EXPECT_EQ(fast_fired, kSecond / 2);  // a local second on a 2x clock is half a global second
  EXPECT_EQ(normal_fired, kSecond);
  net.Crash({"n", 1});
  net.Restart({"n", 1});
  sim_.RunFor(10 * kSecond);
  EXPECT_EQ(stale, 0);  // the timer belonged to the previous incarnation
}

TEST_F(NetworkTest, EndpointsAreListedInOrder) {
  EXPECT_EQ(net_.Endpoints(), (std::vector<Endpoint>{kA, kB, kC}));
  EXPECT_EQ(net_.FindNode(Endpoint{"nope", 1}), nullptr);
}

// A short, busy, faulty scenario whose trace is compared across runs.
uint64_t NoisyScenarioHash(uint64_t seed, std::vector<std::string>* lines = nullptr) {
  Simulator sim(seed);
  sim.trace().set_keep_lines(lines != nullptr);
  Network net(sim, {.default_link = {.delay = DelayDistribution::Exponential(
                                         kMillisecond, 4 * kMillisecond, 100 * kMillisecond),
                                     .loss = 0.2,
                                     .duplicate = 0.05}});
  std::vector<Endpoint> eps;
  for (uint16_t i = 0; i < 4; ++i) {
    eps.push_back({"10.0.0.1", static_cast<uint16_t>(7000 + i)});
    net.AddNode(eps.back(), [](const Endpoint&, std::string) {});
  }
  SeededRng rng = sim.DeriveRng("test-traffic");
  for (int i = 0; i < 300; ++i) {
    sim.Schedule(static_cast<int64_t>(rng.Uniform(kSecond)), [&net, &eps, &rng, i] {
      const Endpoint& from = eps[rng.Uniform(eps.size())];
      net.node(from).transport().Send(eps[rng.Uniform(eps.size())], "m" + std::to_string(i));
    });
  }
  sim.Schedule(300 * kMillisecond, [&] { net.Partition({eps[0]}, {eps[1], eps[2]}); });
  sim.Schedule(500 * kMillisecond, [&] { net.Crash(eps[3]); });
  sim.Schedule(700 * kMillisecond, [&] {
    net.HealAll();
    net.Restart(eps[3]);
  });
  sim.RunFor(2 * kSecond);
  if (lines != nullptr) *lines = sim.trace().lines();
  return sim.TraceHash();
}

TEST(NetworkTrace, SameSeedSameTraceDifferentSeedDifferentTrace) {
  std::vector<std::string> first, second, other;
  const uint64_t h1 = NoisyScenarioHash(42, &first);
  const uint64_t h2 = NoisyScenarioHash(42, &second);
  const uint64_t h3 = NoisyScenarioHash(43, &other);
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(first, second);
  EXPECT_GT(first.size(), 600u);  // sends + deliveries/drops + faults
  EXPECT_NE(h1, h3);
  EXPECT_NE(first, other);
  // Every kind of event shows up.
  for (const char* kind : {" send ", " deliver ", " drop loss ", " drop partition ", " dup ",
                           " crash ", " restart ", " heal-all"}) {
    EXPECT_TRUE(std::any_of(first.begin(), first.end(), [&](const std::string& l) {
      return l.find(kind) != l.npos;
    })) << kind;
  }
  // Keeping lines does not change the hash.
  EXPECT_EQ(NoisyScenarioHash(42), h1);
}

}  // namespace
}  // namespace shoal::sim
