#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>

#include "admin/admin_server.h"
#include "admin/call_on_loop.h"
#include "admin/http_client.h"
#include "net/test_loop.h"

namespace shoal::admin {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

using Res = Result<HttpResponse>;

// A client bound to one server, in the shape the tests use.
class Client {
 public:
  explicit Client(uint16_t port) : address_("127.0.0.1:" + std::to_string(port)) {}
  Res Get(const std::string& path, HttpClientOptions options = {}) {
    return HttpGet(address_, path, options);
  }
  Res Post(const std::string& path, const std::string& body, HttpClientOptions options = {}) {
    return HttpPost(address_, path, body, options);
  }
  static HttpClientOptions Auth(std::string value) {
    HttpClientOptions o;
    o.headers = {{"Authorization", std::move(value)}};
    return o;
  }

 private:
  std::string address_;
};

// Parses a response body, failing the test (not throwing) when it is not JSON.
json Body(const Res& res) {
  json j = json::parse(res->body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << res->body;
  return j;
}

// A raw TCP connection to 127.0.0.1:port, optionally from another loopback source address.
class Raw {
 public:
  explicit Raw(uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source != nullptr) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &src.sin_addr);
      EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src), 0);
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
    EXPECT_TRUE(connected_);
  }
  ~Raw() { ::close(fd_); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  bool Send(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // What arrives within `wait` (stops at the first chunk after some data, or at EOF).
  std::string ReadSome(std::chrono::milliseconds wait) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
      if (out.find("\r\n\r\n") != std::string::npos) break;
    }
    return out;
  }
  // True when the server closes the connection (EOF or reset) within `wait`; what it sent before
  // closing lands in received().
  bool ClosedWithin(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!eof_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
      } else {
        received_.append(buf, static_cast<size_t>(n));
      }
    }
    return eof_;
  }
  const std::string& received() const { return received_; }
  bool connected() const { return connected_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string received_;
};

void ExpectProblem(const Res& res, int status, std::string_view title) {
  ASSERT_TRUE(res.ok()) << res.error().ToString();
  EXPECT_EQ(res->status, status);
  EXPECT_EQ(res->Header("Content-Type"), "application/problem+json");
  const json j = Body(res);
  EXPECT_EQ(j.value("type", ""), "about:blank");
  EXPECT_EQ(j.value("title", ""), title);
  EXPECT_EQ(j.value("status", 0), status);
  EXPECT_TRUE(j.contains("detail"));
}

TEST(AdminServer, HealthCustomRoutesAndProblems) {
  AdminServer server("127.0.0.1", 0);
  server.Get("/api/v1/things/([a-z]+)", [](const HttpRequest& req) {
    return HttpReply::Json({{"name", req.matches.at(1)}, {"verbose", req.Query("verbose")}});
  });
  server.Post("/api/v1/things", [](const HttpRequest& req) {
    auto body = req.JsonBody();
    if (!body.ok()) return HttpReply::FromError(400, body.error());
    if (!body->contains("name")) return HttpReply::Problem(422, "a thing needs a name");
    return HttpReply::Json({{"created", (*body)["name"]}}, 201);
  });
  server.Get("/api/v1/boom",
             [](const HttpRequest&) -> HttpReply { throw std::runtime_error("kaboom"); });
  ASSERT_TRUE(server.Start().ok());
  ASSERT_NE(server.port(), 0);
  Client cli(server.port());

  auto health = cli.Get("/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->Header("Content-Type"), "application/json");
  EXPECT_EQ(Body(health), json({{"status", "ok"}}));

  auto thing = cli.Get("/api/v1/things/widget?verbose=yes");
  ASSERT_TRUE(thing.ok());
  EXPECT_EQ(thing->status, 200);
  EXPECT_EQ(Body(thing), json({{"name", "widget"}, {"verbose", "yes"}}));

  auto created = cli.Post("/api/v1/things", R"({"name": "gear"})");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->status, 201);
  EXPECT_EQ(Body(created), json({{"created", "gear"}}));

  ExpectProblem(cli.Post("/api/v1/things", "{not json"), 400, "Bad Request");
  ExpectProblem(cli.Post("/api/v1/things", "{}"), 422, "Unprocessable Entity");
  auto missing = cli.Get("/api/v1/nope");
  ExpectProblem(missing, 404, "Not Found");
  EXPECT_EQ(Body(missing).value("detail", ""), "no route for GET /api/v1/nope");
  // The pattern must match the whole path.
  ExpectProblem(cli.Get("/api/v1/things/widget/extra"), 404, "Not Found");
  auto boom = cli.Get("/api/v1/boom");
  ExpectProblem(boom, 500, "Internal Server Error");
  EXPECT_EQ(Body(boom).value("detail", ""), "kaboom");

  const AdminServer::Stats s = server.stats();
  EXPECT_EQ(s.requests, 8u);
  EXPECT_EQ(s.server_errors, 1u);
  server.Stop();
  server.Stop();  // idempotent
}

