#include "node/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "common/crypto.h"
#include "common/log.h"
#include "engine/engine.h"

namespace shoal::node {

using engine::Engine;
namespace {

constexpr std::string_view kPushPullMethod = "membership.pushpull";
constexpr int64_t kPushPullTimeoutMs = 5000;
constexpr std::string_view kDevelopmentCookie = "shoal-development-cookie";

// The first line of `path`, without trailing blanks; "" if it cannot be read.
std::string ReadFirstLine(Env& env, const std::string& path) {
  Result<std::string> text = env.ReadFile(path);
  std::string line;
  if (text.ok()) line = text->substr(0, text->find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

constexpr std::string_view kPeersHeader = "shoal-peers 1";
constexpr int64_t kPeersSaveIntervalUs = 1'000'000;
constexpr int64_t kAloneLogIntervalUs = 10'000'000;
constexpr int64_t kRequirepassCheckIntervalUs = 1'000'000;
// How long a stopping service's requests in flight may take to be answered.
constexpr int64_t kServiceDrainMs = 2000;

}  // namespace

Result<std::vector<Endpoint>> LoadPeers(const std::string& data_dir, Env& env) {
  std::vector<Endpoint> peers;
  if (data_dir.empty()) return peers;
  const std::filesystem::path path = std::filesystem::path(data_dir) / kPeersFileName;
  if (!env.Exists(path.string())) return peers;
  Result<std::string> text = env.ReadFile(path.string());
  if (!text.ok()) return text.error();
  std::istringstream f(*text);
  auto bad = [&](const std::string& why) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 fmt::format("{} is not a valid peers file ({}); remove it to start without the "
                             "remembered peers (or start with --new-cluster)",
                             path.string(), why));
  };
  std::string line;
  if (!std::getline(f, line) || line != kPeersHeader) {
    return bad(fmt::format("first line is not '{}'", kPeersHeader));
  }
  bool ended = false;
  size_t lineno = 1;
  while (std::getline(f, line)) {
    ++lineno;
    if (ended) {
      if (line.empty()) continue;
      return bad(fmt::format("line {}: text after the end line", lineno));
    }
    if (line.starts_with("end ")) {
      size_t count = 0;
      const std::string n = line.substr(4);
      auto [p, err] = std::from_chars(n.data(), n.data() + n.size(), count);
      if (err != std::errc() || p != n.data() + n.size() || count != peers.size()) {
        return bad(fmt::format("line {}: end line '{}' does not match {} address(es)", lineno,
                               line.substr(0, 64), peers.size()));
      }
      ended = true;
      continue;
    }
    const bool printable = std::all_of(line.begin(), line.end(), [](char c) {
      return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
    auto ep = printable ? Endpoint::Parse(line) : std::nullopt;
    if (!ep || ep->port == 0) {
      return bad(fmt::format("line {}: '{}' is not host:port", lineno, line.substr(0, 64)));
    }
    peers.push_back(std::move(*ep));
  }
  if (!ended) return bad("no end line: truncated");
  return peers;
}

Status SavePeers(const std::string& data_dir, const std::vector<Endpoint>& peers, Env& env) {
  std::string text(kPeersHeader);
  text += "\n";
  for (const Endpoint& p : peers) text += p.ToString() + "\n";
  text += fmt::format("end {}\n", peers.size());
  return WriteFileAtomically(env, (std::filesystem::path(data_dir) / kPeersFileName).string(),
                             text);
}

std::string RequirepassFingerprint(std::string_view cookie, std::string_view password) {
  if (password.empty()) return "none";
  std::string data = "shoal-requirepass:";
  data += password;
  const Sha256Digest d = HmacSha256(cookie, data);
  std::string hex;
  for (size_t i = 0; i < 8; ++i) hex += fmt::format("{:02x}", d[i]);
  return hex;
}

Result<NodeIdentity> LoadIdentity(const std::string& data_dir, Rng& rng, Env& env) {
  if (data_dir.empty()) return NodeIdentity{membership::MemberId::Random(rng), Incarnation(0)};
  if (Status st = env.CreateDirs(data_dir); !st.ok()) {
    return Error(st.error().code(),
                 "cannot create data dir " + data_dir + ": " + st.error().message());
  }
  const std::filesystem::path dir(data_dir);
  NodeIdentity identity;
  const std::string id_path = (dir / "node.id").string();
  if (env.Exists(id_path)) {
    auto id = membership::MemberId::Parse(ReadFirstLine(env, id_path));
    if (!id || id->empty()) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   id_path + " does not hold a node id (32 hex digits)");
    }
    identity.id = *id;
  } else {
    identity.id = membership::MemberId::Random(rng);
    Status st = WriteFileAtomically(env, id_path, identity.id.ToString() + "\n");
    if (!st.ok()) return st.error();
  }
  const std::string inc_path = (dir / "incarnation").string();
  uint64_t inc = 0;
  if (env.Exists(inc_path)) {
    try {
      inc = std::stoull(ReadFirstLine(env, inc_path)) + 1;
    } catch (...) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   inc_path + " does not hold a number");
    }
  }
  identity.incarnation = Incarnation(inc);
  Status st = WriteFileAtomically(env, inc_path, std::to_string(inc) + "\n");
  if (!st.ok()) return st.error();
  return identity;
}

