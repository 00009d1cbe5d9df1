// RpcChannel: the request-response side of node-to-node traffic, beside DatagramTransport
// (common/transport.h). Protocol code that asks a peer something (a sync round of a replicated
// map, a sharding message) calls through this interface; net/rpc.h backs it with TCP, sim/rpc.h
// with simulated streams that delay, break and partition. The protocol never learns which.
//
// Semantics, which both implementations keep:
//   * One stream per peer. Requests to one peer arrive in the order they were sent, and so do
//     their replies; a stream that breaks (the peer crashed, a partition cut it, a framing error)
//     breaks as a whole: nothing sent on it after a lost message is delivered. The next call to
//     that peer opens a new stream.
//   * `done` runs exactly once, on the caller's thread (loop), never inside Call: with the reply,
//     with the handler's error (its message as given), or with a transport error (timed out,
//     refused, reset, unreachable, too large). A timeout is always std::errc::timed_out. A call
//     that timed out may still have run at the peer: a request is delivered at most once, never
//     twice.
//   * timeout_us > 0 bounds the wait from now; <= 0 waits until the reply or the stream's end.
#pragma once

#include <absl/functional/any_invocable.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/transport.h"

namespace shoal {

class RpcChannel {
 public:
  using ReplyFn = absl::AnyInvocable<void(Result<std::string>)>;

  virtual ~RpcChannel() = default;
  // Sends `method`(`body`) to the node at `to`.
  virtual void Call(const Endpoint& to, std::string_view method, std::string body,
                    int64_t timeout_us, ReplyFn done) = 0;
};

}  // namespace shoal
