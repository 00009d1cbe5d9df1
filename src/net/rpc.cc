#include "net/rpc.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crypto.h"
#include "common/log.h"
#include "net/output_buffer.h"

namespace shoal::net {
namespace {

constexpr std::string_view kGreeting = "SHR1";  // protocol name + version, first on the wire
constexpr size_t kNonceSize = 32;
constexpr size_t kMacSize = 32;
constexpr size_t kServerHelloSize = kGreeting.size() + kNonceSize;
constexpr size_t kClientAnswerSize = kNonceSize + kMacSize;
constexpr std::string_view kClientLabel = "shoal-client";
constexpr std::string_view kServerLabel = "shoal-server";

constexpr size_t kReadChunk = 64 * 1024;
// Reads per readiness event (1 MB) before yielding to the loop's other connections.
constexpr int kMaxReadsPerEvent = 16;
constexpr int kMaxAcceptsPerEvent = 64;
constexpr auto kRelaxed = std::memory_order_relaxed;

std::string Mac(std::string_view cookie, std::string_view label, std::string_view first,
                std::string_view second) {
  std::string data;
  data.reserve(label.size() + first.size() + second.size());
  data.append(label).append(first).append(second);
  const Sha256Digest digest = HmacSha256(cookie, data);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

std::string ErrnoText(int err) { return strerror(err); }

void Bump(std::atomic<uint64_t>& counter) { counter.fetch_add(1, kRelaxed); }

}  // namespace

namespace rpc_internal {

// A TCP connection on the loop: buffered non-blocking reads and writes (EPOLLOUT only while
// output is pending, as resp::Connection), closed exactly once, freed after the loop iteration.
class Connection : public IoWatcher {
 public:
  Connection(EventLoop* loop, int fd, Endpoint peer)
      : loop_(loop),
        fd_(fd),
        peer_(std::move(peer)),
        handle_(std::make_shared<ConnectionHandle>()) {
    handle_->conn = this;
  }
  ~Connection() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void OnIoEvents(uint32_t events) override {
    if (closed_) return;
    if (events & EPOLLOUT) Flush();
    if (!closed_ && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) ReadInput();
  }

  // Runs the flush scheduled by OutputAdded().
  void RunScheduledFlush() {
    flush_scheduled_ = false;
    Flush();
  }

  // Closes the socket, detaches Responders and timers (through the handle), tells the subclass,
  // and frees the object at the end of the loop iteration. Idempotent.
  void Close(const Error& why) {
    if (closed_) return;
    closed_ = true;
    loop_->Unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
    handle_->conn = nullptr;
    OnClose(why);
    loop_->DeleteLater(this);
  }

  const Endpoint& peer() const { return peer_; }

 protected:
  // Decode what input() holds and Consume() it. May Close().
  virtual void OnInput() = 0;
  // The peer closed the connection or it broke (after OnInput saw everything that arrived);
  // `how` is "closed by the peer" or "lost: <reason>".
  virtual void OnPeerGone(const std::string& how) {
    Close(Error(Errc::kDisconnected, "connection to " + peer_.ToString() + " " + how));
  }
  virtual void OnClose(const Error& why) = 0;

  std::string_view input() const {
    return std::string_view(in_.data() + in_pos_, in_.size() - in_pos_);
  }
  void Consume(size_t n) { in_pos_ += n; }

  // Output goes into out() and is announced with OutputAdded(): written at the end of the
  // current input batch, or from a task posted to the loop, so that a burst of calls or replies
  // leaves in one send().
  std::string* out() { return out_.back(); }
  void OutputAdded() {
    if (in_input_ || flush_scheduled_ || closed_) return;
    flush_scheduled_ = true;
    loop_->Post([h = handle_] {
      if (h->conn != nullptr) h->conn->RunScheduledFlush();
    });
  }

  void set_reading(bool on) {
    reading_ = on;
    UpdateInterest();
  }

