#include "membership/sim_cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>

namespace shoal::membership {

struct SimCluster::Node {
  Endpoint endpoint;
  MemberId id;
  SwimConfig config;
  sim::SimNode* sim_node = nullptr;
  std::unique_ptr<Driver> driver;
  std::unique_ptr<SeededRng> rng;
  std::unique_ptr<Swim> core;
  sim::TimerHandle timer;
  int64_t armed_wake = INT64_MAX;                     // the core's wakeup the pending timer is for
  int64_t stalled_until = 0;                          // global virtual time
  std::deque<std::pair<Endpoint, std::string>> held;  // packets that arrived during a stall
  std::map<MemberId, Incarnation> seen;               // incarnations observed, this life
};

class SimCluster::Driver final : public SwimOutput {
 public:
  Driver(SimCluster* cluster, int index) : cluster_(cluster), index_(index) {}
  void SendPacket(const Endpoint& to, std::string packet) override {
    cluster_->nodes_[index_]->sim_node->transport().Send(to, std::move(packet));
  }
  void RequestPushPull(const Endpoint& peer) override { cluster_->StartPushPull(index_, peer); }
  void OnMemberEvent(const MemberEvent& event) override { cluster_->OnEvent(index_, event); }

 private:
  SimCluster* cluster_;
  int index_;
};

SimCluster::SimCluster(uint64_t seed, SimClusterOptions options)
    : options_(std::move(options)),
      sim_(seed),
      net_(sim_, {.default_link = options_.link}),
      setup_rng_(sim_.DeriveRng("swim-setup")),
      stream_rng_(sim_.DeriveRng("swim-streams")) {
  for (int i = 0; i < options_.nodes; ++i) AddNode();
  if (options_.join_on_start) {
    for (int i = 0; i < options_.nodes; ++i) {
      const auto at = static_cast<int64_t>(
          setup_rng_.Uniform(static_cast<uint64_t>(std::max<int64_t>(options_.join_spread, 1))));
      sim_.Schedule(at, [this, i] { Join(i); });
    }
  }
}

SimCluster::~SimCluster() = default;

bool SimCluster::up(int i) const { return nodes_[i]->sim_node->up(); }
const Endpoint& SimCluster::endpoint(int i) const { return nodes_[i]->endpoint; }
MemberId SimCluster::id(int i) const { return nodes_[i]->id; }
Swim& SimCluster::core(int i) { return *nodes_[i]->core; }

MemberRecord SimCluster::RecordFor(int i) const {
  MemberRecord r;
  r.id = nodes_[i]->id;
  r.address = nodes_[i]->endpoint;
  r.client_port = 6379;
  r.http_port = 8080;
  r.roles = {"storage", "router"};
  r.replica_set = ReplicaSetId(static_cast<uint64_t>(i / 3 + 1));
  r.weight = 1;
  r.labels = {{"zone", "z" + std::to_string(i % 3)}};
  return r;
}

int SimCluster::AddNode(std::optional<std::string> cookie, std::optional<SwimConfig> config) {
  const int i = size();
  auto node = std::make_unique<Node>();
  node->endpoint = Endpoint{fmt::format("10.0.{}.{}", i / 250, i % 250 + 1), 7946};
  node->id = MemberId::Random(setup_rng_);
  node->config = config.value_or(options_.swim);
  if (cookie) node->config.cookie = *cookie;
  sim::ClockConfig clock;
  if (options_.drift > 0) {
    clock.rate = 1.0 - options_.drift + 2 * options_.drift * setup_rng_.UniformDouble();
  }
  node->sim_node = &net_.AddNode(
      node->endpoint,
      [this, i](const Endpoint& from, std::string payload) {
        Deliver(i, from, std::move(payload));
      },
      clock);
  node->driver = std::make_unique<Driver>(this, i);
  by_endpoint_[node->endpoint] = i;
  nodes_.push_back(std::move(node));
  Boot(i);
  return i;
}

void SimCluster::Boot(int i) {
  Node& n = *nodes_[i];
  n.rng = std::make_unique<SeededRng>(
      sim_.DeriveRng(fmt::format("swim/{}/{}", n.endpoint.ToString(), n.sim_node->generation())));
  n.core = std::make_unique<Swim>(n.config, RecordFor(i), n.sim_node->clock(), *n.rng, *n.driver);
  n.timer = {};
  n.armed_wake = INT64_MAX;
  n.stalled_until = 0;
  n.held.clear();
  n.seen.clear();
  Arm(i);
}

void SimCluster::Join(int i, std::vector<int> seeds) {
  std::vector<Endpoint> eps;
  for (int s : seeds) eps.push_back(endpoint(s));
  if (!up(i)) return;
  nodes_[i]->core->Join(std::move(eps));
  Arm(i);
}

void SimCluster::Crash(int i) {
  net_.Crash(endpoint(i));
  Node& n = *nodes_[i];
  sim_.Cancel(n.timer);
  n.armed_wake = INT64_MAX;
  n.held.clear();
}

void SimCluster::Restart(int i, std::vector<int> seeds) {
  net_.Restart(endpoint(i));
  Boot(i);
  Join(i, std::move(seeds));
}

void SimCluster::Stall(int i, int64_t duration) {
  Node& n = *nodes_[i];
  if (!up(i) || n.stalled_until > sim_.Now()) return;
  n.stalled_until = sim_.Now() + duration;
  const uint64_t gen = n.sim_node->generation();
  sim_.Schedule(duration, [this, i, gen] {
    if (up(i) && nodes_[i]->sim_node->generation() == gen) EndStall(i);
  });
}

void SimCluster::EndStall(int i) {
  Node& n = *nodes_[i];
  n.stalled_until = 0;
  // Overdue timers first, then the packets that waited: what a process that wakes from a pause
  // does when its timer wheel runs before its socket is drained.
  n.core->Tick();
  while (!n.held.empty()) {
    auto [from, payload] = std::move(n.held.front());
    n.held.pop_front();
    n.core->OnPacket(from, payload);
  }
  n.armed_wake = INT64_MAX;
  sim_.Cancel(n.timer);
  Arm(i);
}

void SimCluster::Arm(int i) {
  Node& n = *nodes_[i];
  if (!up(i) || n.stalled_until > sim_.Now()) return;
  const int64_t wake = n.core->NextWakeupMicros();
  if (wake == INT64_MAX || (n.timer.valid() && n.armed_wake <= wake)) return;
  sim_.Cancel(n.timer);
  n.armed_wake = wake;
  const int64_t local_delay = std::max<int64_t>(0, wake - n.sim_node->clock().MonotonicMicros());
  n.timer = n.sim_node->ScheduleTimer(
      local_delay, [this, i] { OnTimer(i); }, "swim");
}

void SimCluster::OnTimer(int i) {
  Node& n = *nodes_[i];
  n.timer = {};
  n.armed_wake = INT64_MAX;
  if (n.stalled_until > sim_.Now()) return;  // EndStall ticks and re-arms
  n.core->Tick();
  Arm(i);
}

void SimCluster::Deliver(int i, const Endpoint& from, std::string payload) {
  Node& n = *nodes_[i];
  if (n.stalled_until > sim_.Now()) {
    n.held.emplace_back(from, std::move(payload));
    return;
  }
  n.core->OnPacket(from, payload);
  Arm(i);
}

void SimCluster::StartPushPull(int i, const Endpoint& peer) {
  auto it = by_endpoint_.find(peer);
  if (it == by_endpoint_.end()) return;
  const int j = it->second;
  const Endpoint a = endpoint(i);
  const uint64_t gen_i = nodes_[i]->sim_node->generation();
  std::string request = nodes_[i]->core->EncodeState();
  const int64_t there = net_.Link(a, peer).delay.Sample(stream_rng_);
  const int64_t back = net_.Link(peer, a).delay.Sample(stream_rng_);
  sim_.Schedule(there, [this, i, j, a, peer, gen_i, back, request = std::move(request)] {
    // Connecting needs both directions, and both ends up.
    if (!up(j) || !up(i) || nodes_[i]->sim_node->generation() != gen_i || net_.IsBlocked(a, peer) ||
        net_.IsBlocked(peer, a)) {
      sim_.trace().Record("pushpull-fail", a.ToString() + "->" + peer.ToString());
      return;
    }
    Swim& responder = *nodes_[j]->core;
    if (!responder.MergeRemoteState(request).ok()) {
      sim_.trace().Record("pushpull-reject", a.ToString() + "->" + peer.ToString());
      Arm(j);
      return;
    }
    std::string reply = responder.EncodeState();
    Arm(j);
    sim_.Schedule(back, [this, i, a, peer, gen_i, reply = std::move(reply)] {
      if (!up(i) || nodes_[i]->sim_node->generation() != gen_i || net_.IsBlocked(peer, a)) {
        sim_.trace().Record("pushpull-fail", peer.ToString() + "->" + a.ToString());
        return;
      }
      sim_.trace().Record("pushpull-done", a.ToString() + "<->" + peer.ToString());
      (void)nodes_[i]->core->MergeRemoteState(reply);  // counted by the core if rejected
      Arm(i);
    });
  });
}

void SimCluster::OnEvent(int i, const MemberEvent& event) {
  Node& n = *nodes_[i];
  const MemberId id = event.member.record.id;
  sim_.trace().Record("swim",
                      fmt::format("{} {} {} inc={}", n.endpoint.ToString(), ToString(event.kind),
                                  id.ShortString(), event.member.incarnation.value()));
  auto [it, inserted] = n.seen.try_emplace(id, event.member.incarnation);
  if (!inserted) {
    if (event.member.incarnation < it->second) {
      Violation(fmt::format("node {} saw {}'s incarnation go back from {} to {}", i,
                            id.ShortString(), it->second.value(),
                            event.member.incarnation.value()));
    }
    it->second = event.member.incarnation;
  }
  if (on_event) on_event(i, event);
}

void SimCluster::CheckIncarnations() {
  for (int i = 0; i < size(); ++i) {
    if (!up(i)) continue;
    Node& n = *nodes_[i];
    auto table = n.core->Snapshot();
    std::map<MemberId, Incarnation> now;
    for (const Member& m : table->members()) {
      auto it = n.seen.find(m.record.id);
      if (it != n.seen.end() && m.incarnation < it->second) {
        Violation(fmt::format("node {} has {}'s incarnation back from {} to {}", i,
                              m.record.id.ShortString(), it->second.value(),
                              m.incarnation.value()));
      }
      now[m.record.id] = m.incarnation;
    }
    n.seen = std::move(now);
  }
}

void SimCluster::Violation(std::string what) {
  violations_.push_back(sim::FormatTime(sim_.Now()) + " " + std::move(what));
}

void SimCluster::Partition(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<Endpoint> ea, eb;
  for (int i : a) ea.push_back(endpoint(i));
  for (int i : b) eb.push_back(endpoint(i));
  net_.Partition(ea, eb);
}

void SimCluster::HealAll() { net_.HealAll(); }

bool SimCluster::RunUntil(const std::function<bool()>& pred, int64_t timeout, int64_t poll) {
  const int64_t deadline = sim_.Now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (sim_.Now() >= deadline) return false;
    sim_.RunFor(std::min(poll, deadline - sim_.Now()));
  }
}

