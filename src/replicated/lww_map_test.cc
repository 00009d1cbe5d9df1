// LwwMap: last writer wins by (time, origin); deletes leave tombstones that older writes cannot
// beat; merge is idempotent and order-independent; expiry reads as absent and ExpireSome turns it
// into a tombstone without changing the digests; tombstone collection and the horizon; the digest
// tree is consistent at every level; Scan sees every live key and ends; wire_bytes is the sum of
// its entries.
#include "replicated/lww_map.h"
#include "replicated/test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace shoal::replicated {
namespace {

using namespace ::shoal::replicated::testing;  // NOLINT

std::vector<uint64_t> TopDigests(const LwwMap& m) {
  std::vector<uint64_t> d;
  for (uint32_t i = 0; i < (1u << kTopBits); ++i) d.push_back(m.Digest(kTopBits, i));
  return d;
}

uint64_t SumWireBytes(const LwwMap& m) {
  uint64_t sum = 0;
  m.ForEach([&sum](const std::string& k, const LwwMap::Entry& e) {
    sum += LwwMap::WireBytes(k.size(), e.value.size());
    return true;
  });
  return sum;
}

// Random changes over `keys` keys: puts (some with an expiry), deletes, colliding times and
// origins.
std::vector<Change> RandomChanges(std::mt19937_64& rng, int n, int keys) {
  std::vector<Change> out;
  for (int i = 0; i < n; ++i) {
    const std::string key = "k" + std::to_string(rng() % keys);
    const uint64_t t = 1000 + rng() % 500, node = 1 + rng() % 4;
    Change c = rng() % 4 == 0 ? Del(key, t, node)
                              : Put(key, "v" + std::to_string(i) + std::string(rng() % 20, 'x'), t,
                                    node, rng() % 5 == 0 ? int64_t(5000 + rng() % 100) : -1);
    c.stamp.time.logical = static_cast<uint32_t>(rng() % 3);
    out.push_back(std::move(c));
  }
  return out;
}

TEST(LwwMap, LastWriterWinsByTimeThenOrigin) {
  LwwMap m;
  EXPECT_TRUE(m.Apply(Put("k", "a", 10, 1)));
  EXPECT_FALSE(m.Apply(Put("k", "old", 9, 9)));  // older time, greater origin: loses
  EXPECT_TRUE(m.Apply(Put("k", "b", 10, 2)));    // same time: the greater origin wins
  EXPECT_FALSE(m.Apply(Put("k", "c", 10, 1)));
  EXPECT_FALSE(m.Apply(Put("k", "same stamp", 10, 2)));  // a stamp names one write
  ASSERT_NE(m.Get("k", 0), nullptr);
  EXPECT_EQ(m.Get("k", 0)->value, "b");
  EXPECT_EQ(m.Get("k", 0)->stamp, At(10, 2));
  // The logical counter orders writes within one wall time, before the origin.
  Change later = Put("k", "logical", 10, 1);
  later.stamp.time.logical = 1;
  EXPECT_TRUE(m.Apply(later));
  EXPECT_EQ(m.Get("k", 0)->value, "logical");
  EXPECT_TRUE(m.Apply(Put("k", "newest", 11, 0)));
  EXPECT_EQ(m.Get("k", 0)->value, "newest");
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.entries(), 1u);
  EXPECT_EQ(m.Get("other", 0), nullptr);
  EXPECT_EQ(m.Find("other"), nullptr);
}

