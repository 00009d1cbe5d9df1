// Messaging bus: request-response ping-pong through node::Bus, in one process and
// across three processes on loopback, against the seed's figures (Erlang, an old laptop).
//
// Usage: bus_bench [--part local|remote|all] [--requests N] [--seconds S] [--payload BYTES]
//
//   local   one embedded node (node::Server, 1 worker thread, cluster on loopback, admin HTTP off)
//           with a C++ echo handler (Replier::Ok(payload)) on a round_robin request-response
//           exchange, and callers in the same process:
//             (a) sequential: one chain of N requests; each response callback (on the bus's
//                 control thread) issues the next request (Bus::Request with a callback; the
//                 chain starts on the control thread through Bus::Run);
//             (b) parallel: P chains in flight at once (P = 4, 10, 100), N requests in all;
//             (c) std::future variant: Bus::Request(...).get() in a loop on the main thread, one
//                 request at a time (two thread hops per request: main -> control -> main).
//   remote  the same node in this process plus two child processes (this binary re-executed with
//           --child), each an embedded node joined to this one through `seeds` (same cookie)
//           with an echo handler on a round_robin exchange that has no handler in this process:
//           every request crosses to another process over the cluster port (internal RPC). The
//           parent waits until its registry lists both handlers, then runs P = 1, 4, 10, 100
//           chains; the children are killed by pid at the end.
//   all     local, then remote (default).
//
// Every measurement is bounded by its request count and by a deadline (--seconds, default 30 s);
// a run cut by the deadline says so. Counts: local N = --requests (default 2,000,000) per chain
// row and N/20 for the future row; remote N = --requests (default 100,000) times 1, 3, 6, 20 for
// 1, 4, 10, 100 callers and N/2 for the future row.
// A short warm-up precedes each measurement. Each reply is checked against the request's payload.
// Exit status: 0 if every request got its own payload back, 1 otherwise.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "net/event_loop.h"
#include "node/bus.h"
#include "node/cluster.h"
#include "node/server.h"

