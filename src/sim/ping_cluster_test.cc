// End-to-end exercise of the simulator the way protocol tests will use it: N nodes each run a tiny
// sans-I/O protocol core (ping a random peer periodically, answer pings, count pongs) that sees
// only DatagramTransport, Clock and Rng, while a seeded nemesis partitions, crashes, restarts and
// degrades the network. Over 50 seeds: a run is reproducible from its seed, the network never
// breaks its contract (no delivery across a blocked link or to a crashed node, delays within
// bounds, counters balance), and the cluster recovers once the faults stop.
#include <gtest/gtest.h>

#include <charconv>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "common/transport.h"
#include "sim/network.h"
#include "sim/simulator.h"

namespace shoal::sim {
namespace {

// The toy protocol core. Knows nothing of the simulator. Messages: "ping <boot> <seq>" and
// "pong <boot> <seq>" (echoing the pinger's boot and seq). `boot` tells this incarnation's pongs
// from those answering a previous incarnation's pings.
class PingCore {
 public:
  PingCore(std::vector<Endpoint> peers, uint64_t boot, DatagramTransport& transport,
           const Clock& clock, Rng& rng)
      : peers_(std::move(peers)), boot_(boot), transport_(transport), clock_(clock), rng_(rng) {}

  void OnTick() {
    const uint64_t seq = next_seq_++;
    outstanding_[seq] = clock_.MonotonicMicros();
    ++pings_sent_;
    transport_.Send(peers_[rng_.Uniform(peers_.size())],
                    "ping " + std::to_string(boot_) + " " + std::to_string(seq));
  }

  void OnReceive(const Endpoint& from, std::string_view payload) {
    uint64_t boot = 0, seq = 0;
    if (!Parse(payload.substr(5), boot, seq)) {
      ++malformed_;
      return;
    }
    if (payload.starts_with("ping ")) {
      ++pings_answered_;
      transport_.Send(from, "pong " + std::to_string(boot) + " " + std::to_string(seq));
    } else if (payload.starts_with("pong ")) {
      if (boot != boot_) {
        ++stale_pongs_;
      } else if (auto it = outstanding_.find(seq); it != outstanding_.end()) {
        ++pongs_;
        rtts_.push_back(clock_.MonotonicMicros() - it->second);
        outstanding_.erase(it);
      } else if (seq < next_seq_) {
        ++duplicate_pongs_;
      } else {
        ++unsolicited_pongs_;  // a pong for a ping never sent: the network invented a message
      }
    } else {
      ++malformed_;
    }
  }

  uint64_t pings_sent_ = 0, pings_answered_ = 0, pongs_ = 0, stale_pongs_ = 0, duplicate_pongs_ = 0,
           unsolicited_pongs_ = 0, malformed_ = 0;
  std::vector<int64_t> rtts_;  // on this node's clock

 private:
  static bool Parse(std::string_view s, uint64_t& a, uint64_t& b) {
    const char* end = s.data() + s.size();
    auto r1 = std::from_chars(s.data(), end, a);
    if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != ' ') return false;
    auto r2 = std::from_chars(r1.ptr + 1, end, b);
    return r2.ec == std::errc() && r2.ptr == end;
  }

