#include "net/rpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "net/socket.h"
#include "net/test_loop.h"

namespace shoal::net {
namespace {

using namespace std::chrono_literals;
using testing::Await;
using testing::LoopThread;
using testing::WaitFor;

constexpr char kCookie[] = "the-cluster-cookie";

std::string Mac(std::string_view label, std::string_view a, std::string_view b,
                std::string_view cookie = kCookie) {
  const Sha256Digest d = HmacSha256(cookie, std::string(label) + std::string(a) + std::string(b));
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// A blocking TCP socket driven from the test thread, with deadlines on every wait.
class RawConn {
 public:
  explicit RawConn(int fd) : fd_(fd) {}
  static RawConn Connect(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return RawConn(fd);
  }
  RawConn(RawConn&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~RawConn() {
    if (fd_ >= 0) close(fd_);
  }

  void Write(std::string_view bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Exactly `n` bytes, or nullopt on EOF, error or deadline.
  std::optional<std::string> Read(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n) {
      if (!WaitReadable(deadline)) return std::nullopt;
      char buf[4096];
      const ssize_t got = recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) return std::nullopt;
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }
  // True if the peer closes the connection (EOF or reset) before the deadline; discards data.
  bool ClosedWithin(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!WaitReadable(deadline)) return false;
      char buf[4096];
      const ssize_t got = recv(fd_, buf, sizeof buf, 0);
      if (got <= 0) return true;
    }
  }
  // Plays the client's side of the handshake by hand; returns false if the server's proof is
  // wrong.
  bool Handshake(std::string_view cookie = kCookie) {
    auto hello = Read(36);
    if (!hello || hello->substr(0, 4) != "SHR1") return false;
    const std::string server_nonce = hello->substr(4);
    const std::string client_nonce(32, 'c');
    Write(client_nonce + Mac("shoal-client", server_nonce, client_nonce, cookie));
    auto proof = Read(32);
    return proof && *proof == Mac("shoal-server", client_nonce, server_nonce, cookie);
  }

 private:
  bool WaitReadable(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(left.count())) == 1;
  }
  int fd_;
};

// Accepts one connection on a non-blocking listening socket, waiting up to `timeout`.
RawConn AcceptOne(int listen_fd, std::chrono::milliseconds timeout = 10s) {
  pollfd p{listen_fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, static_cast<int>(timeout.count())), 1);
  const int fd = accept(listen_fd, nullptr, nullptr);
  EXPECT_GE(fd, 0);
  return RawConn(fd);
}

class RpcTest : public ::testing::Test {
 protected:
  void TearDown() override {
    lt_.Sync([&] {
      client_.reset();
      server_.reset();
    });
  }

  void StartServer(RpcOptions options = {}, std::string cookie = kCookie, uint16_t port = 0) {
    lt_.Sync([&] {
      server_ = std::make_unique<RpcServer>(lt_.loop(), "127.0.0.1", port, cookie, options);
      server_->Register("echo",
                        [](std::string_view body, Responder r) { r.Reply(std::string(body)); });
      server_->Register("fail", [](std::string_view, Responder r) { r.Fail("nope"); });
      const Status st = server_->Start();
      ASSERT_TRUE(st.ok()) << st.error().ToString();
    });
    to_ = Endpoint{"127.0.0.1", server_->port()};
  }

  void MakeClient(RpcOptions options = {}, std::string cookie = kCookie) {
    lt_.Sync([&] { client_ = std::make_unique<RpcClient>(lt_.loop(), cookie, options); });
  }

  std::future<Result<std::string>> CallAsync(std::string method, std::string body,
                                             int64_t timeout_ms = 10'000) {
    auto done = std::make_shared<std::promise<Result<std::string>>>();
    auto result = done->get_future();
    lt_.loop()->Post([=, this] {
      client_->Call(to_, method, body, timeout_ms,
                    [done](Result<std::string> r) { done->set_value(std::move(r)); });
    });
    return result;
  }
  Result<std::string> Call(std::string method, std::string body, int64_t timeout_ms = 10'000) {
    auto f = CallAsync(std::move(method), std::move(body), timeout_ms);
    return Await(f, 20s);
  }

