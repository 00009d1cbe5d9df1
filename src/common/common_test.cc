#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <set>
#include <system_error>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/keyslot.h"
#include "common/result.h"
#include "common/rng.h"
#include "common/transport.h"

namespace shoal {
namespace {

TEST(KeySlot, MatchesRedisClusterReferenceValues) {
  // Reference values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  EXPECT_EQ(KeyBucket("foo").value(), 12182);
  EXPECT_EQ(KeyBucket("bar").value(), 5061);
  EXPECT_EQ(KeyBucket("key:1").value(), KeyBucket("key:1").value());
  EXPECT_EQ(KeyBucket("").value(), 0);
}

TEST(KeySlot, HashTagRules) {
  EXPECT_EQ(KeyBucket("{user1000}.following"), KeyBucket("{user1000}.followers"));
  EXPECT_EQ(KeyBucket("{user1000}.following"), KeyBucket("user1000"));
  EXPECT_EQ(HashTagOf("foo{}{bar}"), "foo{}{bar}");  // empty first tag: whole key
  EXPECT_EQ(HashTagOf("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(HashTagOf("foo{bar}{zap}"), "bar");
  EXPECT_EQ(HashTagOf("no-tag}{"), "no-tag}{");
}

TEST(Rng, SameSeedSameSequenceDifferentSeedDifferent) {
  SeededRng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, UniformStaysInRange) {
  SeededRng r(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = r.Uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(FakeClock, MovesOnlyWhenTold) {
  FakeClock c;
  int64_t t0 = c.NowUnixMillis();
  EXPECT_EQ(c.NowUnixMillis(), t0);
  c.AdvanceMillis(1500);
  EXPECT_EQ(c.NowUnixMillis(), t0 + 1500);
}

TEST(CycleClock, TicksConvertToTheSpanSteadyClockSaw) {
  EXPECT_EQ(CycleClock::ToNanos(0), 0u);
  const auto s0 = std::chrono::steady_clock::now();
  const uint64_t t0 = CycleClock::Now();
  while (std::chrono::steady_clock::now() - s0 < std::chrono::milliseconds(20)) {
  }
  const uint64_t t1 = CycleClock::Now();
  const auto steady =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - s0)
          .count();
  ASSERT_GE(t1, t0);
  // Both clocks measured the same span, so the converted ticks can be at most the steady span
  // (read last) and are far from zero; the bounds are loose (the rate is calibrated over 2 ms).
  const uint64_t nanos = CycleClock::ToNanos(t1 - t0);
  EXPECT_GT(nanos, 10'000'000u);
  EXPECT_LT(nanos, static_cast<uint64_t>(steady) * 2);
}

TEST(Result, HoldsValueOrError) {
  Result<int> ok(5);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  Result<int> bad(Error(std::make_error_code(std::errc::invalid_argument), "nope"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "nope");
  Status s;
  EXPECT_TRUE(s.ok());
}

TEST(StrongId, DistinctTypesCompare) {
  BucketId a(3), b(4);
  EXPECT_LT(a, b);
  EXPECT_EQ(a, BucketId(3));
  static_assert(!std::is_convertible_v<BucketId, ShardId>);
}

TEST(Hash, StableAndSeeded) {
  EXPECT_EQ(Hash64("abc"), Hash64("abc"));
  EXPECT_NE(Hash64("abc"), Hash64("abd"));
  EXPECT_NE(Hash64("abc", 1), Hash64("abc", 2));
}

TEST(Endpoint, ParsesHostPortAndBracketedV6) {
  EXPECT_EQ(Endpoint::Parse("127.0.0.1:17001"), (Endpoint{"127.0.0.1", 17001}));
  EXPECT_EQ(Endpoint::Parse("[::1]:7000"), (Endpoint{"::1", 7000}));
  EXPECT_EQ(Endpoint::Parse("node-2.svc:1"), (Endpoint{"node-2.svc", 1}));
  EXPECT_EQ(Endpoint::Parse("[::1]:7000")->ToString(), "[::1]:7000");
  for (const char* bad : {"", "host", ":1", "h:", "h:0", "h:65536", "h:12x", "h:-1"}) {
    EXPECT_FALSE(Endpoint::Parse(bad).has_value()) << bad;
  }
}

TEST(Crypto, HmacSha256MatchesRfc4231) {
  // RFC 4231 test case 2.
  const Sha256Digest d = HmacSha256("Jefe", "what do ya want for nothing?");
  static const uint8_t kWant[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                    0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                    0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                    0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_EQ(0, std::memcmp(d.data(), kWant, 32));
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "ab"));
  EXPECT_EQ(SecureRandomBytes(16).size(), 16u);
  EXPECT_NE(SecureRandomBytes(16), SecureRandomBytes(16));
}

}  // namespace
}  // namespace shoal
