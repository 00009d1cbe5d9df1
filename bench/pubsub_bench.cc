// PUBLISH/SUBSCRIBE client for bench/pubsub_compare.sh: message throughput and PUBLISH latency
// against any server that speaks RESP2 (redis-server, shoal). Plain sockets, raw RESP, one thread
// with epoll, so that the client costs the same for every server.
//
// Usage: pubsub_bench --pub PORT --sub PORT[,PORT...] [--subscribers S] [--messages M]
//                     [--batch B] [--window W] [--max-lag L] [--payload BYTES]
//                     [--latency N] [--seconds T] [--channel NAME] [--label TEXT]
//
//   1. S subscriber connections (default 10), spread round-robin over the --sub ports, each
//      SUBSCRIBEs to one channel; the client waits for every confirmation.
//   2. A check: one PUBLISH must reach all S subscribers (its reply is printed).
//   3. Throughput: one publisher connection (to --pub) sends M PUBLISHes (default 300000) in
//      pipelined batches of B (default 64), with at most W batches unanswered (default 4) and at
//      most L deliveries not yet read by the subscribers (default 200000: so neither server's
//      output buffers grow without bound). It counts the `message` pushes the subscribers get
//      (every one is parsed and its channel and payload checked) until all M*S arrived or T
//      seconds (default 60) passed. Rate = deliveries / (last delivery - first PUBLISH sent).
//   4. Latency: N (default 20000) PUBLISHes one at a time (send, wait for the reply), the
//      subscribers still connected and read; p50, p99, p99.9 and max of the round trip.
//
// Prints a human summary and one machine-readable line:
//   RESULT label=... subscribers=S messages=M delivered=D secs=... deliveries_per_s=...
//          publishes_per_s=... lat_p50_us=... lat_p99_us=... lat_p999_us=... lat_max_us=...
// Exit status: 0 if every message was delivered to every subscriber, 1 otherwise, 2 on errors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "pubsub_bench: %s\n", msg.c_str());
  std::exit(2);
}

// ---- a minimal incremental RESP2 reader ----

struct Value {
  char type = 0;  // '+', '-', ':', '$', '*'
  long long integer = 0;
  std::string_view str;  // simple/error/bulk text (points into the buffer)
  std::vector<Value> items;
  bool null = false;
};

// Parses one value at buf[pos...]; returns false if incomplete (pos unchanged).
bool ParseLine(std::string_view buf, size_t& pos, std::string_view* line) {
  const size_t e = buf.find("\r\n", pos);
  if (e == std::string_view::npos) return false;
  *line = buf.substr(pos, e - pos);
  pos = e + 2;
  return true;
}

bool ParseValue(std::string_view buf, size_t& pos, Value* v) {
  if (pos >= buf.size()) return false;
  size_t p = pos;
  const char t = buf[p++];
  std::string_view line;
  if (!ParseLine(buf, p, &line)) return false;
  v->type = t;
  switch (t) {
    case '+':
    case '-':
      v->str = line;
      break;
    case ':':
      v->integer = std::strtoll(std::string(line).c_str(), nullptr, 10);
      break;
    case '$': {
      const long long n = std::strtoll(std::string(line).c_str(), nullptr, 10);
      if (n < 0) {
        v->null = true;
        break;
      }
      if (buf.size() < p + static_cast<size_t>(n) + 2) return false;
      v->str = buf.substr(p, static_cast<size_t>(n));
      p += static_cast<size_t>(n) + 2;
      break;
    }
    case '*':
    case '>': {
      const long long n = std::strtoll(std::string(line).c_str(), nullptr, 10);
      if (n < 0) {
        v->null = true;
        break;
      }
      v->items.resize(static_cast<size_t>(n));
      for (auto& item : v->items) {
        if (!ParseValue(buf, p, &item)) return false;
      }
      break;
    }
    default:
      Die("unexpected RESP type byte '" + std::string(1, t) + "'");
  }
  pos = p;
  return true;
}

// ---- connections ----

struct Conn {
  int fd = -1;
  int port = 0;
  std::string in;
  size_t in_pos = 0;
  std::string out;
  size_t out_pos = 0;
  bool want_write = false;
};

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Die("socket: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    Die("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

std::string Command(const std::vector<std::string_view>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    s += "$" + std::to_string(a.size()) + "\r\n";
    s.append(a);
    s += "\r\n";
  }
  return s;
}

