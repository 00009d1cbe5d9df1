#include "node/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "net/test_loop.h"

namespace shoal::node {
namespace {

using net::testing::Await;
using net::testing::LoopThread;
using net::testing::WaitFor;

constexpr char kCookie[] = "service-test-cookie";

TEST(Gate, CountsWorkAndRefusesItOnceClosed) {
  Gate gate;
  std::optional<Gate::Holder> a = gate.TryEnter();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(gate.in_flight(), 1);
  {
    std::optional<Gate::Holder> b = gate.TryEnter();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(gate.in_flight(), 2);
  }
  EXPECT_EQ(gate.in_flight(), 1);
  gate.Close();
  EXPECT_FALSE(gate.TryEnter().has_value());
  EXPECT_EQ(gate.in_flight(), 1);  // the refused attempt backed out
  // A released unit is counted out by whoever holds it now.
  std::shared_ptr<std::atomic<int64_t>> unit = a->Release();
  a.reset();
  EXPECT_EQ(gate.in_flight(), 1);
  unit->fetch_sub(1);
  EXPECT_EQ(gate.in_flight(), 0);
}

// A service whose method "hold.<name>" keeps its requests until the test answers them.
class HoldingService final : public Service {
 public:
  HoldingService(std::string name, std::vector<std::string>* log)
      : Service(std::move(name)), log_(log) {}
  Status Load() override {
    log_->push_back("load " + name());
    return load_result;
  }
  Status Start(net::RpcServer* server) override {
    log_->push_back("start " + name());
    ServeMethod(server, "hold." + name(),
                [this](std::string_view, net::Responder r) { held.push_back(std::move(r)); });
    return Status::Ok();
  }
  void OnView(std::shared_ptr<const membership::MemberTable>) override { ++views; }
  void Tick(int64_t) override { ++ticks; }
  void Stop() override { log_->push_back("stop " + name()); }

  Status load_result;
  std::vector<net::Responder> held;  // loop thread
  std::atomic<int> ticks{0};
  int views = 0;

 private:
  std::vector<std::string>* log_;
};

class ServiceRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = registry_.Add(std::make_unique<HoldingService>("a", &log_));
    b_ = registry_.Add(std::make_unique<HoldingService>("b", &log_));
    server_ = std::make_unique<net::RpcServer>(lt_.loop(), "127.0.0.1", 0, kCookie);
    client_ = std::make_unique<net::RpcClient>(lt_.loop(), kCookie);
    lt_.Sync([&] {
      ASSERT_TRUE(registry_.LoadAll().ok());
      ASSERT_TRUE(registry_.StartAll(server_.get()).ok());
      ASSERT_TRUE(server_->Start().ok());
    });
  }
  void TearDown() override {
    lt_.Sync([&] {
      client_->Shutdown();
      server_->Stop();
    });
  }
  // Calls `method`; the reply (or error text) arrives in the returned future.
  std::future<std::string> Call(const std::string& method) {
    auto p = std::make_shared<std::promise<std::string>>();
    auto f = p->get_future();
    lt_.loop()->Post([this, method, p] {
      client_->Call(Endpoint{"127.0.0.1", server_->port()}, method, "x", 5000,
                    [p](Result<std::string> r) {
                      p->set_value(r.ok() ? "ok:" + *r : "error:" + r.error().message());
                    });
    });
    return f;
  }

  LoopThread lt_;
  std::vector<std::string> log_;
  ServiceRegistry registry_;
  HoldingService* a_ = nullptr;
  HoldingService* b_ = nullptr;
  std::unique_ptr<net::RpcServer> server_;
  std::unique_ptr<net::RpcClient> client_;
};