  std::vector<Endpoint> peers_;
  uint64_t boot_;
  DatagramTransport& transport_;
  const Clock& clock_;
  Rng& rng_;
  uint64_t next_seq_ = 0;
  std::map<uint64_t, int64_t> outstanding_;  // seq -> monotonic send time
};

constexpr int kNodes = 5;
constexpr int64_t kPingPeriod = 100 * kMillisecond;
constexpr int64_t kChaosEnd = 15 * kSecond;
constexpr int64_t kQuietEnd = 20 * kSecond;
constexpr int64_t kMinDelay = 1 * kMillisecond;
constexpr int64_t kMaxDelay = 30 * kMillisecond;
constexpr double kMinRate = 0.999, kMaxRate = 1.001;

struct RunResult {
  uint64_t trace_hash = 0;
  uint64_t trace_size = 0;
  std::vector<uint64_t> pongs;           // per node, summed over incarnations
  std::vector<uint64_t> quiet_pongs;     // per node, after the chaos ended
  std::vector<std::string> violations;   // contract breaches, empty when all is well
  uint64_t crashes = 0, partitions = 0;  // faults the nemesis injected
  NodeCounters totals;
};

// Runs the whole scenario for `seed`. Every check that could fail is collected into `violations`
// so the parameterised test can print them with the seed.
RunResult RunPingCluster(uint64_t seed) {
  Simulator sim(seed);
  Network net(sim, {.default_link = {.delay = DelayDistribution::Uniform(kMinDelay, kMaxDelay),
                                     .loss = 0.05,
                                     .duplicate = 0.01}});
  RunResult result;
  auto violation = [&](const std::string& what) {
    result.violations.push_back(FormatTime(sim.Now()) + " " + what);
  };

  struct Member {
    SimNode* node = nullptr;
    SeededRng rng{0};
    std::unique_ptr<PingCore> core;
    uint64_t ticks = 0;
    uint64_t pongs_of_previous_boots = 0;
    uint64_t delivered_at_crash = 0, ticks_at_crash = 0;
  };
  std::vector<Endpoint> eps;
  for (int i = 0; i < kNodes; ++i) eps.push_back({"10.0.0." + std::to_string(i + 1), 7000});
  std::vector<Member> members(kNodes);

  SeededRng setup = sim.DeriveRng("setup");
  std::function<void(int)> arm_tick = [&](int i) {
    members[i].node->ScheduleTimer(
        kPingPeriod,
        [&, i] {
          ++members[i].ticks;
          members[i].core->OnTick();
          arm_tick(i);
        },
        "tick");
  };
  auto boot = [&](int i) {
    Member& m = members[i];
    std::vector<Endpoint> peers;
    for (const Endpoint& e : eps) {
      if (e != eps[i]) peers.push_back(e);
    }
    if (m.core) m.pongs_of_previous_boots += m.core->pongs_;
    m.rng = sim.DeriveRng("node/" + eps[i].ToString() + "/" + std::to_string(m.node->generation()));
    m.core = std::make_unique<PingCore>(peers, m.node->generation(), m.node->transport(),
                                        m.node->clock(), m.rng);
    arm_tick(i);
  };
  for (int i = 0; i < kNodes; ++i) {
    const double rate =
        kMinRate + (kMaxRate - kMinRate) * static_cast<double>(setup.Uniform(1001)) / 1000.0;
    const auto offset = static_cast<int64_t>(setup.Uniform(2 * kSecond)) - kSecond;
    members[i].node = &net.AddNode(eps[i],
                                   [&, i](const Endpoint& from, std::string payload) {
                                     if (net.IsBlocked(from, eps[i]))
                                       violation("delivered across a blocked link");
                                     if (!members[i].node->up())
                                       violation("delivered to a crashed node");
                                     members[i].core->OnReceive(from, payload);
                                   },
                                   {.rate = rate, .unix_offset = offset});
    boot(i);
  }

  // The nemesis: every 500 ms, one random fault or repair, until kChaosEnd.
  SeededRng nemesis = sim.DeriveRng("nemesis");
  auto crash = [&](int i) {
    net.Crash(eps[i]);
    members[i].delivered_at_crash = members[i].node->counters().delivered;
    members[i].ticks_at_crash = members[i].ticks;
    ++result.crashes;
  };
  auto restart = [&](int i) {
    if (members[i].node->counters().delivered != members[i].delivered_at_crash) {
      violation("crashed node received datagrams");
    }
    if (members[i].ticks != members[i].ticks_at_crash) violation("crashed node's timer fired");
    net.Restart(eps[i]);
    boot(i);
  };
  std::function<void()> chaos = [&] {
    if (sim.Now() >= kChaosEnd) return;
    const int a = static_cast<int>(nemesis.Uniform(kNodes));
    const int b = (a + 1 + static_cast<int>(nemesis.Uniform(kNodes - 1))) % kNodes;
    switch (nemesis.Uniform(6)) {
      case 0: {  // symmetric partition into two random sides
        std::vector<Endpoint> left, right;
        for (const Endpoint& e : eps) (nemesis.Bernoulli(0.5) ? left : right).push_back(e);
        net.Partition(left, right);
        ++result.partitions;
        break;
      }
      case 1:  // one-way partition
        net.PartitionOneWay({eps[a]}, {eps[b]});
        ++result.partitions;
        break;
      case 2:
        if (members[a].node->up()) crash(a);
        break;
      case 3:
        if (!members[a].node->up()) restart(a);
        break;
      case 4:
        net.HealAll();
        break;
      case 5:  // a bad link for a while
        net.SetLinkBothWays(eps[a], eps[b],
                            {.delay = DelayDistribution::Uniform(kMinDelay, kMaxDelay),
                             .loss = 0.5,
                             .duplicate = 0.2});
        break;
    }
    sim.Schedule(500 * kMillisecond, chaos);
  };
  sim.Schedule(500 * kMillisecond, chaos);
  sim.RunFor(kChaosEnd);

  // Faults stop: heal everything, restart everyone, and expect everyone to get pongs again.
  net.HealAll();
  net.ClearLinkOverrides();
  for (int i = 0; i < kNodes; ++i) {
    if (!members[i].node->up()) restart(i);
  }
  std::vector<uint64_t> before(kNodes);
  for (int i = 0; i < kNodes; ++i) before[i] = members[i].core->pongs_;
  sim.RunFor(kQuietEnd - kChaosEnd);

  const int64_t min_rtt = static_cast<int64_t>(2 * kMinDelay * kMinRate) - 2;
  const int64_t max_rtt = static_cast<int64_t>(2 * kMaxDelay * kMaxRate) + 2;
  for (int i = 0; i < kNodes; ++i) {
    const PingCore& core = *members[i].core;
    result.pongs.push_back(members[i].pongs_of_previous_boots + core.pongs_);
    result.quiet_pongs.push_back(core.pongs_ - before[i]);
    if (core.unsolicited_pongs_ > 0) violation("pong for a ping never sent");
    if (core.malformed_ > 0) violation("corrupted payload");
    for (int64_t rtt : core.rtts_) {
      if (rtt < min_rtt || rtt > max_rtt) violation("rtt out of bounds: " + std::to_string(rtt));
    }
  }
  result.totals = net.Totals();
  if (result.totals.sent + result.totals.duplicated !=
      result.totals.delivered + result.totals.dropped_total() + net.InFlight()) {
    violation("counters do not balance");
  }
  result.trace_hash = sim.TraceHash();
  result.trace_size = sim.trace().size();
  return result;
}

class PingClusterTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(PingClusterTest, ReproducibleFaultyAndRecovers) {
  const uint64_t seed = GetParam();
  const RunResult first = RunPingCluster(seed);
  const RunResult second = RunPingCluster(seed);

  EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed << " is not reproducible";
  EXPECT_EQ(first.trace_size, second.trace_size);
  EXPECT_EQ(first.pongs, second.pongs);

  for (const std::string& v : first.violations) ADD_FAILURE() << "seed " << seed << ": " << v;

  // The faults really happened and really hurt.
  EXPECT_GT(first.crashes + first.partitions, 0u) << "seed " << seed;
  EXPECT_GT(first.totals.dropped_total(), 0u);
  EXPECT_GT(first.totals.duplicated, 0u);
  // After healing, every node gets most of its 50 pings answered (5% loss each way).
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_GE(first.quiet_pongs[i], 35u) << "seed " << seed << " node " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, PingClusterTest, ::testing::Range<uint64_t>(1, 51));

TEST(PingCluster, DifferentSeedsGiveDifferentRuns) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1000; seed < 1020; ++seed) hashes.insert(RunPingCluster(seed).trace_hash);
  EXPECT_EQ(hashes.size(), 20u);
}

}  // namespace
}  // namespace shoal::sim
