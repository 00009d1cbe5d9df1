// Simulation tests of replicated maps: N = 3..5 nodes, each an LwwMap stamped by its own
// HybridClock on the simulated node's clock (drift and offset), over sim::Network with loss,
// duplication, delay (so reordering), partitions and heals, crashes and restarts. 200 seeds by
// default (40 in a Debug build; SHOAL_SIM_SEEDS=n for more, SHOAL_SIM_SEED=s to replay one,
// SHOAL_SIM_VERBOSE=1 to print each seed's figures).
//
// Each node runs the Replicator (replicated/replicator.h), the class the binary's
// node/replicated_driver.cc runs, with the harness in the place of the node's I/O:
//   * Its map is an LwwMap behind LocalCopy. A client writes 1-3 keys of 400 at a random live
//     node every 0-60 ms: puts (30% with a ttl of 0.2-5 s) and deletes. The node stamps them with
//     its HLC, applies them, queues them in the outbox and flushes it, as the map's outbox hook
//     does: the Replicator broadcasts them as one change batch, which the harness sends to every
//     peer as datagrams (lost, late or twice, as the at-most-once bus may).
//   * A node's HLC observes every change it applies from elsewhere (batch, sync, snapshot), so a
//     local write always wins locally (checked), and no stamp ever names two writes (checked).
//   * Sync rounds are RpcChannel calls over sim::RpcNet (in-order streams on the same links, that
//     break on a partition and reset on a restarted peer); the peer's Replicator answers them.
//   * Views: every tick (100 ms) a node is told the peers that are up and reachable both ways,
//     as membership would report them. Ticks carry the node's clocks; the Replicator's options
//     are the node's, scaled down: a round every 0.5 s, a call timeout of 1 s, tombstones
//     collected every second at now - 10 s (only once the node has synced since it booted).
//   * About every 2 s a node saves a snapshot (EncodeSnapshot) to its "disk", which survives
//     crashes.
//   * Nemesis: one fault at a time, each 0.3-2 s: a random partition, an isolated node, a crash,
//     an isolated node that then crashes (what it wrote meanwhile lives only in it), a crashed
//     node that comes back cut off for another 1.5-3.5 s (it must not collect before it synced),
//     or new link weather (loss 0-15%, duplication 0-3%, uniform or exponential delays). A crashed
//     node comes back empty or from its last snapshot (RestoreSnapshot) when that is younger than 5
//     s, well inside the tombstone ttl (an older one could bring back deletes collected elsewhere);
//     sometimes the file is torn or flipped and must be refused. A restarted node syncs from the
//     peers it sees at once (its Replicator's first sessions).
//
// At the end everything heals, crashed nodes come back, the horizon is frozen at the greatest
// any node reached, and anti-entropy runs until every node has that horizon and the same digest
// (at most 60 s). Then, after expiring at one instant everywhere: every node holds exactly the
// same entries, and for every key the entry is the surviving write with the greatest stamp,
// where a write survives if it reached a node incarnation that lived to the end (directly or
// through a snapshot it loaded): a write is lost only with the one node that had it, and no older
// write ever wins over a surviving newer one.
//
// Hash tables iterate in an order that depends on memory addresses, so sync answers list their
// entries in a different order from run to run (the network's trace hashes payloads); a run is
// otherwise a function of its seed (SameSeedSameRun compares everything else).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/hlc.h"
#include "common/log.h"
#include "common/rng.h"
#include "replicated/lww_map.h"
#include "replicated/replicator.h"
#include "replicated/snapshot.h"
#include "replicated/sync.h"
#include "replicated/test_util.h"
#include "sim/network.h"
#include "sim/rpc.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace shoal::replicated {
namespace {

using ::shoal::replicated::testing::Contents;
using ::shoal::replicated::testing::ContentsOf;

using sim::Failures;
using sim::kMillisecond;
using sim::kSecond;

constexpr std::string_view kMap = "m";
constexpr int kKeys = 400;
constexpr int64_t kChurn = 25 * kSecond;
constexpr int64_t kTombstoneTtl = 10 * kSecond;
constexpr int64_t kSnapshotMaxAge = 5 * kSecond;
constexpr int64_t kTick = 100 * kMillisecond;
constexpr int64_t kConvergeDeadline = 60 * kSecond;
// Seeds by default. A build without optimization runs ~25x slower (CI's ASan + UBSan stage is a
// Debug build: 200 seeds there take over 3 minutes), so it runs fewer; SHOAL_SIM_SEEDS overrides.
#ifdef NDEBUG
constexpr uint64_t kDefaultSeeds = 200;
#else
constexpr uint64_t kDefaultSeeds = 40;
#endif

struct Totals {
  uint64_t writes = 0, crashes = 0, restarts_from_snapshot = 0, corrupt_snapshots = 0;
  uint64_t sessions_done = 0, sessions_failed = 0, sessions_deferred = 0, partitions = 0;
  uint64_t lost_writes = 0, collected = 0, expired = 0, rpc_calls = 0, rpc_lost = 0;
  int64_t converge_micros = 0;
  Totals& operator+=(const Totals& o) {
    writes += o.writes;
    crashes += o.crashes;
    restarts_from_snapshot += o.restarts_from_snapshot;
    corrupt_snapshots += o.corrupt_snapshots;
    sessions_done += o.sessions_done;
    sessions_failed += o.sessions_failed;
    sessions_deferred += o.sessions_deferred;
    partitions += o.partitions;
    lost_writes += o.lost_writes;
    collected += o.collected;
    expired += o.expired;
    rpc_calls += o.rpc_calls;
    rpc_lost += o.rpc_lost;
    converge_micros = std::max(converge_micros, o.converge_micros);
    return *this;
  }
};

ReplicatorOptions SimReplicatorOptions() {
  ReplicatorOptions o;
  o.sync_interval_us = 500 * kMillisecond;
  o.call_timeout_us = 1 * kSecond;
  o.tombstone_ttl_ms = kTombstoneTtl / 1000;
  o.maintain_every_us = kTick;
  o.collect_every_us = 1 * kSecond;
  return o;
}

class MapSim {
 public:
  explicit MapSim(uint64_t seed)
      : sim_(seed), rng_(sim_.DeriveRng("harness")), net_(sim_, NetConfig()), rpc_(net_) {
    log::SetLevel("error");  // the replicators log every sync and every failed one
    n_ = 3 + static_cast<int>(rng_.Uniform(3));
    NewWeather();
    nodes_.resize(n_);
    for (int i = 0; i < n_; ++i) {
      Node& node = nodes_[i];
      node.ep = Endpoint{"10.0.0." + std::to_string(i + 1), 7000};
      node.id = MemberId(0x5eed, static_cast<uint64_t>(i + 1));
      sim::ClockConfig clock;
      clock.rate = 1.0 + (static_cast<double>(rng_.Uniform(201)) - 100.0) * 1e-6;
      clock.unix_offset =
          static_cast<int64_t>(rng_.Uniform(100 * kMillisecond)) - 50 * kMillisecond;
      net_.AddNode(
          node.ep,
          [this, i](const Endpoint& from, std::string payload) {
            OnReceive(i, from, std::move(payload));
          },
          clock);
      index_[node.ep] = i;
    }
    for (int i = 0; i < n_; ++i) Boot(i, /*from_snapshot=*/false);
  }

