// Internal node-to-node RPC over TCP: the one TCP service on a node's cluster port (SWIM's UDP
// socket shares the port number; TCP and UDP ports are separate namespaces, so both bind it).
//
// Design
// ------
// A client keeps one TCP connection per peer, opened lazily by the first call to that peer and
// reopened by the first call after it failed (no background reconnect loop: a peer nobody calls
// costs nothing, and membership, not the RPC layer, decides whether a peer is alive). Calls are
// multiplexed and pipelined on the connection: each request carries a 64-bit id, the server may
// answer in any order (a handler may finish later, on another thread), and the client matches
// responses by id. Frames are length-prefixed (net/rpc_frame.h); a frame over the receiver's
// limit, or anything else that does not decode, is a protocol error that closes the connection:
// after a framing error nothing later on the stream can be trusted. Bodies are opaque bytes: the
// callers choose their encoding (msgpack, per DESIGN.md). Not bounded yet: the output buffered
// for a peer that stops reading (pending requests are bounded by their timeouts).
//
// Admission. A connection carries no frame until both sides have proved they know the cluster
// cookie, without sending it:
//   server -> client   "SHR1" || server_nonce                         (4 + 32 bytes)
//   client -> server   client_nonce || HMAC(cookie, "shoal-client" || server_nonce || client_nonce)
//   server -> client   HMAC(cookie, "shoal-server" || client_nonce || server_nonce)
// Nonces are 32 random bytes; MACs are HMAC-SHA256 (32 bytes), compared in constant time. Each
// side's fresh nonce makes a recorded exchange useless for replay, and the different labels stop
// a MAC from one direction being reflected back as the other. The server answers only after
// checking the client, and the client sends no request until it has checked the server, so
// neither side talks to a node from another cluster. A failed check closes the connection and
// counts a handshake failure (on the client, a server that hangs up after the client's answer is
// taken as a rejection of its cookie); a handshake not finished within `handshake_timeout_ms`
// (default 5 s: a LAN handshake takes well under a millisecond, a peer that is paused for longer
// than that is better retried) is closed too. This authenticates; it does not encrypt (TLS is a
// separate, optional layer, see DESIGN.md).
//
// Threading: RpcServer, RpcClient and their callbacks and handlers live on the loop thread they
// were created on; create, call and destroy them there (or before the loop runs / after it has
// stopped). The one exception is Responder, which may be completed from any thread. Stats are
// readable from any thread. To destroy an RpcServer from inside a callback of the same loop, use
// EventLoop::DeleteLater (its listener may have an event pending in this iteration).
#pragma once

#include <absl/functional/any_invocable.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/rpc_channel.h"
#include "common/transport.h"
#include "net/address.h"
#include "net/errc.h"
#include "net/event_loop.h"
#include "net/rpc_frame.h"

namespace shoal::net {

struct RpcOptions {
  // Largest frame accepted (length prefix excluded); larger incoming frames close the connection,
  // larger outgoing requests fail with kInvalidArgument and larger responses become errors.
  size_t max_frame_size = rpc::kDefaultMaxFrameSize;
  // Connect (client) plus challenge-response must finish within this.
  int64_t handshake_timeout_ms = 5'000;
  AddressResolver::Options resolver;  // client: how peer names are cached
};

namespace rpc_internal {
class Connection;
class ServerConnection;
class ClientConnection;
// Shared between a connection and the Responders and timers that refer to it; `conn` becomes null
// when the connection closes. Touched only on the loop thread.
struct ConnectionHandle {
  Connection* conn = nullptr;
};
}  // namespace rpc_internal

// Completes one request. Move-only. Reply or Fail at most once; later calls are ignored, as are
// calls after the connection has gone. Destroying an uncompleted Responder answers the caller
// with an error, so a handler that forgets to reply does not leave the caller waiting for its
// timeout. Any thread: from another thread the answer is posted to the server's loop.
// REQUIRES: the server's EventLoop outlives the Responder (the RpcServer need not).
class Responder {
 public:
  Responder() = default;
  Responder(Responder&& other) noexcept { *this = std::move(other); }
  Responder& operator=(Responder&& other) noexcept;
  ~Responder();

  void Reply(std::string body);
  // The caller gets an Error with code kRemote and `message` as its text.
  void Fail(std::string message);
  bool done() const { return handle_ == nullptr; }
  // Decrements `in_flight` by one when the request is answered (or abandoned), on whichever
  // thread answers: the caller counted the request in; a service's gate counts its work so.
  void Track(std::shared_ptr<std::atomic<int64_t>> in_flight) { in_flight_ = std::move(in_flight); }

 private:
  friend class rpc_internal::ServerConnection;
  Responder(EventLoop* loop, std::shared_ptr<rpc_internal::ConnectionHandle> handle, uint64_t id)
      : loop_(loop), handle_(std::move(handle)), id_(id) {}
  void Complete(rpc::FrameKind kind, std::string body);
  void Untrack();

  EventLoop* loop_ = nullptr;
  std::shared_ptr<rpc_internal::ConnectionHandle> handle_;
  uint64_t id_ = 0;
  std::shared_ptr<std::atomic<int64_t>> in_flight_;
};

class RpcServer final : private IoWatcher {
 public:
  // `body` is valid only during the call; copy what an asynchronous handler needs.
  using Handler = absl::AnyInvocable<void(std::string_view body, Responder responder)>;

  struct Stats {
    uint64_t accepted = 0;            // TCP connections accepted
    uint64_t admitted = 0;            // ... that passed the handshake
    uint64_t active = 0;              // connections open now (handshaking or admitted)
    uint64_t handshake_failures = 0;  // wrong cookie (or not a shoal peer)
    uint64_t handshake_timeouts = 0;
    uint64_t protocol_errors = 0;  // undecodable or oversize frames (connection closed)
    uint64_t requests = 0;
    uint64_t unknown_methods = 0;
  };

