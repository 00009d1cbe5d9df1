// SimCluster: N Swim cores over the deterministic simulator (sim/), for scenario tests and the
// benchmark. It is the simulated driver: it carries datagrams over sim::Network, calls Tick when a
// core's NextWakeupMicros() falls due (on that node's drifting SimClock), and performs push-pull
// exchanges as a stream would (a delay each way, failing across a partition or to a crashed node;
// no loss, since TCP retransmits). Each core gets an Rng derived from (seed, node, generation), so
// a run is a pure function of the seed.
//
// Faults beyond the network's: Stall(i, d) freezes node i for d, the way a GC pause or a
// descheduled process does — its timers and packets wait, and when it wakes its overdue timers run
// before the packets that queued meanwhile (the order that makes a slow node accuse others).
// Push-pull exchanges are not held by a stall (they are rare, and a real driver would run the
// stream on the same thread, so this errs on the kind side).
//
// Observation: every member event is recorded in the simulator's trace ("swim <node> <kind>
// <member>"), passed to `on_event`, and checked for incarnations going backwards; `violations()`
// collects every such breach with its time.
//
// Single-threaded, like the simulator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "membership/swim.h"
#include "sim/network.h"
#include "sim/simulator.h"

namespace shoal::membership {

struct SimClusterOptions {
  int nodes = 5;
  SwimConfig swim = DefaultConfig();
  sim::LinkConfig link{.delay = sim::DelayDistribution::Uniform(1 * kMs, 5 * kMs)};
  // Each node's clock runs at a rate drawn from [1 - drift, 1 + drift].
  double drift = 0.0;
  // Every node joins through node 0 at start, at a random instant within `join_spread`.
  bool join_on_start = true;
  int64_t join_spread = 1 * kSec;

  static SwimConfig DefaultConfig() {
    SwimConfig c;
    c.cookie = "sim-cookie";
    return c;
  }
};

class SimCluster {
 public:
  SimCluster(uint64_t seed, SimClusterOptions options);
  ~SimCluster();
  SimCluster(const SimCluster&) = delete;
  SimCluster& operator=(const SimCluster&) = delete;

  sim::Simulator& sim() { return sim_; }
  sim::Network& net() { return net_; }
  int64_t Now() const { return sim_.Now(); }
  int size() const { return static_cast<int>(nodes_.size()); }
  const Endpoint& endpoint(int i) const;
  MemberId id(int i) const;
  bool up(int i) const;
  // The node's current core. REQUIRES: the node has one (it was not crashed since its last start).
  Swim& core(int i);

  // Adds a node (not yet joined), with its own cookie if given. Returns its index.
  int AddNode(std::optional<std::string> cookie = std::nullopt,
              std::optional<SwimConfig> config = std::nullopt);
  void Join(int i, std::vector<int> seeds = {0});
  void Crash(int i);
  // Restarts a crashed node with a fresh core (memory lost) and the same id, and joins it through
  // `seeds`.
  void Restart(int i, std::vector<int> seeds = {0});
  void Stall(int i, int64_t duration);
  void Partition(const std::vector<int>& a, const std::vector<int>& b);
  void HealAll();

  void RunFor(int64_t duration) { sim_.RunFor(duration); }
  // Runs until `pred` holds or `timeout` of virtual time passes; returns whether it held. `pred`
  // is checked every `poll` of virtual time (so Now() overshoots by less than `poll`): views of
  // large clusters are too costly to compare after every event.
  bool RunUntil(const std::function<bool()>& pred, int64_t timeout, int64_t poll = 10 * kMs);

  // Node `viewer`'s opinion of node `subject`; nullopt if it does not know it.
  std::optional<MemberState> StateOf(int viewer, int subject);
  // Whether every node in `live` (up, not left) sees exactly the members of `live` alive and no
  // one else alive.
  bool ViewsAgree(const std::vector<int>& live);
  // Whether every node in `viewers` sees `subject` in `state`.
  bool AllSee(const std::vector<int>& viewers, int subject, MemberState state);
  std::vector<int> UpNodes() const;
  // One line per up node: its view as "<node index><state letter>@<incarnation>" per member,
  // for failure messages.
  std::string DescribeViews();

  // Called on every member event (after the cluster's own checks).
  std::function<void(int node, const MemberEvent& event)> on_event;
  const std::vector<std::string>& violations() const { return violations_; }
  // Checks every live view for incarnations lower than seen before.
  void CheckIncarnations();

 private:
  struct Node;
  class Driver;

  void Boot(int i);
  void Arm(int i);
  void OnTimer(int i);
  void Deliver(int i, const Endpoint& from, std::string payload);
  void EndStall(int i);
  void StartPushPull(int i, const Endpoint& peer);
  void OnEvent(int i, const MemberEvent& event);
  void Violation(std::string what);
  MemberRecord RecordFor(int i) const;

  SimClusterOptions options_;
  sim::Simulator sim_;
  sim::Network net_;
  SeededRng setup_rng_;
  SeededRng stream_rng_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<Endpoint, int> by_endpoint_;
  std::vector<std::string> violations_;
};

}  // namespace shoal::membership
