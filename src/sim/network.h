// Network: the simulated datagram network that simulated nodes talk through.
//
// Each node is registered with an Endpoint and a receive callback, and gets a `DatagramTransport`
// (to hand to its protocol core), a `SimClock` and node-scoped timers. A datagram sent on the
// directed link from -> to goes through these steps, in this order, each drawing from the
// network's own random stream (`Simulator::DeriveRng("network")`):
//
//   1. payload larger than `max_payload`         -> dropped, kTooLarge
//   2. no node registered at `to`                -> dropped, kNoSuchNode
//   3. sender crashed                            -> dropped, kSenderDown
//   4. receiver crashed                          -> dropped, kReceiverDown
//   5. link blocked (partition)                  -> dropped, kPartition
//   6. Bernoulli(loss)                           -> dropped, kLoss
//   7. delay sampled from the link's distribution; with probability `duplicate` a second copy is
//      made with its own independently sampled delay (a copy is never itself duplicated).
//
// On arrival a copy is delivered only if the link is still unblocked (a partition also cuts what is
// in flight), and the receiver is up *and is the same incarnation it was at send time* (a crash
// drops whatever was queued for it, even if it restarts before the datagram would have arrived).
// Reordering is not a separate knob: it happens whenever delays vary. Datagrams already sent by a
// node that then crashes are still delivered (they are on the wire).
//
// Every send, delivery, drop and duplication is recorded in the simulator's trace as
// "<kind> <from>-><to> len=<n> h=<payload hash>" (drops as "drop <reason> ..."); crashes, restarts,
// partitions and heals are recorded too.
//
// Ownership: the Network owns its SimNodes (and through them each node's transport and clock);
// references to them stay valid for the Network's lifetime. It refers to the Simulator, which must
// outlive it, and to nothing of the protocol cores except the callbacks it was given.
// Single-threaded (see simulator.h). Callbacks may re-enter the Network (send, crash,
// partition...).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/rng.h"
#include "common/transport.h"
#include "sim/sim_clock.h"
#include "sim/simulator.h"

namespace shoal::sim {

// How long a datagram spends on a link. A small closed set, each with hard bounds [min(), max()]
// so tests (and protocol timeouts) can reason about worst cases:
//   Constant(d)                 exactly d: a perfectly regular LAN, for exact-time tests.
//   Uniform(lo, hi)             uniform integer in [lo, hi]: plenty of reordering.
//   Exponential(floor, mean, cap)  floor + an exponential tail with the given overall mean, clamped
//                               at cap: most datagrams near the propagation delay, a few queued
//                               long (the usual shape of real latency).
class DelayDistribution {
 public:
  static DelayDistribution Constant(int64_t delay);
  // REQUIRES: 0 <= lo <= hi.
  static DelayDistribution Uniform(int64_t lo, int64_t hi);
  // REQUIRES: 0 <= floor <= mean <= cap.
  static DelayDistribution Exponential(int64_t floor, int64_t mean, int64_t cap);

  int64_t Sample(Rng& rng) const;
  int64_t min() const { return lo_; }
  int64_t max() const { return hi_; }
  std::string ToString() const;

 private:
  enum class Kind { kConstant, kUniform, kExponential };
  DelayDistribution(Kind kind, int64_t lo, int64_t hi, int64_t mean)
      : kind_(kind), lo_(lo), hi_(hi), mean_(mean) {}
  Kind kind_;
  int64_t lo_;
  int64_t hi_;
  int64_t mean_;
};

// The behaviour of one directed link.
struct LinkConfig {
  DelayDistribution delay = DelayDistribution::Constant(1 * kMillisecond);
  double loss = 0.0;       // probability a datagram is dropped, in [0, 1]
  double duplicate = 0.0;  // probability a delivered datagram is delivered twice, in [0, 1]
};

enum class DropReason : uint8_t {
  kLoss,          // random loss on the link
  kPartition,     // link blocked at send or arrival time
  kSenderDown,    // sent by a crashed node
  kReceiverDown,  // receiver crashed at send time, or crashed while the datagram was in flight
  kNoSuchNode,    // nobody registered at the destination endpoint
  kTooLarge,      // payload above NetworkConfig::max_payload
};
inline constexpr size_t kNumDropReasons = 6;
std::string_view DropReasonName(DropReason reason);

// Per-node counters. `sent`, `duplicated` and `dropped` count datagrams *sent by* this node (so
// drops are charged to the sender, whatever the reason); `delivered` counts datagrams *received*
// by this node. Over the whole network:
//   sum(sent) + sum(duplicated) == sum(delivered) + sum(dropped) + Network::InFlight().
struct NodeCounters {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t duplicated = 0;
  std::array<uint64_t, kNumDropReasons> dropped{};

  uint64_t dropped_by(DropReason reason) const { return dropped[static_cast<size_t>(reason)]; }
  uint64_t dropped_total() const;
  NodeCounters& operator+=(const NodeCounters& other);
};

struct NetworkConfig {
  LinkConfig default_link;  // for every link without an override, including a node to itself
  size_t max_payload = kMaxDatagramPayload;
};

class Network;

// One simulated node's attachment to the network. Created by Network::AddNode, owned by the
// Network. A node is up or crashed; each Restart starts a new incarnation (`generation()`), and
// whatever was addressed to, or scheduled by, an older incarnation never reaches the new one.
class SimNode {
 public:
  using ReceiveFn = std::function<void(const Endpoint& from, std::string payload)>;

  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }
  // Hand these to the node's protocol core.
  DatagramTransport& transport();
  SimClock& clock() { return clock_; }
  const SimClock& clock() const { return clock_; }