  sim::Simulator& sim() { return sim_; }
  // What a run did, for comparing two runs of one seed: the harness's trace hash (below) and
  // counts. Not the simulator's trace hash: the network hashes payloads, and the order of entries
  // in a sync answer is the hash tables' iteration order, which depends on memory addresses (the
  // contents do not).
  std::vector<uint64_t> Fingerprint() const {
    std::vector<uint64_t> f = {trace_,          sim_.trace().size(),   sim_.events_run(),
                               totals_.writes,  totals_.sessions_done, totals_.sessions_failed,
                               totals_.expired, totals_.collected};
    for (const Node& node : nodes_) {
      f.push_back(node.map ? node.map->Digest(0, 0) : 0);
      f.push_back(node.map ? node.map->entries() : 0);
    }
    return f;
  }
  const Totals& totals() const { return totals_; }
  const std::vector<std::string>& violations() const { return violations_; }

  Failures Run() {
    // Churn: writes and faults.
    ScheduleWrite();
    ScheduleFault(1 * kSecond);
    sim_.RunFor(kChurn);
    churning_ = false;

    // Heal: every link, every node; freeze the horizon so collection cannot move it any more.
    net_.HealAll();
    for (int i = 0; i < n_; ++i) {
      if (!nodes_[i].up()) Restart(i);
    }
    for (const Node& node : nodes_) {
      if (node.map && frozen_horizon_ < node.map->horizon()) frozen_horizon_ = node.map->horizon();
    }
    freeze_ = true;
    const int64_t quiet_from = sim_.Now();
    std::string why;
    bool quiet = false;
    while (sim_.Now() < quiet_from + kConvergeDeadline) {
      sim_.RunFor(200 * kMillisecond);
      if ((quiet = Quiet(&why))) break;
    }
    totals_.converge_micros = sim_.Now() - quiet_from;
    for (int i = 0; i < n_; ++i) CountSessions(i);
    totals_.rpc_calls = rpc_.counters().calls;
    totals_.rpc_lost = rpc_.counters().lost;
    Failures f;
    for (const std::string& v : violations_) f.push_back(v);
    if (!quiet) {
      f.push_back("no convergence after " + sim::FormatTime(kConvergeDeadline) + ": " + why +
                  Differences());
      return f;
    }
    CheckFinal(f);
    return f;
  }

