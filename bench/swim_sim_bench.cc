// SWIM + Lifeguard measured in the simulator (membership/sim_cluster.h): real Swim cores, virtual
// time, a faulty network. Prints a table; nothing is asserted (the targets are shown
// beside the measurements).
//
//   (a) 100 nodes, one crashes: time until every live node has it dead, over seeds.
//   (b) 50 nodes, 10% loss, one node stalling 300 ms every 2 s: false "dead" declarations of
//       live nodes, Lifeguard on and off.
//   (c) dissemination: time for a join to reach every node, N = 10, 100, 1000.
//   (d) 100 nodes split 50/50 until each side has the other dead, then healed: time until every
//       view is the full cluster again.
//
// Usage: swim_sim_bench [--quick] [--hours H] [--seeds S] [--only abcd] [--max-n N]
//   --quick   fewer seeds and a shorter (b), for a smoke run
//   --hours   simulated hours for (b) (default 12: 24 takes ~8 min on a 2-core machine)
//   --seeds   seeds for (a) (default 20)
//   --only    run only the listed parts
//   --max-n   largest N for (c) (default 1000)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "membership/sim_cluster.h"

namespace shoal::membership {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(int64_t micros) { return static_cast<double>(micros) / 1e6; }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

std::vector<int> Range(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

SimClusterOptions LanOptions(int nodes) {
  SimClusterOptions o;
  o.nodes = nodes;
  // A LAN: mostly ~1 ms, a tail to 20 ms.
  o.link.delay = sim::DelayDistribution::Exponential(200, 1 * kMs, 20 * kMs);
  o.drift = 0.0001;  // 100 ppm
  o.join_spread = 2 * kSec;
  return o;
}

// Forms the cluster and waits until every view is complete and the join news has drained.
bool Form(SimCluster& c, int64_t timeout) {
  const std::vector<int> all = Range(c.size());
  if (!c.RunUntil([&] { return c.ViewsAgree(all); }, timeout)) return false;
  c.RunUntil(
      [&] {
        for (int i = 0; i < c.size(); ++i) {
          if (c.core(i).queued_broadcasts() != 0) return false;
        }
        return true;
      },
      60 * kSec);
  return true;
}

double WallSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// (a)
void CrashDetection(int seeds) {
  constexpr int kN = 100;
  const auto wall = Clock::now();
  std::vector<double> all_dead, first_dead, first_suspect;
  int failed = 0;
  for (int s = 1; s <= seeds; ++s) {
    SimCluster c(static_cast<uint64_t>(s), LanOptions(kN));
    if (!Form(c, 60 * kSec)) {
      ++failed;
      continue;
    }
    SeededRng rng = c.sim().DeriveRng("bench");
    const int victim = static_cast<int>(rng.Uniform(kN));
    c.RunFor(static_cast<int64_t>(rng.Uniform(1 * kSec)));
    int64_t suspect_at = -1, dead_at = -1;
    c.on_event = [&](int, const MemberEvent& e) {
      if (e.member.record.id != c.id(victim)) return;
      if (e.kind == MemberEventKind::kSuspect && suspect_at < 0) suspect_at = c.Now();
      if (e.kind == MemberEventKind::kDead && dead_at < 0) dead_at = c.Now();
    };
    const int64_t crash_at = c.Now();
    c.Crash(victim);
    std::vector<int> live = Range(kN);
    std::erase(live, victim);
    if (!c.RunUntil([&] { return c.AllSee(live, victim, MemberState::kDead); }, 120 * kSec)) {
      ++failed;
      continue;
    }
    all_dead.push_back(Seconds(c.Now() - crash_at));
    first_dead.push_back(Seconds(dead_at - crash_at));
    first_suspect.push_back(Seconds(suspect_at - crash_at));
  }
  std::printf("\n(a) crash detection, %d nodes, %d seeds, LAN delays, no loss (wall %.1f s)\n", kN,
              seeds, WallSince(wall));
  std::printf("| %-40s | %8s | %8s | %8s | %8s |\n", "time after the crash", "median", "p99", "max",
              "target");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(42, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str());
  auto row = [](const char* name, const std::vector<double>& v, const char* target) {
    std::printf("| %-40s | %7.2fs | %7.2fs | %7.2fs | %8s |\n", name, Percentile(v, 50),
                Percentile(v, 99), Percentile(v, 100), target);
  };
  row("first node suspects it", first_suspect, "");
  row("first node declares it dead", first_dead, "");
  row("every live node has it dead", all_dead, "5s / 8s");
  if (failed > 0) std::printf("(%d seeds did not finish)\n", failed);
}

// (b)
struct FalsePositives {
  uint64_t declarations = 0;  // suspicion timeouts at some node about a live member
  uint64_t dead_events = 0;   // "dead" events about live members, all viewers
  uint64_t suspicions = 0;    // suspicions raised by failed probes
  uint64_t refutations = 0;
  uint64_t stalled_node_declared = 0;  // of the declarations, about the stalling node
  double wall = 0;
};

FalsePositives RunFalsePositives(bool lifeguard, int64_t duration, uint64_t seed) {
  constexpr int kN = 50;
  constexpr int kStalling = 7;
  const auto wall = Clock::now();
  SimClusterOptions o = LanOptions(kN);
  o.swim.lifeguard = lifeguard;
  SimCluster c(seed, o);
  Form(c, 60 * kSec);
  FalsePositives r;
  std::vector<uint64_t> declared_before(kN);
  for (int i = 0; i < kN; ++i) declared_before[i] = c.core(i).counters().deaths_declared;
  // Count declarations about the stalling node at the node that made them.
  uint64_t stalled_declared = 0;
  c.on_event = [&](int, const MemberEvent& e) {
    if (e.kind != MemberEventKind::kDead) return;
    ++r.dead_events;
    if (e.member.record.id == c.id(kStalling)) ++stalled_declared;
  };
  c.net().SetDefaultLink({.delay = o.link.delay, .loss = 0.10, .duplicate = 0});
  // The stalls: 300 ms frozen every 2 s.
  std::function<void()> stall;
  stall = [&] {
    c.Stall(kStalling, 300 * kMs);
    c.sim().Schedule(2 * kSec, stall);
  };
  c.sim().Schedule(1 * kSec, stall);
  std::vector<uint64_t> susp_before(kN), ref_before(kN);
  for (int i = 0; i < kN; ++i) {
    susp_before[i] = c.core(i).counters().suspicions_raised;
    ref_before[i] = c.core(i).counters().refutations;
  }
  c.RunFor(duration);
  for (int i = 0; i < kN; ++i) {
    const SwimCounters& k = c.core(i).counters();
    r.declarations += k.deaths_declared - declared_before[i];
    r.suspicions += k.suspicions_raised - susp_before[i];
    r.refutations += k.refutations - ref_before[i];
  }
  r.stalled_node_declared = stalled_declared;
  r.wall = WallSince(wall);
  return r;
}

void FalsePositiveTable(double hours) {
  const auto duration = static_cast<int64_t>(hours * 3600.0 * kSec);
  const FalsePositives on = RunFalsePositives(true, duration, 1);
  const FalsePositives off = RunFalsePositives(false, duration, 1);
  std::printf(
      "\n(b) false positives, 50 nodes, 10%% loss on every link, one node frozen 300 ms every 2 s,"
      "\n    %.1f simulated hours each (wall %.0f s + %.0f s)\n",
      hours, on.wall, off.wall);
  std::printf("| %-44s | %12s | %12s |\n", "", "Lifeguard on", "off");
  std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(14, '-').c_str(),
              std::string(14, '-').c_str());
  auto row = [](const char* name, double a, double b) {
    std::printf("| %-44s | %12.0f | %12.0f |\n", name, a, b);
  };
  row("suspicions raised (failed probes)", on.suspicions, off.suspicions);
  row("refutations", on.refutations, off.refutations);
  row("false dead declarations (suspicion timeouts)", on.declarations, off.declarations);
  row("  per simulated day", on.declarations * 24.0 / hours, off.declarations * 24.0 / hours);
  row("'dead' events about live nodes, all views", on.dead_events, off.dead_events);
  row("  of which about the stalling node", on.stalled_node_declared, off.stalled_node_declared);
  std::printf("target: on <= 1 per simulated day and >= 10x fewer than off\n");
}

// (c)
void Dissemination(bool quick, int max_n) {
  std::printf(
      "\n(c) dissemination of a join (a new node joins a formed cluster through one seed)\n");
  std::printf("| %6s | %6s | %14s | %14s | %14s | %10s |\n", "N", "seeds", "median time",
              "probe periods", "gossip intvls", "wall");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(8, '-').c_str(), std::string(8, '-').c_str(),
              std::string(16, '-').c_str(), std::string(16, '-').c_str(),
              std::string(16, '-').c_str(), std::string(12, '-').c_str());
  for (int n : {10, 100, 1000}) {
    if (n > max_n) break;
    const auto wall = Clock::now();
    const int seeds = n >= 1000 ? 1 : (quick ? 3 : 10);
    std::vector<double> times;
    for (int s = 1; s <= seeds; ++s) {
      SimClusterOptions o = LanOptions(n);
      o.join_spread = n >= 1000 ? 20 * kSec : 2 * kSec;
      SimCluster c(static_cast<uint64_t>(s), o);
      if (!Form(c, 300 * kSec)) {
        std::printf("N=%d seed %d did not form\n", n, s);
        continue;
      }
      const int newcomer = c.AddNode();
      const int64_t start = c.Now();
      c.Join(newcomer, {static_cast<int>(c.sim().rng().Uniform(static_cast<uint64_t>(n)))});
      const bool ok = c.RunUntil(
          [&] {
            for (int i = 0; i < n; ++i) {
              if (c.StateOf(i, newcomer) != MemberState::kAlive) return false;
            }
            return true;
          },
          120 * kSec);
      if (ok) times.push_back(Seconds(c.Now() - start));
    }
    const double med = Percentile(times, 50);
    std::printf("| %6d | %6d | %13.2fs | %14.1f | %14.1f | %9.1fs |\n", n, seeds, med, med / 1.0,
                med / 0.2, WallSince(wall));
  }
}