TEST(LwwMap, DeleteLeavesATombstoneThatOlderWritesCannotBeat) {
  LwwMap m;
  EXPECT_TRUE(m.Apply(Put("k", "a", 10, 1)));
  EXPECT_TRUE(m.Apply(Del("k", 20, 2)));
  EXPECT_EQ(m.Get("k", 0), nullptr);
  const LwwMap::Entry* t = m.Find("k");
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->live);
  EXPECT_EQ(t->stamp, At(20, 2));
  EXPECT_TRUE(t->value.empty());
  EXPECT_FALSE(m.Apply(Put("k", "late", 15, 3)));
  EXPECT_FALSE(m.Apply(Put("k", "tie", 20, 1)));
  EXPECT_EQ(m.Get("k", 0), nullptr);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.tombstones(), 1u);
  EXPECT_EQ(m.entries(), 1u);
  // A delete of an unknown key is remembered too (it beats the write when it comes late).
  EXPECT_TRUE(m.Apply(Del("never", 30, 1)));
  EXPECT_FALSE(m.Apply(Put("never", "late", 29, 4)));
  EXPECT_EQ(m.tombstones(), 2u);
  // A newer write beats the tombstone.
  EXPECT_TRUE(m.Apply(Put("k", "again", 21, 1)));
  EXPECT_EQ(m.Get("k", 0)->value, "again");
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.tombstones(), 1u);
  // ToChange of a tombstone is a delete with the same stamp.
  const Change c = LwwMap::ToChange("never", *m.Find("never"));
  EXPECT_FALSE(c.value.has_value());
  EXPECT_EQ(c.stamp, At(30, 1));
  EXPECT_EQ(c.expire_ms, kNoExpire);
}

TEST(LwwMap, AnyOrderAnyRepetitionConverges) {
  std::mt19937_64 rng(42);
  const std::vector<Change> changes = RandomChanges(rng, 3000, 300);
  LwwMap reference;
  for (const Change& c : changes) reference.Apply(c);
  const Contents want = ContentsOf(reference);
  ASSERT_GT(reference.size(), 100u);
  ASSERT_GT(reference.tombstones(), 10u);
  for (int round = 0; round < 20; ++round) {
    std::vector<Change> shuffled = changes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    // Duplicates, some right after their original, some much later.
    for (int d = 0; d < 300; ++d) shuffled.push_back(changes[rng() % changes.size()]);
    std::shuffle(shuffled.begin() + static_cast<ptrdiff_t>(shuffled.size() / 2), shuffled.end(),
                 rng);
    LwwMap m;
    for (const Change& c : shuffled) m.Apply(c);
    for (const Change& c : changes) EXPECT_FALSE(m.Apply(c));  // applying again changes nothing
    ASSERT_EQ(m.Digest(0, 0), reference.Digest(0, 0)) << "round " << round;
    EXPECT_EQ(TopDigests(m), TopDigests(reference));
    EXPECT_EQ(m.size(), reference.size());
    EXPECT_EQ(m.tombstones(), reference.tombstones());
    EXPECT_EQ(m.wire_bytes(), reference.wire_bytes());
    EXPECT_EQ(ContentsOf(m), want);
  }
  // The winner of each key is the change with the greatest stamp.
  std::map<std::string, Change> best;
  for (const Change& c : changes) {
    auto [it, fresh] = best.emplace(c.key, c);
    if (!fresh && it->second.stamp < c.stamp) it->second = c;
  }
  ASSERT_EQ(best.size(), reference.entries());
  for (const auto& [k, c] : best) {
    const LwwMap::Entry* e = reference.Find(k);
    ASSERT_NE(e, nullptr) << k;
    EXPECT_EQ(LwwMap::ToChange(k, *e), c) << k;
  }
}

TEST(LwwMap, ToChangeReproducesTheMap) {
  std::mt19937_64 rng(7);
  LwwMap a;
  for (const Change& c : RandomChanges(rng, 2000, 500)) a.Apply(c);
  LwwMap b;
  a.ForEach([&b](const std::string& k, const LwwMap::Entry& e) {
    EXPECT_TRUE(b.Apply(LwwMap::ToChange(k, e)));
    return true;
  });
  EXPECT_EQ(b.Digest(0, 0), a.Digest(0, 0));
  EXPECT_EQ(ContentsOf(b), ContentsOf(a));
  EXPECT_EQ(b.wire_bytes(), a.wire_bytes());
}

