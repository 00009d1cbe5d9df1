// The `shoal` binary: parses the command line and runs the chosen subcommand.
//
// `serve` wires the layers together: the node (workers, engine, cluster control plane) and, above
// it, the admin HTTP API. Wiring lives here because admin/ sits above node/ in the layering.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "admin/admin_server.h"
#include "admin/api.h"
#include "admin/http_client.h"
#include "app/cli.h"
#include "common/log.h"
#include "node/cluster.h"
#include "node/server.h"

namespace {

// SIGINT and SIGTERM are blocked in every thread (the mask is set before any thread starts and
// inherited) and taken by one thread in sigwait, so no worker is ever interrupted by them and a
// signal can never slip in between a check and a wait: the first asks the node to stop
// gracefully; one that comes while a stop is under way (a second signal, or one after
// `shoal leave`) forces the leave (exit now, keeping what was not handed over). The
// stop itself runs on the main thread and the control thread, never waiting for a worker, so a
// worker busy with a long command does not delay its start or its log.
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// The node the signals go to (null before it exists and once it is being destroyed).
std::mutex g_stop_mu;
shoal::node::Server* g_stop_target = nullptr;  // guarded by g_stop_mu

void WatchSignals() {
  std::thread([] {
    pthread_setname_np(pthread_self(), "shoal-signals");
    const sigset_t set = StopSignals();
    int received = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      ++received;
      std::lock_guard<std::mutex> lock(g_stop_mu);
      // A signal while a stop is already under way (a first signal, or `shoal leave`) forces.
      const bool force =
          received > 1 || (g_stop_target != nullptr && g_stop_target->stop_requested());
      if (!force) {
        SHOAL_LOG_INFO("signal {} received, leaving the cluster and shutting down", sig);
      } else {
        SHOAL_LOG_WARN("signal {} received while leaving: forcing the leave", sig);
      }
      if (g_stop_target != nullptr)
        g_stop_target->RequestStop(force ? shoal::node::Server::StopMode::kForce
                                         : shoal::node::Server::StopMode::kGraceful);
    }
  }).detach();
}

void SetStopTarget(shoal::node::Server* server) {
  std::lock_guard<std::mutex> lock(g_stop_mu);
  g_stop_target = server;
}

// Raises the soft file-descriptor limit towards what the listeners may hold (client connections,
// the admin API's connection cap, the cluster's sockets), up to the hard limit: the usual soft
// default of 1024 would make accept() fail long before maxclients.
void RaiseFdLimit(const shoal::config::ServerConfig& cfg, int admin_connections) {
  const rlim_t want = static_cast<rlim_t>(cfg.max_clients) + admin_connections + 256;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= want) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) lim.rlim_cur = before;
  if (lim.rlim_cur < want) {
    SHOAL_LOG_WARN(
        "open-file limit is {} (hard limit {}), below the {} that maxclients {} and "
        "the admin API may need; raise it (ulimit -n, LimitNOFILE=)",
        static_cast<unsigned long long>(lim.rlim_cur),
        static_cast<unsigned long long>(lim.rlim_max), static_cast<unsigned long long>(want),
        cfg.max_clients);
  }
}

