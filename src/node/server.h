// Server: one shoal node process — the worker runtime, the engine, and a listener per worker.
//
// Each worker binds its own listening socket to the client port with SO_REUSEPORT, so the kernel
// spreads new connections over the workers and no thread hands sockets to another.
// Thread-safety: Start/Stop/LeaveCluster/WaitForStopRequest from the main thread; RequestStop from
// any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "common/result.h"
#include "config/server_config.h"
#include "engine/engine.h"
#include "net/runtime.h"
#include "node/cluster.h"

namespace shoal::node {

class Server {
 public:
  explicit Server(config::ServerConfig cfg);
  ~Server();

  // Boots the node (node/service.h's Boot): binds the client port and loads what is on disk,
  // joins the cluster, then starts the workers. Fails, with the step in the error, if a step
  // fails (a busy port, a corrupt file).
  Status Start();
  // How a leave treats the buckets it still holds: kGraceful waits for them to go; kForce stops
  // waiting (for a leave in progress or about to start).
  enum class StopMode { kGraceful, kForce };
  // Asks for a stop (a signal, POST /api/v1/leave): wakes WaitForStopRequest. Any thread, any
  // time after construction; never blocks on the workers or the control thread.
  void RequestStop(StopMode mode);
  // Blocks until RequestStop was called. Main thread.
  void WaitForStopRequest();
  bool force_requested() const { return force_.load(); }
  // Whether RequestStop was called (by anyone). Any thread.
  bool stop_requested() const;
  // Leaves the cluster gracefully: hands the buckets over for as long as a member that is not
  // leaving could take them (until forced, see RequestStop), logs what it kept if any, then
  // spreads the news of the leave for at most `timeout_ms`.
  void LeaveCluster(int64_t timeout_ms);
  // Stops accepting, closes clients and joins the workers.
  void Stop();
  // The port actually bound (useful with port 0).
  uint16_t port() const { return port_; }
  engine::Engine& engine() { return *engine_; }
  // The control plane; nullptr before Start() or after Stop().
  ClusterNode* cluster() { return cluster_.get(); }

 private:
  class Acceptor;
  // Binds one listening socket per worker to the client port (port_ is the one bound).
  Status BindClientPort(unsigned workers);

  config::ServerConfig cfg_;
  std::unique_ptr<net::Runtime> runtime_;
  std::unique_ptr<engine::Engine> engine_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::unique_ptr<ClusterNode> cluster_;
  uint16_t port_ = 0;
  bool started_ = false;
  mutable std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_requested_ = false;  // guarded by stop_mu_
  std::atomic<bool> force_{false};
};

}  // namespace shoal::node
