// Scenario tests: whole clusters of real Swim cores in the deterministic simulator, each scenario
// over many seeds (200 by default; SHOAL_SIM_SEEDS=n for more, SHOAL_SIM_SEED=s for one). A
// failure names its seed; rerunning with SHOAL_SIM_SEED=<seed> replays it exactly.
//
// Clusters are small (5-8 nodes) and runs short in virtual time so that all scenarios together
// stay well under a minute; bench/swim_sim_bench.cc measures at scale.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "membership/sim_cluster.h"
#include "sim/scenario.h"

namespace shoal::membership {
namespace {

using sim::Failures;

void ForEachSeed(const std::function<Failures(uint64_t)>& scenario) {
  sim::ForEachSeed(200, scenario);
}

SimClusterOptions Options(int nodes, double loss = 0.0) {
  SimClusterOptions o;
  o.nodes = nodes;
  o.link.delay = sim::DelayDistribution::Uniform(1 * kMs, 10 * kMs);
  o.link.loss = loss;
  o.drift = 0.001;  // clocks 0.1% apart: timeouts measured on different clocks
  return o;
}

using sim::Range;
using sim::Without;

// Samples incarnations every 500 ms for the harness's "never go back" check.
void WatchIncarnations(SimCluster& c) {
  c.sim().Schedule(500 * kMs, [&c] {
    c.CheckIncarnations();
    WatchIncarnations(c);
  });
}

void CollectViolations(SimCluster& c, Failures& f) {
  for (const std::string& v : c.violations()) f.push_back(v);
}

// Any node declaring any member dead or suspect is a failure (a cluster where nothing fails).
void ForbidSuspicion(SimCluster& c, Failures& f, const std::set<int>& allowed_subjects = {}) {
  c.on_event = [&c, &f, allowed_subjects](int node, const MemberEvent& e) {
    if (e.kind != MemberEventKind::kSuspect && e.kind != MemberEventKind::kDead) return;
    for (int s : allowed_subjects) {
      if (c.id(s) == e.member.record.id) return;
    }
    f.push_back(sim::FormatTime(c.Now()) + " node " + std::to_string(node) + " saw " +
                e.member.record.id.ShortString() + " " + std::string(ToString(e.kind)));
  };
}

// A crashed node ends dead in every live view; no live node is suspected on the way; after a
// restart with the same id it is alive again everywhere, at a higher incarnation.
TEST(SwimSim, CrashedNodeEndsDeadEverywhereAndRejoinsAfterRestart) {
  ForEachSeed([](uint64_t seed) {
    Failures f;
    constexpr int kN = 6;
    SimCluster c(seed, Options(kN));
    SeededRng rng = c.sim().DeriveRng("test");
    const int victim = static_cast<int>(rng.Uniform(kN));
    ForbidSuspicion(c, f, {victim});
    WatchIncarnations(c);
    if (!c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 10 * kSec)) {
      f.push_back("never converged:" + c.DescribeViews());
      return f;
    }
    c.RunFor(static_cast<int64_t>(rng.Uniform(3 * kSec)));
    c.Crash(victim);
    const std::vector<int> live = Without(Range(kN), victim);
    // N = 5 live: a suspicion lasts at most 12 s (max = 6 * 4 * 0.5 s); detection starts within
    // a round of probes.
    if (!c.RunUntil([&] { return c.AllSee(live, victim, MemberState::kDead); }, 25 * kSec)) {
      f.push_back("crashed node not dead everywhere within 25 s");
    }
    const Incarnation before =
        c.core((victim + 1) % kN).Snapshot()->Find(c.id(victim))->incarnation;
    c.Restart(victim, {(victim + 1) % kN});
    if (!c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 10 * kSec)) {
      f.push_back("restarted node not alive everywhere within 10 s:" + c.DescribeViews());
    } else if (c.core(victim).incarnation() <= before) {
      f.push_back("rejoined without a higher incarnation");
    }
    CollectViolations(c, f);
    return f;
  });
}

// With no loss (and delays far below the probe timeout) nobody is ever suspected, let alone dead,
// even with drifting clocks, over a minute of cluster life.
TEST(SwimSim, StableClusterWithoutLossNeverSuspectsAnyone) {
  ForEachSeed([](uint64_t seed) {
    Failures f;
    constexpr int kN = 8;
    SimClusterOptions o = Options(kN);
    o.link.delay = sim::DelayDistribution::Exponential(1 * kMs, 20 * kMs, 100 * kMs);
    o.drift = 0.01;
    SimCluster c(seed, o);
    ForbidSuspicion(c, f);
    c.RunFor(60 * kSec);
    if (!c.ViewsAgree(Range(kN))) f.push_back("views differ:" + c.DescribeViews());
    for (int i = 0; i < kN; ++i) {
      if (c.core(i).counters().probes_failed != 0) f.push_back("a probe failed");
    }
    CollectViolations(c, f);
    return f;
  });
}