 private:
  // Node i's copy of the map as the Replicator sees it: the LwwMap, the outbox of its local
  // writes, and the harness's checks on every change applied from elsewhere.
  class Copy final : public LocalCopy {
   public:
    Copy(MapSim* sim, int i) : sim_(sim), i_(i) {}
    const std::string& name() const override { return name_; }
    std::vector<Change> TakeOutbox() override { return std::exchange(outbox, {}); }
    void Read(const std::function<void(const LwwMap&)>& fn) const override {
      fn(*sim_->nodes_[i_].map);
    }
    size_t ApplyRemote(const std::vector<Change>& changes, ChangeSource) override {
      return sim_->ApplyRemote(i_, changes);
    }
    void Maintain(int64_t now_ms, int64_t tombstone_ttl_ms, Tombstones t) override {
      sim_->Maintain(i_, now_ms, tombstone_ttl_ms, t);
    }
    MapStats& stats() override { return stats_; }

    std::vector<Change> outbox;

   private:
    MapSim* sim_;
    int i_;
    const std::string name_{kMap};
    MapStats stats_;
  };

  struct Node {
    Endpoint ep;
    MemberId id;
    std::unique_ptr<LwwMap> map;  // null while crashed
    std::unique_ptr<Copy> copy;
    std::unique_ptr<Replicator> replicator;  // the class the node runs
    HybridClock hlc;
    std::set<Stamp> held;  // every write this incarnation applied or loaded
    // Disk: survives crashes.
    std::string snapshot;
    int64_t snapshot_at = -1;
    bool up() const { return map != nullptr; }
  };

  static sim::NetworkConfig NetConfig() {
    sim::NetworkConfig c;
    c.max_payload = 64 << 20;  // change batches ride the bus (internal RPC) in the node
    return c;
  }
  void NewWeather() {
    sim::LinkConfig link;
    link.loss = rng_.UniformDouble() * 0.15;
    link.duplicate = rng_.UniformDouble() * 0.03;
    link.delay = rng_.Bernoulli(0.5) ? sim::DelayDistribution::Uniform(200, 20 * kMillisecond)
                                     : sim::DelayDistribution::Exponential(300, 3 * kMillisecond,
                                                                           50 * kMillisecond);
    net_.SetDefaultLink(link);
  }

  int64_t NowMicros(int i) { return net_.node(nodes_[i].ep).clock().NowUnixMicros(); }
  int64_t NowMs(int i) { return NowMicros(i) / 1000; }
  int64_t Monotonic(int i) { return net_.node(nodes_[i].ep).clock().MonotonicMicros(); }

  void Violation(std::string what) {
    if (violations_.size() < 10) {
      violations_.push_back(sim::FormatTime(sim_.Now()) + " " + std::move(what));
    }
  }

