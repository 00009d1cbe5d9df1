// Simulation tests of the registry: 5 Registry cores driven by real SWIM views
// (membership::SimCluster) on the deterministic simulator, under random registrations,
// unregistrations, conflicting creations, node crashes and restarts, and 5% loss of the
// registry's own messages (anti-entropy must repair it).
//
// The harness, per node: after every SWIM member event (at the same instant, outside the Swim
// call) and at every tick, the node's Swim Snapshot() goes to OnView when it changed; Tick runs
// every `kTick`. Registry messages are datagrams: a delay drawn from the SWIM network's link, lost
// with probability 5%, lost across a partition or to a crashed node. A registry lives while its
// node is up; a restarted node gets a fresh one (memory lost).
//
// Checks: every `leader` event names the first of its handler list, keys are unique, and matches
// the core's own answer; after a quiet period every live node has the same exchanges, the same
// live handlers (exactly those the live nodes own) and the same leader, and its last `leader`
// event per exchange names that leader; when a leader's node crashes, every survivor appoints the
// next one no later than its SWIM view declares the node dead.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bus/registry.h"
#include "membership/sim_cluster.h"
#include "sim/network.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace shoal::bus {
namespace {

using membership::MemberState;
using sim::kMillisecond;
using sim::kSecond;

constexpr int kNodes = 5;
constexpr int64_t kTick = 50 * kMillisecond;
constexpr double kLoss = 0.05;

class BusSim {
 public:
  explicit BusSim(uint64_t seed) : cluster_(seed, ClusterOptions()), rng_(DeriveRng(seed)) {
    nodes_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) index_[cluster_.id(i)] = i;
    cluster_.on_event = [this](int i, const membership::MemberEvent&) {
      if (nodes_[i].reg == nullptr) return;
      const uint64_t gen = nodes_[i].gen;
      sim().Schedule(0, [this, i, gen] {
        if (Alive(i, gen)) RefreshView(i);
      });
    };
    for (int i = 0; i < kNodes; ++i) {
      const int64_t at = i == 0 ? 0 : static_cast<int64_t>(rng_.Uniform(1 * kSecond));
      sim().Schedule(at, [this, i] {
        cluster_.Join(i, {0});
        Start(i);
      });
    }
  }
  ~BusSim() { cluster_.on_event = nullptr; }

  sim::Simulator& sim() { return cluster_.sim(); }
  membership::SimCluster& cluster() { return cluster_; }
  Registry* reg(int i) { return nodes_[i].reg.get(); }
  MemberId id(int i) const { return cluster_.id(i); }
  uint64_t dropped() const { return dropped_; }
  uint64_t delivered() const { return delivered_; }
  int crashes() const { return crashes_; }
  // Live handlers and exchanges in node i's view.
  std::pair<size_t, size_t> Counts(int i) {
    size_t handlers = 0;
    for (const auto& [ex, spec] : reg(i)->exchanges()) handlers += reg(i)->Handlers(ex).size();
    return {handlers, reg(i)->exchanges().size()};
  }
  const std::vector<std::string>& violations() const { return violations_; }

  std::vector<int> UpNodes() const {
    std::vector<int> out;
    for (int i = 0; i < kNodes; ++i) {
      if (cluster_.up(i) && nodes_[i].reg != nullptr) out.push_back(i);
    }
    return out;
  }

  void Crash(int i) {
    ++crashes_;
    nodes_[i].reg.reset();
    nodes_[i].io.reset();
    nodes_[i].last_leader.clear();
    cluster_.Crash(i);
  }

  void Restart(int i) {
    std::vector<int> up = UpNodes();
    cluster_.Restart(i, {up.empty() ? i : up.front()});
    Start(i);
  }

  // One random action on a random live node.
  void RandomAction() {
    std::vector<int> up = UpNodes();
    if (up.empty()) return;
    const int i = up[rng_.Uniform(up.size())];
    Registry& r = *reg(i);
    const uint64_t what = rng_.Uniform(10);
    if (what < 2 || r.exchanges().empty()) {
      static const char* kStrategies[] = {"leader", "round_robin"};
      const std::string name = "ex" + std::to_string(rng_.Uniform(5));
      const Pattern p =
          rng_.Bernoulli(0.5) ? Pattern::kRequestResponse : Pattern::kPublishSubscribe;
      (void)r.Create(name, p, kStrategies[rng_.Uniform(2)], Now(i));  // conflicts are fine
    } else if (what < 7) {
      auto it = r.exchanges().begin();
      std::advance(it, static_cast<long>(rng_.Uniform(r.exchanges().size())));
      auto h = r.Register(it->first, "g" + std::to_string(rng_.Uniform(2)),
                          "c" + std::to_string(rng_.Uniform(1000)), Now(i));
      if (!h.ok()) Violation("register failed: " + h.error().ToString());
    } else {
      const auto& own = r.states().at(r.self()).handlers;
      if (own.empty()) return;
      const uint64_t hid = own[rng_.Uniform(own.size())].id;
      if (!r.Unregister(hid, Now(i)).ok()) Violation("unregister failed");
    }
  }