ClusterNode::ClusterNode(const config::ServerConfig& cfg, Engine* engine)
    : cfg_(cfg), engine_(engine), clock_(SystemClock::Instance()) {}

ClusterNode::~ClusterNode() { Stop(); }

std::vector<Endpoint> ClusterNode::ResolveSeeds() const {
  std::vector<Endpoint> seeds;
  std::set<std::string> seen;
  for (const std::string& s : cfg_.seeds) {
    if (auto ep = Endpoint::Parse(s)) {
      if (seen.insert(ep->ToString()).second) seeds.push_back(*ep);
    }
  }
  for (const Endpoint& ep : remembered_) {
    if (seen.insert(ep.ToString()).second) seeds.push_back(ep);
  }
  return seeds;
}

Status ClusterNode::Load() {
  auto identity = LoadIdentity(cfg_.data_dir, rng_);
  if (!identity.ok()) return identity.error();
  identity_ = *identity;
  auto remembered = LoadPeers(cfg_.data_dir);
  if (!remembered.ok()) return remembered.error();
  if (cfg_.new_cluster && !remembered->empty()) {
    SHOAL_LOG_WARN(
        "cluster: new-cluster is set: forgetting the {} peer(s) remembered in {}; this node "
        "forms a new cluster unless a --seeds node answers",
        remembered->size(), cfg_.data_dir);
    (void)Env::Posix().RemoveFile((std::filesystem::path(cfg_.data_dir) / kPeersFileName).string());
    remembered->clear();
  }

  cookie_ = cfg_.cookie;
  if (cookie_.empty()) {
    cookie_ = std::string(kDevelopmentCookie);
    SHOAL_LOG_WARN(
        "no cluster cookie set (--cookie, --cookie-file or SHOAL_COOKIE): using the built-in "
        "development cookie; anyone who can reach the cluster port can join this cluster");
  }
  host_ = cfg_.advertise_address.empty() ? cfg_.bind : cfg_.advertise_address;
  if (host_ == "0.0.0.0" || host_ == "::") {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "bind is a wildcard address: set --advertise-address to the address peers use");
  }
  // This node's own address is not a peer (with port 0 the real port is known only at Start).
  const Endpoint own{host_, static_cast<uint16_t>(cfg_.EffectiveClusterPort())};
  for (Endpoint& ep : *remembered) {
    if (own.port == 0 || ep != own) remembered_.push_back(std::move(ep));
  }

  rpc_client_ = std::make_unique<net::RpcClient>(&loop_, cookie_);
  ctx_ =
      ServiceContext{&cfg_, engine_, &loop_, rpc_client_.get(), identity_.id, &clock_, &services_};
  // The services, in start order (they stop in the reverse order).
  if (engine_ != nullptr && cfg_.cluster_enabled) {
    sharding_ = services_.Add(std::make_unique<ShardingDriver>(ctx_, ShardingOptions()));
  }
  bus_ = services_.Add(std::make_unique<Bus>(ctx_));
  if (engine_ != nullptr) {
    engine_->replicated().set_self(identity_.id);
    replicated_ = services_.Add(std::make_unique<ReplicatedDriver>(ctx_));
  }
  return services_.LoadAll();
}

sharding::CoreOptions ClusterNode::ShardingOptions() const {
  sharding::CoreOptions opts;
  // Alone (no seeds, no discovery, no remembered peers): serve at once; otherwise let the
  // membership settle.
  if (cfg_.seeds.empty() && cfg_.discovery_dns.empty() && remembered_.empty()) {
    opts.settle_us = 0;
  } else {
    opts.join_before_adopting = true;
  }
  // A node that remembers a cluster never creates buckets on its own: they would duplicate the
  // cluster's, and its writes would be dropped when it meets the others.
  if (!remembered_.empty()) opts.alone_adopt_after_us = INT64_MAX;
  return opts;
}