// A partition long enough for each side to declare the other dead heals, and every view comes
// back to the full cluster; incarnations never go backwards through all the refuting.
TEST(SwimSim, ViewsAgreeAfterAPartitionHeals) {
  ForEachSeed([](uint64_t seed) {
    Failures f;
    constexpr int kN = 6;
    SimCluster c(seed, Options(kN, 0.01));
    WatchIncarnations(c);
    SeededRng rng = c.sim().DeriveRng("test");
    if (!c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 10 * kSec)) {
      f.push_back("never converged:" + c.DescribeViews());
      return f;
    }
    std::vector<int> a, b;
    for (int i = 0; i < kN; ++i) (i == 0 || (i != 1 && rng.Bernoulli(0.5)) ? a : b).push_back(i);
    c.Partition(a, b);
    const bool split = c.RunUntil(
        [&] {
          for (int x : a) {
            for (int y : b) {
              if (c.StateOf(x, y) != MemberState::kDead || c.StateOf(y, x) != MemberState::kDead)
                return false;
            }
          }
          return true;
        },
        90 * kSec);  // a lone node's health score slows its probing down to every 8 s
    if (!split) {
      f.push_back("the two sides did not declare each other dead within 90 s:" + c.DescribeViews());
    }
    c.RunFor(static_cast<int64_t>(rng.Uniform(5 * kSec)));
    c.HealAll();
    const int64_t healed = c.Now();
    if (!c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 30 * kSec)) {
      f.push_back("views do not agree 30 s after healing:" + c.DescribeViews());
    }
    (void)healed;
    c.CheckIncarnations();
    CollectViolations(c, f);
    return f;
  });
}

// A node holding the wrong cookie, joining through a member and pinging everyone, never appears in
// any view, and the members count what they dropped.
TEST(SwimSim, NodeWithTheWrongCookieNeverAppears) {
  ForEachSeed([](uint64_t seed) {
    Failures f;
    constexpr int kN = 5;
    SimCluster c(seed, Options(kN));
    const int intruder = c.AddNode("not-the-cookie");
    c.sim().Schedule(2 * kSec, [&] { c.Join(intruder, {0, 1}); });
    c.RunFor(20 * kSec);
    uint64_t rejected = 0;
    for (int i = 0; i < kN; ++i) {
      if (c.StateOf(i, intruder).has_value()) f.push_back("intruder in a member's view");
      rejected += c.core(i).counters().bad_auth;
    }
    if (c.core(intruder).Snapshot()->members().size() != 1) f.push_back("intruder learnt members");
    if (rejected == 0) f.push_back("nothing was rejected");
    if (!c.ViewsAgree(Range(kN))) f.push_back("views differ:" + c.DescribeViews());
    CollectViolations(c, f);
    return f;
  });
}

// A graceful leave ends as `left` (not dead) in every view, and the leaver goes quiet.
TEST(SwimSim, LeaveEndsAsLeftEverywhere) {
  ForEachSeed([](uint64_t seed) {
    Failures f;
    constexpr int kN = 6;
    SimCluster c(seed, Options(kN));
    SeededRng rng = c.sim().DeriveRng("test");
    const int leaver = static_cast<int>(rng.Uniform(kN));
    ForbidSuspicion(c, f);
    if (!c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 10 * kSec)) {
      f.push_back("never converged:" + c.DescribeViews());
      return f;
    }
    c.RunFor(static_cast<int64_t>(rng.Uniform(2 * kSec)));
    c.core(leaver).Leave();
    const std::vector<int> rest = Without(Range(kN), leaver);
    if (!c.RunUntil([&] { return c.AllSee(rest, leaver, MemberState::kLeft); }, 10 * kSec)) {
      f.push_back("leave not seen everywhere within 10 s");
    }
    c.RunFor(10 * kSec);
    if (c.core(leaver).phase() != Swim::Phase::kLeft) f.push_back("leaver did not go quiet");
    if (!c.AllSee(rest, leaver, MemberState::kLeft)) f.push_back("left became something else");
    CollectViolations(c, f);
    return f;
  });
}

// A record updated at run time reaches every view, with 5% loss.
TEST(SwimSim, UpdatedRecordSpreadsToAll) {
  ForEachSeed([](uint64_t seed) {
    Failures f;
    constexpr int kN = 7;
    SimCluster c(seed, Options(kN, 0.05));
    SeededRng rng = c.sim().DeriveRng("test");
    const int node = static_cast<int>(rng.Uniform(kN));
    if (!c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 15 * kSec)) {
      f.push_back("never converged:" + c.DescribeViews());
      return f;
    }
    MemberRecord r = c.core(node).self();
    r.labels["version"] = "2";
    r.roles.push_back("failover-coordinator");
    r.weight = 7;
    if (!c.core(node).UpdateSelf(r).ok()) f.push_back("UpdateSelf failed");
    const bool spread = c.RunUntil(
        [&] {
          for (int i = 0; i < kN; ++i) {
            const Member* m = c.core(i).Snapshot()->Find(c.id(node));
            if (m == nullptr || m->record != r) return false;
          }
          return true;
        },
        20 * kSec);
    if (!spread) f.push_back("update not everywhere within 20 s:" + c.DescribeViews());
    CollectViolations(c, f);
    return f;
  });
}

// The same seed gives the same run, event for event; different seeds give different runs.
TEST(SwimSim, SameSeedSameTrace) {
  auto run = [](uint64_t seed) {
    SimCluster c(seed, Options(6, 0.05));
    c.RunFor(5 * kSec);
    c.Crash(3);
    c.RunFor(5 * kSec);
    c.Stall(1, 300 * kMs);
    c.RunFor(15 * kSec);
    return std::make_pair(c.sim().TraceHash(), c.sim().trace().size());
  };
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto first = run(seed), second = run(seed);
    EXPECT_EQ(first, second) << "seed " << seed << " is not reproducible";
    hashes.insert(first.first);
  }
  EXPECT_EQ(hashes.size(), 20u);
}

}  // namespace
}  // namespace shoal::membership
