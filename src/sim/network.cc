#include "sim/network.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <optional>

#include "common/hash.h"

namespace shoal::sim {

// ---- DelayDistribution ----

DelayDistribution DelayDistribution::Constant(int64_t delay) {
  delay = std::max<int64_t>(delay, 0);
  return DelayDistribution(Kind::kConstant, delay, delay, delay);
}

DelayDistribution DelayDistribution::Uniform(int64_t lo, int64_t hi) {
  assert(0 <= lo && lo <= hi);
  return DelayDistribution(Kind::kUniform, lo, hi, lo + (hi - lo) / 2);
}

DelayDistribution DelayDistribution::Exponential(int64_t floor, int64_t mean, int64_t cap) {
  assert(0 <= floor && floor <= mean && mean <= cap);
  return DelayDistribution(Kind::kExponential, floor, cap, mean);
}

int64_t DelayDistribution::Sample(Rng& rng) const {
  switch (kind_) {
    case Kind::kConstant:
      return lo_;
    case Kind::kUniform:
      return lo_ + static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(hi_ - lo_) + 1));
    case Kind::kExponential: {
      // Inverse CDF; UniformDouble() < 1 so the log is finite.
      const double tail = -std::log1p(-rng.UniformDouble()) * static_cast<double>(mean_ - lo_);
      const double capped = std::min(tail, static_cast<double>(hi_ - lo_));
      return lo_ + static_cast<int64_t>(std::llround(capped));
    }
  }
  return lo_;
}

std::string DelayDistribution::ToString() const {
  switch (kind_) {
    case Kind::kConstant:
      return fmt::format("constant({}us)", lo_);
    case Kind::kUniform:
      return fmt::format("uniform({}us, {}us)", lo_, hi_);
    case Kind::kExponential:
      return fmt::format("exponential(floor={}us, mean={}us, cap={}us)", lo_, mean_, hi_);
  }
  return "?";
}

// ---- Counters ----

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kLoss:
      return "loss";
    case DropReason::kPartition:
      return "partition";
    case DropReason::kSenderDown:
      return "sender-down";
    case DropReason::kReceiverDown:
      return "receiver-down";
    case DropReason::kNoSuchNode:
      return "no-such-node";
    case DropReason::kTooLarge:
      return "too-large";
  }
  return "?";
}

uint64_t NodeCounters::dropped_total() const {
  uint64_t total = 0;
  for (uint64_t d : dropped) total += d;
  return total;
}

NodeCounters& NodeCounters::operator+=(const NodeCounters& other) {
  sent += other.sent;
  delivered += other.delivered;
  duplicated += other.duplicated;
  for (size_t i = 0; i < kNumDropReasons; ++i) dropped[i] += other.dropped[i];
  return *this;
}

// ---- SimNode ----

class SimNode::Transport final : public DatagramTransport {
 public:
  explicit Transport(SimNode* node) : node_(node) {}
  void Send(const Endpoint& to, std::string payload) override {
    node_->network_->Send(*node_, to, std::move(payload));
  }

 private:
  SimNode* node_;
};

SimNode::SimNode(Network* network, Endpoint endpoint, ReceiveFn on_receive,
                 const ClockConfig& clock)
    : network_(network),
      endpoint_(std::move(endpoint)),
      name_(endpoint_.ToString()),
      on_receive_(std::move(on_receive)),
      clock_(*network->sim_, clock),
      transport_(std::make_unique<Transport>(this)) {}

DatagramTransport& SimNode::transport() { return *transport_; }

TimerHandle SimNode::ScheduleTimer(int64_t local_delay, std::function<void()> fn,
                                   std::string label) {
  Simulator& sim = *network_->sim_;
  const uint64_t generation = generation_;
  return sim.Schedule(clock_.GlobalDelayFor(local_delay),
                      [this, generation, fn = std::move(fn), label = std::move(label)] {
                        Trace& trace = network_->sim_->trace();
                        if (!up_ || generation_ != generation) {
                          trace.Record("timer-skip", fmt::format("{} {}", name_, label));
                          return;
                        }
                        trace.Record("timer", fmt::format("{} {}", name_, label));
                        fn();
                      });
}