  void Flush() {
    if (closed_ || connecting_) return;
    const OutputBuffer::WriteResult r = out_.WriteTo(fd_);
    if (r.error != 0) {
      OnPeerGone("lost: " + ErrnoText(r.error));
      return;
    }
    UpdateInterest();
  }

  void UpdateInterest() {
    if (closed_) return;
    uint32_t want = 0;
    if (connecting_) {
      want = EPOLLOUT;
    } else {
      if (reading_) want |= EPOLLIN;
      if (!out_.empty()) want |= EPOLLOUT;
    }
    if (want != interest_) {
      interest_ = want;
      loop_->Modify(fd_, want, this);
    }
  }

  EventLoop* loop_;
  int fd_;
  Endpoint peer_;
  std::shared_ptr<ConnectionHandle> handle_;
  bool closed_ = false;
  bool connecting_ = false;
  uint32_t interest_ = 0;  // what the fd is registered for

 private:
  void ReadInput() {
    bool eof = false;
    for (int i = 0; i < kMaxReadsPerEvent; ++i) {
      if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
      } else if (in_pos_ > 0 && in_pos_ >= in_.size() / 2) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
      }
      const size_t old = in_.size();
      in_.resize(old + kReadChunk);
      const ssize_t n = ::recv(fd_, in_.data() + old, kReadChunk, MSG_DONTWAIT);
      if (n > 0) {
        in_.resize(old + static_cast<size_t>(n));
        if (static_cast<size_t>(n) < kReadChunk) break;  // drained
        continue;
      }
      in_.resize(old);
      if (n == 0) {
        eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      const int err = errno;
      in_input_ = true;
      OnInput();  // what arrived before the error still counts (e.g. a reply, then a reset)
      in_input_ = false;
      if (!closed_) OnPeerGone("lost: " + ErrnoText(err));
      return;
    }
    in_input_ = true;
    OnInput();
    in_input_ = false;
    if (closed_) return;
    if (eof) {
      OnPeerGone("closed by the peer");
      return;
    }
    Flush();
  }

  std::string in_;
  size_t in_pos_ = 0;
  OutputBuffer out_;
  bool reading_ = true;
  bool in_input_ = false;
  bool flush_scheduled_ = false;
};

// The server's side of one connection: handshake, then requests in, responses out.
class ServerConnection final : public Connection {
 public:
  ServerConnection(RpcServer* server, int fd, Endpoint peer)
      : Connection(server->loop_, fd, std::move(peer)), server_(server) {}

  void Start() {
    interest_ = EPOLLIN;
    loop_->Watch(fd_, interest_, this);
    server_nonce_ = SecureRandomBytes(kNonceSize);
    out()->append(kGreeting).append(server_nonce_);
    timer_ = loop_->RunAfter(server_->options_.handshake_timeout_ms, [h = handle_] {
      if (h->conn != nullptr) static_cast<ServerConnection*>(h->conn)->OnHandshakeTimeout();
    });
    Flush();
  }

  void SendResponse(uint64_t id, rpc::FrameKind kind, std::string_view body) {
    if (closed_) return;
    const size_t limit = server_->options_.max_frame_size;
    if (rpc::FrameLength(kind, {}, body.size()) > limit) {
      const std::string error = "response too large: " + std::to_string(body.size()) +
                                " bytes, the frame limit is " + std::to_string(limit);
      rpc::AppendFrame(out(), rpc::FrameKind::kError, id, {}, error);
    } else {
      rpc::AppendFrame(out(), kind, id, {}, body);
    }
    OutputAdded();
  }

 private:
  void OnHandshakeTimeout() {
    timer_ = 0;
    Bump(server_->handshake_timeouts_);
    SHOAL_LOG_WARN("rpc: closing connection from {}: no handshake within {} ms", peer_.ToString(),
                   server_->options_.handshake_timeout_ms);
    Close(Error(Errc::kHandshakeTimeout, "handshake timeout"));
  }