  // Whether every live node agrees with the ground truth; `why` gets the first difference.
  bool Converged(std::string* why) {
    std::vector<int> up = UpNodes();
    if (!cluster_.ViewsAgree(up)) return Fail(why, "views disagree");
    // Ground truth: the handlers the live nodes own.
    std::map<std::string, std::vector<Handler>> truth;
    for (int i : up) {
      for (const Handler& h : reg(i)->states().at(id(i)).handlers) truth[h.exchange].push_back(h);
    }
    for (auto& [ex, hs] : truth) {
      std::sort(hs.begin(), hs.end(),
                [](const Handler& a, const Handler& b) { return a.LeaderKey() < b.LeaderKey(); });
    }
    const Registry& first = *reg(up.front());
    for (int i : up) {
      Registry& r = *reg(i);
      if (r.exchanges() != first.exchanges()) return Fail(why, "exchanges differ at " + Name(i));
      for (const auto& [ex, spec] : r.exchanges()) {
        const std::vector<Handler> hs = r.Handlers(ex);
        if (hs != truth[ex]) return Fail(why, "handlers of " + ex + " differ at " + Name(i));
        const std::optional<Handler> leader = r.Leader(ex);
        auto last = nodes_[i].last_leader.find(ex);
        if (!hs.empty() && last == nodes_[i].last_leader.end()) {
          return Fail(why, "no leader event for " + ex + " at " + Name(i));
        }
        if (last != nodes_[i].last_leader.end() && last->second != leader) {
          return Fail(why, "last leader event for " + ex + " is stale at " + Name(i));
        }
      }
    }
    return true;
  }

  int64_t Now(int i) { return NetNode(i).clock().NowUnixMicros(); }

 private:
  class Io : public RegistryIo {
   public:
    Io(BusSim* sim, int i) : sim_(sim), i_(i) {}
    void Send(const MemberId& to, std::string bytes) override {
      sim_->DoSend(i_, to, std::move(bytes));
    }
    void Emit(const Event& event) override { sim_->OnBusEvent(i_, event); }

   private:
    BusSim* sim_;
    int i_;
  };

  struct Node {
    std::unique_ptr<Io> io;
    std::unique_ptr<Registry> reg;
    uint64_t gen = 0;
    bool has_view = false;
    uint64_t view_version = 0;
    std::map<std::string, std::optional<Handler>> last_leader;
  };

  static membership::SimClusterOptions ClusterOptions() {
    membership::SimClusterOptions o;
    o.nodes = kNodes;
    o.join_on_start = false;
    return o;
  }
  static SeededRng DeriveRng(uint64_t seed) { return SeededRng(seed * 0x9e3779b97f4a7c15ULL + 1); }

  static bool Fail(std::string* why, std::string what) {
    if (why != nullptr) *why = std::move(what);
    return false;
  }
  std::string Name(int i) const { return "node " + std::to_string(i); }

  sim::SimNode& NetNode(int i) { return cluster_.net().node(cluster_.endpoint(i)); }
  bool Alive(int i, uint64_t gen) {
    return cluster_.up(i) && nodes_[i].reg != nullptr && nodes_[i].gen == gen;
  }

  void Start(int i) {
    if (!cluster_.up(i)) return;
    Node& n = nodes_[i];
    n.gen = NetNode(i).generation();
    n.io = std::make_unique<Io>(this, i);
    n.reg = std::make_unique<Registry>(id(i), Now(i), n.io.get());
    n.has_view = false;
    n.last_leader.clear();
    RefreshView(i);
    ScheduleTick(i, n.gen, static_cast<int64_t>(rng_.Uniform(kTick)));
  }

  void ScheduleTick(int i, uint64_t gen, int64_t delay) {
    sim().Schedule(delay, [this, i, gen] {
      if (!Alive(i, gen)) return;
      RefreshView(i);
      nodes_[i].reg->Tick(Now(i));
      ScheduleTick(i, gen, kTick);
    });
  }

