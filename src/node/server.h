// Server: one shoal node process — the worker runtime, the engine, and a listener per worker.
//
// Each worker binds its own listening socket to the client port with SO_REUSEPORT, so the kernel
// spreads new connections over the workers and no thread hands sockets to another.
// Thread-safety: Start/Stop/Wait from the main thread.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "common/result.h"
#include "config/server_config.h"
#include "net/runtime.h"
#include "node/cluster.h"
#include "node/engine.h"

namespace shoal::node {

class Server {
 public:
  explicit Server(config::ServerConfig cfg);
  ~Server();

  // Binds the port and starts the workers. Fails if the port cannot be bound.
  Status Start();
  // Leaves the cluster gracefully (the news spreads for at most `timeout_ms`).
  void LeaveCluster(int64_t timeout_ms);
  // Stops accepting, closes clients and joins the workers.
  void Stop();
  // The port actually bound (useful with port 0).
  uint16_t port() const { return port_; }
  Engine& engine() { return *engine_; }
  // The control plane; nullptr before Start() or after Stop().
  ClusterNode* cluster() { return cluster_.get(); }

 private:
  class Acceptor;
  config::ServerConfig cfg_;
  std::unique_ptr<net::Runtime> runtime_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::unique_ptr<ClusterNode> cluster_;
  uint16_t port_ = 0;
  bool started_ = false;
  int64_t drain_timeout_ms_ = 60'000;  // graceful leave: hand buckets over for at most this
};

}  // namespace shoal::node
