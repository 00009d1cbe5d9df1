// LwwMap: merge is order-independent and idempotent, deletes do not resurrect, tombstones are
// collected, and range digests find exactly the ranges that differ.
#include "replicated/lww_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace shoal::replicated {
namespace {

Change Put(std::string k, std::string v, uint64_t t, uint64_t node) {
  return Change{std::move(k), std::move(v), Stamp{HlcTime{t, 0}, MemberId(0, node)}};
}
Change Del(std::string k, uint64_t t, uint64_t node) {
  return Change{std::move(k), std::nullopt, Stamp{HlcTime{t, 0}, MemberId(0, node)}};
}

TEST(LwwMap, LastWriterWinsByTimeThenOrigin) {
  LwwMap m;
  EXPECT_TRUE(m.Apply(Put("k", "a", 10, 1)));
  EXPECT_FALSE(m.Apply(Put("k", "old", 9, 9)));
  EXPECT_TRUE(m.Apply(Put("k", "b", 10, 2)));  // same time: the greater origin wins
  EXPECT_FALSE(m.Apply(Put("k", "c", 10, 1)));
  ASSERT_NE(m.Get("k"), nullptr);
  EXPECT_EQ(*m.Get("k"), "b");
}

TEST(LwwMap, DeleteLeavesATombstoneThatOlderWritesCannotBeat) {
  LwwMap m;
  m.Apply(Put("k", "a", 10, 1));
  EXPECT_TRUE(m.Apply(Del("k", 20, 2)));
  EXPECT_EQ(m.Get("k"), nullptr);
  EXPECT_FALSE(m.Apply(Put("k", "late", 15, 3)));
  EXPECT_EQ(m.Get("k"), nullptr);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.tombstones(), 1u);
  // Collected after the horizon; a change older than the horizon is refused.
  EXPECT_EQ(m.CollectTombstones(HlcTime{25, 0}), 1u);
  EXPECT_EQ(m.tombstones(), 0u);
  EXPECT_FALSE(m.Apply(Put("k", "resurrect", 18, 3)));
  EXPECT_TRUE(m.Apply(Put("k", "new", 30, 3)));
}

TEST(LwwMap, AnyOrderAnyRepetitionConverges) {
  std::mt19937_64 rng(42);
  std::vector<Change> changes;
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "k" + std::to_string(rng() % 200);
    const uint64_t t = rng() % 500, node = 1 + rng() % 4;
    changes.push_back(rng() % 4 == 0 ? Del(key, t, node)
                                     : Put(key, "v" + std::to_string(i), t, node));
  }
  LwwMap reference;
  for (const Change& c : changes) reference.Apply(c);
  for (int round = 0; round < 20; ++round) {
    std::vector<Change> shuffled = changes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    shuffled.insert(shuffled.end(), changes.begin(), changes.begin() + 100);  // duplicates
    LwwMap m;
    for (const Change& c : shuffled) m.Apply(c);
    EXPECT_EQ(m.digests(), reference.digests());
    EXPECT_EQ(m.size(), reference.size());
    for (int k = 0; k < 200; ++k) {
      const std::string key = "k" + std::to_string(k);
      const std::string* a = m.Get(key);
      const std::string* b = reference.Get(key);
      ASSERT_EQ(a == nullptr, b == nullptr) << key;
      if (a != nullptr) {
        EXPECT_EQ(*a, *b);
      }
    }
  }
}

TEST(LwwMap, DigestsFindOnlyTheRangesThatDiffer) {
  LwwMap a, b;
  for (int i = 0; i < 10'000; ++i) {
    const Change c = Put("key" + std::to_string(i), "v", 100 + i, 1);
    a.Apply(c);
    b.Apply(c);
  }
  EXPECT_TRUE(a.DiffRanges(b.digests()).empty());
  // b misses 3 writes: only their ranges differ, and shipping those ranges repairs b.
  std::vector<std::string> missed = {"key7", "key4242", "new"};
  for (const std::string& k : missed) a.Apply(Put(k, "w", 50'000, 2));
  std::vector<size_t> diff = a.DiffRanges(b.digests());
  EXPECT_LE(diff.size(), 3u);
  EXPECT_GE(diff.size(), 1u);
  for (size_t r : diff) {
    for (const Change& c : a.RangeChanges(r)) b.Apply(c);
  }
  EXPECT_TRUE(a.DiffRanges(b.digests()).empty());
  EXPECT_EQ(*b.Get("new"), "w");
}

}  // namespace
}  // namespace shoal::replicated