  void RefreshView(int i) {
    Node& n = nodes_[i];
    if (n.reg == nullptr || !cluster_.up(i)) return;
    auto snap = cluster_.core(i).Snapshot();
    if (n.has_view && snap->version() == n.view_version) return;
    n.has_view = true;
    n.view_version = snap->version();
    n.reg->OnView(std::move(snap), Now(i));
  }

  void DoSend(int from, const MemberId& to, std::string bytes) {
    auto it = index_.find(to);
    if (it == index_.end()) return Violation("send to an unknown member");
    const int j = it->second;
    if (rng_.Bernoulli(kLoss)) {
      ++dropped_;
      return;
    }
    const Endpoint& a = cluster_.endpoint(from);
    const Endpoint& b = cluster_.endpoint(j);
    if (cluster_.net().IsBlocked(a, b)) return;
    const int64_t delay = cluster_.net().Link(a, b).delay.Sample(rng_);
    const MemberId sender = id(from);
    sim().Schedule(delay, [this, from, j, sender, bytes = std::move(bytes)] {
      if (!cluster_.up(j) || nodes_[j].reg == nullptr) return;
      if (cluster_.net().IsBlocked(cluster_.endpoint(from), cluster_.endpoint(j))) return;
      ++delivered_;
      Status st = nodes_[j].reg->OnMessage(sender, bytes, Now(j));
      if (!st.ok()) Violation("OnMessage: " + st.error().ToString());
    });
  }

  void OnBusEvent(int i, const Event& ev) {
    if (ev.kind != EventKind::kLeader) return;
    // At most one leader, and it is the first (oldest) of the live handlers.
    std::set<std::pair<MemberId, uint64_t>> keys;
    for (size_t k = 0; k < ev.handlers.size(); ++k) {
      if (!keys.insert({ev.handlers[k].node, ev.handlers[k].id}).second) {
        Violation("duplicate handler in a leader event");
      }
      if (k > 0 && !(ev.handlers[k - 1].LeaderKey() < ev.handlers[k].LeaderKey())) {
        Violation("handlers not in leader order");
      }
    }
    const std::optional<Handler> expect =
        ev.handlers.empty() ? std::nullopt : std::optional<Handler>(ev.handlers.front());
    if (ev.leader != expect) Violation("leader event names a handler other than the oldest");
    if (nodes_[i].reg != nullptr && nodes_[i].reg->Leader(ev.exchange) != ev.leader) {
      Violation("leader event disagrees with the core");
    }
    nodes_[i].last_leader[ev.exchange] = ev.leader;
  }

  void Violation(std::string what) {
    if (violations_.size() < 20) violations_.push_back(sim::FormatTime(sim().Now()) + " " + what);
  }

  membership::SimCluster cluster_;
  SeededRng rng_;
  std::vector<Node> nodes_;
  std::map<MemberId, int> index_;
  uint64_t dropped_ = 0;
  uint64_t delivered_ = 0;
  int crashes_ = 0;
  std::vector<std::string> violations_;
};

struct FailoverStats {
  std::vector<int64_t> detect;    // crash -> every survivor's SWIM view says dead
  std::vector<int64_t> failover;  // crash -> every survivor appointed the next leader
};