TEST(LwwMap, ExpiredValuesReadAsAbsent) {
  LwwMap m;
  EXPECT_TRUE(m.Apply(Put("session", "s", 10, 1, /*expire_ms=*/5000)));
  EXPECT_TRUE(m.Apply(Put("forever", "f", 10, 1)));
  ASSERT_NE(m.Get("session", 4999), nullptr);
  EXPECT_EQ(m.Get("session", 4999)->expire_ms, 5000);
  EXPECT_EQ(m.Get("session", 5000), nullptr);  // expiry is inclusive
  EXPECT_EQ(m.Get("session", 1'000'000), nullptr);
  EXPECT_NE(m.Get("forever", INT64_MAX), nullptr);
  // Until ExpireSome it is still an entry (Find sees it, it counts as live).
  ASSERT_NE(m.Find("session"), nullptr);
  EXPECT_TRUE(m.Find("session")->live);
  EXPECT_EQ(m.size(), 2u);
  // A newer write without expiry replaces it.
  EXPECT_TRUE(m.Apply(Put("session", "t", 11, 1)));
  ASSERT_NE(m.Get("session", 1'000'000), nullptr);
  EXPECT_EQ(m.Get("session", 1'000'000)->expire_ms, kNoExpire);
  // A delete drops the expiry with the value.
  EXPECT_TRUE(m.Apply(Put("x", "v", 12, 1, 9000)));
  EXPECT_TRUE(m.Apply(Del("x", 13, 1)));
  EXPECT_EQ(m.Find("x")->expire_ms, kNoExpire);
}

TEST(LwwMap, ExpireSomeMakesTombstonesWithTheSameStampAndDigest) {
  std::mt19937_64 rng(3);
  LwwMap m;
  std::set<std::string> expiring;
  for (int i = 0; i < 5000; ++i) {
    const std::string k = "key" + std::to_string(i);
    const int64_t exp = i % 3 == 0 ? 1000 + static_cast<int64_t>(rng() % 1000) : kNoExpire;
    m.Apply(Put(k, "value" + std::to_string(i), 100 + i, 1 + i % 3, exp));
    if (exp != kNoExpire && exp <= 1500) expiring.insert(k);
  }
  const uint64_t digest = m.Digest(0, 0);
  const std::vector<uint64_t> top = TopDigests(m);
  const Contents before = ContentsOf(m);
  const size_t live = m.size();

  std::set<std::string> seen;
  size_t expired = 0;
  // A small budget: the cursor rotates, so kGroups/budget calls cover every group once.
  for (uint32_t call = 0; call < kGroups / 64; ++call) {
    expired += m.ExpireSome(1500, 64, [&seen](std::string_view k) {
      EXPECT_TRUE(seen.emplace(k).second) << "expired twice: " << k;
    });
  }
  EXPECT_EQ(expired, expiring.size());
  EXPECT_EQ(seen, expiring);
  EXPECT_EQ(m.ExpireSome(1500, kGroups), 0u);  // nothing more to do at that time
  EXPECT_EQ(m.size(), live - expired);
  EXPECT_EQ(m.tombstones(), expired);
  // Not a new write: every stamp and digest is unchanged.
  EXPECT_EQ(m.Digest(0, 0), digest);
  EXPECT_EQ(TopDigests(m), top);
  const Contents after = ContentsOf(m);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [k, v] : after) {
    const auto& [value, stamp, exp, is_live] = v;
    EXPECT_EQ(stamp, std::get<1>(before.at(k))) << k;
    if (expiring.contains(k)) {
      EXPECT_FALSE(is_live) << k;
      EXPECT_TRUE(value.empty()) << k;
      EXPECT_EQ(exp, kNoExpire) << k;
    } else {
      EXPECT_EQ(v, before.at(k)) << k;
    }
  }
  EXPECT_EQ(m.wire_bytes(), SumWireBytes(m));
  // The original write arriving again is not a resurrection (same stamp); a newer one wins.
  const std::string k = *expiring.begin();
  const auto& [value, stamp, exp, is_live] = before.at(k);
  EXPECT_FALSE(m.Apply(Change{k, value, stamp, exp}));
  EXPECT_EQ(m.Get(k, 0), nullptr);
  Stamp newer = stamp;
  newer.time.logical++;
  EXPECT_TRUE(m.Apply(Change{k, "back", newer, kNoExpire}));
  EXPECT_EQ(m.Get(k, 0)->value, "back");
  // Everything with an expiry is gone at the end of time: the 1667 keys i % 3 == 0, but for
  // the one written again without expiry.
  m.ExpireSome(INT64_MAX, kGroups);
  EXPECT_EQ(m.size(), 5000u - 1667u + 1u);
}