  RpcServer::Stats ServerStats() { return server_->stats(); }

  LoopThread lt_;
  std::unique_ptr<RpcServer> server_;
  std::unique_ptr<RpcClient> client_;
  Endpoint to_;
};

void ExpectError(const Result<std::string>& r, Errc code, std::string_view text) {
  ASSERT_FALSE(r.ok()) << "got a value: " << r.value();
  EXPECT_EQ(r.error().code(), make_error_code(code)) << r.error().ToString();
  EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
}

TEST_F(RpcTest, RoundTripRepliesAndErrors) {
  StartServer();
  MakeClient();
  auto r = Call("echo", std::string("hello\0world", 11));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, std::string("hello\0world", 11));
  ExpectError(Call("fail", ""), Errc::kRemote, "nope");
  ExpectError(Call("missing", ""), Errc::kRemote, "unknown method 'missing'");
  auto empty = Call("echo", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");

  const RpcServer::Stats s = ServerStats();
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.admitted, 1u);
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.unknown_methods, 1u);
  const RpcClient::Stats c = client_->stats();
  EXPECT_EQ(c.connects, 1u);
  EXPECT_EQ(c.responses, 2u);
  EXPECT_EQ(c.remote_errors, 2u);
}

TEST_F(RpcTest, ThousandPipelinedCallsResolvedOutOfOrder) {
  StartServer();
  MakeClient();
  constexpr int kCalls = 1000;
  // On the loop thread only.
  std::vector<std::pair<std::string, Responder>> held;
  lt_.Sync([&] {
    server_->Register("hold", [&](std::string_view body, Responder r) {
      held.emplace_back(std::string(body), std::move(r));
      if (held.size() < kCalls) return;
      for (int i = kCalls - 1; i >= 0; --i) held[i].second.Reply("re:" + held[i].first);
    });
  });
  std::vector<int> completion_order;
  std::atomic<int> wrong{0};
  std::promise<void> all_done;
  auto done = all_done.get_future();
  lt_.Sync([&] {
    for (int i = 0; i < kCalls; ++i) {
      client_->Call(to_, "hold", std::to_string(i), 10'000, [&, i](Result<std::string> r) {
        if (!r.ok() || *r != "re:" + std::to_string(i)) ++wrong;
        completion_order.push_back(i);
        if (completion_order.size() == kCalls) all_done.set_value();
      });
    }
  });
  Await(done, 30s);
  EXPECT_EQ(wrong.load(), 0);
  ASSERT_EQ(completion_order.size(), static_cast<size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(completion_order[i], kCalls - 1 - i);
  EXPECT_EQ(client_->stats().connects, 1u);
  EXPECT_EQ(ServerStats().accepted, 1u);
}

TEST_F(RpcTest, WrongCookieIsRejectedOnBothSidesAndNoHandlerRuns) {
  StartServer();
  std::atomic<int> handler_calls{0};
  lt_.Sync([&] {
    server_->Register("count", [&](std::string_view, Responder r) {
      ++handler_calls;
      r.Reply("");
    });
  });
  MakeClient({}, "another-cluster");
  ExpectError(Call("count", ""), Errc::kHandshakeFailed, "cookie");
  EXPECT_TRUE(WaitFor([&] { return ServerStats().handshake_failures == 1; }));
  EXPECT_EQ(client_->stats().handshake_failures, 1u);
  EXPECT_EQ(ServerStats().admitted, 0u);
  EXPECT_EQ(ServerStats().requests, 0u);
  EXPECT_EQ(handler_calls.load(), 0);

  // The right cookie still gets in.
  lt_.Sync([&] { client_ = std::make_unique<RpcClient>(lt_.loop(), kCookie); });
  ASSERT_TRUE(Call("count", "").ok());
  EXPECT_EQ(handler_calls.load(), 1);
}