TEST_F(ServiceRegistryTest, StopRefusesNewWorkDrainsWorkInFlightThenStopsInReverse) {
  EXPECT_EQ(log_, (std::vector<std::string>{"load a", "load b", "start a", "start b"}));
  EXPECT_EQ(registry_.Find<HoldingService>(), a_);
  auto in_flight = Call("hold.a");
  ASSERT_TRUE(WaitFor([&] { return lt_.Sync([&] { return a_->held.size(); }) == 1; }));
  EXPECT_EQ(a_->gate().in_flight(), 1);

  std::atomic<bool> done{false};
  lt_.Sync([&] { registry_.StopAll(lt_.loop(), 60'000, [&] { done = true; }); });
  // New work is refused at once, naming the service.
  auto refused = Call("hold.b");
  EXPECT_TRUE(Await(refused).ends_with(": b is stopping"));
  // Work in flight keeps the services running (ticks go on) and unstopped.
  const int ticks = a_->ticks.load();
  lt_.Sync([&] { registry_.Tick(0); });
  EXPECT_EQ(a_->ticks.load(), ticks + 1);
  EXPECT_FALSE(done.load());
  EXPECT_EQ(log_.size(), 4u);
  // Answering it lets the stop finish: b stops before a.
  lt_.Sync([&] { a_->held.front().Reply("late"); });
  EXPECT_EQ(Await(in_flight), "ok:late");
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  EXPECT_EQ(
      lt_.Sync([&] { return log_; }),
      (std::vector<std::string>{"load a", "load b", "start a", "start b", "stop b", "stop a"}));
  // Stopped services see no more ticks or views.
  lt_.Sync([&] {
    registry_.Tick(0);
    registry_.OnView(nullptr);
  });
  EXPECT_EQ(a_->ticks.load(), ticks + 1);
  EXPECT_EQ(a_->views, 0);
}

TEST_F(ServiceRegistryTest, TheDrainDeadlineStopsWithWorkStillInFlight) {
  auto in_flight = Call("hold.a");
  ASSERT_TRUE(WaitFor([&] { return lt_.Sync([&] { return a_->held.size(); }) == 1; }));
  std::atomic<bool> done{false};
  lt_.Sync([&] { registry_.StopAll(lt_.loop(), 50, [&] { done = true; }); });
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  EXPECT_EQ(a_->gate().in_flight(), 1);
  lt_.Sync([&] { a_->held.clear(); });  // dropped: the caller gets an error, the unit leaves
  EXPECT_EQ(a_->gate().in_flight(), 0);
  EXPECT_TRUE(Await(in_flight).starts_with("error:"));
}

TEST(ServiceRegistry, AFailedLoadNamesTheServiceAndStopsThere) {
  std::vector<std::string> log;
  ServiceRegistry registry;
  auto* a = registry.Add(std::make_unique<HoldingService>("a", &log));
  registry.Add(std::make_unique<HoldingService>("b", &log));
  a->load_result = Error(std::make_error_code(std::errc::invalid_argument), "corrupt file");
  Status st = registry.LoadAll();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "a: corrupt file");
  EXPECT_EQ(log, (std::vector<std::string>{"load a"}));
}

TEST(Boot, RunsTheStagesInOrderAndStopsAtTheFirstFailure) {
  std::vector<std::string> ran;
  Boot boot;
  auto step = [&ran](std::string name, bool ok) {
    return [&ran, name, ok]() -> Status {
      ran.push_back(name);
      if (ok) return Status::Ok();
      return Error(std::make_error_code(std::errc::address_in_use), "port 7000 is busy");
    };
  };
  boot.Add(BootStage::kServe, "workers", step("workers", true));
  boot.Add(BootStage::kJoin, "cluster", step("cluster", false));
  boot.Add(BootStage::kLoad, "client port", step("client port", true));
  boot.Add(BootStage::kLoad, "cluster state", step("cluster state", true));
  Status st = boot.Run();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "join cluster: port 7000 is busy");
  EXPECT_EQ(ran, (std::vector<std::string>{"client port", "cluster state", "cluster"}));
}

}  // namespace
}  // namespace shoal::node