Status ClusterNode::Start() {
  // UDP first (it may pick the port), then TCP on the same number.
  const uint16_t want = static_cast<uint16_t>(cfg_.EffectiveClusterPort());
  auto udp = net::UdpSocket::Open(
      &loop_, cfg_.bind, want,
      [this](const Endpoint& from, std::string_view payload) { swim_->OnPacket(from, payload); });
  if (!udp.ok()) return Error(udp.error().code(), "cluster port (UDP): " + udp.error().message());
  udp_ = std::move(*udp);
  const uint16_t port = udp_->port();
  rpc_server_ = std::make_unique<net::RpcServer>(&loop_, cfg_.bind, port, cookie_);
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

  advertise_ = Endpoint{host_, port};
  std::erase(remembered_, advertise_);
  remembered_count_ = remembered_.size();
  for (const Endpoint& ep : remembered_) saved_peers_.insert(ep.ToString());
  membership::MemberRecord self;
  self.id = identity_.id;
  self.address = advertise_;
  self.client_port = static_cast<uint16_t>(cfg_.port);
  self.http_port = static_cast<uint16_t>(std::max(cfg_.http_port, 0));
  self.roles = {"storage", "router"};
  requirepass_fp_ = RequirepassFingerprint(cookie_, cfg_.requirepass);
  self.labels[std::string(kRequirepassLabel)] = requirepass_fp_;
  membership::SwimConfig swim_cfg;
  swim_cfg.cookie = cookie_;
  swim_ = std::make_unique<membership::Swim>(swim_cfg, self, clock_, rng_, *this,
                                             identity_.incarnation);
  swim_->Join(ResolveSeeds());
  if (sharding_ != nullptr) engine_->set_cluster_cookie(cookie_);
  if (Status ss = services_.StartAll(rpc_server_.get()); !ss.ok()) return ss;
  Publish();
  // One tick before the loop runs (this thread may drive the services): a node alone takes
  // every bucket now, so it serves from its first command; others wait for the coordinator.
  services_.Tick(clock_.MonotonicMicros());
  loop_.RunEvery(10, [this] { OnTick(); });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "shoal-control");
    loop_.Run();
  });
  started_ = true;
  if (!cfg_.discovery_dns.empty()) dns_thread_ = std::thread([this] { DnsLoop(); });
  SHOAL_LOG_INFO(
      "cluster: node {} (incarnation {}) on {} (UDP+TCP), {} seed(s), {} remembered peer(s)",
      identity_.id.ToString(), identity_.incarnation.value(), advertise_.ToString(),
      cfg_.seeds.size(), remembered_.size());
  if (!remembered_.empty() && sharding_ != nullptr) {
    SHOAL_LOG_WARN(
        "cluster: rejoining the cluster remembered in {}/{}: this node owns no buckets "
        "(cluster_state:fail) until one of its {} remembered peer(s) answers",
        cfg_.data_dir, kPeersFileName, remembered_.size());
  }
  return Status::Ok();
}

void ClusterNode::OnTick() {
  if (clock_.MonotonicMicros() >= swim_->NextWakeupMicros()) swim_->Tick();
  Publish();
  services_.Tick(clock_.MonotonicMicros());
  WatchAlone();
  MaybeSavePeers();
  RefreshRequirepassLabel();
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
  CheckRequirepass(*snap);
  if (engine_ != nullptr) engine_->PublishMembers(snap);
  services_.OnView(snap);
}

void ClusterNode::WatchAlone() {
  const auto table = swim_->Snapshot();
  if (!reached_peer_.load()) {
    for (const membership::Member& m : table->members()) {
      if (m.record.id != identity_.id && (m.state == membership::MemberState::kAlive ||
                                          m.state == membership::MemberState::kSuspect)) {
        reached_peer_ = true;
        if (!remembered_.empty()) {
          SHOAL_LOG_INFO("cluster: reached member {} at {}: rejoining the cluster",
                         m.record.id.ToString(), m.record.address.ToString());
        }
        break;
      }
    }
  }
  if (reached_peer_.load() || sharding_ == nullptr) return;
  const int64_t now = clock_.MonotonicMicros();
  if (!formed_alone_.load() && sharding_->snapshot().active > 0) {
    formed_alone_ = true;
    SHOAL_LOG_WARN(
        "cluster: this node FORMED A NEW CLUSTER ON ITS OWN: it took the bucket space without "
        "having seen any other member ({} seed(s), {} remembered peer(s)). If it should be part "
        "of an existing cluster, its writes will be dropped when it joins one (shoal join).",
        cfg_.seeds.size(), remembered_.size());
  }
  if (!remembered_.empty() && now >= next_alone_log_us_) {
    if (next_alone_log_us_ != 0) {
      SHOAL_LOG_WARN(
          "cluster: none of the {} remembered peer(s) answers yet; this node owns no buckets "
          "(cluster_state:fail) and keeps trying them. To form a new cluster instead, restart "
          "it with --new-cluster (or remove {}/{})",
          remembered_.size(), cfg_.data_dir, kPeersFileName);
    }
    next_alone_log_us_ = now + kAloneLogIntervalUs;
  }
}