TEST(AdminServer, BearerTokenGuardsEveryPostButNoGet) {
  AdminOptions options;
  options.api_token = "s3cret-token";
  AdminServer server("127.0.0.1", 0, options);
  server.Get("/api/v1/members", [](const HttpRequest&) {
    return HttpReply::Json({{"members", json::array()}});
  });
  std::atomic<int> saves{0};
  server.Post("/api/v1/save", [&saves](const HttpRequest&) {
    ++saves;
    return HttpReply::Json({{"saved", true}});
  });
  ASSERT_TRUE(server.Start().ok());
  Client cli(server.port());

  auto none = cli.Post("/api/v1/save", "{}");
  ExpectProblem(none, 401, "Unauthorized");
  EXPECT_EQ(none->Header("WWW-Authenticate"), "Bearer realm=\"shoal\"");
  EXPECT_NE(Body(none).value("detail", ""), "");
  ExpectProblem(cli.Post("/api/v1/save", "{}", Client::Auth("Bearer wrong-token!")), 401,
                "Unauthorized");
  ExpectProblem(cli.Post("/api/v1/save", "{}", Client::Auth("Bearer s3cret-token-plus")), 401,
                "Unauthorized");
  ExpectProblem(cli.Post("/api/v1/save", "{}", Client::Auth("Bearer s3cret-toke")), 401,
                "Unauthorized");
  ExpectProblem(cli.Post("/api/v1/save", "{}", Client::Auth("Basic s3cret-token")), 401,
                "Unauthorized");
  // Unknown routes are not revealed to a caller without the token.
  ExpectProblem(cli.Post("/api/v1/secret-route", "{}"), 401, "Unauthorized");
  EXPECT_EQ(saves.load(), 0);

  HttpClientOptions with_token;
  with_token.token = "s3cret-token";
  auto ok = cli.Post("/api/v1/save", "{}", with_token);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(Body(ok), json({{"saved", true}}));
  EXPECT_EQ(saves.load(), 1);
  // The scheme name is case-insensitive.
  auto lower = cli.Post("/api/v1/save", "{}", Client::Auth("bearer s3cret-token"));
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(lower->status, 200);

  // Reads stay open: GETs need no token.
  auto members = cli.Get("/api/v1/members");
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->status, 200);
  EXPECT_EQ(Body(members), json({{"members", json::array()}}));
  auto health = cli.Get("/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(server.stats().unauthorized, 6u);
}

TEST(AdminServer, StartFailsWhenThePortIsTaken) {
  AdminServer first("127.0.0.1", 0);
  ASSERT_TRUE(first.Start().ok());
  AdminServer second("127.0.0.1", first.port());
  const Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), std::errc::address_in_use) << st.error().ToString();
  // The first one is still the one answering.
  Client cli(first.port());
  auto health = cli.Get("/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
}

