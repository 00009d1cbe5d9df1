// ClusterNode: the control plane of one node — the control thread, its SWIM core, and the
// sockets that carry it.
//
// The control thread is an EventLoop of its own (not a worker): it owns the membership::Swim
// core, the UDP socket and the internal RPC server and client on the cluster port, and a 10 ms
// ticker that runs Swim::Tick when it is due. It is the only thread that touches the core. Each
// change of view is published as an immutable MemberTable: posted to every worker (which keeps
// its own pointer, read without locks by INFO and routing) and kept under a mutex for the admin
// API's threads.
//
// The rest of the control plane runs as services (node/service.h) in a ServiceRegistry, in this
// order: sharding (with cluster-enabled), the bus, the replicated maps. ClusterNode hands them
// the boot's Load and Start, each new view, the ticker's time and, at Stop, a drain of their
// requests in flight (at most kServiceDrainMs) before the sockets close.
//
// Push-pull (anti-entropy, join) runs as the RPC method "membership.pushpull": the caller sends its
// authenticated state, the callee merges it and, only if it was accepted, answers with its own.
//
// Identity: with a data dir the node keeps its 128-bit id in `node.id` and its incarnation in
// `incarnation`; a restart starts one incarnation higher, so its first Alive beats what the
// cluster last heard of it. Without a data dir every start is a new member.
//
// Remembered peers (like Redis Cluster's nodes.conf): with a data dir the node keeps the cluster
// addresses of the other members it knows in `peers`, rewritten atomically (tmp, fsync, rename)
// at most once a second when that set changes (never emptied by a view that holds only itself).
// At boot they are seeds in addition to --seeds. While the node remembers peers and has not yet
// reached any of them it adopts no bucket (it owns nothing, CLUSTER INFO says cluster_state:fail,
// writes answer CLUSTERDOWN) and keeps trying them: a restarted member must not form a cluster of
// its own whose writes would be dropped as duplicates when it meets the others. A node that
// started with remembered peers never adopts buckets while its view holds no other live member
// (ShardingCore's alone_adopt_after_us is infinite for it). new-cluster
// (`--new-cluster`) forgets the remembered peers for that start. A node that takes the whole
// bucket space without having seen any other member says so (a warning in the log,
// cluster_formed_alone:1 in INFO sharding).
//
// requirepass is checked only by the node a client connects to. So that differing settings are
// noticed, each node advertises a fingerprint of its requirepass (RequirepassFingerprint, never
// the password) as the member label `requirepass-fp`, and warns once per peer whose fingerprint
// differs from its own (INFO membership: requirepass_mismatched_peers).
//
// Thread-safety: Start/Stop/Leave from the main thread; members() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/env.h"
#include "common/result.h"
#include "common/rng.h"
#include "config/server_config.h"
#include "engine/cluster_link.h"
#include "membership/swim.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "net/udp_socket.h"
#include "node/bus.h"
#include "node/replicated_driver.h"
#include "node/service.h"
#include "node/sharding_driver.h"

namespace shoal::engine {
class Engine;
}  // namespace shoal::engine

namespace shoal::node {

// The node's persistent identity (see the header comment).
struct NodeIdentity {
  membership::MemberId id;
  Incarnation incarnation;
};
// Loads the identity from `data_dir` (creating it on first start) and records the incarnation of
// this start. With an empty data_dir: a fresh random id at incarnation 0.
Result<NodeIdentity> LoadIdentity(const std::string& data_dir, Rng& rng, Env& env = Env::Posix());

// The remembered peers file, `<data_dir>/peers`: a header line "shoal-peers 1", one cluster
// address (host:port) per line, and a trailer "end <count>" so that a truncated file is told
// from a short one.
inline constexpr std::string_view kPeersFileName = "peers";
// The addresses in the file; none if it does not exist. A file that is not in that format
// (corrupt, truncated, a bad address) is an error naming the file and how to recover (remove it),
// never a crash.
Result<std::vector<Endpoint>> LoadPeers(const std::string& data_dir, Env& env = Env::Posix());
// Replaces the file with `peers` atomically (common/env.h's WriteFileAtomically).
Status SavePeers(const std::string& data_dir, const std::vector<Endpoint>& peers,
                 Env& env = Env::Posix());

// The member label holding a node's requirepass fingerprint.
inline constexpr std::string_view kRequirepassLabel = "requirepass-fp";
// "none" for an empty password; else the first 8 bytes, in hex, of HMAC-SHA256 keyed by the
// cluster cookie of the password: equal passwords give equal fingerprints within one cluster,
// and the label reveals nothing usable without the cookie.
std::string RequirepassFingerprint(std::string_view cookie, std::string_view password);

class ClusterNode final : public membership::SwimOutput, public engine::ClusterLink {
 public:
  ClusterNode(const config::ServerConfig& cfg, engine::Engine* engine);
  ~ClusterNode() override;

  // Boot stage kLoad: reads the identity and the remembered peers, creates the services and
  // runs their Load (see node/service.h). Main thread.
  Status Load();
  // Boot stage kJoin: binds the cluster port (UDP and TCP), starts the services and the control
  // thread, and joins the seeds. After Load.
  Status Start();
  // Asks the control thread to join through more seeds (an operator's `shoal join`). Any thread.
  void Join(std::vector<Endpoint> seeds);
  // Subscribes to member events (joined, suspect, alive, dead, left, updated), delivered on the
  // control thread in the order the core made the changes. Call before Start().
  using EventFn = std::function<void(const membership::MemberEvent&)>;
  void Subscribe(EventFn fn) { subscribers_.push_back(std::move(fn)); }