int Serve(shoal::config::ServerConfig cfg) {
  using shoal::Status;
  shoal::log::Init(cfg.log_level);
  signal(SIGPIPE, SIG_IGN);
  const sigset_t stop_signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  RaiseFdLimit(cfg, cfg.http_port >= 0 ? shoal::admin::AdminOptions{}.max_connections : 0);

  // The admin API first, so the port it got (when derived or 0) is what the node advertises.
  // Its routes answer 503 until the node below has started.
  std::atomic<shoal::node::Server*> running{nullptr};
  std::unique_ptr<shoal::admin::AdminServer> http;
  if (cfg.http_port >= 0) {
    const int want = cfg.EffectiveHttpPort();
    shoal::admin::AdminOptions admin_options;
    admin_options.api_token = cfg.admin_token;
    // Without a token anyone who reaches the port could make the node leave: loopback only.
    const std::string admin_bind = cfg.AdminBind();
    if (cfg.admin_token.empty()) {
      SHOAL_LOG_WARN(
          "no admin token set (admin-token, admin-token-file, SHOAL_ADMIN_TOKEN): the admin HTTP "
          "API listens on 127.0.0.1 only{}; set a token to serve it on the bind address",
          cfg.bind != admin_bind ? fmt::format(", not on {}", cfg.bind) : std::string());
    }
    http = std::make_unique<shoal::admin::AdminServer>(admin_bind, static_cast<uint16_t>(want),
                                                       admin_options);
    shoal::admin::RegisterNodeApi(*http, running);
    Status st = http->Start();
    if (!st.ok()) {
      std::cerr << "shoal: cannot start the admin HTTP API: " << st.error().message() << "\n";
      return 1;
    }
    cfg.http_port = http->port();
  }
  auto server = std::make_unique<shoal::node::Server>(cfg);
  SetStopTarget(server.get());  // a signal during Start() is kept: the stop follows it at once
  WatchSignals();
  Status st = server->Start();
  if (!st.ok()) {
    SetStopTarget(nullptr);
    std::cerr << "shoal: cannot start: " << st.error().message() << "\n";
    return 1;
  }
  running.store(server.get());
  SHOAL_LOG_INFO("shoal ready: listening on {}:{} with {} worker threads (pid {}){}", cfg.bind,
                 server->port(), server->engine().num_shards(), getpid(),
                 http != nullptr
                     ? fmt::format(", admin API on http://{}:{}", cfg.AdminBind(), cfg.http_port)
                     : std::string());
  server->WaitForStopRequest();
  server->LeaveCluster(2000);
  if (http != nullptr) http->Stop();
  running.store(nullptr);
  server->Stop();
  SetStopTarget(nullptr);
  return 0;
}

shoal::admin::HttpClientOptions ClientOptions(const shoal::app::Invocation& inv) {
  shoal::admin::HttpClientOptions o;
  o.token = inv.token;
  return o;
}

int Status(const shoal::app::Invocation& inv) {
  auto res = shoal::admin::HttpGet(inv.node, "/api/v1/members", ClientOptions(inv));
  if (!res.ok()) {
    std::cerr << "shoal status: " << res.error().message() << "\n";
    return 1;
  }
  if (res->status != 200) {
    std::cerr << "shoal status: " << inv.node << " answered " << res->status << ": " << res->body
              << "\n";
    return 1;
  }
  if (inv.json) {
    std::cout << res->body << "\n";
    return 0;
  }
  const auto doc = nlohmann::json::parse(res->body, nullptr, false);
  if (doc.is_discarded() || !doc.contains("members")) {
    std::cerr << "shoal status: unexpected answer: " << res->body << "\n";
    return 1;
  }
  std::printf("%-34s %-22s %-8s %11s %7s %6s  %s\n", "ID", "CLUSTER ADDRESS", "STATE",
              "INCARNATION", "CLIENT", "HTTP", "ROLES");
  for (const auto& m : doc["members"]) {
    std::string roles;
    for (const auto& r : m["roles"]) roles += (roles.empty() ? "" : ",") + r.get<std::string>();
    std::string id = m["id"].get<std::string>();
    if (m.value("self", false)) id += "*";
    std::printf("%-34s %-22s %-8s %11llu %7d %6d  %s\n", id.c_str(),
                m["address"].get<std::string>().c_str(), m["state"].get<std::string>().c_str(),
                static_cast<unsigned long long>(m["incarnation"].get<uint64_t>()),
                m["client_port"].get<int>(), m["http_port"].get<int>(), roles.c_str());
  }
  std::printf("(* = the node asked; view version %llu)\n",
              static_cast<unsigned long long>(doc["version"].get<uint64_t>()));
  // The bucket distribution, as this node knows it.
  auto buckets = shoal::admin::HttpGet(inv.node, "/api/v1/buckets", ClientOptions(inv));
  if (!buckets.ok() || buckets->status != 200) return 0;
  const auto bd = nlohmann::json::parse(buckets->body, nullptr, false);
  if (bd.is_discarded() || !bd.contains("nodes")) return 0;
  std::printf("\n%-34s %-22s %8s %10s %7s\n", "NODE", "CLIENT ADDRESS", "BUCKETS", "KEYS",
              "WEIGHT");
  for (const auto& n : bd["nodes"]) {
    std::string id = n["id"].get<std::string>();
    if (n.value("self", false)) id += "*";
    std::printf("%-34s %-22s %8u %10llu %7u\n", id.c_str(), n["client"].get<std::string>().c_str(),
                n["buckets"].get<unsigned>(),
                static_cast<unsigned long long>(n["keys"].get<uint64_t>()),
                n["weight"].get<unsigned>());
  }
  const auto& local = bd["local"];
  std::printf(
      "(map epoch %llu, %u buckets unowned, coordinator %s; here: %u migrations in flight, "
      "%llu buckets sent, %llu received, %llu lost with dead nodes)\n",
      static_cast<unsigned long long>(bd["epoch"].get<uint64_t>()), bd["unowned"].get<unsigned>(),
      bd["coordinator"].get<std::string>().substr(0, 8).c_str(),
      static_cast<unsigned>(local["migrations"].size()),
      static_cast<unsigned long long>(local["buckets_sent"].get<uint64_t>()),
      static_cast<unsigned long long>(local["buckets_received"].get<uint64_t>()),
      static_cast<unsigned long long>(local["buckets_lost"].get<uint64_t>()));
  return 0;
}