  void OnInput() override {
    if (!admitted_) {
      const std::string_view in = input();
      if (in.size() < kClientAnswerSize) return;
      const std::string client_nonce(in.substr(0, kNonceSize));
      const std::string_view mac = in.substr(kNonceSize, kMacSize);
      if (!ConstantTimeEqual(mac,
                             Mac(server_->cookie_, kClientLabel, server_nonce_, client_nonce))) {
        Bump(server_->handshake_failures_);
        SHOAL_LOG_WARN(
            "rpc: rejected connection from {}: cookie challenge failed (a node of another "
            "cluster, or a different cookie?)",
            peer_.ToString());
        Close(Error(Errc::kHandshakeFailed, "cookie challenge failed"));
        return;
      }
      Consume(kClientAnswerSize);
      admitted_ = true;
      loop_->Cancel(timer_);
      timer_ = 0;
      Bump(server_->admitted_);
      out()->append(Mac(server_->cookie_, kServerLabel, client_nonce, server_nonce_));
    }
    while (!closed_) {
      const rpc::DecodeResult r = rpc::DecodeFrame(input(), server_->options_.max_frame_size);
      if (r.status == rpc::DecodeStatus::kNeedMore) return;
      if (r.status == rpc::DecodeStatus::kError) {
        ProtocolError(r.error);
        return;
      }
      if (r.frame.kind != rpc::FrameKind::kRequest) {
        ProtocolError("a response sent to the server");
        return;
      }
      Consume(r.consumed);  // the frame's views stay valid until the next read
      Dispatch(r.frame);
    }
  }

  void ProtocolError(const char* what) {
    Bump(server_->protocol_errors_);
    SHOAL_LOG_WARN("rpc: closing connection from {}: protocol error: {}", peer_.ToString(), what);
    Close(Error(Errc::kProtocol, what));
  }

  void Dispatch(const rpc::Frame& frame) {
    Bump(server_->requests_);
    auto it = server_->handlers_.find(frame.method);
    if (it == server_->handlers_.end()) {
      Bump(server_->unknown_methods_);
      SendResponse(frame.id, rpc::FrameKind::kError,
                   "unknown method '" + std::string(frame.method) + "'");
      return;
    }
    it->second(frame.body, Responder(loop_, handle_, frame.id));
  }

  void OnClose(const Error&) override {
    if (timer_ != 0) loop_->Cancel(timer_);
    server_->OnConnectionClosed(this);
  }

  RpcServer* server_;
  std::string server_nonce_;
  EventLoop::TimerId timer_ = 0;
  bool admitted_ = false;
};

// The client's side of the connection to one peer.
class ClientConnection final : public Connection {
 public:
  ClientConnection(RpcClient* client, int fd, Endpoint peer, bool connected)
      : Connection(client->loop_, fd, std::move(peer)), client_(client) {
    connecting_ = !connected;
    state_ = connected ? State::kAwaitHello : State::kConnecting;
  }

  void Start() {
    interest_ = connecting_ ? EPOLLOUT : EPOLLIN;
    loop_->Watch(fd_, interest_, this);
    timer_ = loop_->RunAfter(client_->options_.handshake_timeout_ms, [h = handle_] {
      if (h->conn != nullptr) static_cast<ClientConnection*>(h->conn)->OnHandshakeTimeout();
    });
  }

  void AddCall(uint64_t id, std::string_view method, std::string_view body, int64_t timeout_ms,
               RpcClient::Callback callback) {
    if (state_ == State::kReady) {
      rpc::AppendFrame(out(), rpc::FrameKind::kRequest, id, method, body);
      OutputAdded();
    } else {
      rpc::AppendFrame(&queued_, rpc::FrameKind::kRequest, id, method, body);
    }
    Pending p{std::move(callback), 0, std::string(method), timeout_ms};
    if (timeout_ms > 0) {
      p.timer = loop_->RunAfter(timeout_ms, [h = handle_, id] {
        if (h->conn != nullptr) static_cast<ClientConnection*>(h->conn)->OnCallTimeout(id);
      });
    }
    pending_.emplace(id, std::move(p));
  }