void ClusterNode::MaybeSavePeers() {
  if (cfg_.data_dir.empty()) return;
  const int64_t now = clock_.MonotonicMicros();
  if (now < next_peers_save_us_) return;
  const auto table = swim_->Snapshot();
  if (table->version() == peers_version_) return;
  peers_version_ = table->version();
  std::set<std::string> addrs;
  std::vector<Endpoint> peers;
  for (const membership::Member& m : table->members()) {
    if (m.record.id == identity_.id || m.record.address.port == 0) continue;
    if (m.record.address == advertise_) continue;
    if (addrs.insert(m.record.address.ToString()).second) peers.push_back(m.record.address);
  }
  // A view of only itself (everyone forgotten) does not erase what the node remembers.
  if (peers.empty() || addrs == saved_peers_) return;
  next_peers_save_us_ = now + kPeersSaveIntervalUs;
  Status st = SavePeers(cfg_.data_dir, peers);
  if (!st.ok()) {
    SHOAL_LOG_WARN("cluster: cannot save the peers file: {}", st.error().message());
    return;
  }
  saved_peers_ = std::move(addrs);
  SHOAL_LOG_DEBUG("cluster: remembered {} peer(s) in {}/{}", peers.size(), cfg_.data_dir,
                  kPeersFileName);
}

void ClusterNode::RefreshRequirepassLabel() {
  if (engine_ == nullptr) return;
  const int64_t now = clock_.MonotonicMicros();
  if (now < next_requirepass_check_us_) return;
  next_requirepass_check_us_ = now + kRequirepassCheckIntervalUs;
  const std::string fp = RequirepassFingerprint(cookie_, engine_->Config().requirepass);
  if (fp == requirepass_fp_ || swim_->phase() != membership::Swim::Phase::kRunning) return;
  membership::MemberRecord rec = swim_->self();
  rec.labels[std::string(kRequirepassLabel)] = fp;
  Status st = swim_->UpdateSelf(rec);
  if (!st.ok()) {
    SHOAL_LOG_WARN("cluster: cannot advertise the new requirepass fingerprint: {}",
                   st.error().message());
    return;
  }
  requirepass_fp_ = fp;
  warned_fp_.clear();  // compare everyone again against the new setting
  Publish();
}

void ClusterNode::CheckRequirepass(const membership::MemberTable& table) {
  size_t mismatched = 0;
  for (const membership::Member& m : table.members()) {
    if (m.record.id == identity_.id) continue;
    if (m.state != membership::MemberState::kAlive &&
        m.state != membership::MemberState::kSuspect) {
      continue;
    }
    auto it = m.record.labels.find(std::string(kRequirepassLabel));
    if (it == m.record.labels.end()) continue;  // a build that does not advertise it
    if (it->second == requirepass_fp_) {
      warned_fp_.erase(m.record.id);
      continue;
    }
    ++mismatched;
    auto [w, fresh] = warned_fp_.try_emplace(m.record.id, it->second);
    if (!fresh && w->second == it->second) continue;
    w->second = it->second;
    const bool mine_set = requirepass_fp_ != "none";
    const bool theirs_set = it->second != "none";
    SHOAL_LOG_WARN(
        "cluster: member {} at {} has a different requirepass ({}): requirepass is checked only "
        "by the node a client connects to, and commands it forwards run without AUTH on the "
        "owner; set the same requirepass on every node",
        m.record.id.ToString(), m.record.address.ToString(),
        mine_set && theirs_set ? "both set, different passwords"
        : mine_set             ? "set here, none there"
                               : "none here, set there");
  }
  requirepass_mismatched_ = mismatched;
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
  // The services drain and stop on the running loop; then the sockets close and the loop ends.
  loop_.Post([this] {
    services_.StopAll(&loop_, kServiceDrainMs, [this] {
      rpc_client_->Shutdown();
      rpc_server_->Stop();
      udp_.reset();
      loop_.Stop();
    });
  });
  if (thread_.joinable()) thread_.join();
}

ClusterNode* ClusterOf(const engine::Engine& engine) {
  return dynamic_cast<ClusterNode*>(engine.cluster());
}

}  // namespace shoal::node