  // Applies changes on node i from elsewhere (a peer's batch, sync). The HLC observes only the
  // greatest stamp: the result of a series of Observe calls depends on their order, and the
  // order of a sync answer is the hash tables' (address-dependent), which would make the run
  // depend on more than its seed.
  size_t ApplyRemote(int i, const std::vector<Change>& changes) {
    Node& node = nodes_[i];
    std::optional<HlcTime> newest;
    uint64_t applied = 0;  // a sum: the same whatever the order of `changes`
    size_t won = 0;
    for (const Change& c : changes) {
      if (!writes_.contains(c.stamp)) Violation("a change nobody wrote: " + c.key);
      const bool took = node.map->Apply(c);
      if (took) {
        node.held.insert(c.stamp);
        ++won;
      }
      applied += ChangeHash(c, took);
      if (!newest || *newest < c.stamp.time) newest = c.stamp.time;
    }
    if (newest) node.hlc.Observe(*newest, NowMicros(i));
    Trace(
        {2, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i), changes.size(), applied});
    return won;
  }

  // The Replicator's maintenance pass on node i. At the end the horizon is frozen at the
  // greatest any node reached, so that every node can get there.
  void Maintain(int i, int64_t now_ms, int64_t tombstone_ttl_ms, Tombstones t) {
    Node& node = nodes_[i];
    totals_.expired += node.map->ExpireSome(now_ms, kGroups / 8);
    if (t != Tombstones::kCollect) return;
    HlcTime h{static_cast<uint64_t>(std::max<int64_t>(0, (now_ms - tombstone_ttl_ms) * 1000)), 0};
    if (freeze_) h = std::min(h, frozen_horizon_);
    totals_.collected += node.map->CollectTombstones(h);
  }

  // The harness's trace: every write, every batch of changes applied from elsewhere (with which
  // ones took), every boot (with or without a snapshot) and crash, each with its time and node.
  void Trace(std::initializer_list<uint64_t> words) {
    for (uint64_t w : words) {
      for (int k = 0; k < 8; ++k) {
        trace_ ^= (w >> (8 * k)) & 0xff;
        trace_ *= 1099511628211ull;
      }
    }
  }

  static uint64_t ChangeHash(const Change& c, bool took) {
    uint64_t h = std::hash<std::string>()(c.key);
    h = h * 31 + c.stamp.time.wall;
    h = h * 31 + c.stamp.time.logical;
    h = h * 31 + (c.value ? std::hash<std::string>()(*c.value) : 0);
    h = h * 31 + static_cast<uint64_t>(c.expire_ms);
    return h * 2 + (took ? 1 : 0);
  }

  // The membership view node i would have: the peers that are up and reachable both ways.
  std::map<MemberId, Endpoint> View(int i) {
    std::map<MemberId, Endpoint> alive;
    for (int j = 0; j < n_; ++j) {
      if (j == i || !nodes_[j].up()) continue;
      if (net_.IsBlocked(nodes_[i].ep, nodes_[j].ep) || net_.IsBlocked(nodes_[j].ep, nodes_[i].ep))
        continue;
      alive.emplace(nodes_[j].id, nodes_[j].ep);
    }
    return alive;
  }

  void CountSessions(int i) {
    const Node& node = nodes_[i];
    if (!node.copy) return;
    MapStats& k = node.copy->stats();
    totals_.sessions_done += k.syncs.load();
    totals_.sessions_failed += k.sync_failures.load();
    totals_.sessions_deferred += k.sync_deferred.load();
  }

  // ---- Lifecycle ----