  void OnIoEvents(uint32_t events) override {
    if (closed_) return;
    if (connecting_) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0 && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      if (err == 0 && (events & (EPOLLERR | EPOLLHUP))) err = ECONNREFUSED;
      if (err != 0) {
        Bump(client_->connect_failures_);
        Close(Error(Errc::kConnectFailed,
                    "cannot connect to " + peer_.ToString() + ": " + ErrnoText(err)));
        return;
      }
      connecting_ = false;
      state_ = State::kAwaitHello;
      UpdateInterest();
      return;
    }
    Connection::OnIoEvents(events);
  }

 private:
  enum class State { kConnecting, kAwaitHello, kAwaitProof, kReady };
  struct Pending {
    RpcClient::Callback callback;
    EventLoop::TimerId timer = 0;
    std::string method;
    int64_t timeout_ms = 0;
  };

  void OnHandshakeTimeout() {
    timer_ = 0;
    if (state_ == State::kConnecting) {
      Bump(client_->connect_failures_);
      Close(Error(Errc::kConnectFailed,
                  "cannot connect to " + peer_.ToString() + ": no answer in " +
                      std::to_string(client_->options_.handshake_timeout_ms) + " ms"));
      return;
    }
    Close(Error(Errc::kHandshakeTimeout,
                "no handshake with " + peer_.ToString() + " within " +
                    std::to_string(client_->options_.handshake_timeout_ms) + " ms"));
  }

  void HandshakeFailed(const std::string& why) {
    Bump(client_->handshake_failures_);
    SHOAL_LOG_WARN("rpc: {}", why);
    Close(Error(Errc::kHandshakeFailed, why));
  }

  void OnInput() override {
    if (state_ == State::kAwaitHello) {
      const std::string_view in = input();
      if (in.size() < kServerHelloSize) {
        if (!kGreeting.starts_with(in.substr(0, kGreeting.size()))) {
          HandshakeFailed(peer_.ToString() + " is not a shoal RPC server (bad greeting)");
        }
        return;
      }
      if (in.substr(0, kGreeting.size()) != kGreeting) {
        HandshakeFailed(peer_.ToString() + " is not a shoal RPC server (bad greeting)");
        return;
      }
      server_nonce_ = std::string(in.substr(kGreeting.size(), kNonceSize));
      Consume(kServerHelloSize);
      client_nonce_ = SecureRandomBytes(kNonceSize);
      out()
          ->append(client_nonce_)
          .append(Mac(client_->cookie_, kClientLabel, server_nonce_, client_nonce_));
      state_ = State::kAwaitProof;
    }
    if (state_ == State::kAwaitProof) {
      const std::string_view in = input();
      if (in.size() < kMacSize) return;
      if (!ConstantTimeEqual(in.substr(0, kMacSize),
                             Mac(client_->cookie_, kServerLabel, client_nonce_, server_nonce_))) {
        HandshakeFailed(peer_.ToString() +
                        " failed the cookie challenge (a node of another cluster, or a "
                        "different cookie?)");
        return;
      }
      Consume(kMacSize);
      state_ = State::kReady;
      loop_->Cancel(timer_);
      timer_ = 0;
      out()->append(queued_);
      std::string().swap(queued_);
    }
    while (!closed_) {
      const rpc::DecodeResult r = rpc::DecodeFrame(input(), client_->options_.max_frame_size);
      if (r.status == rpc::DecodeStatus::kNeedMore) return;
      if (r.status == rpc::DecodeStatus::kError) {
        ProtocolError(r.error);
        return;
      }
      if (r.frame.kind == rpc::FrameKind::kRequest) {
        ProtocolError("a request sent to the client");
        return;
      }
      Consume(r.consumed);
      OnResponse(r.frame);
    }
  }

