#include <httplib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "admin/admin_server.h"
#include "admin/call_on_loop.h"
#include "net/test_loop.h"

namespace shoal::admin {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Parses a response body, failing the test (not throwing) when it is not JSON.
json Body(const httplib::Result& res) {
  json j = json::parse(res->body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << res->body;
  return j;
}

void ExpectProblem(const httplib::Result& res, int status, std::string_view title) {
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, status);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/problem+json");
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
  httplib::Client cli("127.0.0.1", server.port());

  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(Body(health), json({{"status", "ok"}}));

  auto thing = cli.Get("/api/v1/things/widget?verbose=yes");
  ASSERT_TRUE(thing);
  EXPECT_EQ(thing->status, 200);
  EXPECT_EQ(Body(thing), json({{"name", "widget"}, {"verbose", "yes"}}));

  auto created = cli.Post("/api/v1/things", R"({"name": "gear"})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201);
  EXPECT_EQ(Body(created), json({{"created", "gear"}}));

  ExpectProblem(cli.Post("/api/v1/things", "{not json", "application/json"), 400, "Bad Request");
  ExpectProblem(cli.Post("/api/v1/things", "{}", "application/json"), 422, "Unprocessable Entity");
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

TEST(AdminServer, BearerTokenGuardsEverythingButHealth) {
  AdminOptions options;
  options.api_token = "s3cret-token";
  AdminServer server("127.0.0.1", 0, options);
  server.Get("/api/v1/members", [](const HttpRequest&) {
    return HttpReply::Json({{"members", json::array()}});
  });
  ASSERT_TRUE(server.Start().ok());
  httplib::Client cli("127.0.0.1", server.port());

  auto none = cli.Get("/api/v1/members");
  ExpectProblem(none, 401, "Unauthorized");
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer realm=\"shoal\"");
  ExpectProblem(cli.Get("/api/v1/members", {{"Authorization", "Bearer wrong-token!"}}), 401,
                "Unauthorized");
  ExpectProblem(cli.Get("/api/v1/members", {{"Authorization", "Bearer s3cret-token-plus"}}), 401,
                "Unauthorized");
  ExpectProblem(cli.Get("/api/v1/members", {{"Authorization", "Basic s3cret-token"}}), 401,
                "Unauthorized");
  // Unknown routes are not revealed to a caller without the token.
  ExpectProblem(cli.Get("/api/v1/secret-route"), 401, "Unauthorized");

  auto ok = cli.Get("/api/v1/members", {{"Authorization", "Bearer s3cret-token"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(Body(ok), json({{"members", json::array()}}));

  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(server.stats().unauthorized, 5u);
}

TEST(AdminServer, StartFailsWhenThePortIsTaken) {
  AdminServer first("127.0.0.1", 0);
  ASSERT_TRUE(first.Start().ok());
  AdminServer second("127.0.0.1", first.port());
  const Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), std::errc::address_in_use) << st.error().ToString();
  // The first one is still the one answering.
  httplib::Client cli("127.0.0.1", first.port());
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(AdminServer, StopsPromptlyWithAKeepAliveClientConnected) {
  AdminServer server("127.0.0.1", 0);
  ASSERT_TRUE(server.Start().ok());
  httplib::Client cli("127.0.0.1", server.port());
  cli.set_keep_alive(true);
  ASSERT_TRUE(cli.Get("/health"));
  const auto start = std::chrono::steady_clock::now();
  server.Stop();
  // Bounded by the keep-alive timeout (2 s by default), not by the client.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
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
  httplib::Client cli("127.0.0.1", server.port());
  auto res = cli.Get("/api/v1/members");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Body(res), json({{"members", {"a", "b", "c"}}}));
  server.Stop();
}

}  // namespace
}  // namespace shoal::admin