  void Boot(int i, bool from_snapshot) {
    Trace({3, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i), from_snapshot});
    Node& node = nodes_[i];
    node.map = std::make_unique<LwwMap>();
    node.hlc = HybridClock();
    node.held.clear();
    if (from_snapshot) {
      Result<Snapshot> s = DecodeSnapshot(node.snapshot, node.ep.ToString());
      if (!s.ok()) {
        ++totals_.corrupt_snapshots;  // refused: the node starts empty
        if (s.error().message().find("refusing to load it") == std::string::npos) {
          Violation("unclear snapshot error: " + s.error().message());
        }
      } else {
        ++totals_.restarts_from_snapshot;
        RestoreSnapshot(*s, node.map.get());
        HlcTime newest;
        node.map->ForEach([&](const std::string&, const LwwMap::Entry& e) {
          node.held.insert(e.stamp);
          newest = std::max(newest, e.stamp.time);
          if (!writes_.contains(e.stamp)) Violation("a snapshot entry nobody wrote");
          return true;
        });
        node.hlc.Observe(newest, NowMicros(i));
      }
    }
    // The node's replication, as the binary runs it: batches go out as datagrams (the bus
    // delivers at most once), sync rounds over the simulated RPC streams.
    node.copy = std::make_unique<Copy>(this, i);
    node.replicator = std::make_unique<Replicator>(
        node.id, &rpc_.channel(node.ep),
        [this, i](const std::string&, std::string batch) {
          for (int j = 0; j < n_; ++j) {
            if (j != i) net_.node(nodes_[i].ep).transport().Send(nodes_[j].ep, batch);
          }
        },
        SimReplicatorOptions(), rng_.Next(), Monotonic(i));
    rpc_.Serve(node.ep, std::string(kSyncMethod),
               [this, i](const Endpoint&, std::string_view body, sim::RpcNet::Respond respond) {
                 respond(nodes_[i].replicator->Answer(body));
               });
    node.replicator->Attach(node.copy.get(), Monotonic(i));
    node.replicator->SetInterestReady(std::string(kMap));
    node.replicator->OnView(View(i), Monotonic(i));
    const uint64_t gen = net_.node(node.ep).generation();
    ScheduleTick(i, gen, static_cast<int64_t>(rng_.Uniform(kTick)));
  }

  void Crash(int i) {
    Trace({4, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i)});
    ++totals_.crashes;
    CountSessions(i);
    Node& node = nodes_[i];
    node.replicator.reset();
    node.copy.reset();
    node.map.reset();
    node.held.clear();
    net_.Crash(node.ep);
  }

  void Restart(int i) {
    Node& node = nodes_[i];
    net_.Restart(node.ep);
    const bool recent = node.snapshot_at >= 0 && sim_.Now() - node.snapshot_at <= kSnapshotMaxAge;
    const bool use = recent && rng_.Bernoulli(0.6);
    if (use && rng_.Bernoulli(0.15)) {
      // The disk gave back something else than what was written: a torn or flipped file.
      if (rng_.Bernoulli(0.5)) {
        node.snapshot.resize(rng_.Uniform(node.snapshot.size()));
      } else {
        node.snapshot[rng_.Uniform(node.snapshot.size())] ^= 0x20;
      }
    }
    Boot(i, use);
  }

  // ---- Timers ----

  void ScheduleTick(int i, uint64_t gen, int64_t delay) {
    net_.node(nodes_[i].ep)
        .ScheduleTimer(
            delay,
            [this, i, gen] {
              if (!nodes_[i].up() || net_.node(nodes_[i].ep).generation() != gen) return;
              Tick(i);
              ScheduleTick(i, gen, kTick);
            },
            "tick");
  }

  void Tick(int i) {
    Node& node = nodes_[i];
    node.replicator->OnView(View(i), Monotonic(i));
    node.replicator->Tick(Monotonic(i), NowMs(i));
    if (rng_.Bernoulli(0.05)) {
      node.snapshot = EncodeSnapshot(kMap, *node.map);
      node.snapshot_at = sim_.Now();
    }
  }

  void ScheduleWrite() {
    if (!churning_) return;
    sim_.Schedule(static_cast<int64_t>(rng_.Uniform(60 * kMillisecond)), [this] {
      if (!churning_) return;
      Write();
      ScheduleWrite();
    });
  }

  void Write() {
    std::vector<int> up;
    for (int i = 0; i < n_; ++i) {
      if (nodes_[i].up()) up.push_back(i);
    }
    if (up.empty()) return;
    const int i = up[rng_.Uniform(up.size())];
    Node& node = nodes_[i];
    const uint64_t n = 1 + rng_.Uniform(3);
    for (uint64_t k = 0; k < n; ++k) {
      Change c;
      c.key = "key:" + std::to_string(rng_.Uniform(kKeys));
      c.stamp = Stamp{node.hlc.Now(NowMicros(i)), node.id};
      if (rng_.Bernoulli(0.75)) {
        c.value = "n" + std::to_string(i) + "-" + std::to_string(++counter_);
        if (rng_.Bernoulli(0.3)) {
          c.expire_ms = NowMs(i) + 200 + static_cast<int64_t>(rng_.Uniform(4800));
        }
      }
      if (!writes_.emplace(c.stamp, c).second) Violation("a stamp named two writes");
      ++totals_.writes;
      if (!node.map->Apply(c)) Violation("a local write lost locally: " + c.key);
      Trace({1, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i), ChangeHash(c, true)});
      node.held.insert(c.stamp);
      node.copy->outbox.push_back(std::move(c));
    }
    node.copy->stats().local_writes.fetch_add(n);
    node.replicator->Flush(std::string(kMap));  // as the map's outbox hook does in the node
  }

  void ScheduleFault(int64_t delay) {
    sim_.Schedule(delay, [this] {
      if (!churning_) return;
      int64_t length = 300 * kMillisecond + static_cast<int64_t>(rng_.Uniform(1700 * kMillisecond));
      const uint64_t what = rng_.Uniform(11);
      if (what < 3) {
        // A random split into two non-empty sides.
        std::vector<Endpoint> a, b;
        const int pivot = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(n_)));
        for (int i = 0; i < n_; ++i) {
          (i == pivot || rng_.Bernoulli(0.3) ? a : b).push_back(nodes_[i].ep);
        }
        if (b.empty()) {
          b.push_back(a.back());
          a.pop_back();
        }
        ++totals_.partitions;
        net_.Partition(a, b);
        sim_.Schedule(length, [this] { net_.HealAll(); });
      } else if (what < 5) {
        ++totals_.partitions;
        const int i = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(n_)));
        net_.Isolate(nodes_[i].ep);
        sim_.Schedule(length, [this] { net_.HealAll(); });
      } else if (what < 7) {
        const int i = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(n_)));
        if (nodes_[i].up()) {
          Crash(i);
          ScheduleRestart(i, length);
        }
      } else if (what < 9) {
        // Cut off, then dead: what it wrote meanwhile lives only in it (and perhaps in its
        // snapshot).
        ++totals_.partitions;
        const int i = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(n_)));
        net_.Isolate(nodes_[i].ep);
        const int64_t crash_at = length / 2 + static_cast<int64_t>(rng_.Uniform(length / 2));
        sim_.Schedule(crash_at, [this, i, length, crash_at] {
          if (nodes_[i].up()) Crash(i);
          ScheduleRestart(i, length - crash_at);
        });
        sim_.Schedule(length, [this] { net_.HealAll(); });
      } else if (what < 10) {
        NewWeather();  // the network's weather changes
      } else {
        // Crashed, and back while still cut off: it must not collect tombstones before its
        // first sync (its horizon would refuse the older entries its peers hold).
        ++totals_.partitions;
        const int i = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(n_)));
        if (nodes_[i].up()) Crash(i);
        const int64_t back = length;
        length += 1500 * kMillisecond + static_cast<int64_t>(rng_.Uniform(2 * kSecond));
        sim_.Schedule(back, [this, i] {
          net_.Isolate(nodes_[i].ep);
          if (!nodes_[i].up()) Restart(i);
        });
        sim_.Schedule(length, [this] { net_.HealAll(); });
      }
      ScheduleFault(length + 200 * kMillisecond + static_cast<int64_t>(rng_.Uniform(kSecond)));
    });
  }

  void ScheduleRestart(int i, int64_t after) {
    sim_.Schedule(after, [this, i] {
      if (!nodes_[i].up()) Restart(i);  // (unless the final heal restarted it already)
    });
  }

  // A peer's change batch (a datagram: lost, late or twice, as the bus may).
  void OnReceive(int i, const Endpoint& from, std::string payload) {
    Node& node = nodes_[i];
    if (!node.up()) return Violation("delivery to a crashed node");
    const uint64_t malformed = node.copy->stats().malformed.load();
    node.replicator->OnBatch(nodes_[index_.at(from)].id, std::string(kMap), payload);
    if (node.copy->stats().malformed.load() != malformed) Violation("a batch did not decode");
  }

  // ---- Checks ----

  bool Quiet(std::string* why) {
    const Node& first = nodes_[0];
    for (int i = 0; i < n_; ++i) {
      const Node& node = nodes_[i];
      if (!node.up()) return Fail(why, "node " + std::to_string(i) + " is down");
      if (node.map->horizon() != frozen_horizon_) {
        return Fail(why, "node " + std::to_string(i) + " has another horizon");
      }
      if (node.map->Digest(0, 0) != first.map->Digest(0, 0)) {
        return Fail(why, "node " + std::to_string(i) + "'s digest differs from node 0's (" +
                             std::to_string(node.map->entries()) + " vs " +
                             std::to_string(first.map->entries()) + " entries)");
      }
    }
    return true;
  }
  static std::string Describe(const LwwMap::Entry* e) {
    if (e == nullptr) return "none";
    return std::string(e->live ? "live " : "tombstone ") + std::to_string(e->stamp.time.wall) +
           "." + std::to_string(e->stamp.time.logical) + "@" + std::to_string(e->stamp.origin.lo());
  }
  // The first keys on which some node differs from node 0, for a failure's message.
  std::string Differences() {
    std::string out;
    std::set<std::string> keys;
    for (const Node& node : nodes_) {
      if (!node.map) continue;
      node.map->ForEach([&keys](const std::string& k, const LwwMap::Entry&) {
        keys.insert(k);
        return true;
      });
    }
    int shown = 0;
    for (const std::string& k : keys) {
      std::string line;
      bool differ = false;
      for (int i = 0; i < n_; ++i) {
        const LwwMap::Entry* e = nodes_[i].map ? nodes_[i].map->Find(k) : nullptr;
        const LwwMap::Entry* e0 = nodes_[0].map ? nodes_[0].map->Find(k) : nullptr;
        if ((e == nullptr) != (e0 == nullptr) || (e != nullptr && e->stamp != e0->stamp)) {
          differ = true;
        }
        line += " n" + std::to_string(i) + "=" + Describe(e);
      }
      if (!differ) continue;
      out += "\n  " + k + ":" + line;
      if (++shown == 5) break;
    }
    for (int i = 0; i < n_; ++i) {
      if (nodes_[i].map) {
        out += "\n  n" + std::to_string(i) +
               " horizon=" + std::to_string(nodes_[i].map->horizon().wall);
      }
    }
    return out;
  }

  static bool Fail(std::string* why, std::string what) {
    *why = std::move(what);
    return false;
  }

  void CheckFinal(Failures& f) {
    // Expire at one instant everywhere (clocks differ), so liveness agrees too.
    int64_t now_ms = 0;
    for (int i = 0; i < n_; ++i) now_ms = std::max(now_ms, NowMs(i));
    for (Node& node : nodes_) node.map->ExpireSome(now_ms, kGroups);
    const Contents want = ContentsOf(*nodes_[0].map);
    for (int i = 1; i < n_; ++i) {
      if (ContentsOf(*nodes_[i].map) != want) {
        f.push_back("node " + std::to_string(i) + "'s entries differ from node 0's");
      }
    }
    // The surviving writes: those some final incarnation applied or loaded.
    std::set<Stamp> survivors;
    for (const Node& node : nodes_) survivors.insert(node.held.begin(), node.held.end());
    std::map<std::string, const Change*> best;
    for (const Stamp& s : survivors) {
      auto w = writes_.find(s);
      if (w == writes_.end()) continue;  // reported when it was applied
      const Change& c = w->second;
      auto [it, fresh] = best.emplace(c.key, &c);
      if (!fresh && it->second->stamp < c.stamp) it->second = &c;
    }
    const LwwMap& m = *nodes_[0].map;
    // Lost: writes no final incarnation saw that would have won over what is there.
    for (const auto& [stamp, c] : writes_) {
      if (survivors.contains(stamp)) continue;
      auto b = best.find(c.key);
      if (b == best.end() || b->second->stamp < stamp) ++totals_.lost_writes;
    }
    for (const auto& [key, c] : best) {
      const LwwMap::Entry* e = m.Find(key);
      const bool live = c->value && (c->expire_ms == kNoExpire || c->expire_ms > now_ms);
      if (live) {
        if (e == nullptr || !e->live || e->stamp != c->stamp || e->value != *c->value ||
            e->expire_ms != c->expire_ms) {
          f.push_back(key + ": not the surviving write with the greatest stamp (" + *c->value +
                      ")");
        }
      } else if (e != nullptr ? (e->live || e->stamp != c->stamp)
                              : !(c->stamp.time < m.horizon())) {
        f.push_back(key + ": its newest surviving write is a delete or expired, yet " +
                    (e == nullptr ? std::string("the tombstone is gone")
                     : e->live    ? "a value is live"
                                  : "another tombstone is there"));
      }
    }
    m.ForEach([&](const std::string& k, const LwwMap::Entry&) {
      if (!best.contains(k)) f.push_back(k + ": an entry no surviving write made");
      return true;
    });
  }

  sim::Simulator sim_;
  SeededRng rng_;
  sim::Network net_;
  sim::RpcNet rpc_;
  int n_ = 0;
  std::vector<Node> nodes_;
  std::map<Endpoint, int> index_;
  std::map<Stamp, Change> writes_;  // every write ever made, by stamp
  uint64_t counter_ = 0;
  uint64_t trace_ = 14695981039346656037ull;  // FNV-1a over Trace()'s words
  bool churning_ = true;
  bool freeze_ = false;
  HlcTime frozen_horizon_;
  Totals totals_;
  std::vector<std::string> violations_;
};