namespace {

using shoal::Result;
using shoal::node::Bus;
using Clock = std::chrono::steady_clock;

// Seed (Erlang) figures from the issue, requests/s.
constexpr double kSeedLocalSeq = 27'000, kSeedLocalPar = 53'000;
constexpr double kSeedRemoteSeq = 8'700, kSeedRemotePar = 34'500;

struct Options {
  std::string part = "all";
  long long requests = 0;  // 0 = default per part
  double seconds = 30;
  size_t payload = 4;
  // child mode
  bool child = false;
  std::string seed, cookie, exchange;
  double child_lifetime = 900;
};

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
Clock::time_point After(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

shoal::config::ServerConfig NodeConfig(const std::string& cookie, std::vector<std::string> seeds) {
  shoal::config::ServerConfig cfg;
  cfg.bind = "127.0.0.1";
  cfg.port = 0;        // any free port; the cluster port too (0 derived from 0)
  cfg.threads = 1;     // the bus lives on the control thread; one RESP worker is plenty
  cfg.http_port = -1;  // no admin HTTP
  cfg.cookie = cookie;
  cfg.seeds = std::move(seeds);
  cfg.cluster_enabled = false;  // no bucket sharding: nothing but the bus and SWIM runs
  cfg.log_level = "warning";
  return cfg;
}

// Echo handler: answers each request with its payload.
Result<shoal::bus::Handler> ServeEcho(Bus* bus, const std::string& exchange) {
  return bus
      ->Serve(exchange, {},
              [](const shoal::bus::IncomingRequest& r, Bus::Replier reply) { reply.Ok(r.payload); })
      .get();
}

// Polls (on the control thread) until `exchange` has `n` live handlers in this node's registry.
bool WaitHandlers(Bus* bus, const std::string& exchange, size_t n, double seconds) {
  const auto deadline = After(seconds);
  while (Clock::now() < deadline) {
    auto p = std::make_shared<std::promise<size_t>>();
    auto f = p->get_future();
    bus->Run([p, exchange](shoal::bus::Dispatcher& d) {
      p->set_value(d.registry().Handlers(exchange).size());
    });
    if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready && f.get() >= n) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// P chains of requests driven from the bus's control thread, N requests in all.
struct ChainRun {
  Bus* bus = nullptr;
  std::string exchange;
  std::string payload;
  long long target = 0;
  Clock::time_point deadline;
  // Control thread only:
  long long issued = 0, ok = 0, failed = 0, mismatched = 0;
  int active = 0;
  std::string first_error;
  Clock::time_point start, end;
  std::promise<void> done;
};

void NextRequest(const std::shared_ptr<ChainRun>& r) {
  if (r->issued >= r->target || Clock::now() >= r->deadline) {
    if (--r->active == 0) {
      r->end = Clock::now();
      r->done.set_value();
    }
    return;
  }
  ++r->issued;
  r->bus->Request(r->exchange, "k", r->payload, {}, [r](Result<shoal::bus::Response> res) {
    if (!res.ok()) {
      if (r->failed++ == 0) r->first_error = res.error().message();
    } else if (res->replies.size() != 1 || !res->replies[0].ok ||
               res->replies[0].payload != r->payload) {
      ++r->mismatched;
    } else {
      ++r->ok;
    }
    NextRequest(r);
  });
}

struct Measure {
  long long done = 0, errors = 0;
  double secs = 0;
  bool cut = false;  // stopped by the deadline
  double rps() const { return secs > 0 ? done / secs : 0; }
};

Measure RunChains(Bus* bus, const std::string& exchange, const std::string& payload, int chains,
                  long long requests, double seconds) {
  auto r = std::make_shared<ChainRun>();
  r->bus = bus;
  r->exchange = exchange;
  r->payload = payload;
  r->target = requests;
  r->deadline = After(seconds);
  auto f = r->done.get_future();
  bus->Run([r, chains](shoal::bus::Dispatcher&) {
    r->start = Clock::now();
    r->active = chains;
    for (int i = 0; i < chains; ++i) NextRequest(r);
  });
  // The chains stop themselves at the deadline; allow the requests in flight their timeout.
  if (f.wait_for(std::chrono::duration<double>(seconds + 10)) != std::future_status::ready) {
    std::fprintf(stderr, "bus_bench: chains did not finish (bus stuck?)\n");
    std::_Exit(3);
  }
  Measure m;
  m.done = r->ok;
  m.errors = r->failed + r->mismatched;
  m.secs = Secs(r->end - r->start);
  m.cut = r->issued < r->target;
  if (r->failed > 0) {
    std::fprintf(stderr, "  %lld requests failed; first error: %s\n", r->failed,
                 r->first_error.c_str());
  }
  if (r->mismatched > 0) std::fprintf(stderr, "  %lld wrong replies\n", r->mismatched);
  return m;
}

Measure RunFutures(Bus* bus, const std::string& exchange, const std::string& payload,
                   long long requests, double seconds) {
  Measure m;
  const auto start = Clock::now();
  const auto deadline = After(seconds);
  std::string first_error;
  long long i = 0;
  for (; i < requests && Clock::now() < deadline; ++i) {
    auto res = bus->Request(exchange, "k", payload).get();
    if (res.ok() && res->replies.size() == 1 && res->replies[0].ok &&
        res->replies[0].payload == payload) {
      ++m.done;
    } else {
      if (m.errors++ == 0) first_error = res.ok() ? "wrong reply" : res.error().message();
    }
  }
  m.secs = Secs(Clock::now() - start);
  m.cut = i < requests;
  if (m.errors > 0) {
    std::fprintf(stderr, "  %lld requests failed; first error: %s\n", m.errors,
                 first_error.c_str());
  }
  return m;
}

// The floor under (c): the same two thread hops without the bus — a task posted to an idle
// net::EventLoop on another thread (as Bus::Request does) that sets a std::promise the main
// thread waits for.
Measure RunHopFloor(long long n, double seconds) {
  shoal::net::EventLoop loop;
  std::thread t([&loop] { loop.Run(); });
  Measure m;
  const auto start = Clock::now();
  const auto deadline = After(seconds);
  long long i = 0;
  for (; i < n && Clock::now() < deadline; ++i) {
    std::promise<int> p;
    auto f = p.get_future();
    loop.Post([&p] { p.set_value(1); });
    m.done += f.get();
  }
  m.secs = Secs(Clock::now() - start);
  m.cut = i < n;
  loop.Stop();
  t.join();
  return m;
}

void PrintRow(const char* what, int callers, const Measure& m, double seed, double target_x) {
  // target_x <= 0: no target for this row (the ratio is for information).
  const double x = m.rps() / seed;
  const char* verdict = target_x <= 0 ? "-" : x >= target_x ? "meets" : "MISSES";
  std::printf("%-38s %7d %10lld %8.2f %12.0f %10.0f %8.1fx  %s%s\n", what, callers, m.done, m.secs,
              m.rps(), seed, x, verdict, m.cut ? " (cut by deadline)" : "");
  if (m.errors > 0) std::printf("%-38s errors: %lld\n", "", m.errors);
  std::fflush(stdout);
}

void PrintHeader() {
  std::printf("%-38s %7s %10s %8s %12s %10s %9s  %s\n", "test", "callers", "requests", "seconds",
              "requests/s", "seed/s", "vs seed", "target");
}

void PrintCounters(Bus* bus) {
  // Refreshed every tick (10 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const shoal::bus::Counters c = bus->counters();
  std::printf(
      "(bus counters on this node: requests %llu, replies_ok %llu, timeouts %llu, overflow %llu, "
      "caller_overflow %llu, unreachable %llu, retried_gone %llu)\n",
      (unsigned long long)c.requests, (unsigned long long)c.replies_ok,
      (unsigned long long)c.timeouts, (unsigned long long)c.overflow,
      (unsigned long long)c.caller_overflow, (unsigned long long)c.unreachable,
      (unsigned long long)c.retried_gone);
}

bool PartLocal(const Options& o) {
  const long long n = o.requests > 0 ? o.requests : 2'000'000;
  const std::string payload(o.payload, 'p');
  shoal::node::Server server(NodeConfig("bus-bench-local-" + std::to_string(getpid()), {}));
  if (auto st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "bus_bench: cannot start the node: %s\n", st.error().message().c_str());
    return false;
  }
  Bus* bus = server.cluster()->bus();
  const std::string ex = "echo";
  auto spec = bus->Create(ex, shoal::bus::Pattern::kRequestResponse, "round_robin").get();
  auto h = spec.ok() ? ServeEcho(bus, ex) : Result<shoal::bus::Handler>(spec.error());
  if (!h.ok() || !WaitHandlers(bus, ex, 1, 10)) {
    std::fprintf(stderr, "bus_bench: no handler: %s\n",
                 h.ok() ? "not in the registry" : h.error().message().c_str());
    return false;
  }
  std::printf(
      "\n== Part 1: request-response in one process (1 node, 1 echo handler, payload %zu B, "
      "N = %lld per row, N/20 for (c), deadline %.0f s per row) ==\n",
      o.payload, n, o.seconds);
  PrintHeader();
  bool clean = true;
  (void)RunChains(bus, ex, payload, 1, n / 10, o.seconds);  // warm-up
  Measure seq = RunChains(bus, ex, payload, 1, n, o.seconds);
  PrintRow("(a) sequential, callback chain", 1, seq, kSeedLocalSeq, 10);
  clean &= seq.errors == 0;
  for (int p : {4, 10, 100}) {
    (void)RunChains(bus, ex, payload, p, n / 10, o.seconds);
    Measure par = RunChains(bus, ex, payload, p, n, o.seconds);
    PrintRow("(b) parallel callback chains", p, par, kSeedLocalPar, 10);
    clean &= par.errors == 0;
  }
  (void)RunFutures(bus, ex, payload, n / 200, o.seconds);
  Measure fut = RunFutures(bus, ex, payload, n / 20, o.seconds);
  PrintRow("(c) sequential, std::future, main thread", 1, fut, kSeedLocalSeq, 0);
  clean &= fut.errors == 0;
  Measure floor = RunHopFloor(n / 20, o.seconds);
  PrintRow("    floor of (c): 2 thread hops, no bus", 1, floor, kSeedLocalSeq, 0);
  std::printf(
      "(targets: >= 10x the seed: %.0f/s sequential (a), %.0f/s parallel (b); (c) has no "
      "target, its ratio is against the sequential seed)\n",
      10 * kSeedLocalSeq, 10 * kSeedLocalPar);
  PrintCounters(bus);
  server.Stop();
  return clean;
}

// ---- remote part ----

std::vector<pid_t> g_children;

void KillChildren() {
  for (pid_t pid : g_children) {
    if (pid > 0) kill(pid, SIGKILL);
  }
  for (pid_t pid : g_children) {
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
  g_children.clear();
}

pid_t SpawnChild(const std::string& self_exe, const std::string& seed, const std::string& cookie,
                 const std::string& exchange) {
  // Everything the child needs is built before fork: after it only exec (async-signal-safe).
  std::vector<std::string> args = {self_exe,   "--child", "--seed",     seed,
                                   "--cookie", cookie,    "--exchange", exchange};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
    if (getppid() != parent) _exit(1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int ChildMain(const Options& o) {
  shoal::log::Init("warning");
  signal(SIGPIPE, SIG_IGN);
  shoal::node::Server server(NodeConfig(o.cookie, {o.seed}));
  if (auto st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "bus_bench child: cannot start: %s\n", st.error().message().c_str());
    return 1;
  }
  Bus* bus = server.cluster()->bus();
  auto spec = bus->Create(o.exchange, shoal::bus::Pattern::kRequestResponse, "round_robin").get();
  if (!spec.ok()) {
    std::fprintf(stderr, "bus_bench child: create: %s\n", spec.error().message().c_str());
    return 1;
  }
  auto h = ServeEcho(bus, o.exchange);
  if (!h.ok()) {
    std::fprintf(stderr, "bus_bench child: serve: %s\n", h.error().message().c_str());
    return 1;
  }
  // Lives until the parent kills it (or dies: PR_SET_PDEATHSIG), at most child_lifetime seconds.
  const auto end = After(o.child_lifetime);
  while (Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::_Exit(0);
}

bool PartRemote(const Options& o, const std::string& self_exe) {
  const long long n = o.requests > 0 ? o.requests : 100'000;
  const std::string payload(o.payload, 'p');
  const std::string cookie = "bus-bench-remote-" + std::to_string(getpid());
  const std::string ex = "remote_echo";
  shoal::node::Server server(NodeConfig(cookie, {}));
  if (auto st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "bus_bench: cannot start the node: %s\n", st.error().message().c_str());
    return false;
  }
  Bus* bus = server.cluster()->bus();
  auto spec = bus->Create(ex, shoal::bus::Pattern::kRequestResponse, "round_robin").get();
  if (!spec.ok()) {
    std::fprintf(stderr, "bus_bench: create: %s\n", spec.error().message().c_str());
    return false;
  }
  const std::string seed = server.cluster()->address().ToString();
  for (int i = 0; i < 2; ++i) {
    const pid_t pid = SpawnChild(self_exe, seed, cookie, ex);
    if (pid < 0) {
      std::perror("fork");
      KillChildren();
      return false;
    }
    g_children.push_back(pid);
  }
  const auto t0 = Clock::now();
  if (!WaitHandlers(bus, ex, 2, 30)) {
    std::fprintf(stderr, "bus_bench: the children's handlers did not show up within 30 s\n");
    KillChildren();
    return false;
  }
  std::printf(
      "\n== Part 2: request-response across 3 processes on loopback (this process calls; "
      "2 child nodes, pids %d and %d, 1 echo handler each; payload %zu B, N = %lld per "
      "row times 1, 3, 6, 20 for 1, 4, 10, 100 callers, N/2 for the future row; deadline %.0f s "
      "per "
      "row) ==\n",
      g_children[0], g_children[1], o.payload, n, o.seconds);
  std::printf("(both handlers in this node's registry %.2f s after the children were started)\n",
              Secs(Clock::now() - t0));
  PrintHeader();
  bool clean = true;
  // More requests for more callers, so that every row runs for a few seconds.
  for (auto [p, scale] : {std::pair{1, 1}, {4, 3}, {10, 6}, {100, 20}}) {
    const long long rows = n * scale;
    (void)RunChains(bus, ex, payload, p, std::max<long long>(rows / 20, 1000), o.seconds);
    Measure m = RunChains(bus, ex, payload, p, rows, o.seconds);
    // The target: >= 3x the seed with (100) parallel callers.
    PrintRow(p == 1 ? "sequential, callback chain" : "parallel callback chains", p, m,
             p == 1 ? kSeedRemoteSeq : kSeedRemotePar, p == 100 ? 3 : 0);
    clean &= m.errors == 0;
  }
  (void)RunFutures(bus, ex, payload, std::max<long long>(n / 20, 100), o.seconds);
  Measure fut = RunFutures(bus, ex, payload, n / 2, o.seconds);
  PrintRow("sequential, std::future, main thread", 1, fut, kSeedRemoteSeq, 0);
  clean &= fut.errors == 0;
  std::printf(
      "(target: >= 3x the seed with 100 parallel callers: %.0f/s; the other rows have no "
      "target, their ratio is for information)\n",
      3 * kSeedRemotePar);
  PrintCounters(bus);
  KillChildren();
  server.Stop();
  return clean;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bus_bench: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--part") {
      o->part = value("--part");
    } else if (a == "--requests") {
      o->requests = std::atoll(value("--requests"));
    } else if (a == "--seconds") {
      o->seconds = std::atof(value("--seconds"));
    } else if (a == "--payload") {
      o->payload = static_cast<size_t>(std::atoll(value("--payload")));
    } else if (a == "--child") {
      o->child = true;
    } else if (a == "--seed") {
      o->seed = value("--seed");
    } else if (a == "--cookie") {
      o->cookie = value("--cookie");
    } else if (a == "--exchange") {
      o->exchange = value("--exchange");
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: bus_bench [--part local|remote|all] [--requests N] [--seconds S] "
          "[--payload BYTES]\n");
      std::exit(0);
    } else {
      std::fprintf(stderr, "bus_bench: unknown argument %s (try --help)\n", a.c_str());
      return false;
    }
  }
  return o->part == "local" || o->part == "remote" || o->part == "all";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  if (o.child) return ChildMain(o);
  shoal::log::Init("warning");
  signal(SIGPIPE, SIG_IGN);
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) {
    std::perror("readlink /proc/self/exe");
    return 2;
  }
  exe[len] = '\0';
  std::printf(
      "bus_bench: %u cores; seed figures (Erlang): %.0f/s and %.0f/s in one process, "
      "%.0f/s and %.0f/s across processes\n",
      std::thread::hardware_concurrency(), kSeedLocalSeq, kSeedLocalPar, kSeedRemoteSeq,
      kSeedRemotePar);
  bool clean = true;
  if (o.part == "local" || o.part == "all") clean &= PartLocal(o);
  if (o.part == "remote" || o.part == "all") clean &= PartRemote(o, exe);
  return clean ? 0 : 1;
}