int Join(const shoal::app::Invocation& inv) {
  nlohmann::json body = {{"seeds", inv.args}};
  auto res = shoal::admin::HttpPost(inv.node, "/api/v1/join", body.dump(), ClientOptions(inv));
  if (!res.ok()) {
    std::cerr << "shoal join: " << res.error().message() << "\n";
    return 1;
  }
  if (res->status / 100 != 2) {
    std::cerr << "shoal join: " << inv.node << " answered " << res->status << ": " << res->body
              << "\n";
    return 1;
  }
  std::cout << "joining through " << body["seeds"].dump() << "; see 'shoal status --node "
            << inv.node << "'\n";
  return 0;
}

int Leave(const shoal::app::Invocation& inv) {
  auto res = shoal::admin::HttpPost(inv.node, "/api/v1/leave",
                                    inv.force ? R"({"force":true})" : "{}", ClientOptions(inv));
  if (!res.ok()) {
    std::cerr << "shoal leave: " << res.error().message() << "\n";
    return 1;
  }
  if (res->status / 100 != 2) {
    std::cerr << "shoal leave: " << inv.node << " answered " << res->status << ": " << res->body
              << "\n";
    return 1;
  }
  if (inv.force) {
    std::cout << "leaving (forced): " << inv.node
              << " exits now, keeping the buckets it has not handed over (see its log)\n";
  } else {
    std::cout << "leaving: " << inv.node
              << " hands its buckets to the other nodes, then exits (watch 'shoal status'; "
                 "'shoal leave --force' exits without waiting)\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto inv = shoal::app::ParseCommandLine(argc, argv);
  if (!inv.ok()) {
    std::cerr << "shoal: " << inv.error().message() << "\n";
    return 2;
  }
  if (inv->exit_code) return *inv->exit_code;
  switch (inv->command) {
    case shoal::app::Command::kServe:
      return Serve(inv->server);
    case shoal::app::Command::kStatus:
      return Status(*inv);
    case shoal::app::Command::kJoin:
      return Join(*inv);
    case shoal::app::Command::kLeave:
      return Leave(*inv);
    default:
      std::cerr << "shoal: subcommand not implemented yet\n";
      return 2;
  }
}
