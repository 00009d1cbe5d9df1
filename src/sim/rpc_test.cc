// Tests of the simulated RPC streams (sim/rpc.h): order, errors, partitions that break a stream as
// a whole, resets by a crashed callee, callers that crash, refusals and limits.
#include "sim/rpc.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "sim/network.h"
#include "sim/simulator.h"

namespace shoal::sim {
namespace {

const Endpoint kA{"10.0.0.1", 7000};
const Endpoint kB{"10.0.0.2", 7000};

class RpcNetTest : public ::testing::Test {
 protected:
  RpcNetTest() : sim_(7), net_(sim_) {
    for (const Endpoint& e : {kA, kB}) net_.AddNode(e, [](const Endpoint&, std::string) {});
    LinkConfig link;
    link.delay = DelayDistribution::Uniform(100, 5 * kMillisecond);  // plenty of variation
    link.loss = 0.5;  // datagram loss: streams retransmit, so it must not apply
    net_.SetDefaultLink(link);
    rpc_ = std::make_unique<RpcNet>(net_);
    ServeEcho();
  }
  void ServeEcho() {
    rpc_->Serve(kB, "echo", [this](const Endpoint& from, std::string_view body, RpcNet::Respond r) {
      EXPECT_EQ(from, kA);
      served_.emplace_back(body);
      r(std::string(body));
    });
  }
  // Calls A -> B; the result lands in results_[i].
  size_t CallEcho(std::string body, int64_t timeout = kSecond, std::string method = "echo") {
    const size_t i = results_.size();
    results_.emplace_back();
    rpc_->channel(kA).Call(kB, method, std::move(body), timeout,
                           [this, i](Result<std::string> r) { results_[i] = std::move(r); });
    return i;
  }
  std::string ErrorOf(size_t i) {
    EXPECT_TRUE(results_[i].has_value());
    if (!results_[i] || results_[i]->ok()) return "";
    return results_[i]->error().message();
  }

