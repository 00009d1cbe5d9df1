#include "engine/bucket_plane.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace shoal::engine {
namespace {

// One writer flips a bucket's peer between two ids whose words differ; readers on other threads
// must only ever see one of the two whole ids, never the high word of one and the low of the other.
TEST(BucketPlane, PeerIsNeverTorn) {
  BucketPlane plane;
  const membership::MemberId a{1, 1}, b{2, 2};
  plane.Set(7, sharding::BucketState::kGarbage, a);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> torn{0}, reads{0};
  auto reader = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const membership::MemberId p = plane.peer(7);
      if (!(p == a) && !(p == b)) torn.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread r1(reader), r2(reader);
  // Once both readers run, many flips (bounded in time for a slow sanitizer build).
  while (reads.load() == 0) std::this_thread::yield();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (uint64_t i = 0; i < 20'000'000 && std::chrono::steady_clock::now() < deadline; ++i) {
    plane.Set(7, sharding::BucketState::kGarbage, i & 1 ? b : a);
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(torn.load(), 0u);
}

}  // namespace
}  // namespace shoal::engine
