#include "node/cluster.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/log.h"
#include "node/engine.h"

namespace shoal::node {
namespace {

constexpr std::string_view kPushPullMethod = "membership.pushpull";
constexpr int64_t kPushPullTimeoutMs = 5000;
constexpr std::string_view kDevelopmentCookie = "shoal-development-cookie";

Status WriteFileAtomically(const std::filesystem::path& path, const std::string& content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << content << "\n";
    f.flush();
    if (!f) {
      return Error(std::make_error_code(std::errc::io_error), "cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Error(ec, "cannot rename " + tmp.string() + ": " + ec.message());
  return Status::Ok();
}

std::string ReadFirstLine(const std::filesystem::path& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

Result<NodeIdentity> LoadIdentity(const std::string& data_dir, Rng& rng) {
  if (data_dir.empty()) return NodeIdentity{membership::MemberId::Random(rng), Incarnation(0)};
  const std::filesystem::path dir(data_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error(ec, "cannot create data dir " + data_dir + ": " + ec.message());
  NodeIdentity identity;
  const auto id_path = dir / "node.id";
  if (std::filesystem::exists(id_path)) {
    auto id = membership::MemberId::Parse(ReadFirstLine(id_path));
    if (!id || id->empty()) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   id_path.string() + " does not hold a node id (32 hex digits)");
    }
    identity.id = *id;
  } else {
    identity.id = membership::MemberId::Random(rng);
    Status st = WriteFileAtomically(id_path, identity.id.ToString());
    if (!st.ok()) return st.error();
  }
  const auto inc_path = dir / "incarnation";
  uint64_t inc = 0;
  if (std::filesystem::exists(inc_path)) {
    try {
      inc = std::stoull(ReadFirstLine(inc_path)) + 1;
    } catch (...) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   inc_path.string() + " does not hold a number");
    }
  }
  identity.incarnation = Incarnation(inc);
  Status st = WriteFileAtomically(inc_path, std::to_string(inc));
  if (!st.ok()) return st.error();
  return identity;
}

ClusterNode::ClusterNode(const config::ServerConfig& cfg, Engine* engine)
    : cfg_(cfg), engine_(engine), clock_(SystemClock::Instance()) {}

ClusterNode::~ClusterNode() { Stop(); }

std::vector<Endpoint> ClusterNode::ResolveSeeds() const {
  std::vector<Endpoint> seeds;
  for (const std::string& s : cfg_.seeds) {
    if (auto ep = Endpoint::Parse(s)) seeds.push_back(*ep);
  }
  return seeds;
}

Status ClusterNode::Start() {
  auto identity = LoadIdentity(cfg_.data_dir, rng_);
  if (!identity.ok()) return identity.error();
  identity_ = *identity;

  std::string cookie = cfg_.cookie;
  if (cookie.empty()) {
    cookie = std::string(kDevelopmentCookie);
    SHOAL_LOG_WARN(
        "no cluster cookie set (--cookie, --cookie-file or SHOAL_COOKIE): using the built-in "
        "development cookie; anyone who can reach the cluster port can join this cluster");
  }
  std::string host = cfg_.advertise_address.empty() ? cfg_.bind : cfg_.advertise_address;
  if (host == "0.0.0.0" || host == "::") {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "bind is a wildcard address: set --advertise-address to the address peers use");
  }

  // UDP first (it may pick the port), then TCP on the same number.
  const uint16_t want = static_cast<uint16_t>(cfg_.EffectiveClusterPort());
  auto udp = net::UdpSocket::Open(
      &loop_, cfg_.bind, want,
      [this](const Endpoint& from, std::string_view payload) { swim_->OnPacket(from, payload); });
  if (!udp.ok()) return Error(udp.error().code(), "cluster port (UDP): " + udp.error().message());
  udp_ = std::move(*udp);
  const uint16_t port = udp_->port();
  rpc_server_ = std::make_unique<net::RpcServer>(&loop_, cfg_.bind, port, cookie);
  rpc_server_->Register(std::string(kPushPullMethod),
                        [this](std::string_view body, net::Responder responder) {
                          Status st = swim_->MergeRemoteState(body);
                          if (!st.ok()) {
                            responder.Fail(st.error().message());
                            return;
                          }
                          responder.Reply(swim_->EncodeState());
                          Publish();
                        });
  Status st = rpc_server_->Start();
  if (!st.ok()) return Error(st.error().code(), "cluster port (TCP): " + st.error().message());
  rpc_client_ = std::make_unique<net::RpcClient>(&loop_, cookie);