  bool up() const { return up_; }
  uint64_t generation() const { return generation_; }  // 0 for the first incarnation
  const NodeCounters& counters() const { return counters_; }

  // Replaces the receive callback, e.g. to point a restarted node at a fresh protocol core.
  void SetReceiver(ReceiveFn on_receive) { on_receive_ = std::move(on_receive); }

  // Runs `fn` after `local_delay` measured on this node's clock (so drift stretches or shrinks it),
  // unless the node has crashed or restarted by then: a timer belongs to one incarnation. Firings
  // (and skips) are traced as "timer <endpoint> <label>" / "timer-skip ...". Cancel through
  // Simulator::Cancel.
  TimerHandle ScheduleTimer(int64_t local_delay, std::function<void()> fn, std::string label);

 private:
  friend class Network;
  class Transport;
  SimNode(Network* network, Endpoint endpoint, ReceiveFn on_receive, const ClockConfig& clock);

  Network* network_;
  Endpoint endpoint_;
  std::string name_;  // endpoint_.ToString(), cached for traces
  ReceiveFn on_receive_;
  SimClock clock_;
  std::unique_ptr<Transport> transport_;
  bool up_ = true;
  uint64_t generation_ = 0;
  NodeCounters counters_;
};

class Network {
 public:
  Network(Simulator& sim, NetworkConfig config = {});
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  Simulator& sim() { return *sim_; }

  // Registers a node, up, at `endpoint`. REQUIRES: no node registered there yet.
  SimNode& AddNode(const Endpoint& endpoint, SimNode::ReceiveFn on_receive,
                   const ClockConfig& clock = {});
  // REQUIRES: registered.
  SimNode& node(const Endpoint& endpoint);
  SimNode* FindNode(const Endpoint& endpoint);
  // All registered endpoints, in Endpoint order.
  std::vector<Endpoint> Endpoints() const;

  // Link behaviour. An override applies to one directed link; the default to all others.
  void SetDefaultLink(const LinkConfig& link) { config_.default_link = link; }
  void SetLink(const Endpoint& from, const Endpoint& to, const LinkConfig& link);
  void SetLinkBothWays(const Endpoint& a, const Endpoint& b, const LinkConfig& link);
  void ClearLinkOverrides() { links_.clear(); }
  const LinkConfig& Link(const Endpoint& from, const Endpoint& to) const;

  // Partitions. A blocked directed link drops everything, including what is in flight on it.
  // Blocks are a set of directed links, so overlapping partitions compose and heal independently.
  void Block(const Endpoint& from, const Endpoint& to);
  void Unblock(const Endpoint& from, const Endpoint& to);
  // Symmetric: nobody in `a` hears anybody in `b` and vice versa.
  void Partition(const std::vector<Endpoint>& a, const std::vector<Endpoint>& b);
  // One-way: everything from `from` to `to` is dropped; the reverse direction still works.
  void PartitionOneWay(const std::vector<Endpoint>& from, const std::vector<Endpoint>& to);
  // Cuts `node` off from every other registered node, both ways.
  void Isolate(const Endpoint& node);
  // Undoes Partition / PartitionOneWay with the same arguments.
  void Heal(const std::vector<Endpoint>& a, const std::vector<Endpoint>& b);
  void HealAll();
  bool IsBlocked(const Endpoint& from, const Endpoint& to) const;

  // Crash: the node stops sending and receiving, its queued deliveries and timers are void.
  // Restart: a new incarnation, up again. Both are no-ops if already in that state.
  void Crash(const Endpoint& node);
  void Restart(const Endpoint& node);
  // Runs `fn` at every crash, after the node went down (the RPC streams reset its connections),
  // until removed with the id returned.
  uint64_t AddCrashObserver(std::function<void(const Endpoint&)> fn) {
    crash_observers_[++next_observer_] = std::move(fn);
    return next_observer_;
  }
  void RemoveCrashObserver(uint64_t id) { crash_observers_.erase(id); }

  // Datagrams on the wire (sent, not yet delivered or dropped), counting duplicate copies.
  uint64_t InFlight() const { return in_flight_; }
  NodeCounters Totals() const;

 private:
  friend class SimNode;
  struct Datagram {
    Endpoint from;
    Endpoint to;
    std::string payload;
    uint64_t payload_hash;
    uint64_t to_generation;
  };

  void Send(SimNode& from, const Endpoint& to, std::string payload);
  void ScheduleDelivery(Datagram datagram, int64_t delay);
  void Deliver(Datagram datagram);
  void Drop(SimNode* sender, const Endpoint& from, const Endpoint& to, size_t len,
            uint64_t payload_hash, DropReason reason);
  void TraceDatagram(std::string_view kind, const Endpoint& from, const Endpoint& to, size_t len,
                     uint64_t payload_hash);

  Simulator* sim_;
  NetworkConfig config_;
  SeededRng rng_;
  std::map<Endpoint, std::unique_ptr<SimNode>> nodes_;
  std::map<std::pair<Endpoint, Endpoint>, LinkConfig> links_;
  std::set<std::pair<Endpoint, Endpoint>> blocked_;
  uint64_t in_flight_ = 0;
  std::map<uint64_t, std::function<void(const Endpoint&)>> crash_observers_;
  uint64_t next_observer_ = 0;
};

}  // namespace shoal::sim