void RunSeed(uint64_t seed, FailoverStats& stats) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  BusSim s(seed);
  auto& sim = s.sim();
  // Everyone joins.
  ASSERT_TRUE(s.cluster().RunUntil([&] { return s.UpNodes().size() == kNodes; }, 10 * kSecond));

  // Churn: random actions, two crashes (each restarted a few seconds later).
  SeededRng rng(seed ^ 0xabcdef);
  const int64_t churn = 20 * kSecond;
  const int64_t start = sim.Now();
  for (int c = 0; c < 2; ++c) {
    const int64_t at =
        static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(churn - 8 * kSecond)));
    const int victim = static_cast<int>(rng.Uniform(kNodes));
    const int64_t down_for = 3 * kSecond + static_cast<int64_t>(rng.Uniform(5 * kSecond));
    sim.Schedule(at, [&s, &sim, victim, down_for] {
      if (!s.cluster().up(victim) || s.UpNodes().size() <= 3) return;
      s.Crash(victim);
      sim.Schedule(down_for, [&s, victim] { s.Restart(victim); });
    });
  }
  while (sim.Now() < start + churn) {
    s.RandomAction();
    s.cluster().RunFor(20 * kMillisecond + static_cast<int64_t>(rng.Uniform(200 * kMillisecond)));
  }

  // Quiet: everyone converges.
  std::string why;
  const bool converged =
      s.cluster().RunUntil([&] { return s.Converged(&why); }, 60 * kSecond, 100 * kMillisecond);
  ASSERT_TRUE(converged) << why << "\n" << s.cluster().DescribeViews();
  ASSERT_TRUE(s.violations().empty()) << s.violations().front();
  const auto [handlers, exchanges] = s.Counts(s.UpNodes().front());
  const int crashes = s.crashes();

  // Failover: a fresh exchange with a handler on two nodes; the older one's node dies.
  std::vector<int> up = s.UpNodes();
  ASSERT_GE(up.size(), 3u);
  const int a = up[rng.Uniform(up.size())];
  int b = a;
  while (b == a) b = up[rng.Uniform(up.size())];
  ASSERT_TRUE(s.reg(a)->Create("failover", Pattern::kRequestResponse, "leader", s.Now(a)).ok());
  ASSERT_TRUE(s.cluster().RunUntil([&] { return s.reg(b)->FindExchange("failover") != nullptr; },
                                   10 * kSecond));
  auto ha = s.reg(a)->Register("failover", "", "", s.Now(a));
  ASSERT_TRUE(ha.ok());
  s.cluster().RunFor(10 * kMillisecond);
  auto hb = s.reg(b)->Register("failover", "", "", s.Now(b));
  ASSERT_TRUE(hb.ok());
  ASSERT_TRUE(s.cluster().RunUntil([&] { return s.Converged(&why); }, 30 * kSecond)) << why;
  for (int i : s.UpNodes()) ASSERT_EQ(s.reg(i)->Leader("failover"), *ha);

  const int64_t t0 = sim.Now();
  s.Crash(a);
  std::vector<int> survivors = s.UpNodes();
  std::optional<int64_t> detected, appointed;
  ASSERT_TRUE(s.cluster().RunUntil(
      [&] {
        if (!detected && s.cluster().AllSee(survivors, a, MemberState::kDead)) {
          detected = sim.Now() - t0;
        }
        if (!appointed) {
          bool all = true;
          for (int i : survivors) all = all && s.reg(i)->Leader("failover") == *hb;
          if (all) appointed = sim.Now() - t0;
        }
        return detected && appointed;
      },
      60 * kSecond, 1 * kMillisecond));
  // The registry reacts to the view at once: no later than the last survivor's detection.
  EXPECT_LE(*appointed, *detected + 1 * kMillisecond);
  stats.detect.push_back(*detected);
  stats.failover.push_back(*appointed);
  ASSERT_TRUE(s.violations().empty()) << s.violations().front();
  if (std::getenv("SHOAL_SIM_VERBOSE") == nullptr) return;
  std::printf(
      "seed %2llu: converged with %zu handlers on %zu exchanges after %d crashes; "
      "%llu bus messages delivered, %llu dropped; failover %.3f s (detection %.3f s)\n",
      static_cast<unsigned long long>(seed), handlers, exchanges, crashes,
      static_cast<unsigned long long>(s.delivered()), static_cast<unsigned long long>(s.dropped()),
      *appointed / 1e6, *detected / 1e6);
}

// Seeds by default (SHOAL_SIM_SEEDS=n for more, SHOAL_SIM_SEED=s to replay one). A build
// without optimization (CI's ASan + UBSan stage) runs ~20x slower, so it runs fewer.
#ifdef NDEBUG
constexpr uint64_t kDefaultSeeds = 200;
#else
constexpr uint64_t kDefaultSeeds = 40;
#endif

TEST(RegistrySim, ConvergesUnderChurnLossAndCrashesAndFailsOver) {
  FailoverStats stats;
  const sim::SeedRange seeds = sim::Seeds(kDefaultSeeds);
  ASSERT_GT(seeds.count, 0u);
  for (uint64_t seed = seeds.first; seed < seeds.first + seeds.count; ++seed) {
    RunSeed(seed, stats);
    if (HasFatalFailure()) return;
  }
  auto summary = [](const char* what, std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    int64_t sum = 0;
    for (int64_t x : v) sum += x;
    std::printf("%s over %zu seeds: min %.3f s, mean %.3f s, max %.3f s\n", what, v.size(),
                v.front() / 1e6, static_cast<double>(sum) / static_cast<double>(v.size()) / 1e6,
                v.back() / 1e6);
  };
  summary("leader failover", stats.failover);
  summary("failure detection", stats.detect);
}

TEST(RegistrySim, SameSeedSameRun) {
  auto run = [] {
    BusSim s(7);
    s.cluster().RunFor(2 * kSecond);
    for (int k = 0; k < 100; ++k) {
      s.RandomAction();
      s.cluster().RunFor(50 * kMillisecond);
    }
    s.cluster().RunFor(5 * kSecond);
    return s.sim().TraceHash() ^ s.delivered();
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace shoal::bus
