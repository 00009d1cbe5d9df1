#include "sim/rpc.h"

#include <algorithm>
#include <system_error>
#include <tuple>
#include <vector>

namespace shoal::sim {

class RpcNet::NodeChannel final : public RpcChannel {
 public:
  NodeChannel(RpcNet* net, Endpoint self) : net_(net), self_(std::move(self)) {}
  void Call(const Endpoint& to, std::string_view method, std::string body, int64_t timeout_us,
            ReplyFn done) override {
    net_->Call(self_, to, method, std::move(body), timeout_us, std::move(done));
  }

 private:
  RpcNet* net_;
  Endpoint self_;
};

namespace {
Error Err(std::errc code, std::string message) {
  return Error(std::make_error_code(code), std::move(message));
}
std::string Pair(const Endpoint& from, const Endpoint& to) {
  return from.ToString() + "->" + to.ToString();
}
}  // namespace

RpcNet::RpcNet(Network& net, RpcNetOptions options)
    : net_(&net), options_(options), rng_(net.sim().DeriveRng("rpc")) {
  crash_observer_ = net.AddCrashObserver([this](const Endpoint& node) { OnCrash(node); });
}

void RpcNet::OnCrash(const Endpoint& node) {
  std::vector<std::tuple<Endpoint, Endpoint, uint64_t>> reset;
  for (const auto& [ends, c] : connections_) {
    if (ends.second == node && !c.broken) reset.emplace_back(ends.first, ends.second, c.id);
  }
  for (const auto& [from, to, id] : reset) {
    if (net_->IsBlocked(to, from)) {
      Break(from, to, id, /*reset=*/false);  // the reset is lost: the calls time out
    } else {
      Break(from, to, id, /*reset=*/true);
    }
  }
}

RpcNet::~RpcNet() { net_->RemoveCrashObserver(crash_observer_); }

RpcChannel& RpcNet::channel(const Endpoint& ep) {
  auto& slot = channels_[ep];
  if (slot == nullptr) slot = std::make_unique<NodeChannel>(this, ep);
  return *slot;
}

void RpcNet::Serve(const Endpoint& ep, std::string method, Handler handler) {
  Served& s = served_[ep];
  const uint64_t gen = net_->node(ep).generation();
  if (s.generation != gen) {
    s.methods.clear();
    s.generation = gen;
  }
  s.methods[std::move(method)] = std::move(handler);
}

int64_t RpcNet::Delay(const Endpoint& from, const Endpoint& to) {
  return net_->Link(from, to).delay.Sample(rng_);
}

RpcNet::Connection* RpcNet::Find(const Endpoint& from, const Endpoint& to, uint64_t connection) {
  auto it = connections_.find({from, to});
  if (it == connections_.end() || it->second.id != connection) return nullptr;
  return &it->second;
}

RpcNet::Connection& RpcNet::ConnectionFor(const Endpoint& from, const Endpoint& to, bool* opened) {
  const uint64_t caller_gen = net_->node(from).generation();
  Connection& c = connections_[{from, to}];
  *opened = c.id == 0 || c.broken || c.caller_gen != caller_gen;
  if (*opened) {
    c = Connection{};
    c.id = next_connection_++;
    c.caller_gen = caller_gen;
    c.callee_gen = net_->node(to).generation();
    c.request_tail = c.reply_tail = net_->sim().Now();
  }
  return c;
}

void RpcNet::Call(const Endpoint& from, const Endpoint& to, std::string_view method,
                  std::string body, int64_t timeout_us, Respond done) {
  ++counters_.calls;
  const uint64_t id = next_call_++;
  PendingCall& call = calls_[id];
  call.from = from;
  call.to = to;
  call.caller_gen = net_->node(from).generation();
  call.done = std::move(done);
  call.has_timeout = timeout_us > 0;
  if (call.has_timeout) {
    call.timer = net_->sim().Schedule(
        timeout_us,
        [this, id, to] {
          if (!calls_.contains(id)) return;
          ++counters_.timeouts;
          Complete(id, Err(std::errc::timed_out, "rpc to " + to.ToString() + " timed out"));
        },
        "rpc-timeout");
  }
  if (options_.max_request_bytes != 0 && body.size() > options_.max_request_bytes) {
    ++counters_.too_large;
    CompleteLater(id, 0, Err(std::errc::message_size, "request too large"));
    return;
  }
  SimNode* callee = net_->FindNode(to);
  if (callee == nullptr) {
    CompleteLater(id, 0, Err(std::errc::host_unreachable, "no route to " + to.ToString()));
    return;
  }
  bool opened = false;
  Connection& conn = ConnectionFor(from, to, &opened);
  call.connection = conn.id;
  if (net_->IsBlocked(from, to)) {
    // The request (or the connection's first packet) never gets there.
    ++counters_.lost;
    net_->sim().trace().Record("rpc-lost", Pair(from, to));
    Break(from, to, conn.id, /*reset=*/false);
    return;
  }
  if (opened && !callee->up()) {
    ++counters_.refused;
    conn.broken = true;
    CompleteLater(
        id, Delay(from, to) + Delay(to, from),
        Err(std::errc::connection_refused, "connection to " + to.ToString() + " refused"));
    return;
  }
  const int64_t arrive = std::max(conn.request_tail, net_->sim().Now() + Delay(from, to));
  conn.request_tail = arrive;
  net_->sim().trace().Record("rpc-req", Pair(from, to) + " " + std::string(method) +
                                            " len=" + std::to_string(body.size()));
  net_->sim().ScheduleAt(
      arrive,
      [this, id, from, to, connection = conn.id, method = std::string(method),
       body = std::move(body)] {
        Connection* c = Find(from, to, connection);
        if (c == nullptr || c->broken) return;  // nothing after a loss is delivered
        if (net_->IsBlocked(from, to)) {
          ++counters_.lost;
          net_->sim().trace().Record("rpc-lost", Pair(from, to));
          Break(from, to, connection, /*reset=*/false);
          return;
        }
        SimNode& callee = net_->node(to);
        if (!callee.up() || callee.generation() != c->callee_gen) {
          Break(from, to, connection, /*reset=*/true);
          return;
        }
        Served& s = served_[to];
        const Handler* handler = nullptr;
        if (s.generation == callee.generation()) {
          auto it = s.methods.find(method);
          if (it != s.methods.end()) handler = &it->second;
        }
        if (handler == nullptr) {
          SendReply(id, from, to, connection,
                    Err(std::errc::function_not_supported, "unknown method '" + method + "'"));
          return;
        }
        const uint64_t callee_gen = callee.generation();
        Handler h = *handler;  // it may register again while it runs
        h(from, body, [this, id, from, to, connection, callee_gen](Result<std::string> r) {
          SimNode* n = net_->FindNode(to);
          if (n == nullptr || !n->up() || n->generation() != callee_gen) return;
          SendReply(id, from, to, connection, std::move(r));
        });
      },
      "rpc-arrive");
}

void RpcNet::SendReply(uint64_t call, const Endpoint& from, const Endpoint& to, uint64_t connection,
                       Result<std::string> reply) {
  Connection* c = Find(from, to, connection);
  if (c == nullptr || c->broken) return;
  if (net_->IsBlocked(to, from)) {
    ++counters_.lost;
    net_->sim().trace().Record("rpc-lost", Pair(to, from));
    Break(from, to, connection, /*reset=*/false);
    return;
  }
  const int64_t arrive = std::max(c->reply_tail, net_->sim().Now() + Delay(to, from));
  c->reply_tail = arrive;
  net_->sim().trace().Record(
      "rpc-rep",
      Pair(to, from) + (reply.ok() ? " len=" + std::to_string(reply->size()) : " error"));
  auto shared = std::make_shared<Result<std::string>>(std::move(reply));
  net_->sim().ScheduleAt(
      arrive,
      [this, call, from, to, connection, shared] {
        Connection* c = Find(from, to, connection);
        if (c == nullptr || c->broken) return;
        if (net_->IsBlocked(to, from)) {
          ++counters_.lost;
          net_->sim().trace().Record("rpc-lost", Pair(to, from));
          Break(from, to, connection, /*reset=*/false);
          return;
        }
        if (!calls_.contains(call)) return;  // timed out meanwhile: a late reply
        ++(shared->ok() ? counters_.replies : counters_.remote_errors);
        Complete(call, std::move(*shared));
      },
      "rpc-reply");
}

void RpcNet::Break(const Endpoint& from, const Endpoint& to, uint64_t connection, bool reset) {
  Connection* c = Find(from, to, connection);
  if (c == nullptr || c->broken) return;
  c->broken = true;
  if (reset) net_->sim().trace().Record("rpc-reset", Pair(from, to));
  std::vector<uint64_t> affected;
  for (const auto& [id, call] : calls_) {
    if (call.connection == connection) affected.push_back(id);
  }
  for (uint64_t id : affected) {
    if (reset) {
      ++counters_.resets;
      CompleteLater(id, Delay(to, from),
                    Err(std::errc::connection_reset, "connection to " + to.ToString() + " reset"));
    } else if (!calls_[id].has_timeout) {
      CompleteLater(id, 0,
                    Err(std::errc::connection_aborted, "connection to " + to.ToString() + " lost"));
    }
  }
}

void RpcNet::CompleteLater(uint64_t call, int64_t delay, Result<std::string> result) {
  auto shared = std::make_shared<Result<std::string>>(std::move(result));
  net_->sim().Schedule(
      delay, [this, call, shared] { Complete(call, std::move(*shared)); }, "rpc-complete");
}

void RpcNet::Complete(uint64_t call, Result<std::string> result) {
  auto it = calls_.find(call);
  if (it == calls_.end()) return;
  PendingCall c = std::move(it->second);
  calls_.erase(it);
  if (c.timer.valid()) net_->sim().Cancel(c.timer);
  const SimNode* caller = net_->FindNode(c.from);
  if (caller == nullptr || !caller->up() || caller->generation() != c.caller_gen) return;
  c.done(std::move(result));
}

}  // namespace shoal::sim