TEST_F(RpcTest, ClientRefusesAServerThatFailsTheChallenge) {
  auto listener = ListenTcp("127.0.0.1", 0, ReusePort::kNo);
  ASSERT_TRUE(listener.ok());
  const uint16_t port = static_cast<uint16_t>(
      std::stoi(LocalAddress(*listener).substr(LocalAddress(*listener).rfind(':') + 1)));
  to_ = Endpoint{"127.0.0.1", port};
  MakeClient();
  auto result = CallAsync("echo", "secret request");
  RawConn impostor = AcceptOne(*listener);
  impostor.Write("SHR1" + std::string(32, 'n'));
  ASSERT_TRUE(impostor.Read(64).has_value());  // the client's nonce and MAC
  impostor.Write(std::string(32, '\0'));       // a proof made without the cookie
  ExpectError(Await(result), Errc::kHandshakeFailed, "failed the cookie challenge");
  EXPECT_TRUE(impostor.ClosedWithin());  // and nothing of the request was sent
  EXPECT_EQ(client_->stats().handshake_failures, 1u);

  // Something that is not a shoal server at all.
  auto second = CallAsync("echo", "x");
  RawConn web = AcceptOne(*listener);
  web.Write("HTTP/1.1 400 Bad Request\r\n\r\n");
  ExpectError(Await(second), Errc::kHandshakeFailed, "not a shoal RPC server");
  close(*listener);
}

TEST_F(RpcTest, GarbageAndOversizeFramesCloseOnlyThatConnection) {
  RpcOptions small;
  small.max_frame_size = 1024;
  StartServer(small);
  MakeClient(small);
  ASSERT_TRUE(Call("echo", "before").ok());

  {  // Garbage instead of the handshake answer.
    RawConn c = RawConn::Connect(server_->port());
    ASSERT_TRUE(c.Read(36).has_value());
    c.Write(std::string(64, 'g'));
    EXPECT_TRUE(c.ClosedWithin());
  }
  {  // An HTTP request on the cluster port.
    RawConn c = RawConn::Connect(server_->port());
    c.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(64, ' '));
    EXPECT_TRUE(c.ClosedWithin());
  }
  EXPECT_TRUE(WaitFor([&] { return ServerStats().handshake_failures == 2; }));
  {  // Admitted, then a frame of an unknown kind.
    RawConn c = RawConn::Connect(server_->port());
    ASSERT_TRUE(c.Handshake());
    c.Write(std::string("\0\0\0\x09\x07", 5) + std::string(8, '\0'));
    EXPECT_TRUE(c.ClosedWithin());
  }
  {  // Admitted, then a length over the limit: closed without waiting for the body.
    RawConn c = RawConn::Connect(server_->port());
    ASSERT_TRUE(c.Handshake());
    c.Write(std::string("\0\0\x04\x01", 4));  // 1025
    EXPECT_TRUE(c.ClosedWithin());
  }
  EXPECT_TRUE(WaitFor([&] { return ServerStats().protocol_errors == 2; }));
  {  // The wire format by hand: a request, and its response frame.
    RawConn c = RawConn::Connect(server_->port());
    ASSERT_TRUE(c.Handshake());
    std::string frame;
    rpc::AppendFrame(&frame, rpc::FrameKind::kRequest, 77, "echo", "by hand");
    c.Write(frame);
    auto head = c.Read(4);
    ASSERT_TRUE(head.has_value());
    const size_t len = (static_cast<uint8_t>((*head)[2]) << 8) | static_cast<uint8_t>((*head)[3]);
    auto rest = c.Read(len);
    ASSERT_TRUE(rest.has_value());
    const std::string response = *head + *rest;
    const rpc::DecodeResult r = rpc::DecodeFrame(response);
    ASSERT_EQ(r.status, rpc::DecodeStatus::kOk);
    EXPECT_EQ(r.frame.kind, rpc::FrameKind::kResponse);
    EXPECT_EQ(r.frame.id, 77u);
    EXPECT_EQ(r.frame.body, "by hand");
  }
  // The good client's connection was never disturbed.
  auto after = Call("echo", "after");
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_EQ(client_->stats().connects, 1u);

  // Limits on the sending side: a request over the limit never leaves; a response over it
  // becomes an error.
  ExpectError(Call("echo", std::string(2000, 'x')), Errc::kInvalidArgument, "frame limit");
  lt_.Sync([&] {
    server_->Register("big",
                      [](std::string_view, Responder r) { r.Reply(std::string(2000, 'y')); });
  });
  ExpectError(Call("big", ""), Errc::kRemote, "response too large");
  ExpectError(Call("", ""), Errc::kInvalidArgument, "method name");
  ExpectError(Call(std::string(256, 'm'), ""), Errc::kInvalidArgument, "method name");
}