// (d)
void PartitionHeal(int seeds) {
  constexpr int kN = 100;
  const auto wall = Clock::now();
  std::vector<double> heal, split;
  for (int s = 1; s <= seeds; ++s) {
    SimCluster c(static_cast<uint64_t>(s), LanOptions(kN));
    if (!Form(c, 60 * kSec)) continue;
    std::vector<int> a, b;
    for (int i = 0; i < kN; ++i) (i < kN / 2 ? a : b).push_back(i);
    const int64_t cut = c.Now();
    c.Partition(a, b);
    const bool apart = c.RunUntil(
        [&] {
          for (int x : {a.front(), a.back(), b.front(), b.back()}) {
            const auto table = c.core(x).Snapshot();
            if (table->CountIn(MemberState::kAlive) != static_cast<size_t>(kN / 2)) return false;
          }
          return true;
        },
        120 * kSec);
    if (!apart) continue;
    split.push_back(Seconds(c.Now() - cut));
    c.RunFor(30 * kSec);
    c.HealAll();
    const int64_t healed = c.Now();
    if (c.RunUntil([&] { return c.ViewsAgree(Range(kN)); }, 120 * kSec)) {
      heal.push_back(Seconds(c.Now() - healed));
    }
  }
  std::printf(
      "\n(d) partition 50/50 of %d nodes, healed after each side has the other dead "
      "(%d seeds, wall %.1f s)\n",
      kN, seeds, WallSince(wall));
  std::printf("| %-44s | %8s | %8s | %8s |\n", "", "median", "max", "target");
  std::printf("|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str());
  std::printf("| %-44s | %7.2fs | %7.2fs | %8s |\n", "split: sides see only themselves alive",
              Percentile(split, 50), Percentile(split, 100), "");
  std::printf("| %-44s | %7.2fs | %7.2fs | %8s |\n", "heal: all 100 views agree again",
              Percentile(heal, 50), Percentile(heal, 100), "10s");
  if (static_cast<int>(heal.size()) != seeds) {
    std::printf("(%zu of %d seeds healed within 120 s)\n", heal.size(), seeds);
  }
}

}  // namespace
}  // namespace shoal::membership

int main(int argc, char** argv) {
  bool quick = false;
  double hours = 12;
  int seeds = 20;
  std::string only = "abcd";
  int max_n = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
      hours = 1;
      seeds = 5;
    } else if (std::strcmp(argv[i], "--hours") == 0 && i + 1 < argc) {
      hours = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
      seeds = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (std::strcmp(argv[i], "--max-n") == 0 && i + 1 < argc) {
      max_n = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--hours H] [--seeds S]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("SWIM + Lifeguard in the simulator, default SwimConfig (memberlist LAN profile)\n");
  auto want = [&](char part) { return only.find(part) != std::string::npos; };
  if (want('a')) shoal::membership::CrashDetection(seeds);
  if (want('c')) shoal::membership::Dissemination(quick, max_n);
  if (want('d')) shoal::membership::PartitionHeal(quick ? 2 : 5);
  if (want('b')) shoal::membership::FalsePositiveTable(hours);
  return 0;
}