  advertise_ = Endpoint{host, port};
  membership::MemberRecord self;
  self.id = identity_.id;
  self.address = advertise_;
  self.client_port = static_cast<uint16_t>(cfg_.port);
  self.http_port = static_cast<uint16_t>(std::max(cfg_.http_port, 0));
  self.roles = {"storage", "router"};
  membership::SwimConfig swim_cfg;
  swim_cfg.cookie = cookie;
  swim_ = std::make_unique<membership::Swim>(swim_cfg, self, clock_, rng_, *this,
                                             identity_.incarnation);
  swim_->Join(ResolveSeeds());
  if (engine_ != nullptr && cfg_.cluster_enabled) {
    sharding::CoreOptions opts;
    // Alone (no seeds, no discovery): serve at once; otherwise let the membership settle.
    if (cfg_.seeds.empty() && cfg_.discovery_dns.empty()) {
      opts.settle_us = 0;
    } else {
      opts.join_before_adopting = true;
    }
    sharding_ = std::make_unique<ShardingDriver>(engine_, &loop_, rpc_client_.get(), identity_.id,
                                                 &clock_, opts);
    sharding_->Register(rpc_server_.get());
    engine_->set_cluster_cookie(cookie);
  }
  bus_ = std::make_unique<Bus>(engine_, &loop_, rpc_client_.get(), identity_.id, &clock_);
  bus_->Register(rpc_server_.get());
  if (engine_ != nullptr) {
    engine_->replicated().set_self(identity_.id);
    replicated_ = std::make_unique<ReplicatedDriver>(&engine_->replicated(), bus_.get(), &loop_,
                                                     rpc_client_.get(), identity_.id, &clock_);
    replicated_->Register(rpc_server_.get());
  }
  Publish();
  if (replicated_ != nullptr) replicated_->Start();
  if (sharding_ != nullptr) {
    // A node alone takes every bucket now (the loop is not running yet: this thread may drive
    // the core), so it serves from its first command; others wait for the coordinator.
    sharding_->Tick();
    engine_->plane().set_enabled(true);
  }
  loop_.RunEvery(10, [this] { OnTick(); });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "shoal-control");
    loop_.Run();
  });
  started_ = true;
  if (!cfg_.discovery_dns.empty()) dns_thread_ = std::thread([this] { DnsLoop(); });
  SHOAL_LOG_INFO("cluster: node {} (incarnation {}) on {} (UDP+TCP), {} seed(s)",
                 identity_.id.ToString(), identity_.incarnation.value(), advertise_.ToString(),
                 cfg_.seeds.size());
  return Status::Ok();
}

void ClusterNode::OnTick() {
  if (clock_.MonotonicMicros() >= swim_->NextWakeupMicros()) swim_->Tick();
  Publish();
  if (sharding_ != nullptr) sharding_->Tick();
  if (bus_ != nullptr) bus_->Tick();
  if (replicated_ != nullptr) replicated_->Tick();
  std::lock_guard<std::mutex> lock(mu_);
  counters_ = swim_->counters();
  handshake_failures_ = rpc_server_->stats().handshake_failures;
}

void ClusterNode::Publish() {
  auto snap = swim_->Snapshot();
  if (snap->version() == published_version_) return;
  published_version_ = snap->version();
  {
    std::lock_guard<std::mutex> lock(mu_);
    table_ = snap;
  }
  if (engine_ != nullptr) engine_->PublishMembers(snap);
  if (sharding_ != nullptr) sharding_->OnView(snap);
  if (bus_ != nullptr) bus_->OnView(snap);
  if (replicated_ != nullptr) replicated_->OnView(snap);
}

void ClusterNode::SendPacket(const Endpoint& to, std::string packet) {
  udp_->Send(to, std::move(packet));
}

void ClusterNode::RequestPushPull(const Endpoint& peer) {
  // Not from inside the Swim call that asked for it: post, then encode.
  loop_.Post([this, peer] {
    if (swim_->phase() == membership::Swim::Phase::kLeft) return;
    rpc_client_->Call(peer, kPushPullMethod, swim_->EncodeState(), kPushPullTimeoutMs,
                      [this, peer](Result<std::string> reply) {
                        if (!reply.ok()) {
                          SHOAL_LOG_DEBUG("cluster: push-pull with {} failed: {}", peer.ToString(),
                                          reply.error().message());
                          return;
                        }
                        Status st = swim_->MergeRemoteState(*reply);
                        if (!st.ok()) {
                          SHOAL_LOG_WARN("cluster: state from {} rejected: {}", peer.ToString(),
                                         st.error().message());
                        }
                        Publish();
                      });
  });
}

void ClusterNode::OnMemberEvent(const membership::MemberEvent& event) {
  for (auto& fn : subscribers_) fn(event);
  const membership::Member& m = event.member;
  SHOAL_LOG_INFO("cluster: member {} at {} is {} (incarnation {})", m.record.id.ToString(),
                 m.record.address.ToString(), membership::ToString(event.kind),
                 m.incarnation.value());
}

std::shared_ptr<const membership::MemberTable> ClusterNode::members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

membership::SwimCounters ClusterNode::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

uint64_t ClusterNode::rpc_handshake_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handshake_failures_;
}