  void ProtocolError(const char* what) {
    Bump(client_->protocol_errors_);
    SHOAL_LOG_WARN("rpc: closing connection to {}: protocol error: {}", peer_.ToString(), what);
    Close(Error(Errc::kProtocol, "protocol error from " + peer_.ToString() + ": " + what));
  }

  void OnResponse(const rpc::Frame& frame) {
    auto it = pending_.find(frame.id);
    if (it == pending_.end()) {
      Bump(client_->late_responses_);
      return;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.timer != 0) loop_->Cancel(p.timer);
    if (frame.kind == rpc::FrameKind::kResponse) {
      Bump(client_->responses_);
      p.callback(std::string(frame.body));
    } else {
      Bump(client_->remote_errors_);
      p.callback(Error(Errc::kRemote,
                       p.method + " on " + peer_.ToString() + ": " + std::string(frame.body)));
    }
  }

  void OnCallTimeout(uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    Bump(client_->timeouts_);
    p.callback(Error(Errc::kTimeout, p.method + " to " + peer_.ToString() + " timed out after " +
                                         std::to_string(p.timeout_ms) + " ms"));
  }

  void OnPeerGone(const std::string& how) override {
    switch (state_) {
      case State::kAwaitProof:
        // The server hangs up on a client whose answer fails its check.
        HandshakeFailed(peer_.ToString() + " dropped the connection during the handshake (" + how +
                        "): it rejected our cluster cookie?");
        return;
      case State::kReady:
        Close(Error(Errc::kDisconnected, "connection to " + peer_.ToString() + " " + how));
        return;
      default:
        Close(Error(Errc::kDisconnected,
                    "connection to " + peer_.ToString() + " " + how + " before the handshake"));
        return;
    }
  }

  void OnClose(const Error& why) override {
    if (timer_ != 0) loop_->Cancel(timer_);
    client_->OnConnectionClosed(this);
    // Fail what is pending in request order; callbacks may call again (a new connection).
    std::vector<std::pair<uint64_t, Pending>> failed;
    failed.reserve(pending_.size());
    for (auto& [id, p] : pending_) failed.emplace_back(id, std::move(p));
    pending_.clear();
    std::sort(failed.begin(), failed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, p] : failed) {
      if (p.timer != 0) loop_->Cancel(p.timer);
      Bump(client_->failed_);
      p.callback(Error(why.code(), p.method + ": " + why.message()));
    }
  }

  RpcClient* client_;
  State state_;
  EventLoop::TimerId timer_ = 0;
  std::string server_nonce_;
  std::string client_nonce_;
  std::string queued_;  // requests made before the handshake finished
  std::unordered_map<uint64_t, Pending> pending_;
};

}  // namespace rpc_internal

// ---- Responder ----

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) Complete(rpc::FrameKind::kError, "request abandoned by its handler");
    Untrack();
    loop_ = other.loop_;
    handle_ = std::move(other.handle_);
    id_ = other.id_;
    in_flight_ = std::move(other.in_flight_);
  }
  return *this;
}

Responder::~Responder() {
  if (handle_ != nullptr) {
    Complete(rpc::FrameKind::kError, "the handler dropped the request without replying");
  }
  Untrack();
}

void Responder::Untrack() {
  if (in_flight_ != nullptr) {
    in_flight_->fetch_sub(1, std::memory_order_acq_rel);
    in_flight_.reset();
  }
}

void Responder::Reply(std::string body) { Complete(rpc::FrameKind::kResponse, std::move(body)); }

void Responder::Fail(std::string message) { Complete(rpc::FrameKind::kError, std::move(message)); }

void Responder::Complete(rpc::FrameKind kind, std::string body) {
  if (handle_ == nullptr) return;
  std::shared_ptr<rpc_internal::ConnectionHandle> handle = std::move(handle_);
  handle_ = nullptr;
  auto deliver = [handle, id = id_, kind, body = std::move(body)] {
    if (handle->conn != nullptr) {
      static_cast<rpc_internal::ServerConnection*>(handle->conn)->SendResponse(id, kind, body);
    }
  };
  if (loop_->InLoopThread()) {
    deliver();
  } else {
    loop_->Post(std::move(deliver));
  }
  Untrack();
}