  Simulator sim_;
  Network net_;
  std::unique_ptr<RpcNet> rpc_;
  std::vector<std::string> served_;
  std::vector<std::optional<Result<std::string>>> results_;
};

TEST_F(RpcNetTest, RequestsAndRepliesKeepTheirOrderAndNoneIsLost) {
  std::vector<std::string> replies;
  for (int i = 0; i < 50; ++i) {
    rpc_->channel(kA).Call(kB, "echo", std::to_string(i), kSecond,
                           [&replies](Result<std::string> r) {
                             ASSERT_TRUE(r.ok());
                             replies.push_back(*r);
                           });
    sim_.RunFor(50);  // sent 50 us apart, delays vary by ms: datagrams would reorder
  }
  EXPECT_TRUE(replies.size() < 50);  // never inside Call, and not all at once
  sim_.RunFor(kSecond);
  ASSERT_EQ(replies.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(replies[i], std::to_string(i));
    EXPECT_EQ(served_[i], std::to_string(i));
  }
  EXPECT_EQ(rpc_->open_calls(), 0u);
  EXPECT_EQ(rpc_->counters().replies, 50u);
}

TEST_F(RpcNetTest, HandlerErrorsAndUnknownMethodsReachTheCaller) {
  rpc_->Serve(kB, "fail", [](const Endpoint&, std::string_view, RpcNet::Respond r) {
    r(Error(std::make_error_code(std::errc::invalid_argument), "no such map"));
  });
  const size_t a = CallEcho("x", kSecond, "fail");
  const size_t b = CallEcho("x", kSecond, "nope");
  sim_.RunFor(kSecond);
  EXPECT_EQ(ErrorOf(a), "no such map");
  EXPECT_NE(ErrorOf(b).find("unknown method 'nope'"), std::string::npos);
}

TEST_F(RpcNetTest, APartitionBreaksTheStreamAsAWhole) {
  const size_t first = CallEcho("1");
  sim_.RunFor(10);
  const size_t second = CallEcho("2");
  net_.Block(kA, kB);  // the first request is lost in flight...
  sim_.RunFor(5 * kMillisecond + 10);
  net_.Unblock(kA, kB);  // ...and the second, still on the wire, must not arrive after it
  sim_.RunFor(2 * kSecond);
  EXPECT_TRUE(served_.empty());
  EXPECT_NE(ErrorOf(first).find("timed out"), std::string::npos);
  EXPECT_NE(ErrorOf(second).find("timed out"), std::string::npos);
  // The next call opens a new stream.
  const size_t third = CallEcho("3");
  sim_.RunFor(kSecond);
  ASSERT_TRUE(results_[third].has_value());
  EXPECT_EQ(results_[third]->value(), "3");
}

TEST_F(RpcNetTest, ALostStreamFailsCallsWithoutATimeout) {
  const size_t a = CallEcho("1", /*timeout=*/0);
  net_.Block(kA, kB);
  sim_.RunFor(kSecond);
  EXPECT_NE(ErrorOf(a).find("lost"), std::string::npos);
}

TEST_F(RpcNetTest, ACrashResetsTheCallsWaitingOnIt) {
  rpc_->Serve(kB, "slow", [](const Endpoint&, std::string_view, RpcNet::Respond) {
    // Never answers: the caller waits until the node crashes.
  });
  const size_t a = CallEcho("1", 10 * kSecond, "slow");
  sim_.RunFor(kSecond);
  EXPECT_FALSE(results_[a].has_value());
  net_.Crash(kB);
  sim_.RunFor(10 * kMillisecond);  // one link delay, not the 10 s timeout
  EXPECT_NE(ErrorOf(a).find("reset"), std::string::npos);
  net_.Restart(kB);                // a new incarnation with no methods yet
  const size_t b = CallEcho("2");  // a new stream
  sim_.RunFor(kSecond);
  EXPECT_NE(ErrorOf(b).find("unknown method"), std::string::npos);
  ServeEcho();
  const size_t c = CallEcho("3");
  sim_.RunFor(kSecond);
  EXPECT_EQ(results_[c]->value(), "3");
}

TEST_F(RpcNetTest, AResetLostInAPartitionLeavesTheCallsToTheirTimeout) {
  rpc_->Serve(kB, "slow", [](const Endpoint&, std::string_view, RpcNet::Respond) {});
  const size_t a = CallEcho("1", 2 * kSecond, "slow");
  sim_.RunFor(kSecond);
  net_.Block(kB, kA);
  net_.Crash(kB);
  sim_.RunFor(500 * kMillisecond);
  EXPECT_FALSE(results_[a].has_value());
  sim_.RunFor(kSecond);
  EXPECT_NE(ErrorOf(a).find("timed out"), std::string::npos);
}

TEST_F(RpcNetTest, ADownCalleeRefusesAndACrashedCallerHearsNothing) {
  net_.Crash(kB);
  const size_t a = CallEcho("1");
  sim_.RunFor(kSecond);
  EXPECT_NE(ErrorOf(a).find("refused"), std::string::npos);
  net_.Restart(kB);
  ServeEcho();
  const size_t b = CallEcho("2");
  net_.Crash(kA);
  sim_.RunFor(2 * kSecond);
  EXPECT_EQ(served_.size(), 1u);  // it was on the wire
  EXPECT_FALSE(results_[b].has_value());
}

TEST_F(RpcNetTest, OversizedRequestsFailAtOnce) {
  rpc_ = std::make_unique<RpcNet>(net_, RpcNetOptions{.max_request_bytes = 4});
  ServeEcho();
  const size_t a = CallEcho("12345");
  EXPECT_FALSE(results_[a].has_value());  // never inside Call
  sim_.RunFor(1);
  EXPECT_NE(ErrorOf(a).find("too large"), std::string::npos);
  EXPECT_TRUE(served_.empty());
}

}  // namespace
}  // namespace shoal::sim
