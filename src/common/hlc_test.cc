#include "common/hlc.h"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(HybridClock, MonotonicAndCausal) {
  HybridClock c;
  HlcTime a = c.Now(100);
  HlcTime b = c.Now(100);
  EXPECT_LT(a, b);
  HlcTime d = c.Now(50);  // physical clock went back
  EXPECT_LT(b, d);
  c.Observe({1000, 7}, 200);
  HlcTime e = c.Now(200);
  EXPECT_EQ(e.wall, 1000u);
  EXPECT_GT(e.logical, 7u);
  // A remote clock far in the future is not adopted.
  c.Observe({1000 + 2 * HybridClock::kMaxAheadMicros, 0}, 300);
  EXPECT_EQ(c.Now(300).wall, 1000u);
}

}  // namespace
}  // namespace shoal
