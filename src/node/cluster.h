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
// Push-pull (anti-entropy, join) runs as the RPC method "membership.pushpull": the caller sends its
// authenticated state, the callee merges it and, only if it was accepted, answers with its own.
//
// Identity: with a data dir the node keeps its 128-bit id in `node.id` and its incarnation in
// `incarnation`; a restart starts one incarnation higher, so its first Alive beats what the
// cluster last heard of it. Without a data dir every start is a new member.
//
// Thread-safety: Start/Stop/Leave from the main thread; members() from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/rng.h"
#include "config/server_config.h"
#include "membership/swim.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "net/udp_socket.h"
#include "node/bus.h"
#include "node/replicated_driver.h"
#include "node/sharding_driver.h"

namespace shoal::node {

class Engine;

// The node's persistent identity (see the header comment).
struct NodeIdentity {
  membership::MemberId id;
  Incarnation incarnation;
};
// Loads the identity from `data_dir` (creating it on first start) and records the incarnation of
// this start. With an empty data_dir: a fresh random id at incarnation 0.
Result<NodeIdentity> LoadIdentity(const std::string& data_dir, Rng& rng);

class ClusterNode final : public membership::SwimOutput {
 public:
  ClusterNode(const config::ServerConfig& cfg, Engine* engine);
  ~ClusterNode() override;

  // Binds the cluster port (UDP and TCP), starts the control thread and joins the seeds.
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
  const ShardingDriver* sharding() const { return sharding_.get(); }
  // The messaging bus (null before Start). Its methods may be called from any thread.
  Bus* bus() const { return bus_.get(); }
  // The replicated maps' control-thread side (null before Start).
  ReplicatedDriver* replicated() const { return replicated_.get(); }
  // Leaves gracefully: spreads the news for at most `timeout_ms`, then returns.
  void Leave(int64_t timeout_ms);
  // Stops the control thread. Idempotent.
  void Stop();

  // The current view. Any thread.
  std::shared_ptr<const membership::MemberTable> members() const;
  membership::MemberId id() const { return identity_.id; }
  Incarnation start_incarnation() const { return identity_.incarnation; }
  // Counters, read on the control thread and copied (any thread).
  membership::SwimCounters counters() const;
  uint64_t rpc_handshake_failures() const;

  // SwimOutput (control thread).
  void SendPacket(const Endpoint& to, std::string packet) override;
  void RequestPushPull(const Endpoint& peer) override;
  void OnMemberEvent(const membership::MemberEvent& event) override;

 private:
  void Publish();
  void OnTick();
  std::vector<Endpoint> ResolveSeeds() const;
  // DNS discovery: resolves cfg_.discovery_dns every 5 s on its own thread (getaddrinfo blocks)
  // and hands addresses not seen before to the core as seeds.
  void DnsLoop();

  config::ServerConfig cfg_;
  Engine* engine_;
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
  std::unique_ptr<ShardingDriver> sharding_;
  std::unique_ptr<Bus> bus_;
  std::unique_ptr<ReplicatedDriver> replicated_;
  uint64_t published_version_ = 0;
  bool started_ = false;

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

}  // namespace shoal::node