// Reads what is available; false on EOF or error.
bool ReadSome(Conn& c) {
  char buf[65536];
  for (int i = 0; i < 16; ++i) {
    const ssize_t n = read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) return true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    if (errno == EINTR) continue;
    return false;
  }
  return true;
}

// Writes what the socket takes; false on error.
bool WriteSome(Conn& c) {
  while (c.out_pos < c.out.size()) {
    const ssize_t n = write(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  c.out.clear();
  c.out_pos = 0;
  return true;
}

void Compact(Conn& c) {
  if (c.in_pos > 0 && (c.in_pos == c.in.size() || c.in_pos > (1 << 20))) {
    c.in.erase(0, c.in_pos);
    c.in_pos = 0;
  }
}

struct Options {
  int pub_port = 0;
  std::vector<int> sub_ports;
  int subscribers = 10;
  long long messages = 300'000;
  int batch = 64;
  int window = 4;
  long long max_lag = 200'000;
  size_t payload = 16;
  long long latency = 20'000;
  double seconds = 60;
  std::string channel = "bench-channel";
  std::string label = "server";
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)), payload_(o_.payload, 'm') {
    ep_ = epoll_create1(0);
    if (ep_ < 0) Die("epoll_create1");
  }

  void Subscribe() {
    subs_.resize(static_cast<size_t>(o_.subscribers));
    for (size_t i = 0; i < subs_.size(); ++i) {
      Conn& c = subs_[i];
      c.port = o_.sub_ports[i % o_.sub_ports.size()];
      c.fd = Connect(c.port);
      c.out = Command({"SUBSCRIBE", o_.channel});
      if (!WriteSome(c)) Die("write SUBSCRIBE");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    }
    pub_.port = o_.pub_port;
    pub_.fd = Connect(pub_.port);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kPub;
    epoll_ctl(ep_, EPOLL_CTL_ADD, pub_.fd, &ev);
    confirmed_ = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (confirmed_ < o_.subscribers) {
      if (Clock::now() > deadline) Die("subscriptions not confirmed within 30 s");
      Poll(100);
    }
  }

  // One PUBLISH, checked: its reply and a delivery to every subscriber.
  void Check() {
    const long long before = delivered_;
    SendPublishes(1);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (replies_ < sent_ || delivered_ < before + o_.subscribers) {
      if (Clock::now() > deadline) {
        Die("check: the first PUBLISH reached " + std::to_string(delivered_ - before) + " of " +
            std::to_string(o_.subscribers) + " subscribers within 10 s");
      }
      Poll(10);
    }
    std::printf("[%s] check: PUBLISH answered %lld; delivered to %lld of %d subscribers\n",
                o_.label.c_str(), last_reply_, delivered_ - before, o_.subscribers);
  }

  void Throughput() {
    // Warm-up, not counted: 1% of the messages.
    RunPublishes(std::max<long long>(o_.messages / 100, 100), 10, nullptr);
    Result r;
    RunPublishes(o_.messages, o_.seconds, &r);
    tput_ = r;
  }

  void Latency() {
    std::vector<double> us;
    us.reserve(static_cast<size_t>(o_.latency));
    const auto end = Clock::now() + std::chrono::duration<double>(o_.seconds);
    const long long expect_delivered = delivered_ + o_.latency * o_.subscribers;
    for (long long i = 0; i < o_.latency && Clock::now() < end; ++i) {
      const long long want = replies_ + 1;
      const auto t0 = Clock::now();
      SendPublishes(1);
      while (replies_ < want) {
        if (Clock::now() > end) break;
        Poll(10);
      }
      if (replies_ < want) break;
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    // Let the subscribers catch up (so the server is idle for the next run).
    const auto drain = Clock::now() + std::chrono::seconds(10);
    while (delivered_ < expect_delivered && Clock::now() < drain) Poll(10);
    std::sort(us.begin(), us.end());
    auto pct = [&](double q) {
      if (us.empty()) return 0.0;
      return us[std::min(us.size() - 1, static_cast<size_t>(q * static_cast<double>(us.size())))];
    };
    lat_n_ = static_cast<long long>(us.size());
    lat_p50_ = pct(0.50);
    lat_p99_ = pct(0.99);
    lat_p999_ = pct(0.999);
    lat_max_ = us.empty() ? 0 : us.back();
    double sum = 0;
    for (double x : us) sum += x;
    lat_mean_ = us.empty() ? 0 : sum / static_cast<double>(us.size());
  }

  int Report() const {
    const double secs = tput_.secs;
    const double dps = secs > 0 ? static_cast<double>(tput_.delivered) / secs : 0;
    const double pps = secs > 0 ? static_cast<double>(tput_.acked) / secs : 0;
    std::printf(
        "[%s] throughput: %lld PUBLISHes (batches of %d, %d in flight), %d subscribers on "
        "%zu port(s): %lld of %lld deliveries in %.3f s = %.0f deliveries/s (%.0f PUBLISH/s)%s\n",
        o_.label.c_str(), o_.messages, o_.batch, o_.window, o_.subscribers, o_.sub_ports.size(),
        tput_.delivered, o_.messages * o_.subscribers, secs, dps, pps,
        tput_.cut ? " (CUT by the deadline)" : "");
    std::printf(
        "[%s] latency: %lld sequential PUBLISH round trips: mean %.1f us, p50 %.1f us, p99 %.1f "
        "us, p99.9 %.1f us, max %.1f us\n",
        o_.label.c_str(), lat_n_, lat_mean_, lat_p50_, lat_p99_, lat_p999_, lat_max_);
    std::printf(
        "RESULT label=%s subscribers=%d messages=%lld delivered=%lld secs=%.3f "
        "deliveries_per_s=%.0f publishes_per_s=%.0f lat_n=%lld lat_p50_us=%.1f lat_p99_us=%.1f "
        "lat_p999_us=%.1f lat_max_us=%.1f\n",
        o_.label.c_str(), o_.subscribers, o_.messages, tput_.delivered, secs, dps, pps, lat_n_,
        lat_p50_, lat_p99_, lat_p999_, lat_max_);
    std::fflush(stdout);
    return tput_.delivered == o_.messages * o_.subscribers ? 0 : 1;
  }

 private:
  static constexpr uint64_t kPub = ~uint64_t{0};
  struct Result {
    long long delivered = 0, acked = 0;
    double secs = 0;
    bool cut = false;
  };

  void SendPublishes(int n) {
    if (publish_cmd_.empty()) publish_cmd_ = Command({"PUBLISH", o_.channel, payload_});
    for (int i = 0; i < n; ++i) pub_.out += publish_cmd_;
    sent_ += n;
    if (!WriteSome(pub_)) Die("write to the publisher connection failed");
    UpdatePubWrite();
  }

  void UpdatePubWrite() {
    const bool want = pub_.out_pos < pub_.out.size();
    if (want == pub_.want_write) return;
    pub_.want_write = want;
    epoll_event ev{};
    ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u64 = kPub;
    epoll_ctl(ep_, EPOLL_CTL_MOD, pub_.fd, &ev);
  }

  // Publishes `count` messages under the flow-control bounds; fills `r` if given.
  void RunPublishes(long long count, double seconds, Result* r) {
    const long long start_delivered = delivered_, start_replies = replies_;
    const long long goal = start_delivered + count * o_.subscribers;
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::duration<double>(seconds);
    long long to_send = count;
    Clock::time_point last = t0;
    while (delivered_ < goal) {
      const auto now = Clock::now();
      if (now > deadline) break;
      while (to_send > 0 && sent_ - replies_ < static_cast<long long>(o_.batch) * o_.window &&
             sent_ * o_.subscribers - lost_base_ - delivered_ < o_.max_lag) {
        const int n = static_cast<int>(std::min<long long>(to_send, o_.batch));
        SendPublishes(n);
        to_send -= n;
      }
      const long long before = delivered_;
      Poll(10);
      if (delivered_ != before) last = Clock::now();
    }
    // Unanswered PUBLISHes and undelivered messages must not leak into the next phase.
    const auto drain = Clock::now() + std::chrono::seconds(10);
    while ((replies_ < sent_ || delivered_ < sent_ * o_.subscribers - lost_base_) &&
           Clock::now() < drain) {
      Poll(10);
    }
    if (r != nullptr) {
      r->delivered = std::min(delivered_, goal) - start_delivered;
      r->acked = replies_ - start_replies;
      r->secs = std::chrono::duration<double>(last - t0).count();
      r->cut = delivered_ < goal;
    }
    // From here on count against what actually arrived (a cut run may have lost some).
    lost_base_ = sent_ * o_.subscribers - delivered_;
  }

  void Poll(int timeout_ms) {
    epoll_event evs[64];
    const int n = epoll_wait(ep_, evs, 64, timeout_ms);
    for (int i = 0; i < n; ++i) {
      const uint64_t who = evs[i].data.u64;
      if (who == kPub) {
        if (evs[i].events & EPOLLOUT) {
          if (!WriteSome(pub_)) Die("publisher write failed");
          UpdatePubWrite();
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          if (!ReadSome(pub_)) Die("the server closed the publisher connection");
          ParsePub();
        }
      } else {
        Conn& c = subs_[who];
        if (!ReadSome(c)) {
          Die("the server closed subscriber connection " + std::to_string(who) + " (port " +
              std::to_string(c.port) + ")");
        }
        ParseSub(c);
      }
    }
  }

  void ParsePub() {
    for (;;) {
      Value v;
      size_t pos = pub_.in_pos;
      if (!ParseValue(pub_.in, pos, &v)) break;
      pub_.in_pos = pos;
      if (v.type != ':') Die("PUBLISH answered: " + std::string(v.str));
      last_reply_ = v.integer;
      ++replies_;
    }
    Compact(pub_);
  }

  void ParseSub(Conn& c) {
    for (;;) {
      Value v;
      size_t pos = c.in_pos;
      if (!ParseValue(c.in, pos, &v)) break;
      c.in_pos = pos;
      if ((v.type != '*' && v.type != '>') || v.items.empty()) {
        Die("subscriber got an unexpected reply: " + std::string(v.str));
      }
      const std::string_view kind = v.items[0].str;
      if (kind == "message" && v.items.size() == 3) {
        if (v.items[1].str != o_.channel || v.items[2].str != payload_) {
          Die("subscriber got a wrong message");
        }
        ++delivered_;
      } else if (kind == "subscribe") {
        ++confirmed_;
      } else {
        Die("subscriber got an unexpected push: " + std::string(kind));
      }
    }
    Compact(c);
  }

  Options o_;
  std::string payload_;
  std::string publish_cmd_;
  int ep_ = -1;
  std::vector<Conn> subs_;
  Conn pub_;
  int confirmed_ = 0;
  long long sent_ = 0, replies_ = 0, delivered_ = 0, last_reply_ = 0, lost_base_ = 0;
  Result tput_;
  long long lat_n_ = 0;
  double lat_p50_ = 0, lat_p99_ = 0, lat_p999_ = 0, lat_max_ = 0, lat_mean_ = 0;
};

std::vector<int> ParsePorts(const std::string& s) {
  std::vector<int> out;
  size_t i = 0;
  while (i <= s.size()) {
    const size_t j = s.find(',', i);
    const std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!part.empty()) out.push_back(std::atoi(part.c_str()));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--pub") {
      o.pub_port = std::atoi(value().c_str());
    } else if (a == "--sub") {
      o.sub_ports = ParsePorts(value());
    } else if (a == "--subscribers") {
      o.subscribers = std::atoi(value().c_str());
    } else if (a == "--messages") {
      o.messages = std::atoll(value().c_str());
    } else if (a == "--batch") {
      o.batch = std::atoi(value().c_str());
    } else if (a == "--window") {
      o.window = std::atoi(value().c_str());
    } else if (a == "--max-lag") {
      o.max_lag = std::atoll(value().c_str());
    } else if (a == "--payload") {
      o.payload = static_cast<size_t>(std::atoll(value().c_str()));
    } else if (a == "--latency") {
      o.latency = std::atoll(value().c_str());
    } else if (a == "--seconds") {
      o.seconds = std::atof(value().c_str());
    } else if (a == "--channel") {
      o.channel = value();
    } else if (a == "--label") {
      o.label = value();
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: pubsub_bench --pub PORT --sub PORT[,PORT...] [--subscribers S] [--messages M] "
          "[--batch B] [--window W] [--max-lag L] [--payload BYTES] [--latency N] [--seconds T] "
          "[--channel NAME] [--label TEXT]\n");
      return 0;
    } else {
      Die("unknown argument " + a + " (try --help)");
    }
  }
  if (o.pub_port <= 0 || o.sub_ports.empty()) Die("--pub and --sub are required");
  if (o.subscribers < 1 || o.batch < 1 || o.window < 1 || o.messages < 1) Die("bad counts");
  Bench b(o);
  b.Subscribe();
  b.Check();
  b.Throughput();
  b.Latency();
  return b.Report();
}
