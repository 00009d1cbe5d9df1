// bus_client: a caller of a request-response exchange through the embedded C++ API (node/bus.h).
//
// It starts a shoal node inside this process (node::Server, configured as `shoal serve` would be),
// joins an existing cluster through a seed, waits until the exchange has a live handler in this
// node's view of the bus registry, sends --count requests with Bus::Request and prints each reply
// payload on a line of its own (a broadcast exchange: one line per handler's reply; an error:
// "error: <text>"). Then it leaves the cluster and stops its node. Logs go to stderr.
//
//   bus_client --port 7005 --cluster-port 17005 --seed 127.0.0.1:17001 --cookie secret
//              --exchange svc --key k --payload hello --count 3
//
// Exit status: 0 if every request was answered without error, 1 if some failed, 2 on a usage
// error, 3 if the node could not start or the exchange had no handler before --wait-ms.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "config/server_config.h"
#include "node/bus.h"
#include "node/cluster.h"
#include "node/server.h"

namespace {

using Clock = std::chrono::steady_clock;

// Sets one parameter as the `shoal serve` flags would (same validation and messages).
bool SetParam(shoal::config::ServerConfig& cfg, const std::string& name, const std::string& value) {
  shoal::Status st = cfg.Set(name, value);
  if (!st.ok()) {
    std::cerr << "bus_client: --" << name << " " << value << ": " << st.error().message() << "\n";
    return false;
  }
  return true;
}

// The number of live handlers of `exchange` in this node's registry view (-1: exchange unknown).
int LiveHandlers(shoal::node::Bus* bus, const std::string& exchange) {
  auto p = std::make_shared<std::promise<int>>();
  std::future<int> f = p->get_future();
  bus->Run([p, exchange](shoal::bus::Dispatcher& d) {
    if (d.registry().FindExchange(exchange) == nullptr) {
      p->set_value(-1);
      return;
    }
    p->set_value(static_cast<int>(d.registry().Handlers(exchange).size()));
  });
  return f.get();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Calls a request-response exchange of a shoal cluster through an embedded node.",
               "bus_client");
  int port = 0;
  int cluster_port = 0;
  std::string bind = "127.0.0.1";
  std::vector<std::string> seeds;
  std::string cookie;
  std::string exchange;
  std::string key;
  std::string payload;
  std::string group;
  std::string tag;
  int count = 1;
  int64_t timeout_ms = 5000;
  int64_t wait_ms = 20000;
  int64_t leave_ms = 2000;
  std::string log_level = "warning";
  app.add_option("--port", port, "client (RESP) port of the embedded node; 0 = any")
      ->capture_default_str();
  app.add_option("--cluster-port", cluster_port, "cluster port of the embedded node; 0 = any")
      ->capture_default_str();
  app.add_option("--bind", bind, "address to listen on and advertise")->capture_default_str();
  app.add_option("--seed", seeds, "host:cluster-port of a cluster member (repeatable)")->required();
  app.add_option("--cookie", cookie, "the cluster's cookie")->required();
  app.add_option("--exchange", exchange, "the request-response exchange to call")->required();
  app.add_option("--key", key, "routing key")->capture_default_str();
  app.add_option("--payload", payload, "request payload")->capture_default_str();
  app.add_option("--group", group, "only handlers of this group (service tag)");
  app.add_option("--tag", tag, "request tag (echoed with the reply)");
  app.add_option("--count", count, "number of requests, sent one after the other")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "timeout of each request")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400'000}))
      ->capture_default_str();
  app.add_option("--wait-ms", wait_ms, "how long to wait for a live handler of the exchange")
      ->capture_default_str();
  app.add_option("--leave-ms", leave_ms, "how long to spread the news of leaving")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warning, error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  // Logs on stderr: stdout carries the replies only.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bus_client"));
  shoal::log::Init(log_level);
  signal(SIGPIPE, SIG_IGN);

  shoal::config::ServerConfig cfg;
  std::string seed_list;
  for (const std::string& s : seeds) seed_list += (seed_list.empty() ? "" : ",") + s;
  if (!SetParam(cfg, "port", std::to_string(port)) ||
      !SetParam(cfg, "cluster-port", std::to_string(cluster_port)) ||
      !SetParam(cfg, "http-port", "-1") || !SetParam(cfg, "threads", "1") ||
      !SetParam(cfg, "bind", bind) || !SetParam(cfg, "cookie", cookie) ||
      !SetParam(cfg, "seeds", seed_list)) {
    return 2;
  }

  auto server = std::make_unique<shoal::node::Server>(cfg);
  if (shoal::Status st = server->Start(); !st.ok()) {
    std::cerr << "bus_client: cannot start the node: " << st.error().message() << "\n";
    return 3;
  }
  shoal::node::Bus* bus = server->cluster()->bus();
  auto shutdown = [&] {
    server->LeaveCluster(leave_ms);
    server->Stop();
  };

  // The exchange and its handlers reach this node's registry by anti-entropy after the join.
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  int handlers = -1;
  while ((handlers = LiveHandlers(bus, exchange)) <= 0) {
    if (Clock::now() >= deadline) {
      std::cerr << "bus_client: " << (handlers < 0 ? "no exchange '" : "no live handler of '")
                << exchange << "' after " << wait_ms << " ms\n";
      shutdown();
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "bus_client: '" << exchange << "' has " << handlers << " live handler(s)\n";

  int failures = 0;
  for (int i = 0; i < count; ++i) {
    shoal::bus::RequestOptions options;
    options.timeout_ms = timeout_ms;
    options.group = group;
    options.tag = tag;
    std::future<shoal::Result<shoal::bus::Response>> f =
        bus->Request(exchange, key, payload, options);
    shoal::Result<shoal::bus::Response> r = f.get();
    if (!r.ok()) {
      std::printf("error: %s\n", r.error().message().c_str());
      ++failures;
      continue;
    }
    for (const shoal::bus::ReplyPart& part : r->replies) {
      if (part.ok) {
        std::printf("%s\n", part.payload.c_str());
      } else {
        std::printf("error: %s\n", part.payload.c_str());
        ++failures;
      }
    }
    std::fflush(stdout);
  }

  shutdown();
  return failures == 0 ? 0 : 1;
}