// ---- Network ----

Network::Network(Simulator& sim, NetworkConfig config)
    : sim_(&sim), config_(std::move(config)), rng_(sim.DeriveRng("network")) {}

Network::~Network() = default;

SimNode& Network::AddNode(const Endpoint& endpoint, SimNode::ReceiveFn on_receive,
                          const ClockConfig& clock) {
  assert(!nodes_.contains(endpoint));
  auto node = std::unique_ptr<SimNode>(new SimNode(this, endpoint, std::move(on_receive), clock));
  SimNode& ref = *node;
  nodes_.emplace(endpoint, std::move(node));
  return ref;
}

SimNode& Network::node(const Endpoint& endpoint) {
  SimNode* node = FindNode(endpoint);
  assert(node != nullptr);
  return *node;
}

SimNode* Network::FindNode(const Endpoint& endpoint) {
  auto it = nodes_.find(endpoint);
  return it == nodes_.end() ? nullptr : it->second.get();
}

std::vector<Endpoint> Network::Endpoints() const {
  std::vector<Endpoint> out;
  out.reserve(nodes_.size());
  for (const auto& [endpoint, node] : nodes_) out.push_back(endpoint);
  return out;
}

void Network::SetLink(const Endpoint& from, const Endpoint& to, const LinkConfig& link) {
  links_.insert_or_assign({from, to}, link);
}

void Network::SetLinkBothWays(const Endpoint& a, const Endpoint& b, const LinkConfig& link) {
  SetLink(a, b, link);
  SetLink(b, a, link);
}

const LinkConfig& Network::Link(const Endpoint& from, const Endpoint& to) const {
  auto it = links_.find({from, to});
  return it == links_.end() ? config_.default_link : it->second;
}

void Network::Block(const Endpoint& from, const Endpoint& to) {
  if (blocked_.insert({from, to}).second) {
    sim_->trace().Record("block", fmt::format("{}->{}", from.ToString(), to.ToString()));
  }
}

void Network::Unblock(const Endpoint& from, const Endpoint& to) {
  if (blocked_.erase({from, to}) > 0) {
    sim_->trace().Record("unblock", fmt::format("{}->{}", from.ToString(), to.ToString()));
  }
}

void Network::Partition(const std::vector<Endpoint>& a, const std::vector<Endpoint>& b) {
  PartitionOneWay(a, b);
  PartitionOneWay(b, a);
}

void Network::PartitionOneWay(const std::vector<Endpoint>& from, const std::vector<Endpoint>& to) {
  for (const Endpoint& f : from) {
    for (const Endpoint& t : to) {
      if (f != t) Block(f, t);
    }
  }
}

void Network::Isolate(const Endpoint& node) {
  std::vector<Endpoint> others;
  for (const auto& [endpoint, n] : nodes_) {
    if (endpoint != node) others.push_back(endpoint);
  }
  Partition({node}, others);
}

void Network::Heal(const std::vector<Endpoint>& a, const std::vector<Endpoint>& b) {
  for (const Endpoint& x : a) {
    for (const Endpoint& y : b) {
      Unblock(x, y);
      Unblock(y, x);
    }
  }
}

void Network::HealAll() {
  if (blocked_.empty()) return;
  blocked_.clear();
  sim_->trace().Record("heal-all", "");
}

bool Network::IsBlocked(const Endpoint& from, const Endpoint& to) const {
  return blocked_.contains({from, to});
}

void Network::Crash(const Endpoint& endpoint) {
  SimNode& n = node(endpoint);
  if (!n.up_) return;
  n.up_ = false;
  sim_->trace().Record("crash", n.name_);
  for (const auto& [id, fn] : crash_observers_) fn(endpoint);
}