TEST(LwwMap, CollectTombstonesAndTheHorizon) {
  LwwMap m;
  m.Apply(Put("live-old", "v", 5, 1));
  m.Apply(Put("dead-old", "v", 5, 1));
  m.Apply(Del("dead-old", 8, 1));
  m.Apply(Del("dead-new", 30, 1));
  m.Apply(Put("expired", "v", 9, 1, 100));
  m.ExpireSome(100, kGroups);  // a tombstone stamped 9
  ASSERT_EQ(m.tombstones(), 3u);

  LwwMap without;  // the map as it should be after collecting before 25
  without.Apply(Put("live-old", "v", 5, 1));
  without.Apply(Del("dead-new", 30, 1));

  EXPECT_EQ(m.CollectTombstones(HlcTime{25, 0}), 2u);
  EXPECT_EQ(m.horizon(), (HlcTime{25, 0}));
  EXPECT_EQ(m.tombstones(), 1u);
  EXPECT_EQ(m.size(), 1u);  // live entries are never collected, however old
  EXPECT_NE(m.Get("live-old", 0), nullptr);
  EXPECT_EQ(m.Find("dead-old"), nullptr);
  EXPECT_EQ(m.Find("expired"), nullptr);
  EXPECT_EQ(m.Digest(0, 0), without.Digest(0, 0));
  EXPECT_EQ(ContentsOf(m), ContentsOf(without));
  EXPECT_EQ(m.wire_bytes(), without.wire_bytes());

  // Changes stamped before the horizon are refused: the collected delete is not undone.
  EXPECT_FALSE(m.Apply(Put("dead-old", "resurrect", 6, 9)));
  EXPECT_FALSE(m.Apply(Put("dead-old", "still-old", 24, 9)));
  EXPECT_FALSE(m.Apply(Del("live-old", 24, 9)));  // deletes too
  EXPECT_FALSE(m.Apply(Put("brand-new-key", "old", 3, 1)));
  EXPECT_EQ(m.Find("dead-old"), nullptr);
  EXPECT_NE(m.Get("live-old", 0), nullptr);
  // At or after the horizon, changes apply.
  EXPECT_TRUE(m.Apply(Put("dead-old", "at", 25, 1)));
  EXPECT_TRUE(m.Apply(Put("dead-old", "after", 26, 1)));
  EXPECT_EQ(m.Get("dead-old", 0)->value, "after");

  // The horizon never moves back.
  EXPECT_EQ(m.CollectTombstones(HlcTime{10, 0}), 0u);
  EXPECT_EQ(m.horizon(), (HlcTime{25, 0}));
  EXPECT_FALSE(m.Apply(Put("k", "v", 20, 1)));
  // A later collection takes the rest.
  EXPECT_EQ(m.CollectTombstones(HlcTime{31, 0}), 1u);
  EXPECT_EQ(m.tombstones(), 0u);
  EXPECT_EQ(m.wire_bytes(), SumWireBytes(m));
}