TEST_F(RpcTest, CallTimesOutAndTheLateResponseIsDropped) {
  StartServer();
  MakeClient();
  std::optional<Responder> held;  // loop thread only
  lt_.Sync([&] {
    server_->Register("stall", [&](std::string_view, Responder r) { held = std::move(r); });
  });
  const auto start = std::chrono::steady_clock::now();
  ExpectError(Call("stall", "", 100), Errc::kTimeout, "stall to 127.0.0.1");
  // Not before its deadline (the loop's timers count whole milliseconds, so allow for one).
  EXPECT_GE(std::chrono::steady_clock::now() - start, 99ms);
  EXPECT_EQ(client_->stats().timeouts, 1u);
  lt_.Sync([&] {
    ASSERT_TRUE(held.has_value());
    held->Reply("too late");
  });
  EXPECT_TRUE(WaitFor([&] { return client_->stats().late_responses == 1; }));
  ASSERT_TRUE(Call("echo", "still fine").ok());
}

TEST_F(RpcTest, HandshakeTimeoutsOnBothSides) {
  RpcOptions quick;
  quick.handshake_timeout_ms = 100;
  StartServer(quick);
  {  // A client that connects and says nothing.
    RawConn silent = RawConn::Connect(server_->port());
    ASSERT_TRUE(silent.Read(36).has_value());
    EXPECT_TRUE(silent.ClosedWithin());
  }
  EXPECT_EQ(ServerStats().handshake_timeouts, 1u);

  // A server that accepts (the kernel does, from the backlog) and never greets.
  auto listener = ListenTcp("127.0.0.1", 0, ReusePort::kNo);
  ASSERT_TRUE(listener.ok());
  const std::string local = LocalAddress(*listener);
  to_ = Endpoint{"127.0.0.1", static_cast<uint16_t>(std::stoi(local.substr(local.rfind(':') + 1)))};
  MakeClient(quick);
  ExpectError(Call("echo", "", /*timeout_ms=*/0), Errc::kHandshakeTimeout, "no handshake");
  close(*listener);
}