std::optional<MemberState> SimCluster::StateOf(int viewer, int subject) {
  const Member* m = nodes_[viewer]->core->Find(id(subject));
  if (m == nullptr) return std::nullopt;
  return m->state;
}

bool SimCluster::ViewsAgree(const std::vector<int>& live) {
  // Counts first: cheap, and they settle last.
  for (int i : live) {
    if (nodes_[i]->core->alive_count() != live.size()) return false;
  }
  std::vector<MemberId> want;
  for (int i : live) want.push_back(id(i));
  std::sort(want.begin(), want.end());
  for (int i : live) {
    auto table = nodes_[i]->core->Snapshot();
    if (table->CountIn(MemberState::kAlive) != want.size()) return false;
    if (table->IdsIn(MemberState::kAlive) != want) return false;
  }
  return true;
}

bool SimCluster::AllSee(const std::vector<int>& viewers, int subject, MemberState state) {
  for (int v : viewers) {
    if (StateOf(v, subject) != state) return false;
  }
  return true;
}

std::string SimCluster::DescribeViews() {
  std::map<MemberId, int> index;
  for (int i = 0; i < size(); ++i) index[id(i)] = i;
  std::string out;
  for (int i = 0; i < size(); ++i) {
    if (!up(i)) continue;
    out += fmt::format("\n  node {} (inc {}, health {}):", i, core(i).incarnation().value(),
                       core(i).health_score());
    for (const Member& m : core(i).Snapshot()->members()) {
      auto it = index.find(m.record.id);
      out += fmt::format(" {}{}@{}", it == index.end() ? -1 : it->second,
                         ToString(m.state).substr(0, 1), m.incarnation.value());
    }
  }
  return out;
}

std::vector<int> SimCluster::UpNodes() const {
  std::vector<int> out;
  for (int i = 0; i < size(); ++i) {
    if (up(i)) out.push_back(i);
  }
  return out;
}

}  // namespace shoal::membership