TEST(LwwMap, DigestTreeIsConsistentAtEveryLevel) {
  LwwMap empty;
  EXPECT_EQ(empty.Digest(0, 0), 0u);
  EXPECT_EQ(empty.Digest(kLeafBits, 12345), 0u);

  std::mt19937_64 rng(11);
  LwwMap m;
  for (const Change& c : RandomChanges(rng, 40'000, 20'000)) m.Apply(c);
  // Leaves: the XOR of their entries' hashes.
  std::vector<uint64_t> leaves(kLeaves);
  size_t counted = 0;
  for (uint32_t leaf = 0; leaf < kLeaves; ++leaf) {
    uint64_t d = 0;
    m.ForEachInLeaf(leaf, [&](const std::string& k, const LwwMap::Entry& e) {
      EXPECT_EQ(LwwMap::LeafOf(k), leaf);
      d ^= LwwMap::EntryHash(k, e.stamp);
      ++counted;
    });
    leaves[leaf] = m.Digest(kLeafBits, leaf);
    ASSERT_EQ(leaves[leaf], d) << "leaf " << leaf;
  }
  EXPECT_EQ(counted, m.entries());
  // Each level is the XOR of its children.
  std::vector<uint64_t> groups(kGroups);
  for (uint32_t g = 0; g < kGroups; ++g) {
    uint64_t x = 0;
    for (uint32_t c = 0; c < 16; ++c) x ^= leaves[g * 16 + c];
    groups[g] = m.Digest(kGroupBits, g);
    ASSERT_EQ(groups[g], x) << "group " << g;
  }
  uint64_t root = 0;
  for (uint32_t t = 0; t < (1u << kTopBits); ++t) {
    uint64_t x = 0;
    for (uint32_t c = 0; c < 16; ++c) x ^= groups[t * 16 + c];
    ASSERT_EQ(m.Digest(kTopBits, t), x) << "top " << t;
    root ^= x;
  }
  EXPECT_EQ(m.Digest(0, 0), root);
  EXPECT_NE(root, 0u);

  // One write changes exactly the nodes on its key's path.
  const std::string key = "one more key";
  const uint32_t leaf = LwwMap::LeafOf(key);
  const std::vector<uint64_t> top = TopDigests(m);
  ASSERT_TRUE(m.Apply(Put(key, "v", 99'999, 1)));
  const uint64_t h = LwwMap::EntryHash(key, At(99'999, 1));
  EXPECT_EQ(m.Digest(kLeafBits, leaf), leaves[leaf] ^ h);
  EXPECT_EQ(m.Digest(kGroupBits, leaf >> 4), groups[leaf >> 4] ^ h);
  EXPECT_EQ(m.Digest(0, 0), root ^ h);
  const std::vector<uint64_t> top2 = TopDigests(m);
  for (uint32_t t = 0; t < top.size(); ++t) {
    EXPECT_EQ(top2[t], t == (leaf >> 8) ? top[t] ^ h : top[t]) << t;
  }
  EXPECT_EQ(m.Digest(kLeafBits, leaf ^ 1), leaves[leaf ^ 1]);
  // Overwriting swaps the old hash for the new one; a lost change changes nothing.
  ASSERT_TRUE(m.Apply(Put(key, "w", 100'000, 1)));
  EXPECT_EQ(m.Digest(0, 0), root ^ LwwMap::EntryHash(key, At(100'000, 1)));
  ASSERT_FALSE(m.Apply(Put(key, "x", 1, 1)));
  EXPECT_EQ(m.Digest(0, 0), root ^ LwwMap::EntryHash(key, At(100'000, 1)));
  // The entry hash names the stamp: any difference in time, logical or origin changes it.
  EXPECT_NE(LwwMap::EntryHash(key, At(1, 1)), LwwMap::EntryHash(key, At(2, 1)));
  EXPECT_NE(LwwMap::EntryHash(key, At(1, 1)), LwwMap::EntryHash(key, At(1, 2)));
  EXPECT_NE(LwwMap::EntryHash(key, At(1, 1)), LwwMap::EntryHash(key, At(1, 1, 1)));
  EXPECT_NE(LwwMap::EntryHash(key, At(1, 1)), LwwMap::EntryHash("other", At(1, 1)));
}

TEST(LwwMap, ScanVisitsEveryLiveKeyAndEnds) {
  std::mt19937_64 rng(5);
  LwwMap m;
  std::set<std::string> live;
  for (int i = 0; i < 20'000; ++i) {
    const std::string k = "user:" + std::to_string(i);
    const int kind = static_cast<int>(rng() % 10);
    if (kind == 0) {
      m.Apply(Del(k, 10, 1));  // a tombstone: not visited
    } else if (kind == 1) {
      m.Apply(Put(k, "v", 10, 1, 500));  // expired at the scan's time: not visited
    } else {
      m.Apply(Put(k, "v", 10, 1, kind == 2 ? 5000 : kNoExpire));
      live.insert(k);
    }
  }
  for (size_t count : {size_t{1}, size_t{10}, size_t{100}, size_t{5000}, size_t{1'000'000}}) {
    std::multiset<std::string> seen;
    uint64_t cursor = 0;
    int calls = 0;
    do {
      size_t batch = 0;
      cursor = m.Scan(cursor, count, 1000, [&](const std::string& k, const LwwMap::Entry& e) {
        EXPECT_TRUE(e.live);
        seen.insert(k);
        ++batch;
      });
      ++calls;
      ASSERT_LE(calls, static_cast<int>(kGroups) + 1) << "scan does not end";
      if (cursor != 0) {
        EXPECT_GE(batch, std::min<size_t>(count, 1));
      }
    } while (cursor != 0);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), live) << "count " << count;
    EXPECT_EQ(seen.size(), live.size());  // no changes during the scan: each exactly once
  }
  // Keys present for the whole scan are seen even when others come and go during it.
  std::set<std::string> seen;
  uint64_t cursor = 0;
  int step = 0;
  do {
    cursor = m.Scan(cursor, 50, 1000,
                    [&](const std::string& k, const LwwMap::Entry&) { seen.insert(k); });
    for (int j = 0; j < 20; ++j) m.Apply(Put("churn:" + std::to_string(step * 20 + j), "v", 11, 1));
    m.Apply(Del("churn:" + std::to_string(step), 12, 1));
    ++step;
  } while (cursor != 0);
  for (const std::string& k : live) EXPECT_TRUE(seen.contains(k)) << k;
  // An empty map scans in one call.
  LwwMap empty;
  int visits = 0;
  EXPECT_EQ(empty.Scan(0, 10, 0, [&](const std::string&, const LwwMap::Entry&) { ++visits; }), 0u);
  EXPECT_EQ(visits, 0);
}

TEST(LwwMap, ForEachStops) {
  LwwMap m;
  for (int i = 0; i < 100; ++i) m.Apply(Put("k" + std::to_string(i), "v", 10, 1));
  int n = 0;
  m.ForEach([&n](const std::string&, const LwwMap::Entry&) { return ++n < 10; });
  EXPECT_EQ(n, 10);
}

TEST(LwwMap, WireBytesIsTheSumOfItsEntries) {
  LwwMap m;
  EXPECT_EQ(m.wire_bytes(), 0u);
  m.Apply(Put("abc", "12345", 10, 1));
  EXPECT_EQ(m.wire_bytes(), LwwMap::WireBytes(3, 5));
  m.Apply(Put("abc", "1", 11, 1));  // overwrite: the new value's size
  EXPECT_EQ(m.wire_bytes(), LwwMap::WireBytes(3, 1));
  m.Apply(Del("abc", 12, 1));  // tombstone: key and stamp only
  EXPECT_EQ(m.wire_bytes(), LwwMap::WireBytes(3, 0));
  m.CollectTombstones(HlcTime{13, 0});
  EXPECT_EQ(m.wire_bytes(), 0u);

  std::mt19937_64 rng(9);
  for (int round = 0; round < 5; ++round) {
    for (const Change& c : RandomChanges(rng, 2000, 400)) m.Apply(c);
    ASSERT_EQ(m.wire_bytes(), SumWireBytes(m)) << "after applying, round " << round;
    m.ExpireSome(5050, kGroups / 2);
    ASSERT_EQ(m.wire_bytes(), SumWireBytes(m)) << "after expiring, round " << round;
    m.CollectTombstones(HlcTime{1100 + 100 * static_cast<uint64_t>(round), 0});
    ASSERT_EQ(m.wire_bytes(), SumWireBytes(m)) << "after collecting, round " << round;
    EXPECT_EQ(m.entries(), m.size() + m.tombstones());
  }
  m.Clear();
  EXPECT_EQ(m.wire_bytes(), 0u);
  EXPECT_EQ(m.entries(), 0u);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.Digest(0, 0), 0u);
}

TEST(LwwMap, ClearMakesAFreshMap) {
  // Clear is how a snapshot load replaces the map: afterwards it must accept what a fresh map
  // accepts, including live entries older than a horizon the old contents had reached.
  LwwMap m;
  m.Apply(Del("k", 10, 1));
  m.CollectTombstones(HlcTime{50, 0});
  m.Clear();
  EXPECT_EQ(m.horizon(), HlcTime{});
  EXPECT_TRUE(m.Apply(Put("old", "v", 20, 1)));
  EXPECT_EQ(m.Get("old", 0)->value, "v");
}

}  // namespace
}  // namespace shoal::replicated