// ---- RpcServer ----

RpcServer::RpcServer(EventLoop* loop, std::string host, uint16_t port, std::string cookie,
                     RpcOptions options)
    : loop_(loop),
      host_(std::move(host)),
      requested_port_(port),
      cookie_(std::move(cookie)),
      options_(options) {
  options_.max_frame_size = std::min<size_t>(options_.max_frame_size, UINT32_MAX);
}

RpcServer::~RpcServer() { Stop(); }

void RpcServer::Register(std::string method, Handler handler) {
  handlers_.insert_or_assign(std::move(method), std::move(handler));
}

Status RpcServer::Start() {
  if (listen_fd_ >= 0) return Status::Ok();
  auto addr = ResolveBindAddress(host_, requested_port_);
  if (!addr.ok()) return addr.error();
  auto fd = OpenBoundSocket(*addr, SOCK_STREAM);
  if (!fd.ok()) return fd.error();
  if (listen(*fd, 511) != 0) {
    Error e(std::error_code(errno, std::system_category()),
            "listen " + addr->ToEndpoint().ToString() + ": " + ErrnoText(errno));
    ::close(*fd);
    return e;
  }
  auto local = LocalSocketAddress(*fd);
  if (!local.ok()) {
    ::close(*fd);
    return local.error();
  }
  listen_fd_ = *fd;
  bound_ = local->ToEndpoint();
  loop_->Watch(listen_fd_, EPOLLIN, this);
  SHOAL_LOG_DEBUG("rpc: listening on {}", bound_.ToString());
  return Status::Ok();
}