TEST(AdminServer, StopsPromptlyWithAKeepAliveClientConnected) {
  AdminServer server("127.0.0.1", 0);
  ASSERT_TRUE(server.Start().ok());
  // A keep-alive connection that has had its answer and stays open.
  Raw raw(server.port());
  ASSERT_TRUE(raw.Send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(raw.ReadSome(5s).find("200 OK"), std::string::npos);
  const auto start = std::chrono::steady_clock::now();
  server.Stop();
  // Stop closes it rather than waiting for the client or a timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_TRUE(raw.ClosedWithin(5s));
}

TEST(AdminServer, ClosesAConnectionThatDoesNotDeliverARequestInTime) {
  AdminOptions options;
  options.read_timeout_s = 1;
  options.keep_alive_timeout_s = 1;
  AdminServer server("127.0.0.1", 0, options);
  ASSERT_TRUE(server.Start().ok());
  Raw silent(server.port());      // says nothing
  Raw slow(server.port());        // a slowloris: a header byte now and then
  Raw idle_after(server.port());  // keep-alive, idle after one answer
  ASSERT_TRUE(slow.Send("GET /health HTTP/1.1\r\nX-A: "));
  ASSERT_TRUE(idle_after.Send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(idle_after.ReadSome(5s).find("200 OK"), std::string::npos);
  // The deadline covers the whole request, so trickling bytes does not extend it.
  const auto start = std::chrono::steady_clock::now();
  bool slow_closed = false;
  while (!slow_closed && std::chrono::steady_clock::now() - start < 10s) {
    slow.Send("a");
    slow_closed = slow.ClosedWithin(200ms);
  }
  EXPECT_TRUE(slow_closed);
  EXPECT_TRUE(silent.ClosedWithin(10s));
  EXPECT_TRUE(idle_after.ClosedWithin(10s));
  EXPECT_TRUE(net::testing::WaitFor([&] { return server.stats().timed_out >= 3; }));
  EXPECT_TRUE(net::testing::WaitFor([&] { return server.stats().connections == 0; }));
  // And the server still answers.
  auto health = Client(server.port()).Get("/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
}

TEST(AdminServer, CapsConnectionsPerClientAddress) {
  AdminOptions options;
  options.max_connections_per_client = 3;
  AdminServer server("127.0.0.1", 0, options);
  ASSERT_TRUE(server.Start().ok());
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<Raw>(server.port(), "127.0.0.2"));
  ASSERT_TRUE(net::testing::WaitFor([&] { return server.stats().connections == 3; }));
  // A fourth from the same address is answered 503 and closed at once.
  Raw over(server.port(), "127.0.0.2");
  EXPECT_TRUE(over.ClosedWithin(5s));
  EXPECT_NE(over.received().find("503"), std::string::npos) << over.received();
  EXPECT_EQ(server.stats().rejected_connections, 1u);
  // Other addresses are not affected.
  auto health = Client(server.port()).Get("/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  // A freed slot can be taken again.
  held.pop_back();
  ASSERT_TRUE(net::testing::WaitFor([&] { return server.stats().connections == 2; }));
  Raw again(server.port(), "127.0.0.2");
  ASSERT_TRUE(again.Send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(again.ReadSome(5s).find("200 OK"), std::string::npos);
  EXPECT_EQ(server.stats().rejected_connections, 1u);
}

TEST(AdminServer, CapsConnectionsInTotal) {
  AdminOptions options;
  options.max_connections = 4;
  AdminServer server("127.0.0.1", 0, options);
  ASSERT_TRUE(server.Start().ok());
  std::vector<std::unique_ptr<Raw>> held;
  const char* sources[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
  for (const char* src : sources) held.push_back(std::make_unique<Raw>(server.port(), src));
  ASSERT_TRUE(net::testing::WaitFor([&] { return server.stats().connections == 4; }));
  Raw over(server.port(), "127.0.0.6");
  EXPECT_TRUE(over.ClosedWithin(5s));
  EXPECT_NE(over.received().find("503"), std::string::npos) << over.received();
  EXPECT_EQ(server.stats().rejected_connections, 1u);
  EXPECT_EQ(server.stats().accepted, 4u);
}

TEST(AdminServer, ASlowHandlerDoesNotBlockHealthOrOtherConnections) {
  AdminOptions options;
  options.handler_threads = 1;
  AdminServer server("127.0.0.1", 0, options);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> entered{false};
  server.Get("/api/v1/slow", [&](const HttpRequest&) {
    entered = true;
    released.wait();
    return HttpReply::Json({{"slow", true}});
  });
  ASSERT_TRUE(server.Start().ok());
  auto slow = std::async(std::launch::async, [&] {
    HttpClientOptions o;
    o.timeout_ms = 20000;
    return Client(server.port()).Get("/api/v1/slow", o);
  });
  ASSERT_TRUE(net::testing::WaitFor([&] { return entered.load(); }));
  // The only handler thread is stuck; /health is answered on the I/O thread regardless.
  for (int i = 0; i < 3; ++i) {
    auto health = Client(server.port()).Get("/health");
    ASSERT_TRUE(health.ok()) << health.error().ToString();
    EXPECT_EQ(health->status, 200);
  }
  release.set_value();
  auto res = slow.get();
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
}

TEST(AdminServer, StopWaitsForRunningHandlersAndDropsQueuedOnes) {
  AdminOptions options;
  options.handler_threads = 1;
  auto server = std::make_unique<AdminServer>("127.0.0.1", 0, options);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> entered{0};
  server->Get("/api/v1/slow", [&](const HttpRequest&) {
    ++entered;
    released.wait();
    return HttpReply::Json({{"slow", true}});
  });
  ASSERT_TRUE(server->Start().ok());
  const uint16_t port = server->port();
  Raw running(port);
  Raw queued(port);
  ASSERT_TRUE(running.Send("GET /api/v1/slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(net::testing::WaitFor([&] { return entered.load() == 1; }));
  ASSERT_TRUE(queued.Send("GET /api/v1/slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(net::testing::WaitFor([&] { return server->stats().requests == 2; }));
  auto stopped = std::async(std::launch::async, [&] { server->Stop(); });
  // Both connections are closed without an answer; Stop waits for the running handler only.
  EXPECT_TRUE(queued.ClosedWithin(5s));
  EXPECT_TRUE(running.ClosedWithin(5s));
  EXPECT_EQ(stopped.wait_for(200ms), std::future_status::timeout);
  release.set_value();
  stopped.get();
  EXPECT_EQ(entered.load(), 1);  // the queued request never ran
  server.reset();                // the running handler's reply is dropped with the server
}

TEST(AdminServer, APostWithoutContentLengthHasAnEmptyBodyAndIsAnsweredAtOnce) {
  AdminOptions options;
  options.read_timeout_s = 30;  // a server waiting for an unannounced body would hang here
  AdminServer server("127.0.0.1", 0, options);
  server.Post("/api/v1/echo", [](const HttpRequest& req) {
    auto body = req.JsonBody();
    if (!body.ok()) return HttpReply::FromError(400, body.error());
    return HttpReply::Json({{"body", *body}, {"raw", req.body}});
  });
  ASSERT_TRUE(server.Start().ok());
  Raw raw(server.port());
  ASSERT_TRUE(raw.Send("POST /api/v1/echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string answer = raw.ReadSome(5s);
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;

  // A client that waits for "100 Continue" before its body gets it.
  Raw expect(server.port());
  ASSERT_TRUE(
      expect.Send("POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nExpect: "
                  "100-continue\r\nContent-Length: 7\r\n\r\n"));
  EXPECT_NE(expect.ReadSome(5s).find("HTTP/1.1 100 Continue"), std::string::npos);
  ASSERT_TRUE(expect.Send(R"({"a":1})"));
  const std::string continued = expect.ReadSome(5s);
  EXPECT_NE(continued.find("200 OK"), std::string::npos) << continued;

  Client cli(server.port());
  auto empty = cli.Post("/api/v1/echo", "");  // Content-Length: 0
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(Body(empty), json({{"body", json::object()}, {"raw", ""}}));
  auto bad = cli.Post("/api/v1/echo", "{nope");
  ExpectProblem(bad, 400, "Bad Request");
  EXPECT_NE(Body(bad).value("detail", "").find("not valid JSON"), std::string::npos);
}

TEST(AdminServer, MalformedAndOversizedRequestsGetProblemsWithADetail) {
  AdminOptions options;
  options.max_body_bytes = 100;
  AdminServer server("127.0.0.1", 0, options);
  server.Post("/api/v1/echo", [](const HttpRequest& req) { return HttpReply::Json({}); });
  ASSERT_TRUE(server.Start().ok());
  Raw garbage(server.port());
  ASSERT_TRUE(garbage.Send("NOT HTTP AT ALL\r\n\r\n"));
  EXPECT_TRUE(garbage.ClosedWithin(5s));
  EXPECT_NE(garbage.received().find("400 Bad Request"), std::string::npos) << garbage.received();
  EXPECT_NE(garbage.received().find("malformed HTTP request"), std::string::npos);

  auto big = Client(server.port()).Post("/api/v1/echo", std::string(200, ' '));
  ExpectProblem(big, 413, "Payload Too Large");
  EXPECT_NE(Body(big).value("detail", ""), "");
}

TEST(HttpClient, ACallThatCannotConnectSaysWhy) {
  // A port nobody listens on: bind one, note it, close it.
  uint16_t port;
  {
    AdminServer s("127.0.0.1", 0);
    ASSERT_TRUE(s.Start().ok());
    port = s.port();
  }
  auto res = HttpGet("127.0.0.1:" + std::to_string(port), "/health");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), std::errc::connection_refused);
  EXPECT_EQ(res.error().message(),
            "cannot reach 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(HttpClient, ACallWithoutAnAnswerTimesOut) {
  AdminServer server("127.0.0.1", 0);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  server.Get("/api/v1/stuck", [released](const HttpRequest&) {
    released.wait();
    return HttpReply::Json({});
  });
  ASSERT_TRUE(server.Start().ok());
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  auto res = HttpGet(address, "/api/v1/stuck", 200);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), std::errc::timed_out);
  EXPECT_EQ(res.error().message(), "no answer from " + address + ": timed out after 200 ms");
  release.set_value();
}

TEST(CallOnLoop, ReturnsTheResultComputedOnTheLoopThread) {
  net::testing::LoopThread lt;
  Result<bool> on_loop = CallOnLoop(
      lt.loop(), [loop = lt.loop()] { return loop->InLoopThread(); }, 5s);
  ASSERT_TRUE(on_loop.ok());
  EXPECT_TRUE(*on_loop);

  Result<int> passthrough = CallOnLoop(
      lt.loop(),
      []() -> Result<int> {
        return Error(std::make_error_code(std::errc::invalid_argument), "bad");
      },
      5s);
  ASSERT_FALSE(passthrough.ok());
  EXPECT_EQ(passthrough.error().code(), std::errc::invalid_argument);

  auto counter = std::make_shared<int>(0);
  Status st = CallOnLoop(
      lt.loop(), [counter] { ++*counter; }, 5s);
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(*CallOnLoop(
                lt.loop(), [counter] { return *counter; }, 5s),
            1);

  // On the loop thread itself it runs inline instead of deadlocking.
  auto nested = lt.Sync([&] {
    return CallOnLoop(
        lt.loop(), [] { return 7; }, 5s);
  });
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(*nested, 7);
}

TEST(CallOnLoop, TimesOutWhenTheLoopIsBusy) {
  net::testing::LoopThread lt;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  lt.loop()->Post([released] { released.wait(); });  // the loop is stuck until released
  auto ran = std::make_shared<std::atomic<bool>>(false);
  const auto start = std::chrono::steady_clock::now();
  Result<int> r = CallOnLoop(
      lt.loop(),
      [ran] {
        ran->store(true);
        return 1;
      },
      50ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), std::errc::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  release.set_value();
  // The function still runs once the loop is free; it owns what it touches.
  EXPECT_TRUE(net::testing::WaitFor([&] { return ran->load(); }));
}

TEST(AdminServer, HandlersReachLoopStateThroughCallOnLoop) {
  net::testing::LoopThread lt;
  auto members = std::make_shared<std::vector<std::string>>();  // owned by the loop thread
  lt.Sync([&] { *members = {"a", "b", "c"}; });
  AdminServer server("127.0.0.1", 0);
  server.Get("/api/v1/members", [loop = lt.loop(), members](const HttpRequest&) {
    auto names = CallOnLoop(
        loop, [members] { return *members; }, 1s);
    if (!names.ok()) return HttpReply::FromError(503, names.error());
    return HttpReply::Json({{"members", *names}});
  });
  ASSERT_TRUE(server.Start().ok());
  Client cli(server.port());
  auto res = cli.Get("/api/v1/members");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Body(res), json({{"members", {"a", "b", "c"}}}));
  server.Stop();
}

TEST(AdminServer, ServesPlainTextAndStaticFilesWithTheirContentTypes) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("shoal_static_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "www" / "css");
  auto write = [](const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  };
  write(dir / "www" / "index.html", "<h1>hi</h1>");
  write(dir / "www" / "css" / "site.css", "body{}");
  write(dir / "www" / "blob.bin", std::string("\0\1\2", 3));
  write(dir / "secret.txt", "do not serve");
  fs::create_symlink(dir / "secret.txt", dir / "www" / "link.txt");

  AdminServer server("127.0.0.1", 0);
  server.Get("/text", [](const HttpRequest&) { return HttpReply::Bytes("a line\n"); });
  server.Get("/static(/.*)?", StaticFiles((dir / "www").string()));
  ASSERT_TRUE(server.Start().ok());
  Client cli(server.port());

  auto text = cli.Get("/text");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->status, 200);
  EXPECT_EQ(text->Header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(text->body, "a line\n");

  auto index = cli.Get("/static/");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->Header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(index->body, "<h1>hi</h1>");
  auto bare = cli.Get("/static");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->body, "<h1>hi</h1>");
  auto css = cli.Get("/static/css/site.css");
  ASSERT_TRUE(css.ok());
  EXPECT_EQ(css->Header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(css->body, "body{}");
  auto blob = cli.Get("/static/blob.bin");
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->Header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(blob->body, std::string("\0\1\2", 3));

  ExpectProblem(cli.Get("/static/missing.js"), 404, "Not Found");
  ExpectProblem(cli.Get("/static/css"), 404, "Not Found");  // a directory without index.html
  ExpectProblem(cli.Get("/static/../secret.txt"), 400, "Bad Request");
  ExpectProblem(cli.Get("/static/css/../../secret.txt"), 400, "Bad Request");
  ExpectProblem(cli.Get("/static/link.txt"), 404, "Not Found");  // a symlink out of the root
  server.Stop();
  fs::remove_all(dir);
}

TEST(AdminServer, ContentTypeByExtension) {
  EXPECT_EQ(ContentTypeFor("a/b/app.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("x.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("x.json"), "application/json");
  EXPECT_EQ(ContentTypeFor("dir.d/noext"), "application/octet-stream");
}

}  // namespace
}  // namespace shoal::admin