TEST_F(RpcTest, PendingCallsFailWhenTheConnectionDrops) {
  StartServer();
  MakeClient();
  std::vector<Responder> held;
  lt_.Sync([&] {
    server_->Register("stall",
                      [&](std::string_view, Responder r) { held.push_back(std::move(r)); });
  });
  auto first = CallAsync("stall", "1", 60'000);
  auto second = CallAsync("stall", "2", 60'000);
  ASSERT_TRUE(WaitFor([&] { return lt_.Sync([&] { return held.size(); }) == 2; }));
  lt_.Sync([&] { server_->Stop(); });
  ExpectError(Await(first), Errc::kDisconnected, "stall: connection to 127.0.0.1");
  ExpectError(Await(second), Errc::kDisconnected, "closed by the peer");
  lt_.Sync([&] { held.clear(); });  // replying to a closed connection is a no-op
  EXPECT_EQ(client_->stats().failed, 2u);
}

TEST_F(RpcTest, ReconnectsAfterThePeerRestarts) {
  StartServer();
  MakeClient();
  const uint16_t port = server_->port();
  ASSERT_TRUE(Call("echo", "one").ok());
  lt_.Sync([&] { server_.reset(); });
  // The client notices the close by itself and forgets the connection.
  ASSERT_TRUE(WaitFor([&] { return lt_.Sync([&] { return client_->connection_count(); }) == 0; }));
  ExpectError(Call("echo", "nobody home"), Errc::kConnectFailed, "cannot connect to 127.0.0.1");

  StartServer({}, kCookie, port);
  lt_.Sync([&] {
    server_->Register(
        "echo", [](std::string_view body, Responder r) { r.Reply("v2:" + std::string(body)); });
  });
  auto r = Call("echo", "two");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, "v2:two");
  EXPECT_EQ(client_->stats().connects, 3u);
  EXPECT_EQ(client_->stats().connect_failures, 1u);
}

TEST_F(RpcTest, RespondersWorkFromOtherThreadsAndDroppedOnesAnswer) {
  StartServer();
  MakeClient();
  std::vector<std::thread> workers;  // loop thread adds, test thread joins
  lt_.Sync([&] {
    server_->Register("offload", [&](std::string_view body, Responder r) {
      workers.emplace_back(
          [r = std::move(r), body = std::string(body)]() mutable { r.Reply("worker:" + body); });
    });
    server_->Register("forget", [](std::string_view, Responder) {});
  });
  auto r = Call("offload", "job");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, "worker:job");
  ExpectError(Call("forget", ""), Errc::kRemote, "without replying");
  lt_.Sync([&] {
    for (auto& t : workers) t.join();
  });
}

TEST_F(RpcTest, CallbacksNeverRunInsideCallAndShutdownFailsPending) {
  StartServer();
  MakeClient();
  std::vector<Responder> held;
  lt_.Sync([&] {
    server_->Register("stall",
                      [&](std::string_view, Responder r) { held.push_back(std::move(r)); });
  });
  auto pending = CallAsync("stall", "", 60'000);
  ASSERT_TRUE(WaitFor([&] { return lt_.Sync([&] { return held.size(); }) == 1; }));
  bool ran_inside = false;
  auto invalid = std::make_shared<std::promise<Result<std::string>>>();
  auto invalid_result = invalid->get_future();
  lt_.Sync([&] {
    client_->Call(to_, "", "", 100,
                  [&, invalid](Result<std::string> r) { invalid->set_value(std::move(r)); });
    ran_inside = invalid_result.wait_for(0s) == std::future_status::ready;
  });
  EXPECT_FALSE(ran_inside);
  ExpectError(Await(invalid_result), Errc::kInvalidArgument, "method name");

  lt_.Sync([&] { client_->Shutdown(); });
  ExpectError(Await(pending), Errc::kShutdown, "shut down");
  ExpectError(Call("echo", ""), Errc::kShutdown, "shut down");
  lt_.Sync([&] { held.clear(); });
}

TEST_F(RpcTest, NamesResolveForBindAndCall) {
  lt_.Sync([&] {
    server_ = std::make_unique<RpcServer>(lt_.loop(), "localhost", 0, kCookie);
    server_->Register("echo",
                      [](std::string_view body, Responder r) { r.Reply(std::string(body)); });
    ASSERT_TRUE(server_->Start().ok());
  });
  EXPECT_EQ(server_->local_endpoint().host, "127.0.0.1");
  to_ = Endpoint{"localhost", server_->port()};
  MakeClient();
  auto r = Call("echo", "by name");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, "by name");
}

}  // namespace
}  // namespace shoal::net