  RpcServer(EventLoop* loop, std::string host, uint16_t port, std::string cookie,
            RpcOptions options = {});
  ~RpcServer() override;  // Stop()
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Adds or replaces the handler of `method` (1..255 bytes). A request for a method without a
  // handler gets the error "unknown method '<name>'". Not from inside that method's own handler.
  // REQUIRES: a handler does not destroy the server (Stop() is fine).
  void Register(std::string method, Handler handler);

  // Binds and listens. Errors: kResolve for a bad host, a system error (EADDRINUSE...) on bind.
  [[nodiscard]] Status Start();
  // Closes the listener and every connection; requests in flight are abandoned (their callers
  // see kDisconnected) and their Responders become no-ops. Idempotent.
  void Stop();

  // The bound port (the real one when constructed with port 0). REQUIRES: Start() succeeded.
  uint16_t port() const { return bound_.port; }
  const Endpoint& local_endpoint() const { return bound_; }
  Stats stats() const;

 private:
  friend class rpc_internal::ServerConnection;
  void OnIoEvents(uint32_t events) override;
  void OnConnectionClosed(rpc_internal::ServerConnection* conn);

  EventLoop* loop_;
  std::string host_;
  uint16_t requested_port_;
  std::string cookie_;
  RpcOptions options_;
  int listen_fd_ = -1;
  Endpoint bound_;
  std::map<std::string, Handler, std::less<>> handlers_;
  std::unordered_set<rpc_internal::ServerConnection*> connections_;

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> active_{0};
  std::atomic<uint64_t> handshake_failures_{0};
  std::atomic<uint64_t> handshake_timeouts_{0};
  std::atomic<uint64_t> protocol_errors_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> unknown_methods_{0};
};

class RpcClient {
 public:
  // The response body, or an Error: kTimeout, kDisconnected, kConnectFailed, kHandshakeFailed,
  // kHandshakeTimeout, kResolve, kRemote (the handler's message), kProtocol, kInvalidArgument,
  // kShutdown. Each message names the peer.
  using Callback = absl::AnyInvocable<void(Result<std::string>)>;

  struct Stats {
    uint64_t calls = 0;
    uint64_t responses = 0;      // successful replies
    uint64_t remote_errors = 0;  // error replies from handlers
    uint64_t timeouts = 0;
    uint64_t failed = 0;    // calls failed by a lost/refused connection, handshake or shutdown
    uint64_t connects = 0;  // connection attempts
    uint64_t connect_failures = 0;
    uint64_t handshake_failures = 0;  // the server failed our check, or rejected our cookie
    uint64_t late_responses = 0;      // responses to calls that had already timed out
    uint64_t protocol_errors = 0;
  };

  RpcClient(EventLoop* loop, std::string cookie, RpcOptions options = {});
  // Shutdown().
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  // Sends `method`(`body`) to `to` and calls `callback` exactly once, on the loop thread, never
  // from inside Call() itself. `timeout_ms` > 0 bounds the wait for the response (from now,
  // connecting included); <= 0 waits until the response or the connection's end. A timed-out
  // call is not cancelled at the server; its late response is dropped and counted.
  // `to.host` may be a name: resolved through the client's cache, MAY BLOCK (net/address.h).
  // REQUIRES: the callback does not destroy the client.
  void Call(const Endpoint& to, std::string_view method, std::string_view body, int64_t timeout_ms,
            Callback callback);

  // Fails every pending call with kShutdown (callbacks run before this returns), closes every
  // connection; later calls fail with kShutdown. Idempotent.
  void Shutdown();

  // Connections open or being opened.
  size_t connection_count() const { return connections_.size(); }
  Stats stats() const;

 private:
  friend class rpc_internal::ClientConnection;
  void OnConnectionClosed(rpc_internal::ClientConnection* conn);
  void FailLater(Callback callback, Error error);
  void RunDeferred();

  EventLoop* loop_;
  std::string cookie_;
  RpcOptions options_;
  AddressResolver resolver_;
  bool shut_down_ = false;
  uint64_t next_id_ = 1;
  std::unordered_map<Endpoint, rpc_internal::ClientConnection*> connections_;
  // Errors found inside Call(), delivered from a posted task (or by Shutdown).
  std::vector<std::pair<Callback, Error>> deferred_;
  std::shared_ptr<RpcClient*> self_;  // lets posted tasks see whether the client still exists

  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> responses_{0};
  std::atomic<uint64_t> remote_errors_{0};
  std::atomic<uint64_t> timeouts_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> connect_failures_{0};
  std::atomic<uint64_t> handshake_failures_{0};
  std::atomic<uint64_t> late_responses_{0};
  std::atomic<uint64_t> protocol_errors_{0};
};

// The RpcChannel (common/rpc_channel.h) protocol code calls through: an RpcClient's calls, with
// the timeout rounded up to whole milliseconds and reported as std::errc::timed_out. Same thread
// rules as the client.
class RpcClientChannel final : public RpcChannel {
 public:
  explicit RpcClientChannel(RpcClient* client) : client_(client) {}
  void Call(const Endpoint& to, std::string_view method, std::string body, int64_t timeout_us,
            ReplyFn done) override {
    client_->Call(
        to, method, body, timeout_us <= 0 ? 0 : (timeout_us + 999) / 1000,
        [done = std::move(done)](Result<std::string> r) mutable {
          if (!r.ok() && r.error().code() == Errc::kTimeout) {
            return done(Error(std::make_error_code(std::errc::timed_out), r.error().message()));
          }
          done(std::move(r));
        });
  }

 private:
  RpcClient* client_;
};

}  // namespace shoal::net
