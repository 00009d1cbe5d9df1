// Simulation tests of replicated maps: N = 3..5 nodes, each an LwwMap stamped by its own
// HybridClock on the simulated node's clock (drift and offset), over sim::Network with loss,
// duplication, delay (so reordering), partitions and heals, crashes and restarts. 200 seeds by
// default (40 in a Debug build; SHOAL_SIM_SEEDS=n for more, SHOAL_SIM_SEED=s to replay one,
// SHOAL_SIM_VERBOSE=1 to print each seed's figures).
//
// The harness, per node (the node's sans-I/O parts, driven as node/replicated_driver.h does):
//   * A client writes 1-3 keys of 400 at a random live node every 0-60 ms: puts (30% with a ttl
//     of 0.2-5 s) and deletes. The node stamps them with its HLC, applies them and broadcasts them
//     as one change batch (EncodeChanges) to every peer, at most once.
//   * A node's HLC observes every change it applies from elsewhere (batch, sync, snapshot), so a
//     local write always wins locally (checked), and no stamp ever names two writes (checked).
//   * Anti-entropy: every 0.3-0.7 s a node runs a SyncSession against a random peer, the peer
//     answering with the stateless Answer and applying what is pushed. Messages carry (session,
//     round) so a late or duplicate answer is ignored; a round unanswered for 250 ms is resent
//     twice (as a connection would retransmit), then the session ends.
//   * Every 100 ms: ExpireSome; every second, CollectTombstones at now - 10 s, but only once the
//     node has completed a sync since it booted: the horizon refuses live entries too, so a node
//     that moved it before catching up would refuse every older entry its peers send.
//   * About every 2 s a node saves a snapshot (EncodeSnapshot) to its "disk", which survives
//     crashes.
//   * Nemesis: one fault at a time, each 0.3-2 s: a random partition, an isolated node, a crash,
//     an isolated node that then crashes (what it wrote meanwhile lives only in it), or new link
//     weather (loss 0-15%, duplication 0-3%, uniform or exponential delays). A crashed node comes
//     back empty or from its last snapshot (RestoreSnapshot) when that is younger than 5 s, well
//     inside the tombstone ttl (an older one could bring back deletes collected elsewhere);
//     sometimes the file is torn or flipped and must be refused. A restarted node syncs from one
//     peer at once (and again, perhaps from another, until one session completes).
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
#include "common/rng.h"
#include "replicated/lww_map.h"
#include "replicated/snapshot.h"
#include "replicated/sync.h"
#include "replicated/test_util.h"
#include "sim/network.h"
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
constexpr int64_t kRoundTimeout = 250 * kMillisecond;
constexpr int64_t kConvergeDeadline = 60 * kSecond;
// Seeds by default. A build without optimization runs ~25x slower (CI's ASan + UBSan stage is a
// Debug build: 200 seeds there take over 3 minutes), so it runs fewer; SHOAL_SIM_SEEDS overrides.
#ifdef NDEBUG
constexpr uint64_t kDefaultSeeds = 200;
#else
constexpr uint64_t kDefaultSeeds = 40;
#endif

enum class Kind : uint8_t { kBatch = 1, kRequest = 2, kAnswer = 3 };

// Envelope: kind | session | round | payload.
std::string Envelope(Kind kind, uint64_t session, uint32_t round, std::string_view payload) {
  std::string out(13, '\0');
  out[0] = static_cast<char>(kind);
  std::memcpy(out.data() + 1, &session, 8);
  std::memcpy(out.data() + 9, &round, 4);
  out.append(payload);
  return out;
}

struct Totals {
  uint64_t writes = 0, crashes = 0, restarts_from_snapshot = 0, corrupt_snapshots = 0;
  uint64_t sessions = 0, sessions_done = 0, session_timeouts = 0, partitions = 0;
  uint64_t lost_writes = 0, collected = 0, expired = 0;
  int64_t converge_micros = 0;
  Totals& operator+=(const Totals& o) {
    writes += o.writes;
    crashes += o.crashes;
    restarts_from_snapshot += o.restarts_from_snapshot;
    corrupt_snapshots += o.corrupt_snapshots;
    sessions += o.sessions;
    sessions_done += o.sessions_done;
    session_timeouts += o.session_timeouts;
    partitions += o.partitions;
    lost_writes += o.lost_writes;
    collected += o.collected;
    expired += o.expired;
    converge_micros = std::max(converge_micros, o.converge_micros);
    return *this;
  }
};