TEST(ReplicatedSim, ConvergesToTheNewestSurvivingWrites) {
  const bool verbose = std::getenv("SHOAL_SIM_VERBOSE") != nullptr;
  Totals all;
  const auto t0 = std::chrono::steady_clock::now();
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  const int seeds = sim::ForEachSeed(kDefaultSeeds, [&](uint64_t seed) {
    MapSim s(seed);
    Failures f = s.Run();
    all += s.totals();
    if (verbose) {
      const Totals& t = s.totals();
      std::printf(
          "seed %llu: %llu writes (%llu lost with their node), %llu crashes (%llu from a snapshot, "
          "%llu corrupt), sessions %llu completed / %llu failed / %llu deferred, %llu rpc calls "
          "(%llu lost), %llu expired, %llu collected, quiet after %.1f s\n",
          u(seed), u(t.writes), u(t.lost_writes), u(t.crashes), u(t.restarts_from_snapshot),
          u(t.corrupt_snapshots), u(t.sessions_done), u(t.sessions_failed), u(t.sessions_deferred),
          u(t.rpc_calls), u(t.rpc_lost), u(t.expired), u(t.collected),
          static_cast<double>(t.converge_micros) / 1e6);
    }
    return f;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "%d seeds in %.2f s: %llu writes (%llu lost with their only node), %llu crashes (%llu "
      "restarts from a snapshot, %llu corrupt snapshots refused), %llu partitions, sync sessions "
      "%llu completed / %llu failed / %llu deferred by a fresh peer, %llu rpc calls (%llu lost "
      "on a broken stream), %llu expired, %llu tombstones collected; slowest convergence %.1f "
      "s\n",
      seeds, secs, u(all.writes), u(all.lost_writes), u(all.crashes), u(all.restarts_from_snapshot),
      u(all.corrupt_snapshots), u(all.partitions), u(all.sessions_done), u(all.sessions_failed),
      u(all.sessions_deferred), u(all.rpc_calls), u(all.rpc_lost), u(all.expired), u(all.collected),
      static_cast<double>(all.converge_micros) / 1e6);
  // The scenario must exercise what it claims to.
  if (seeds >= 40) {
    EXPECT_GT(all.restarts_from_snapshot, 0u);
    EXPECT_GT(all.corrupt_snapshots, 0u);
    EXPECT_GT(all.lost_writes, 0u);
    EXPECT_GT(all.collected, 0u);
    EXPECT_GT(all.expired, 0u);
    EXPECT_GT(all.sessions_failed, 0u);
    EXPECT_GT(all.sessions_deferred, 0u);
    EXPECT_GT(all.rpc_lost, 0u);
  }
}

// A seed's run is a function of the seed: the same trace hash (and counts) twice, and another
// seed gives another trace.
TEST(ReplicatedSim, SameSeedSameRun) {
  auto run = [](uint64_t seed) {
    MapSim s(seed);
    Failures f = s.Run();
    EXPECT_TRUE(f.empty());
    return s.Fingerprint();
  };
  const std::vector<uint64_t> first = run(7);
  EXPECT_EQ(first, run(7));
  EXPECT_NE(first[0], run(8)[0]);
}

}  // namespace
}  // namespace shoal::replicated
