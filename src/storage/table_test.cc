#include "storage/table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/keyslot.h"

namespace shoal::storage {
namespace {

class TableTest : public ::testing::Test {
 protected:
  Entry* Get(std::string_view k) { return t.Find(KeyBucket(k), k); }
  void Set(std::string_view k, std::string_view v, int64_t exp = kNoExpire) {
    t.Put(KeyBucket(k), Entry::NewString(k, v, exp));
  }
  FakeClock clock;
  Table t{&clock, 1};
};

TEST_F(TableTest, PutFindOverwriteErase) {
  EXPECT_EQ(Get("a"), nullptr);
  Set("a", "1");
  ASSERT_NE(Get("a"), nullptr);
  EXPECT_EQ(Get("a")->str(), "1");
  Set("a", "longer value");
  EXPECT_EQ(Get("a")->str(), "longer value");
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.Erase(KeyBucket("a"), "a"));
  EXPECT_FALSE(t.Erase(KeyBucket("a"), "a"));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_LT(t.used_bytes(), 64);  // only the emptied bucket's slots remain
}

TEST_F(TableTest, BinarySafeKeysAndValues) {
  std::string k("a\0b\r\n", 5), v("\0\0\xff", 3);
  Set(k, v);
  ASSERT_NE(Get(k), nullptr);
  EXPECT_EQ(Get(k)->str(), v);
  EXPECT_EQ(Get(std::string("a\0c\r\n", 5)), nullptr);
}

TEST_F(TableTest, LazyExpiry) {
  const int64_t now = clock.NowUnixMillis();
  Set("k", "v", now + 1000);
  EXPECT_NE(Get("k"), nullptr);
  EXPECT_EQ(t.stats().volatile_keys, 1u);
  clock.AdvanceMillis(999);
  EXPECT_NE(Get("k"), nullptr);
  clock.AdvanceMillis(1);
  EXPECT_EQ(Get("k"), nullptr);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().expired_keys, 1u);
  EXPECT_EQ(t.stats().volatile_keys, 0u);
}

TEST_F(TableTest, ActiveExpiryRemovesUntouchedKeys) {
  const int64_t now = clock.NowUnixMillis();
  for (int i = 0; i < 1000; ++i) Set("v" + std::to_string(i), "x", now + 100);
  for (int i = 0; i < 1000; ++i) Set("p" + std::to_string(i), "x");
  clock.AdvanceMillis(200);
  size_t removed = 0;
  for (int round = 0; round < 100 && t.size() > 1000; ++round) removed += t.ActiveExpireCycle(200);
  EXPECT_EQ(removed, 1000u);
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.stats().volatile_keys, 0u);
}

TEST_F(TableTest, SetExpireAddsChangesAndRemovesTtl) {
  Set("k", "value");
  BucketId b = KeyBucket("k");
  const int64_t now = clock.NowUnixMillis();
  Entry* e = t.SetExpire(b, Get("k"), now + 5000);
  EXPECT_EQ(e->expire_ms(), now + 5000);
  EXPECT_EQ(e->str(), "value");
  EXPECT_EQ(Get("k"), e);
  e = t.SetExpire(b, e, now + 6000);
  EXPECT_EQ(Get("k")->expire_ms(), now + 6000);
  e = t.SetExpire(b, Get("k"), kNoExpire);
  EXPECT_FALSE(Get("k")->has_expire());
  EXPECT_EQ(t.stats().volatile_keys, 0u);
}

TEST_F(TableTest, HashesKeepTheirFieldsAcrossExpireChanges) {
  auto* h = new HashObj();
  h->Set("f", "v");
  t.Put(KeyBucket("h"), Entry::NewHash("h", h, kNoExpire));
  Entry* e = t.SetExpire(KeyBucket("h"), Get("h"), clock.NowUnixMillis() + 10);
  ASSERT_EQ(e->type(), ObjType::kHash);
  EXPECT_EQ(*e->hash()->Get("f"), "v");
  clock.AdvanceMillis(10);
  EXPECT_EQ(Get("h"), nullptr);  // frees the HashObj too (ASan checks)
}

TEST_F(TableTest, BucketsListTheirKeys) {
  Set("{tag}a", "1");
  Set("{tag}b", "2");
  Set("other", "3");
  std::set<std::string> keys;
  t.ForEachInBucket(KeyBucket("tag"), [&](Entry* e) { keys.emplace(e->key()); });
  EXPECT_EQ(keys, (std::set<std::string>{"{tag}a", "{tag}b"}));
  EXPECT_EQ(t.BucketSize(KeyBucket("tag")), 2u);
}

TEST_F(TableTest, MemoryAccountingReturnsToZero) {
  for (int i = 0; i < 10000; ++i) Set("key:" + std::to_string(i), std::string(32, 'x'));
  EXPECT_GT(t.used_bytes(), 10000 * 48);
  EXPECT_EQ(t.Clear(), 10000u);
  EXPECT_EQ(t.used_bytes(), 0);
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(TableTest, AllKeysLruEvictsColdKeysFirst) {
  // 1000 cold keys touched at t=0, 1000 hot keys touched at t=100.
  for (int i = 0; i < 1000; ++i) Set("cold" + std::to_string(i), "x");
  t.set_lru_clock(100);
  for (int i = 0; i < 1000; ++i) Set("hot" + std::to_string(i), "x");
  int cold_evicted = 0;
  for (int i = 0; i < 500; ++i) {
    size_t before_cold = 0;
    for (int j = 0; j < 1000; ++j)
      before_cold +=
          t.Peek(KeyBucket("cold" + std::to_string(j)), "cold" + std::to_string(j)) != nullptr;
    ASSERT_TRUE(t.EvictOne(EvictionPolicy::kAllKeysLru, 5));
    size_t after_cold = 0;
    for (int j = 0; j < 1000; ++j)
      after_cold +=
          t.Peek(KeyBucket("cold" + std::to_string(j)), "cold" + std::to_string(j)) != nullptr;
    cold_evicted += static_cast<int>(before_cold - after_cold);
    if (i == 50) break;  // keep the test fast: the first 51 evictions are enough evidence
  }
  EXPECT_GE(cold_evicted, 45);  // with 5 samples, P(all hot) = 1/32 per eviction
  EXPECT_EQ(t.stats().evicted_keys, 51u);
}

TEST_F(TableTest, VolatileLruOnlyEvictsKeysWithTtl) {
  for (int i = 0; i < 100; ++i) Set("p" + std::to_string(i), "x");
  for (int i = 0; i < 10; ++i) Set("v" + std::to_string(i), "x", clock.NowUnixMillis() + 100000);
  int n = 0;
  while (t.EvictOne(EvictionPolicy::kVolatileLru, 5)) ++n;
  EXPECT_EQ(n, 10);
  EXPECT_EQ(t.size(), 100u);
  EXPECT_FALSE(t.EvictOne(EvictionPolicy::kNoEviction, 5));
  EXPECT_TRUE(t.EvictOne(EvictionPolicy::kAllKeysRandom, 5));
  EXPECT_EQ(t.size(), 99u);
}

TEST_F(TableTest, RandomEntryAndDetach) {
  EXPECT_EQ(t.RandomEntry(), nullptr);
  Set("only", "1");
  ASSERT_NE(t.RandomEntry(), nullptr);
  EXPECT_EQ(t.RandomEntry()->key(), "only");
  Entry* e = t.Detach(KeyBucket("only"), "only");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_LT(t.used_bytes(), 64);
  Entry::Free(e);
}

}  // namespace
}  // namespace shoal::storage
