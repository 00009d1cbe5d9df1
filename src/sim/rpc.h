// RpcNet: the simulator's RpcChannel (common/rpc_channel.h): request-response streams between the
// nodes of a sim::Network, with the network's link delays, partitions and crashes.
//
// The model, per directed pair caller -> callee, is one connection (as net/rpc.h keeps one TCP
// connection per peer), opened by the first call and reopened by the first call after it broke:
//   * Requests travel caller -> callee and replies callee -> caller, each after a delay drawn
//     from that direction's link (LinkConfig::delay; loss and duplication do not apply: TCP
//     retransmits and deduplicates), and each direction is FIFO: nothing overtakes what was sent
//     before it on the connection.
//   * A message that meets a blocked link (at send or at arrival) is lost, and the connection
//     breaks with it: nothing sent on it later is delivered. Calls waiting on a broken connection
//     time out (as TCP would after its retransmissions), or fail at once with "connection lost"
//     when they have no timeout.
//   * A crash is a process crash: the node's kernel resets its connections, so every call
//     waiting on a connection to it fails with "connection reset" one link delay later (across a
//     partition the reset is lost too, and those calls time out), and the next call opens a new
//     connection. A request that still reaches a callee that is down, or a newer incarnation
//     than the one its connection was opened to, resets the connection the same way. A call to a
//     node that is down when the connection opens is refused after a round trip; to an endpoint
//     nobody registered, "no route to host".
//   * A reply for a caller that crashed or restarted since is dropped; its callback never runs.
//   * Each node serves the methods registered for its current incarnation (a restart clears
//     them); a request for another method gets the error "unknown method '<name>'", as from
//     net/rpc.h.
//   * `max_request_bytes` (0: no limit) refuses larger requests at once, as the RPC's frame
//     limit does.
// Every request, reply, loss and reset is recorded in the simulator's trace ("rpc-req",
// "rpc-rep", "rpc-lost", "rpc-reset"). Single-threaded, like the simulator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/rng.h"
#include "common/rpc_channel.h"
#include "sim/network.h"

namespace shoal::sim {

struct RpcNetOptions {
  size_t max_request_bytes = 0;
};

struct RpcNetCounters {
  uint64_t calls = 0, replies = 0, remote_errors = 0, timeouts = 0, resets = 0, refused = 0,
           lost = 0, too_large = 0;
};

class RpcNet {
 public:
  using Respond = RpcChannel::ReplyFn;
  // `body` is valid during the call only. `respond` may run later (exactly once); one that never
  // runs leaves the caller to its timeout.
  using Handler = std::function<void(const Endpoint& from, std::string_view body, Respond respond)>;

  explicit RpcNet(Network& net, RpcNetOptions options = {});
  ~RpcNet();
  RpcNet(const RpcNet&) = delete;
  RpcNet& operator=(const RpcNet&) = delete;

  // The channel node `ep` calls through. REQUIRES: `ep` is registered in the network. Valid for
  // the RpcNet's lifetime.
  RpcChannel& channel(const Endpoint& ep);
  // Serves `method` on node `ep` (its current incarnation).
  void Serve(const Endpoint& ep, std::string method, Handler handler);

  // Calls whose callback has not run yet (nor been dropped with a crashed caller).
  uint64_t open_calls() const { return calls_.size(); }
  const RpcNetCounters& counters() const { return counters_; }

 private:
  class NodeChannel;
  struct Connection {
    uint64_t id = 0;
    uint64_t caller_gen = 0, callee_gen = 0;
    int64_t request_tail = 0, reply_tail = 0;  // last arrival in each direction
    bool broken = false;
  };
  struct PendingCall {
    Endpoint from, to;
    uint64_t caller_gen = 0;
    uint64_t connection = 0;
    bool has_timeout = false;
    TimerHandle timer;
    Respond done;
  };
  struct Served {
    uint64_t generation = 0;
    std::map<std::string, Handler, std::less<>> methods;
  };

  void Call(const Endpoint& from, const Endpoint& to, std::string_view method, std::string body,
            int64_t timeout_us, Respond done);
  Connection& ConnectionFor(const Endpoint& from, const Endpoint& to, bool* opened);
  void Arrive(uint64_t call, std::string method, std::string body);
  void SendReply(uint64_t call, const Endpoint& from, const Endpoint& to, uint64_t connection,
                 Result<std::string> reply);
  void OnCrash(const Endpoint& node);
  // Breaks the connection of caller -> callee with id `connection` (if it is still that one).
  void Break(const Endpoint& from, const Endpoint& to, uint64_t connection, bool reset);
  void Complete(uint64_t call, Result<std::string> result);
  void CompleteLater(uint64_t call, int64_t delay, Result<std::string> result);
  Connection* Find(const Endpoint& from, const Endpoint& to, uint64_t connection);
  int64_t Delay(const Endpoint& from, const Endpoint& to);

  Network* net_;
  RpcNetOptions options_;
  SeededRng rng_;
  std::map<Endpoint, std::unique_ptr<NodeChannel>> channels_;
  std::map<Endpoint, Served> served_;
  std::map<std::pair<Endpoint, Endpoint>, Connection> connections_;
  std::map<uint64_t, PendingCall> calls_;
  uint64_t next_call_ = 1;
  uint64_t next_connection_ = 1;
  uint64_t crash_observer_ = 0;
  RpcNetCounters counters_;
};

}  // namespace shoal::sim