// An initiator's session in flight.
struct Session {
  std::unique_ptr<SyncSession> sync;
  uint64_t id = 0;
  uint32_t round = 0;
  std::string request;  // of the round in flight, resent on a timeout
  int retries = 0;
  int peer = -1;
  sim::TimerHandle timeout;
  bool after_restart = false;
};

class MapSim {
 public:
  explicit MapSim(uint64_t seed)
      : sim_(seed), rng_(sim_.DeriveRng("harness")), net_(sim_, NetConfig()) {
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
      Boot(i, /*from_snapshot=*/false);
      node.synced = true;  // the cluster starts empty: nothing to catch up on
    }
  }

  sim::Simulator& sim() { return sim_; }
  // What a run did, for comparing two runs of one seed: the harness's trace hash (below) and
  // counts. Not the simulator's trace hash: the network hashes payloads, and the order of entries
  // in a sync answer is the hash tables' iteration order, which depends on memory addresses (the
  // contents do not).
  std::vector<uint64_t> Fingerprint() const {
    std::vector<uint64_t> f = {trace_,          sim_.trace().size(), sim_.events_run(),
                               totals_.writes,  totals_.sessions,    totals_.sessions_done,
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
  struct Node {
    Endpoint ep;
    MemberId id;
    std::unique_ptr<LwwMap> map;  // null while crashed
    HybridClock hlc;
    std::set<Stamp> held;  // every write this incarnation applied or loaded
    std::optional<Session> session;
    int64_t next_sync = 0;  // virtual time of the next anti-entropy session
    // Whether a session completed since boot. Until then the node must not collect: the
    // horizon refuses live entries too, so a node that moved it before catching up would refuse
    // every older entry its peers send.
    bool synced = false;
    int ticks = 0;
    // Disk: survives crashes.
    std::string snapshot;
    int64_t snapshot_at = -1;
    bool up() const { return map != nullptr; }
  };

  static sim::NetworkConfig NetConfig() {
    sim::NetworkConfig c;
    c.max_payload = 64 << 20;  // sync messages ride the internal RPC (TCP) in the node
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

  void Violation(std::string what) {
    if (violations_.size() < 10) {
      violations_.push_back(sim::FormatTime(sim_.Now()) + " " + std::move(what));
    }
  }

  // Applies `c` on node i as a change from elsewhere (peer, sync or snapshot).
  // Applies changes on node i from elsewhere (a peer's batch, sync). The HLC observes only the
  // greatest stamp: the result of a series of Observe calls depends on their order, and the
  // order of a sync answer is the hash tables' (address-dependent), which would make the run
  // depend on more than its seed.
  void ApplyRemote(int i, const std::vector<Change>& changes) {
    Node& node = nodes_[i];
    std::optional<HlcTime> newest;
    uint64_t applied = 0;  // a sum: the same whatever the order of `changes`
    for (const Change& c : changes) {
      if (!writes_.contains(c.stamp)) Violation("a change nobody wrote: " + c.key);
      const bool took = node.map->Apply(c);
      if (took) node.held.insert(c.stamp);
      applied += ChangeHash(c, took);
      if (!newest || *newest < c.stamp.time) newest = c.stamp.time;
    }
    if (newest) node.hlc.Observe(*newest, NowMicros(i));
    Trace(
        {2, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i), changes.size(), applied});
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

  void Send(int from, int to, Kind kind, uint64_t session, uint32_t round, std::string_view p) {
    net_.node(nodes_[from].ep).transport().Send(nodes_[to].ep, Envelope(kind, session, round, p));
  }

  // ---- Lifecycle ----

  void Boot(int i, bool from_snapshot) {
    Trace({3, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i), from_snapshot});
    Node& node = nodes_[i];
    node.map = std::make_unique<LwwMap>();
    node.hlc = HybridClock();
    node.held.clear();
    node.session.reset();
    node.ticks = 0;
    node.synced = false;
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
    node.next_sync = sim_.Now() + static_cast<int64_t>(rng_.Uniform(500 * kMillisecond));
    const uint64_t gen = net_.node(node.ep).generation();
    ScheduleTick(i, gen, static_cast<int64_t>(rng_.Uniform(kTick)));
  }

  void Crash(int i) {
    Trace({4, static_cast<uint64_t>(sim_.Now()), static_cast<uint64_t>(i)});
    ++totals_.crashes;
    Node& node = nodes_[i];
    if (node.session) sim_.Cancel(node.session->timeout);
    node.session.reset();
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
    // Catch up from one peer at once.
    StartSession(i, /*after_restart=*/true);
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
    ++node.ticks;
    totals_.expired += node.map->ExpireSome(NowMs(i), kGroups / 8);
    if (node.ticks % 10 == 0 && node.synced) {
      HlcTime h{static_cast<uint64_t>(std::max<int64_t>(0, NowMicros(i) - kTombstoneTtl)), 0};
      if (freeze_) h = std::min(h, frozen_horizon_);
      totals_.collected += node.map->CollectTombstones(h);
    }
    if (rng_.Bernoulli(0.05)) {
      node.snapshot = EncodeSnapshot(kMap, *node.map);
      node.snapshot_at = sim_.Now();
    }
    if (sim_.Now() >= node.next_sync) {
      node.next_sync =
          sim_.Now() + 300 * kMillisecond + static_cast<int64_t>(rng_.Uniform(400 * kMillisecond));
      if (!node.session) StartSession(i, /*after_restart=*/false);
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
    std::vector<Change> batch;
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
      batch.push_back(std::move(c));
    }
    const std::string bytes = EncodeChanges(kMap, batch);
    for (int j = 0; j < n_; ++j) {
      if (j != i) Send(i, j, Kind::kBatch, 0, 0, bytes);
    }
  }

  void ScheduleFault(int64_t delay) {
    sim_.Schedule(delay, [this] {
      if (!churning_) return;
      const int64_t length =
          300 * kMillisecond + static_cast<int64_t>(rng_.Uniform(1700 * kMillisecond));
      const uint64_t what = rng_.Uniform(10);
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
      } else {
        NewWeather();  // the network's weather changes
      }
      ScheduleFault(length + 200 * kMillisecond + static_cast<int64_t>(rng_.Uniform(kSecond)));
    });
  }

  void ScheduleRestart(int i, int64_t after) {
    sim_.Schedule(after, [this, i] {
      if (!nodes_[i].up()) Restart(i);  // (unless the final heal restarted it already)
    });
  }

  // ---- Sync ----

  void StartSession(int i, bool after_restart) {
    Node& node = nodes_[i];
    if (node.session) return;
    int peer = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(n_ - 1)));
    if (peer >= i) ++peer;
    ++totals_.sessions;
    node.session.emplace();
    Session& s = *node.session;
    s.sync = std::make_unique<SyncSession>(std::string(kMap));
    s.id = ++session_ids_;
    s.peer = peer;
    s.after_restart = after_restart;
    SendRound(i, s.sync->Start(*node.map));
  }

  void SendRound(int i, std::string request) {
    Session& s = *nodes_[i].session;
    ++s.round;
    s.request = std::move(request);
    s.retries = 0;
    SendRequest(i);
  }

  // Sends the round's request and arms its timeout: resent twice (as a connection would
  // retransmit), then the session ends (a restarted node then tries again, perhaps elsewhere).
  void SendRequest(int i) {
    Session& s = *nodes_[i].session;
    Send(i, s.peer, Kind::kRequest, s.id, s.round, s.request);
    const uint64_t id = s.id;
    const uint32_t round = s.round;
    s.timeout =
        net_.node(nodes_[i].ep)
            .ScheduleTimer(
                kRoundTimeout, [this, i, id, round] { OnTimeout(i, id, round); }, "sync-timeout");
  }

  void OnTimeout(int i, uint64_t id, uint32_t round) {
    Node& node = nodes_[i];
    if (!node.session || node.session->id != id || node.session->round != round) return;
    if (++node.session->retries <= 2) return SendRequest(i);
    ++totals_.session_timeouts;
    const bool retry = node.session->after_restart;
    node.session.reset();
    if (retry && node.up()) StartSession(i, true);
  }

  void OnReceive(int i, const Endpoint& from, std::string payload) {
    Node& node = nodes_[i];
    if (!node.up()) return Violation("delivery to a crashed node");
    if (payload.size() < 13) return Violation("short envelope");
    const Kind kind = static_cast<Kind>(payload[0]);
    uint64_t session;
    uint32_t round;
    std::memcpy(&session, payload.data() + 1, 8);
    std::memcpy(&round, payload.data() + 9, 4);
    const std::string_view body = std::string_view(payload).substr(13);
    const int j = index_.at(from);
    switch (kind) {
      case Kind::kBatch: {
        Result<ChangeBatch> b = DecodeChanges(body);
        if (!b.ok()) return Violation("batch: " + b.error().ToString());
        if (b->map != kMap) return Violation("batch for another map");
        ApplyRemote(i, b->changes);
        break;
      }
      case Kind::kRequest: {
        Result<SyncRequest> q = DecodeRequest(body);
        if (!q.ok()) return Violation("request: " + q.error().ToString());
        std::vector<Change> pushed;
        Result<std::string> ans = Answer(*node.map, *q, &pushed);
        if (!ans.ok()) return Violation("answer: " + ans.error().ToString());
        ApplyRemote(i, pushed);
        Send(i, j, Kind::kAnswer, session, round, *ans);
        break;
      }
      case Kind::kAnswer: {
        if (!node.session || node.session->id != session || node.session->round != round ||
            node.session->peer != j) {
          return;  // late, duplicate, or for a session that timed out
        }
        Session& s = *node.session;
        sim_.Cancel(s.timeout);
        Result<SyncSession::Step> step = s.sync->OnAnswer(*node.map, body);
        if (!step.ok()) {
          Violation("OnAnswer: " + step.error().ToString());
          node.session.reset();
          return;
        }
        ApplyRemote(i, step->received);
        if (step->request) {
          SendRound(i, std::move(*step->request));
        } else {
          ++totals_.sessions_done;
          node.synced = true;
          node.session.reset();
        }
        break;
      }
      default:
        Violation("unknown envelope");
    }
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
  int n_ = 0;
  std::vector<Node> nodes_;
  std::map<Endpoint, int> index_;
  std::map<Stamp, Change> writes_;  // every write ever made, by stamp
  uint64_t counter_ = 0;
  uint64_t trace_ = 14695981039346656037ull;  // FNV-1a over Trace()'s words
  uint64_t session_ids_ = 0;
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
  const int seeds = sim::ForEachSeed(kDefaultSeeds, [&](uint64_t seed) {
    MapSim s(seed);
    Failures f = s.Run();
    all += s.totals();
    if (verbose) {
      const Totals& t = s.totals();
      std::printf(
          "seed %llu: %llu writes (%llu lost with their node), %llu crashes (%llu from a snapshot, "
          "%llu corrupt), %llu sessions (%llu ended by timeouts), %llu expired, %llu collected, "
          "quiet after %.1f s\n",
          static_cast<unsigned long long>(seed), static_cast<unsigned long long>(t.writes),
          static_cast<unsigned long long>(t.lost_writes),
          static_cast<unsigned long long>(t.crashes),
          static_cast<unsigned long long>(t.restarts_from_snapshot),
          static_cast<unsigned long long>(t.corrupt_snapshots),
          static_cast<unsigned long long>(t.sessions),
          static_cast<unsigned long long>(t.session_timeouts),
          static_cast<unsigned long long>(t.expired), static_cast<unsigned long long>(t.collected),
          static_cast<double>(t.converge_micros) / 1e6);
    }
    return f;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "%d seeds in %.2f s: %llu writes (%llu lost with their only node), %llu crashes (%llu "
      "restarts from a snapshot, %llu corrupt snapshots refused), %llu partitions, %llu sync "
      "sessions (%llu completed, %llu ended by timeouts), %llu expired, %llu tombstones "
      "collected; slowest convergence %.1f s\n",
      seeds, secs, static_cast<unsigned long long>(all.writes),
      static_cast<unsigned long long>(all.lost_writes),
      static_cast<unsigned long long>(all.crashes),
      static_cast<unsigned long long>(all.restarts_from_snapshot),
      static_cast<unsigned long long>(all.corrupt_snapshots),
      static_cast<unsigned long long>(all.partitions),
      static_cast<unsigned long long>(all.sessions),
      static_cast<unsigned long long>(all.sessions_done),
      static_cast<unsigned long long>(all.session_timeouts),
      static_cast<unsigned long long>(all.expired), static_cast<unsigned long long>(all.collected),
      static_cast<double>(all.converge_micros) / 1e6);
  // The scenario must exercise what it claims to.
  if (seeds >= 40) {
    EXPECT_GT(all.restarts_from_snapshot, 0u);
    EXPECT_GT(all.corrupt_snapshots, 0u);
    EXPECT_GT(all.lost_writes, 0u);
    EXPECT_GT(all.collected, 0u);
    EXPECT_GT(all.expired, 0u);
    EXPECT_GT(all.session_timeouts, 0u);
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