void ClusterNode::Join(std::vector<Endpoint> seeds) {
  if (!started_) return;
  loop_.Post([this, seeds = std::move(seeds)]() mutable {
    swim_->Join(std::move(seeds));
    Publish();
  });
}

sharding::LeaveStep ClusterNode::DrainBuckets(const std::function<bool()>& forced,
                                              int64_t report_ms) {
  if (!started_ || sharding_ == nullptr) return sharding::LeaveStep::kDrained;
  loop_.Post([this] {
    // Tell the others first (the coordinator may be another node), then stop owning.
    membership::MemberRecord rec = swim_->self();
    rec.labels[std::string(sharding::kLeavingLabel)] = "1";
    Status st = swim_->UpdateSelf(rec);
    if (!st.ok()) SHOAL_LOG_WARN("cluster: cannot mark self leaving: {}", st.error().message());
    sharding_->SetLeaving();
    Publish();
  });
  // No deadline: buckets that cannot go yet (a failing migration) are asked for again by the
  // coordinator, and giving up would drop their keys while a member could still take them. The
  // wait ends when nothing is held, when no member that is not leaving is left to take it (the
  // view decides: leaving, dead and departed members do not count), or when forced.
  const auto start = std::chrono::steady_clock::now();
  auto next_report = start + std::chrono::milliseconds(report_ms);
  for (;;) {
    const auto snap = sharding_->snapshot();
    if (snap.leaving) {
      const sharding::LeaveStep step =
          sharding::NextLeaveStep(snap.drained, forced(), snap.takers.size(), snap.outgoing);
      if (step != sharding::LeaveStep::kWait) return step;
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_report) {
        next_report = now + std::chrono::milliseconds(report_ms);
        std::string takers;
        for (const auto& id : snap.takers) takers += (takers.empty() ? "" : ",") + id.ShortString();
        SHOAL_LOG_WARN(
            "cluster: leaving for {} s, still holding {} bucket(s) ({}) with about {} keys; {} "
            "migration(s) out; members that can take them: {}; last migration failure: {} "
            "(retrying; 'shoal leave --force' or another SIGTERM exits keeping them)",
            std::chrono::duration_cast<std::chrono::seconds>(now - start).count(), snap.held.size(),
            sharding::FormatBuckets(snap.held), snap.keys, snap.outgoing,
            takers.empty() ? "none" : takers,
            snap.last_failure.empty() ? "none" : snap.last_failure);
      }
    } else if (forced()) {
      return sharding::LeaveStep::kForced;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ClusterNode::Leave(int64_t timeout_ms) {
  if (!started_) return;
  std::atomic<bool> left{false};
  loop_.Post([this] { swim_->Leave(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    loop_.Post([this, &left] {
      if (swim_->phase() == membership::Swim::Phase::kLeft) left = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (left.load()) break;
  }
  // Let the last poll task run before `left` goes out of scope.
  std::atomic<bool> drained{false};
  loop_.Post([&drained] { drained = true; });
  while (!drained.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void ClusterNode::DnsLoop() {
  pthread_setname_np(pthread_self(), "shoal-dns");
  auto target = Endpoint::Parse(cfg_.discovery_dns);
  if (!target) return;
  std::set<std::string> known;
  std::unique_lock<std::mutex> lock(dns_mu_);
  while (!dns_stop_) {
    lock.unlock();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    std::vector<Endpoint> fresh;
    const int rc = getaddrinfo(target->host.c_str(), nullptr, &hints, &res);
    if (rc == 0) {
      for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN] = {0};
        if (ai->ai_family == AF_INET) {
          inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, host,
                    sizeof host);
        } else if (ai->ai_family == AF_INET6) {
          inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, host,
                    sizeof host);
        } else {
          continue;
        }
        Endpoint ep{host, target->port};
        if (ep == advertise_) continue;
        if (known.insert(ep.ToString()).second) fresh.push_back(ep);
      }
      freeaddrinfo(res);
    } else {
      SHOAL_LOG_DEBUG("cluster: DNS discovery of {} failed: {}", target->host, gai_strerror(rc));
    }
    if (!fresh.empty()) {
      SHOAL_LOG_INFO("cluster: DNS discovery found {} new address(es) for {}", fresh.size(),
                     target->host);
      Join(std::move(fresh));
    }
    lock.lock();
    dns_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return dns_stop_; });
  }
}

void ClusterNode::Stop() {
  if (!started_) return;
  {
    std::lock_guard<std::mutex> lock(dns_mu_);
    dns_stop_ = true;
  }
  dns_cv_.notify_all();
  if (dns_thread_.joinable()) dns_thread_.join();
  started_ = false;
  loop_.Post([this] {
    replicated_.reset();
    rpc_client_->Shutdown();
    rpc_server_->Stop();
    udp_.reset();
  });
  loop_.Stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace shoal::node
