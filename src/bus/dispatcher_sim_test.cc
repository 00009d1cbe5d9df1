// Simulation tests of the bus as the node runs it: 5 Dispatchers (bus/dispatcher.h, the class
// node/bus.cc runs), each with its node's framing (bus/peer_rpc.h) over simulated RPC streams
// (sim/rpc.h) and real SWIM views (membership::SimCluster), under crashes and restarts,
// partitions and heals, and slow links.
//
// Every node creates the request-response exchange "svc" (round_robin), serves one handler on it
// that answers "<payload>@<node>" at once, and subscribes to the channel "news". Clients on random
// live nodes send requests (1 s timeout) and publish, every 5-30 ms, for 20 s of faults.
//
// Checks, throughout: a request's callback runs exactly once (never twice, never for a request
// nobody made), and a reply answers that request (its own payload, from a node that serves);
// every request of a node that lives on is answered, within its timeout and a little more; no
// subscriber gets a publication twice, nor one nobody published. After the faults everything
// heals and the views and registries settle; then every request succeeds, round_robin reaches
// every node's handler, and every publication reaches every node's subscriber exactly once (the
// count Publish returns included). 200 seeds in a release build (40 in a Debug build;
// SHOAL_SIM_SEEDS=n for more, SHOAL_SIM_SEED=s to replay one).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bus/dispatcher.h"
#include "bus/peer_rpc.h"
#include "common/log.h"
#include "membership/sim_cluster.h"
#include "sim/network.h"
#include "sim/rpc.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace shoal::bus {
namespace {

using sim::kMillisecond;
using sim::kSecond;

constexpr int kNodes = 5;
constexpr int64_t kTick = 20 * kMillisecond;
constexpr int64_t kRequestTimeoutMs = 1000;
// A request's callback may come this much after its deadline (the dispatcher's deadline timer
// runs on its tick; a reply in flight may land just after).
constexpr int64_t kAnswerSlack = 500 * kMillisecond;
#ifdef NDEBUG
constexpr uint64_t kDefaultSeeds = 200;
#else
constexpr uint64_t kDefaultSeeds = 40;
#endif

struct Totals {
  uint64_t requests = 0, ok = 0, timeouts = 0, unreachable = 0, no_handler = 0, other = 0;
  uint64_t publications = 0, deliveries = 0, crashes = 0, partitions = 0;
  Totals& operator+=(const Totals& o) {
    requests += o.requests;
    ok += o.ok;
    timeouts += o.timeouts;
    unreachable += o.unreachable;
    no_handler += o.no_handler;
    other += o.other;
    publications += o.publications;
    deliveries += o.deliveries;
    crashes += o.crashes;
    partitions += o.partitions;
    return *this;
  }
};

class DispatcherSim {
 public:
  explicit DispatcherSim(uint64_t seed)
      : cluster_(seed, ClusterOptions()),
        rng_(cluster_.sim().DeriveRng("bus")),
        rpc_(cluster_.net()) {
    log::SetLevel("error");
    nodes_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) index_[cluster_.id(i)] = i;
    cluster_.on_event = [this](int i, const membership::MemberEvent&) {
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
  ~DispatcherSim() { cluster_.on_event = nullptr; }

  sim::Simulator& sim() { return cluster_.sim(); }
  const Totals& totals() const { return totals_; }
  uint64_t trace_hash() { return cluster_.sim().TraceHash(); }

  sim::Failures Run() {
    sim::Failures f;
    if (!Settle(20 * kSecond, f)) return f;
    churning_ = true;
    ScheduleClient();
    bool partitioned = false, slow = false;
    int crashed = -1, crashes = 0;
    const int64_t end = sim().Now() + 20 * kSecond;
    while (sim().Now() < end) {
      cluster_.RunFor(300 * kMillisecond + static_cast<int64_t>(rng_.Uniform(2 * kSecond)));
      switch (rng_.Uniform(4)) {
        case 0:
        case 1:
          if (partitioned) {
            cluster_.net().HealAll();
          } else {
            std::vector<Endpoint> a, b;
            const int minority = 1 + static_cast<int>(rng_.Uniform(2));
            for (int i = 0; i < kNodes; ++i) {
              (i < minority ? a : b).push_back(cluster_.endpoint(i));
            }
            cluster_.net().Partition(a, b);
            ++totals_.partitions;
          }
          partitioned = !partitioned;
          break;
        case 2:
          if (crashed >= 0) {
            Restart(crashed);
            crashed = -1;
          } else if (crashes < 2) {
            crashed = static_cast<int>(rng_.Uniform(kNodes));
            Crash(crashed);
            ++crashes;
          }
          break;
        default: {
          sim::LinkConfig link;
          if (!slow) {
            link.delay = sim::DelayDistribution::Exponential(1 * kMillisecond, 30 * kMillisecond,
                                                             300 * kMillisecond);
          }
          cluster_.net().SetDefaultLink(link);
          slow = !slow;
          break;
        }
      }
    }
    churning_ = false;
    cluster_.net().HealAll();
    cluster_.net().SetDefaultLink(sim::LinkConfig{});
    if (crashed >= 0) Restart(crashed);
    // Every request still open must be answered once its deadline has passed.
    cluster_.RunFor(kRequestTimeoutMs * 1000 + 2 * kAnswerSlack);
    for (const auto& [id, r] : open_) {
      if (Alive(r.node, r.gen)) {
        Violation("request " + std::to_string(id) + " of node " + std::to_string(r.node) +
                  " never answered");
      }
    }
    if (!Settle(60 * kSecond, f)) return f;
    Calm(f);
    for (const std::string& v : violations_) f.push_back(v);
    return f;
  }

 private:
  class Io final : public DispatcherIo {
   public:
    Io(DispatcherSim* s, int i, uint64_t gen) : s_(s), i_(i), gen_(gen) {}
    int64_t Now() override { return s_->Now(i_); }
    void Call(const MemberId& to, std::string body, int64_t timeout_ms, CallDone done) override {
      DispatcherSim* s = s_;
      const int i = i_;
      const uint64_t gen = gen_;
      auto it = s->index_.find(to);
      if (it == s->index_.end()) {
        s->Violation("a call to a member nobody knows");
        return;
      }
      CallPeer(s->rpc_.channel(s->cluster_.endpoint(i)), s->cluster_.id(i),
               s->cluster_.endpoint(it->second), std::move(body), timeout_ms,
               [s, i, gen, done = std::move(done)](Result<std::string> r) {
                 if (s->Alive(i, gen)) done(std::move(r));
               });
    }
    void Defer(std::function<void()> fn) override {
      DispatcherSim* s = s_;
      const int i = i_;
      const uint64_t gen = gen_;
      s->sim().Schedule(0, [s, i, gen, fn = std::move(fn)] {
        if (s->Alive(i, gen)) fn();
      });
    }

   private:
    DispatcherSim* s_;
    int i_;
    uint64_t gen_;
  };

  struct Node {
    std::unique_ptr<Io> io;
    std::unique_ptr<Dispatcher> d;
    uint64_t gen = 0;
    bool has_view = false;
    uint64_t view_version = 0;
    bool interest_synced = false;
    std::set<std::string> received;  // publications this incarnation's subscriber got
    std::map<int, uint64_t> served_from;
  };
  struct Open {
    int node = 0;
    uint64_t gen = 0;
    int64_t deadline = 0;
    std::string payload;
  };

  static membership::SimClusterOptions ClusterOptions() {
    membership::SimClusterOptions o;
    o.nodes = kNodes;
    o.join_on_start = false;
    return o;
  }

  sim::SimNode& NetNode(int i) { return cluster_.net().node(cluster_.endpoint(i)); }
  int64_t Now(int i) { return NetNode(i).clock().NowUnixMicros(); }
  bool Alive(int i, uint64_t gen) {
    return cluster_.up(i) && nodes_[i].d != nullptr && nodes_[i].gen == gen;
  }
  void Violation(std::string what) {
    if (violations_.size() < 20) violations_.push_back(sim::FormatTime(sim().Now()) + " " + what);
  }
  std::vector<int> UpNodes() {
    std::vector<int> out;
    for (int i = 0; i < kNodes; ++i) {
      if (cluster_.up(i) && nodes_[i].d != nullptr) out.push_back(i);
    }
    return out;
  }

  void Start(int i) {
    if (!cluster_.up(i)) return;
    Node& n = nodes_[i];
    n.gen = NetNode(i).generation();
    n.io = std::make_unique<Io>(this, i, n.gen);
    n.d = std::make_unique<Dispatcher>(cluster_.id(i), n.io.get());
    n.has_view = false;
    n.interest_synced = false;
    n.received.clear();
    const uint64_t gen = n.gen;
    rpc_.Serve(cluster_.endpoint(i), std::string(kBusMethod),
               [this, i](const Endpoint&, std::string_view body, sim::RpcNet::Respond r) {
                 if (nodes_[i].d == nullptr) return;
                 auto respond = std::make_shared<sim::RpcNet::Respond>(std::move(r));
                 ServeCall(*nodes_[i].d, body,
                           [respond](Result<std::string> a) { (*respond)(std::move(a)); });
               });
    RefreshView(i);
    Dispatcher& d = *n.d;
    (void)d.Create("svc", Pattern::kRequestResponse, "round_robin");  // the same everywhere
    HandlerCallbacks cb;
    cb.on_request = [this, i, gen](const Handler& h, const IncomingRequest& req) {
      if (!Alive(i, gen)) return;
      Status st = nodes_[i].d->Reply(h.id, req.id, req.payload + "@" + std::to_string(i));
      if (!st.ok()) Violation("Reply: " + st.error().ToString());
    };
    auto h = d.Serve("svc", "", "c" + std::to_string(i), std::move(cb));
    if (!h.ok()) Violation("Serve: " + h.error().ToString());
    auto sub = d.Subscribe(Space::kChannel, "", "news",
                           [this, i, gen](const Publication& p, const std::string&,
                                          std::function<void(uint64_t)> done) {
                             if (Alive(i, gen)) OnPublication(i, p);
                             done(1);
                           });
    if (!sub.ok()) Violation("Subscribe: " + sub.error().ToString());
    ScheduleTick(i, gen, static_cast<int64_t>(rng_.Uniform(kTick)));
  }

  void Crash(int i) {
    ++totals_.crashes;
    nodes_[i].d.reset();
    nodes_[i].io.reset();
    cluster_.Crash(i);
  }

  void Restart(int i) {
    std::vector<int> up = UpNodes();
    cluster_.Restart(i, {up.empty() ? i : up.front()});
    Start(i);
  }

  void ScheduleTick(int i, uint64_t gen, int64_t delay) {
    sim().Schedule(delay, [this, i, gen] {
      if (!Alive(i, gen)) return;
      RefreshView(i);
      nodes_[i].d->Tick();
      ScheduleTick(i, gen, kTick);
    });
  }

  void RefreshView(int i) {
    Node& n = nodes_[i];
    if (n.d == nullptr || !cluster_.up(i)) return;
    auto snap = cluster_.core(i).Snapshot();
    if (n.has_view && snap->version() == n.view_version) return;
    n.has_view = true;
    n.view_version = snap->version();
    n.d->OnView(std::move(snap));
  }

  void OnPublication(int i, const Publication& p) {
    ++totals_.deliveries;
    if (!published_.contains(p.payload)) Violation("a publication nobody published");
    if (!nodes_[i].received.insert(p.payload).second) {
      Violation("node " + std::to_string(i) + " got " + p.payload + " twice");
    }
  }

  // ---- Clients ----

  void ScheduleClient() {
    if (!churning_) return;
    sim().Schedule(5 * kMillisecond + static_cast<int64_t>(rng_.Uniform(25 * kMillisecond)),
                   [this] {
                     if (!churning_) return;
                     std::vector<int> up = UpNodes();
                     if (!up.empty()) {
                       const int i = up[rng_.Uniform(up.size())];
                       if (rng_.Bernoulli(0.8)) {
                         SendRequest(i, nullptr);
                       } else {
                         Publish(i, nullptr);
                       }
                     }
                     ScheduleClient();
                   });
  }

  // `done` (calm phase) gets the result.
  void SendRequest(int i, std::function<void(Result<Response>)> done) {
    const uint64_t id = ++next_;
    const std::string payload = "r" + std::to_string(id);
    ++totals_.requests;
    open_[id] = Open{i, nodes_[i].gen, sim().Now() + kRequestTimeoutMs * 1000, payload};
    RequestOptions o;
    o.timeout_ms = kRequestTimeoutMs;
    nodes_[i].d->Request("svc", "k" + std::to_string(rng_.Uniform(100)), payload, o,
                         [this, id, done = std::move(done)](Result<Response> r) {
                           auto it = open_.find(id);
                           if (it == open_.end())
                             return Violation("a request answered twice, or never made");
                           const Open req = it->second;
                           open_.erase(it);
                           if (sim().Now() > req.deadline + kAnswerSlack) {
                             Violation("request " + std::to_string(id) + " answered " +
                                       sim::FormatTime(sim().Now() - req.deadline) +
                                       " after its deadline");
                           }
                           Count(r);
                           if (r.ok()) {
                             if (r->replies.size() != 1 || !r->replies[0].ok) {
                               Violation("a round_robin request with " +
                                         std::to_string(r->replies.size()) + " replies");
                             } else {
                               const std::string& got = r->replies[0].payload;
                               const size_t at = got.rfind('@');
                               if (at == std::string::npos || got.substr(0, at) != req.payload) {
                                 Violation("request " + req.payload + " got the reply " + got);
                               } else {
                                 ++nodes_[req.node].served_from[std::stoi(got.substr(at + 1))];
                               }
                             }
                           }
                           if (done) done(std::move(r));
                         });
  }

  void Count(const Result<Response>& r) {
    if (r.ok()) {
      ++totals_.ok;
      return;
    }
    const std::error_code c = r.error().code();
    if (c == DispatchErrc::kTimeout) {
      ++totals_.timeouts;
    } else if (c == DispatchErrc::kUnreachable) {
      ++totals_.unreachable;
    } else if (c == RoutingErrc::kNoHandler) {
      ++totals_.no_handler;
    } else {
      ++totals_.other;
    }
  }

  void Publish(int i, std::function<void(Result<uint64_t>)> done) {
    const std::string payload = "p" + std::to_string(++next_);
    published_.insert(payload);
    ++totals_.publications;
    nodes_[i].d->Publish(Space::kChannel, "", "news", payload,
                         [done = std::move(done)](Result<uint64_t> n) {
                           if (done) done(std::move(n));
                         });
  }

  // ---- Settling and the calm phase ----

  // Views agree, every registry lists the handler of every live node, and every node's interest
  // reached its peers.
  bool Settle(int64_t timeout, sim::Failures& f) {
    const std::vector<int> up = UpNodes();
    if (!cluster_.RunUntil([&] { return cluster_.ViewsAgree(up); }, timeout)) {
      f.push_back("views never agreed:" + cluster_.DescribeViews());
      return false;
    }
    const bool settled = cluster_.RunUntil(
        [&] {
          for (int i : up) {
            if (nodes_[i].d->registry().Handlers("svc").size() != up.size()) return false;
          }
          return true;
        },
        timeout);
    if (!settled) {
      f.push_back("handlers never settled");
      return false;
    }
    for (int i : up) {
      nodes_[i].interest_synced = false;
      nodes_[i].d->SyncInterest([this, i] { nodes_[i].interest_synced = true; });
    }
    if (!cluster_.RunUntil(
            [&] {
              return std::all_of(up.begin(), up.end(),
                                 [&](int i) { return nodes_[i].interest_synced; });
            },
            timeout)) {
      f.push_back("interest never synced");
      return false;
    }
    return true;
  }

  void Calm(sim::Failures& f) {
    const std::vector<int> up = UpNodes();
    if (up.size() != kNodes) {
      f.push_back("not every node is up after the faults");
      return;
    }
    for (Node& n : nodes_) n.served_from.clear();
    int failed = 0;
    std::string first_error;
    for (int k = 0; k < 100; ++k) {
      SendRequest(up[static_cast<size_t>(k) % up.size()], [&, k](Result<Response> r) {
        if (!r.ok() && failed++ == 0) {
          first_error = "request " + std::to_string(k) + " from node " +
                        std::to_string(up[static_cast<size_t>(k) % up.size()]) + " at " +
                        sim::FormatTime(sim().Now()) + ": " + r.error().ToString();
        }
      });
      cluster_.RunFor(2 * kMillisecond);
    }
    std::vector<std::string> pubs;
    std::map<std::string, uint64_t> counts;
    for (int k = 0; k < 10; ++k) {
      const int i = up[rng_.Uniform(up.size())];
      const std::string payload = "p" + std::to_string(next_ + 1);
      pubs.push_back(payload);
      Publish(i, [&counts, payload](Result<uint64_t> n) { counts[payload] = n.ok() ? *n : 0; });
    }
    cluster_.RunFor(3 * kSecond);
    const size_t unanswered =
        static_cast<size_t>(std::count_if(open_.begin(), open_.end(), [this](const auto& o) {
          return Alive(o.second.node, o.second.gen);
        }));
    if (unanswered != 0) f.push_back(std::to_string(unanswered) + " calm requests unanswered");
    if (failed != 0) {
      f.push_back(std::to_string(failed) + " calm requests failed, the first " + first_error);
    }
    for (int i : up) {
      // Each node sent 20 requests round-robin over 5 handlers: every handler got some.
      if (nodes_[i].served_from.size() != kNodes) {
        f.push_back("round_robin from node " + std::to_string(i) + " reached " +
                    std::to_string(nodes_[i].served_from.size()) + " handlers");
      }
      for (const std::string& p : pubs) {
        if (!nodes_[i].received.contains(p)) {
          f.push_back("node " + std::to_string(i) + " missed " + p);
        }
      }
    }
    for (const std::string& p : pubs) {
      if (counts[p] != kNodes) {
        f.push_back("Publish of " + p + " counted " + std::to_string(counts[p]) + " deliveries");
      }
    }
  }

  membership::SimCluster cluster_;
  SeededRng rng_;
  sim::RpcNet rpc_;
  std::vector<Node> nodes_;
  std::map<MemberId, int> index_;
  std::map<uint64_t, Open> open_;
  std::set<std::string> published_;
  uint64_t next_ = 0;
  bool churning_ = false;
  Totals totals_;
  std::vector<std::string> violations_;
};

TEST(DispatcherSim, RequestsAndPublicationsSurviveCrashesAndPartitions) {
  Totals all;
  const int seeds = sim::ForEachSeed(kDefaultSeeds, [&](uint64_t seed) {
    DispatcherSim s(seed);
    sim::Failures f = s.Run();
    all += s.totals();
    return f;
  });
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "[  SUMMARY ] bus: %d seeds, %llu requests (%llu ok, %llu timed out, %llu unreachable, "
      "%llu without a handler, %llu other errors), %llu publications, %llu deliveries, %llu "
      "crashes, %llu partitions\n",
      seeds, u(all.requests), u(all.ok), u(all.timeouts), u(all.unreachable), u(all.no_handler),
      u(all.other), u(all.publications), u(all.deliveries), u(all.crashes), u(all.partitions));
  if (seeds >= 40) {
    // The faults must bite: some requests fail, and most succeed.
    EXPECT_GT(all.timeouts + all.unreachable, 0u);
    EXPECT_GT(all.ok, all.requests / 2);
    EXPECT_GT(all.crashes, 0u);
  }
}

TEST(DispatcherSim, SameSeedSameTrace) {
  auto run = [](uint64_t seed) {
    DispatcherSim s(seed);
    EXPECT_TRUE(s.Run().empty());
    return s.trace_hash();
  };
  const uint64_t first = run(3);
  EXPECT_EQ(first, run(3));
  EXPECT_NE(first, run(4));
}

}  // namespace
}  // namespace shoal::bus