  // The advertised cluster address.
  const Endpoint& address() const { return advertise_; }

  // Hands this node's buckets to the others before it goes (graceful leave), for as long as it
  // takes: returns kDrained once nothing is held here, kNoTaker once no member that is not
  // leaving could take what is left (and no outgoing migration is in flight), kForced as soon as
  // `forced()` is true. Logs what remains and why every `report_ms`. Main thread.
  sharding::LeaveStep DrainBuckets(const std::function<bool()>& forced, int64_t report_ms = 5000);
  // Sharding state for INFO and the admin API (null before Start). Any thread.
  const ShardingDriver* sharding() const { return sharding_; }
  // The messaging bus (null before Load). Its methods may be called from any thread.
  Bus* bus() const { return bus_; }
  // The replicated maps' control-thread side (null before Load).
  ReplicatedDriver* replicated() const { return replicated_; }
  // Leaves gracefully: spreads the news for at most `timeout_ms`, then returns.
  void Leave(int64_t timeout_ms);
  // Stops the control thread. Idempotent.
  void Stop();

  // The current view. Any thread.
  std::shared_ptr<const membership::MemberTable> members() const;
  membership::MemberId id() const override { return identity_.id; }
  Incarnation start_incarnation() const { return identity_.incarnation; }
  // Counters, read on the control thread and copied (any thread).
  membership::SwimCounters counters() const;
  uint64_t rpc_handshake_failures() const;
  // Remembered peers (see the header comment). Any thread.
  size_t remembered_peers() const { return remembered_count_; }
  // Whether this node has seen another live member since it started.
  bool reached_peer() const { return reached_peer_.load(); }
  // Whether this node took the bucket space before it saw any other member.
  bool formed_alone() const { return formed_alone_.load(); }
  // Live peers whose requirepass fingerprint differs from this node's.
  size_t requirepass_mismatched_peers() const { return requirepass_mismatched_.load(); }

  // SwimOutput (control thread).
  void SendPacket(const Endpoint& to, std::string packet) override;
  void RequestPushPull(const Endpoint& peer) override;
  void OnMemberEvent(const membership::MemberEvent& event) override;

 private:
  void Publish();
  void OnTick();
  // Rewrites the peers file if the members' addresses changed (at most once a second).
  void MaybeSavePeers();
  // Notices peers whose requirepass fingerprint differs (control thread, on every new view).
  void CheckRequirepass(const membership::MemberTable& table);
  // Re-advertises the fingerprint after CONFIG SET requirepass (control thread).
  void RefreshRequirepassLabel();
  // Tracks reached_peer_/formed_alone_ and logs the node's lone state (control thread).
  void WatchAlone();
  std::vector<Endpoint> ResolveSeeds() const;
  sharding::CoreOptions ShardingOptions() const;
  // DNS discovery: resolves cfg_.discovery_dns every 5 s on its own thread (getaddrinfo blocks)
  // and hands addresses not seen before to the core as seeds.
  void DnsLoop();

  config::ServerConfig cfg_;
  engine::Engine* engine_;
  SystemClock& clock_;
  RandomRng rng_;
  NodeIdentity identity_;
  Endpoint advertise_;

  net::EventLoop loop_;
  std::thread thread_;
  std::unique_ptr<net::UdpSocket> udp_;
  std::unique_ptr<net::RpcServer> rpc_server_;
  std::unique_ptr<net::RpcClient> rpc_client_;
  std::unique_ptr<membership::Swim> swim_;
  // The control thread's services (node/service.h), and typed views of those it has.
  ServiceContext ctx_;
  ServiceRegistry services_;
  ShardingDriver* sharding_ = nullptr;
  Bus* bus_ = nullptr;
  ReplicatedDriver* replicated_ = nullptr;
  uint64_t published_version_ = 0;
  bool started_ = false;
  std::string cookie_;
  std::string host_;  // the advertised host

  // Remembered peers and the lone-node state (written on the control thread).
  std::vector<Endpoint> remembered_;
  std::atomic<size_t> remembered_count_{0};
  std::atomic<bool> reached_peer_{false};
  std::atomic<bool> formed_alone_{false};
  std::set<std::string> saved_peers_;
  int64_t next_peers_save_us_ = 0;
  uint64_t peers_version_ = 0;  // the view last compared with the file
  int64_t next_alone_log_us_ = 0;
  // requirepass fingerprints.
  std::string requirepass_fp_;
  int64_t next_requirepass_check_us_ = 0;
  std::map<membership::MemberId, std::string> warned_fp_;  // peer -> fingerprint warned about
  std::atomic<size_t> requirepass_mismatched_{0};

  mutable std::mutex mu_;
  std::shared_ptr<const membership::MemberTable> table_;  // guarded by mu_
  membership::SwimCounters counters_;                     // guarded by mu_
  uint64_t handshake_failures_ = 0;                       // guarded by mu_
  std::vector<EventFn> subscribers_;

  std::thread dns_thread_;
  std::mutex dns_mu_;
  std::condition_variable dns_cv_;
  bool dns_stop_ = false;  // guarded by dns_mu_
};

// The ClusterNode an engine runs in (the only ClusterLink the node installs), or null before
// the cluster starts and after it stops. For the command families and probes that reach the
// control plane's services.
ClusterNode* ClusterOf(const engine::Engine& engine);

}  // namespace shoal::node
