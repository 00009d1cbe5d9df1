#include "node/server.h"

#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "commands/commands.h"
#include "common/clock.h"
#include "common/log.h"
#include "net/socket.h"
#include "node/probes.h"
#include "resp/connection.h"

namespace shoal::node {

using engine::Engine;
using engine::Shard;

class Server::Acceptor final : public net::IoWatcher {
 public:
  Acceptor(Engine* engine, Shard* shard, int fd) : engine_(engine), shard_(shard), fd_(fd) {}
  ~Acceptor() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void Start() { shard_->loop()->Watch(fd_, EPOLLIN, this); }
  void Stop() {
    if (fd_ < 0) return;
    shard_->loop()->Unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  void OnIoEvents(uint32_t) override {
    for (int i = 0; i < 64 && fd_ >= 0; ++i) {
      std::string peer;
      const int cfd = net::AcceptTcp(fd_, &peer);
      if (cfd < 0) return;
      // The worker's copy of maxclients, so CONFIG SET maxclients takes effect at once.
      if (engine_->connected_clients.load(std::memory_order_relaxed) >=
          shard_->settings().max_clients) {
        static constexpr char kMsg[] = "-ERR max number of clients reached\r\n";
        [[maybe_unused]] ssize_t n = ::write(cfd, kMsg, sizeof kMsg - 1);
        ::close(cfd);
        engine_->rejected_connections.fetch_add(1);
        continue;
      }
      auto* c = new resp::Connection(shard_->loop(), cfd, peer, net::LocalAddress(cfd), engine_,
                                     &shard_->limits(), engine_->next_client_id.fetch_add(1));
      c->Start();
    }
  }

 private:
  Engine* engine_;
  Shard* shard_;
  int fd_;
};

Server::Server(config::ServerConfig cfg) : cfg_(std::move(cfg)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  const unsigned n = static_cast<unsigned>(cfg_.EffectiveThreads());
  runtime_ = std::make_unique<net::Runtime>(n);
  commands::InstallCommands();
  engine_ = std::make_unique<engine::Engine>(cfg_, runtime_.get(), &SystemClock::Instance());
  RegisterClusterMetrics(engine_.get());
  RegisterBusMetrics(engine_.get());
  // The boot (node/service.h): load from disk, then join, then serve clients. The control plane
  // starts before the workers: by the time a client is accepted, the workers have the member
  // table and (alone) the bucket states queued ahead of it, so INFO and routing are complete
  // from the first command. Messages posted to the workers wait until their loops run.
  Boot boot;
  boot.Add(BootStage::kLoad, "client port", [this, n] { return BindClientPort(n); });
  boot.Add(BootStage::kLoad, "cluster state", [this] {
    config::ServerConfig cluster_cfg = cfg_;
    cluster_cfg.port = port_;
    cluster_ = std::make_unique<ClusterNode>(cluster_cfg, engine_.get());
    // Replicated maps' snapshots load here, before the node joins (the seed's preload); a
    // corrupt one stops the boot and is left as it is.
    return cluster_->Load();
  });
  boot.Add(BootStage::kJoin, "cluster", [this] {
    if (Status cs = cluster_->Start(); !cs.ok()) return cs;
    engine_->set_cluster(cluster_.get());
    return Status::Ok();
  });
  boot.Add(BootStage::kServe, "workers", [this] {
    runtime_->Start([this](unsigned i) {
      engine_->InitWorker(i);
      acceptors_[i]->Start();
    });
    return Status::Ok();
  });
  if (Status st = boot.Run(); !st.ok()) {
    cluster_.reset();
    acceptors_.clear();
    return st;
  }
  started_ = true;
  return Status::Ok();
}

Status Server::BindClientPort(unsigned workers) {
  // Every worker's socket is bound before any starts, so a busy port fails cleanly.
  uint16_t port = static_cast<uint16_t>(cfg_.port);
  if (port != 0) {
    Status free = net::CheckPortFree(cfg_.bind, port);
    if (!free.ok()) return free;
  }
  for (unsigned i = 0; i < workers; ++i) {
    auto fd = net::ListenTcp(cfg_.bind, port, net::ReusePort::kYes);
    if (!fd.ok()) return fd.error();
    if (port == 0) {
      const std::string addr = net::LocalAddress(*fd);
      port = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
    }
    acceptors_.push_back(std::make_unique<Acceptor>(engine_.get(), engine_->shard(i), *fd));
  }
  port_ = port;
  engine_->listen_address = cfg_.bind + ":" + std::to_string(port);
  return Status::Ok();
}

void Server::RequestStop(StopMode mode) {
  if (mode == StopMode::kForce) force_.store(true);
  std::lock_guard<std::mutex> lock(stop_mu_);
  stop_requested_ = true;
  stop_cv_.notify_all();
}

bool Server::stop_requested() const {
  std::lock_guard<std::mutex> lock(stop_mu_);
  return stop_requested_;
}

void Server::WaitForStopRequest() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  stop_cv_.wait(lock, [this] { return stop_requested_; });
}

void Server::LeaveCluster(int64_t timeout_ms) {
  if (cluster_ == nullptr) return;
  const auto start = std::chrono::steady_clock::now();
  const sharding::LeaveStep step = cluster_->DrainBuckets([this] { return force_.load(); });
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  if (step == sharding::LeaveStep::kDrained) {
    SHOAL_LOG_INFO("cluster: buckets handed over in {} ms", ms);
  } else if (const ShardingDriver* sd = cluster_->sharding(); sd != nullptr) {
    const auto snap = sd->snapshot();
    SHOAL_LOG_WARN(
        "cluster: {} after {} ms: exiting with {} bucket(s) ({}) and about {} keys kept here, "
        "which are lost to the cluster; last migration failure: {}",
        step == sharding::LeaveStep::kForced
            ? "leave forced"
            : "no member that is not leaving can take the remaining buckets",
        ms, snap.held.size(), sharding::FormatBuckets(snap.held), snap.keys,
        snap.last_failure.empty() ? "none" : snap.last_failure);
  }
  cluster_->Leave(timeout_ms);
}

void Server::Stop() {
  if (!started_) return;
  started_ = false;
  if (cluster_ != nullptr) {
    engine_->set_cluster(nullptr);
    cluster_->Stop();  // the services stop: the replicated maps are saved (with a data dir)
  }
  // Each worker closes its listener and its clients on its own thread, then the loops stop
  // (a loop runs the tasks already posted before Run() returns).
  for (unsigned i = 0; i < runtime_->size(); ++i) {
    Acceptor* acc = acceptors_[i].get();
    Shard* shard = engine_->shard(i);
    runtime_->loop(i)->Post([acc, shard] {
      acc->Stop();
      shard->CloseAllClients("server shutting down");
    });
  }
  runtime_->Stop();
  acceptors_.clear();
}

}  // namespace shoal::node