void Network::Restart(const Endpoint& endpoint) {
  SimNode& n = node(endpoint);
  if (n.up_) return;
  n.up_ = true;
  ++n.generation_;
  sim_->trace().Record("restart", fmt::format("{} gen={}", n.name_, n.generation_));
}

NodeCounters Network::Totals() const {
  NodeCounters total;
  for (const auto& [endpoint, node] : nodes_) total += node->counters_;
  return total;
}

void Network::TraceDatagram(std::string_view kind, const Endpoint& from, const Endpoint& to,
                            size_t len, uint64_t payload_hash) {
  sim_->trace().Record(kind, fmt::format("{}->{} len={} h={:016x}", from.ToString(), to.ToString(),
                                         len, payload_hash));
}

void Network::Drop(SimNode* sender, const Endpoint& from, const Endpoint& to, size_t len,
                   uint64_t payload_hash, DropReason reason) {
  if (sender != nullptr) ++sender->counters_.dropped[static_cast<size_t>(reason)];
  sim_->trace().Record("drop", fmt::format("{} {}->{} len={} h={:016x}", DropReasonName(reason),
                                           from.ToString(), to.ToString(), len, payload_hash));
}

void Network::Send(SimNode& from, const Endpoint& to, std::string payload) {
  const uint64_t payload_hash = Hash64(payload);
  const size_t len = payload.size();
  ++from.counters_.sent;
  TraceDatagram("send", from.endpoint_, to, len, payload_hash);

  const SimNode* receiver = FindNode(to);
  std::optional<DropReason> drop;
  if (len > config_.max_payload) {
    drop = DropReason::kTooLarge;
  } else if (receiver == nullptr) {
    drop = DropReason::kNoSuchNode;
  } else if (!from.up_) {
    drop = DropReason::kSenderDown;
  } else if (!receiver->up_) {
    drop = DropReason::kReceiverDown;
  } else if (IsBlocked(from.endpoint_, to)) {
    drop = DropReason::kPartition;
  }
  if (drop) return Drop(&from, from.endpoint_, to, len, payload_hash, *drop);

  const LinkConfig& link = Link(from.endpoint_, to);
  if (rng_.Bernoulli(link.loss)) {
    return Drop(&from, from.endpoint_, to, len, payload_hash, DropReason::kLoss);
  }
  const int64_t delay = link.delay.Sample(rng_);
  const bool duplicate = rng_.Bernoulli(link.duplicate);
  Datagram datagram{from.endpoint_, to, std::move(payload), payload_hash, receiver->generation_};
  if (duplicate) {
    const int64_t copy_delay = link.delay.Sample(rng_);
    ++from.counters_.duplicated;
    TraceDatagram("dup", from.endpoint_, to, len, payload_hash);
    ScheduleDelivery(datagram, copy_delay);
  }
  ScheduleDelivery(std::move(datagram), delay);
}

void Network::ScheduleDelivery(Datagram datagram, int64_t delay) {
  ++in_flight_;
  sim_->Schedule(
      delay, [this, datagram = std::move(datagram)]() mutable { Deliver(std::move(datagram)); });
}

void Network::Deliver(Datagram datagram) {
  --in_flight_;
  SimNode* sender = FindNode(datagram.from);
  SimNode& receiver = node(datagram.to);
  const size_t len = datagram.payload.size();
  if (!receiver.up_ || receiver.generation_ != datagram.to_generation) {
    return Drop(sender, datagram.from, datagram.to, len, datagram.payload_hash,
                DropReason::kReceiverDown);
  }
  if (IsBlocked(datagram.from, datagram.to)) {
    return Drop(sender, datagram.from, datagram.to, len, datagram.payload_hash,
                DropReason::kPartition);
  }
  ++receiver.counters_.delivered;
  TraceDatagram("deliver", datagram.from, datagram.to, len, datagram.payload_hash);
  // A copy, so the callback may replace the receiver (SetReceiver) while it runs.
  const SimNode::ReceiveFn on_receive = receiver.on_receive_;
  if (on_receive) on_receive(datagram.from, std::move(datagram.payload));
}

}  // namespace shoal::sim