void RpcServer::Stop() {
  if (listen_fd_ >= 0) {
    loop_->Unwatch(listen_fd_);
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  std::vector<rpc_internal::ServerConnection*> open(connections_.begin(), connections_.end());
  for (auto* conn : open) conn->Close(Error(Errc::kShutdown, "server stopped"));
}

void RpcServer::OnIoEvents(uint32_t) {
  for (int i = 0; i < kMaxAcceptsPerEvent && listen_fd_ >= 0; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        SHOAL_LOG_WARN("rpc: accept on {}: {}", bound_.ToString(), ErrnoText(errno));
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Bump(accepted_);
    Bump(active_);
    auto* conn = new rpc_internal::ServerConnection(
        this, fd, SocketAddress::From(reinterpret_cast<sockaddr*>(&ss), len).ToEndpoint());
    connections_.insert(conn);
    conn->Start();
  }
}

void RpcServer::OnConnectionClosed(rpc_internal::ServerConnection* conn) {
  connections_.erase(conn);
  active_.fetch_sub(1, kRelaxed);
}

RpcServer::Stats RpcServer::stats() const {
  Stats s;
  s.accepted = accepted_.load(kRelaxed);
  s.admitted = admitted_.load(kRelaxed);
  s.active = active_.load(kRelaxed);
  s.handshake_failures = handshake_failures_.load(kRelaxed);
  s.handshake_timeouts = handshake_timeouts_.load(kRelaxed);
  s.protocol_errors = protocol_errors_.load(kRelaxed);
  s.requests = requests_.load(kRelaxed);
  s.unknown_methods = unknown_methods_.load(kRelaxed);
  return s;
}

// ---- RpcClient ----

RpcClient::RpcClient(EventLoop* loop, std::string cookie, RpcOptions options)
    : loop_(loop),
      cookie_(std::move(cookie)),
      options_(options),
      resolver_(options.resolver),
      self_(std::make_shared<RpcClient*>(this)) {
  options_.max_frame_size = std::min<size_t>(options_.max_frame_size, UINT32_MAX);
}

RpcClient::~RpcClient() { Shutdown(); }

void RpcClient::FailLater(Callback callback, Error error) {
  Bump(failed_);
  deferred_.emplace_back(std::move(callback), std::move(error));
  if (deferred_.size() > 1) return;  // a task is already posted
  loop_->Post([weak = std::weak_ptr<RpcClient*>(self_)] {
    if (auto self = weak.lock()) (*self)->RunDeferred();
  });
}

void RpcClient::RunDeferred() {
  std::vector<std::pair<Callback, Error>> batch;
  batch.swap(deferred_);
  for (auto& [callback, error] : batch) callback(std::move(error));
}

void RpcClient::Call(const Endpoint& to, std::string_view method, std::string_view body,
                     int64_t timeout_ms, Callback callback) {
  Bump(calls_);
  if (shut_down_) {
    FailLater(std::move(callback),
              Error(Errc::kShutdown, std::string(method) + ": rpc client shut down"));
    return;
  }
  if (method.empty() || method.size() > rpc::kMaxMethodLength) {
    FailLater(std::move(callback),
              Error(Errc::kInvalidArgument, "rpc method name must be 1 to 255 bytes"));
    return;
  }
  if (rpc::FrameLength(rpc::FrameKind::kRequest, method, body.size()) > options_.max_frame_size) {
    FailLater(
        std::move(callback),
        Error(Errc::kInvalidArgument,
              std::string(method) + ": request of " + std::to_string(body.size()) +
                  " bytes exceeds the frame limit of " + std::to_string(options_.max_frame_size)));
    return;
  }
  rpc_internal::ClientConnection* conn = nullptr;
  if (auto it = connections_.find(to); it != connections_.end()) {
    conn = it->second;
  } else {
    auto addr = resolver_.Resolve(to);
    if (!addr.ok()) {
      FailLater(std::move(callback),
                Error(Errc::kResolve, std::string(method) + ": " + addr.error().message()));
      return;
    }
    Bump(connects_);
    const int fd = socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = -1;
    int err = 0;
    if (fd >= 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      do {
        rc = connect(fd, addr->get(), addr->len);
      } while (rc != 0 && errno == EINTR);
      if (rc != 0) err = errno;
    } else {
      err = errno;
    }
    if (rc != 0 && err != EINPROGRESS) {
      if (fd >= 0) ::close(fd);
      Bump(connect_failures_);
      FailLater(std::move(callback),
                Error(Errc::kConnectFailed, std::string(method) + ": cannot connect to " +
                                                to.ToString() + ": " + ErrnoText(err)));
      return;
    }
    conn = new rpc_internal::ClientConnection(this, fd, to, /*connected=*/rc == 0);
    connections_.emplace(to, conn);
    conn->Start();
  }
  conn->AddCall(next_id_++, method, body, timeout_ms, std::move(callback));
}

void RpcClient::OnConnectionClosed(rpc_internal::ClientConnection* conn) {
  auto it = connections_.find(conn->peer());
  if (it != connections_.end() && it->second == conn) connections_.erase(it);
}

void RpcClient::Shutdown() {
  shut_down_ = true;
  while (!connections_.empty()) {
    connections_.begin()->second->Close(Error(Errc::kShutdown, "rpc client shut down"));
  }
  RunDeferred();
}

RpcClient::Stats RpcClient::stats() const {
  Stats s;
  s.calls = calls_.load(kRelaxed);
  s.responses = responses_.load(kRelaxed);
  s.remote_errors = remote_errors_.load(kRelaxed);
  s.timeouts = timeouts_.load(kRelaxed);
  s.failed = failed_.load(kRelaxed);
  s.connects = connects_.load(kRelaxed);
  s.connect_failures = connect_failures_.load(kRelaxed);
  s.handshake_failures = handshake_failures_.load(kRelaxed);
  s.late_responses = late_responses_.load(kRelaxed);
  s.protocol_errors = protocol_errors_.load(kRelaxed);
  return s;
}

}  // namespace shoal::net
