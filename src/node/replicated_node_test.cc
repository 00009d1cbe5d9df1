// The replicated maps' embedded API on two real nodes in one process: a map declared
// with the API on both, Put/Get/Erase/Range/Scan on the handle, change notifications for local
// and remote changes, and a map declared at run time. Propagation is polled with deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "node/cluster.h"
#include "node/server.h"

namespace shoal::node {

using engine::kMaxReplicatedValue;
using engine::MapChange;
using engine::ReplicatedMap;
namespace {

template <typename F>
bool Eventually(F&& pred, int timeout_ms = 10'000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

std::unique_ptr<Server> StartNode(const std::string& seed) {
  config::ServerConfig cfg;
  EXPECT_TRUE(cfg.Set("port", "0").ok());
  EXPECT_TRUE(cfg.Set("threads", "1").ok());
  EXPECT_TRUE(cfg.Set("http-port", "-1").ok());
  EXPECT_TRUE(cfg.Set("cookie", "embedded-test").ok());
  EXPECT_TRUE(cfg.Set("replicated-sync-interval", "100").ok());
  if (!seed.empty()) {
    EXPECT_TRUE(cfg.Set("seeds", seed).ok());
  }
  auto s = std::make_unique<Server>(cfg);
  Status st = s->Start();
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message());
  return s;
}

TEST(ReplicatedEmbedded, PutGetEraseRangeAndNotifications) {
  auto a = StartNode("");
  auto b = StartNode(a->cluster()->address().ToString());
  auto ma = a->engine().replicated().Declare("routes", "route:");
  auto mb = b->engine().replicated().Declare("routes", "route:");
  ASSERT_TRUE(ma.ok());
  ASSERT_TRUE(mb.ok());
  ReplicatedMap* ra = *ma;
  ReplicatedMap* rb = *mb;
  // Declaring again with the same prefix returns the same map; a clashing one is refused.
  EXPECT_EQ(*a->engine().replicated().Declare("routes", "route:"), ra);
  EXPECT_FALSE(a->engine().replicated().Declare("other", "route:x").ok());

  std::mutex mu;
  std::vector<MapChange> seen_b, seen_a;
  rb->Watch([&](const MapChange& c) {
    std::lock_guard lock(mu);
    seen_b.push_back(c);
  });
  ra->Watch([&](const MapChange& c) {
    std::lock_guard lock(mu);
    seen_a.push_back(c);
  });
  ASSERT_TRUE(Eventually([&] { return b->cluster()->members()->members().size() == 2; }));

  ASSERT_TRUE(ra->Put("route:/api", "10.0.0.1:80").ok());
  EXPECT_FALSE(ra->Put("route:/big", std::string(kMaxReplicatedValue + 1, 'x')).ok());
  ASSERT_TRUE(ra->Put("route:/web", "10.0.0.2:80").ok());
  EXPECT_EQ(ra->Get("route:/api"), "10.0.0.1:80");  // read-your-writes, at once
  ASSERT_TRUE(Eventually([&] { return rb->Get("route:/web") == "10.0.0.2:80"; }));
  EXPECT_EQ(rb->Get("route:/api"), "10.0.0.1:80");

  ASSERT_TRUE(rb->Put("route:/img", "10.0.0.3:80").ok());
  ASSERT_TRUE(Eventually([&] { return ra->Get("route:/img").has_value(); }));
  auto range = ra->Range("route:/a", "route:/j");
  ASSERT_EQ(range.size(), 2u);
  EXPECT_EQ(range[0].first, "route:/api");
  EXPECT_EQ(range[1].first, "route:/img");
  std::vector<std::string> keys;
  uint64_t cursor = 0;
  do {
    cursor = rb->Scan(cursor, 100, "route:/*", "", &keys);
  } while (cursor != 0);
  EXPECT_EQ(keys.size(), 3u);

  EXPECT_TRUE(rb->Erase("route:/api"));
  EXPECT_FALSE(rb->Erase("route:/nope"));
  ASSERT_TRUE(Eventually([&] { return !ra->Get("route:/api").has_value(); }));
  ASSERT_TRUE(ra->Put("route:/tmp", "x", /*ttl_ms=*/50).ok());
  ASSERT_TRUE(Eventually([&] { return rb->Get("route:/tmp") == "x" || !ra->Get("route:/tmp"); }));
  ASSERT_TRUE(Eventually([&] { return !rb->Get("route:/tmp").has_value(); }));

  {
    std::lock_guard lock(mu);
    // b saw its own writes as local and a's as remote, from a's id.
    bool local_img = false, remote_web = false, remote_delete = false;
    for (const MapChange& c : seen_b) {
      if (c.key == "route:/img" && c.local) local_img = true;
      if (c.key == "route:/web" && !c.local && c.value == "10.0.0.2:80" &&
          c.origin == a->cluster()->id()) {
        remote_web = true;
      }
    }
    for (const MapChange& c : seen_a) {
      if (c.key == "route:/api" && c.deleted && !c.local) remote_delete = true;
    }
    EXPECT_TRUE(local_img);
    EXPECT_TRUE(remote_web);
    EXPECT_TRUE(remote_delete);
  }

  // A map declared at run time on both nodes, after they joined: synced and broadcast too.
  ReplicatedMap* la = *a->engine().replicated().Declare("late", "late:");
  ASSERT_TRUE(la->Put("late:1", "one").ok());
  ReplicatedMap* lb = *b->engine().replicated().Declare("late", "late:");
  ASSERT_TRUE(Eventually([&] { return lb->Get("late:1") == "one"; }));
  ASSERT_TRUE(lb->Put("late:2", "two").ok());
  ASSERT_TRUE(Eventually([&] { return la->Get("late:2") == "two"; }));

  b->LeaveCluster(500);
  b->Stop();
  a->Stop();
}

}  // namespace
}  // namespace shoal::node
