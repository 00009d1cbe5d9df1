// Property tests of the bucket assignment (assignment.h) over 1..65 replica sets, equal and random
// weights, and random histories of joins, leaves and weight changes from seeded RNGs.
#include "sharding/assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/rng.h"

namespace shoal::sharding {
namespace {

using Owners = std::vector<ReplicaSetId>;
using Sets = std::vector<SetWeight>;

constexpr uint32_t kMaxSets = 64;

Owners Unowned() { return Owners(kNumBuckets, ReplicaSetId{}); }

ReplicaSetId NewId(Rng& rng, const Sets& sets) {
  while (true) {
    ReplicaSetId id(rng.Next());
    if (id == ReplicaSetId{}) continue;
    if (std::none_of(sets.begin(), sets.end(), [&](const SetWeight& s) { return s.id == id; })) {
      return id;
    }
  }
}

uint32_t RandomWeight(Rng& rng, bool equal) {
  return equal ? 1 : static_cast<uint32_t>(1 + rng.Uniform(10));
}

Sets MakeSets(Rng& rng, uint32_t n, bool equal) {
  Sets sets;
  for (uint32_t i = 0; i < n; ++i) sets.push_back({NewId(rng, sets), RandomWeight(rng, equal)});
  return sets;
}

std::string Describe(const Sets& sets) {
  std::string s = std::to_string(sets.size()) + " sets, weights";
  for (const SetWeight& w : sets) s += " " + std::to_string(w.weight);
  return s;
}

// Every bucket is owned by a listed set and every set's count is within max(1%, 1 bucket) of its
// exact share; with `strict`, floor or ceil of it. Counts the sets off floor/ceil in *widened.
testing::AssertionResult Balanced(const Owners& owners, const Sets& sets, bool strict = true,
                                  int* widened = nullptr) {
  const std::vector<uint32_t> counts = CountPerSet(owners, sets);
  const std::vector<double> shares = ExactShares(sets);
  uint64_t total_weight = 0;
  for (const SetWeight& s : sets) total_weight += s.weight;
  uint64_t owned = 0;
  for (size_t i = 0; i < sets.size(); ++i) {
    owned += counts[i];
    const uint64_t exact = uint64_t{kNumBuckets} * sets[i].weight;
    const uint64_t floor = exact / total_weight;
    const uint64_t ceil = floor + (exact % total_weight != 0 ? 1 : 0);
    if (counts[i] < floor || counts[i] > ceil) {
      if (widened != nullptr) ++*widened;
      if (strict) {
        return testing::AssertionFailure()
               << "set " << i << " owns " << counts[i] << " buckets, exact share " << shares[i];
      }
    }
    if (std::abs(counts[i] - shares[i]) > BalanceTolerance(shares[i])) {
      return testing::AssertionFailure()
             << "set " << i << " owns " << counts[i]
             << " buckets, outside the tolerance of its share " << shares[i];
    }
  }
  if (owned != kNumBuckets) {
    return testing::AssertionFailure() << owned << " buckets owned by listed sets";
  }
  return testing::AssertionSuccess();
}

// Property 1: every moved bucket goes to the new set, and at most max(1.02 q, q + 1) move (the
// new set's count is within max(1% of q, 1) of q).
testing::AssertionResult JoinOk(const Owners& before, const Owners& after, const Sets& sets_after,
                                ReplicaSetId joined) {
  double share = 0;
  const std::vector<double> shares = ExactShares(sets_after);
  for (size_t i = 0; i < sets_after.size(); ++i) {
    if (sets_after[i].id == joined) share = shares[i];
  }
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (before[b] != after[b] && after[b] != joined) {
      return testing::AssertionFailure() << "bucket " << b << " moved between staying sets";
    }
  }
  const uint32_t moved = CountMoved(before, after);
  if (moved > std::max(1.02 * share, share + 1)) {
    return testing::AssertionFailure() << moved << " buckets moved for a share of " << share;
  }
  return testing::AssertionSuccess();
}

// Property 2: only the leaver's buckets move.
testing::AssertionResult LeaveOk(const Owners& before, const Owners& after, ReplicaSetId left) {
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (before[b] != after[b] && before[b] != left) {
      return testing::AssertionFailure() << "bucket " << b << " of a staying set moved";
    }
  }
  return testing::AssertionSuccess();
}

// Property 3 for a weight change: the set whose weight went down only gives, the one whose weight
// went up only takes. With `strong`: every set whose exact share went down only gives, every set
// whose share went up only takes (which includes the set whose weight changed).
testing::AssertionResult WeightChangeOk(const Owners& before, const Owners& after,
                                        const Sets& sets_before, const Sets& sets_after,
                                        ReplicaSetId changed, bool strong) {
  const std::vector<double> share_before = ExactShares(sets_before);
  const std::vector<double> share_after = ExactShares(sets_after);
  // Buckets given and taken per set (CountPerSet over the moved buckets only).
  Owners gave_from;
  Owners took_by;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (before[b] == after[b]) continue;
    gave_from.push_back(before[b]);
    took_by.push_back(after[b]);
  }
  const std::vector<uint32_t> gave = CountPerSet(gave_from, sets_after);
  const std::vector<uint32_t> took = CountPerSet(took_by, sets_after);
  for (size_t i = 0; i < sets_after.size(); ++i) {
    if (!strong && sets_after[i].id != changed) continue;
    if (share_after[i] < share_before[i] && took[i] > 0) {
      return testing::AssertionFailure() << "set " << i << " (share down) took buckets";
    }
    if (share_after[i] > share_before[i] && gave[i] > 0) {
      return testing::AssertionFailure() << "set " << i << " (share up) gave buckets";
    }
  }
  return testing::AssertionSuccess();
}

TEST(AssignTest, EmptySetListLeavesEverythingUnowned) {
  Owners owners = Unowned();
  for (uint32_t b = 0; b < kNumBuckets; b += 7) owners[b] = ReplicaSetId(3);
  EXPECT_EQ(Assign(owners, {}), Unowned());
}

TEST(AssignTest, OneSetOwnsEverything) {
  const Sets sets = {{ReplicaSetId(42), 3}};
  const Owners owners = Assign(Unowned(), sets);
  EXPECT_EQ(CountPerSet(owners, sets), std::vector<uint32_t>{kNumBuckets});
}

TEST(AssignTest, FreshAssignmentIsBalanced) {
  for (bool equal : {true, false}) {
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      SeededRng rng(seed);
      for (uint32_t n = 1; n <= kMaxSets + 1; ++n) {
        const Sets sets = MakeSets(rng, n, equal);
        ASSERT_TRUE(Balanced(Assign(Unowned(), sets), sets)) << Describe(sets);
      }
    }
  }
}

TEST(AssignTest, PartlyUnownedOrForeignBucketsAreAllReassignedBalanced) {
  SeededRng rng(7);
  const Sets sets = MakeSets(rng, 5, false);
  Owners current = Assign(Unowned(), sets);
  for (uint32_t b = 0; b < kNumBuckets; b += 3) current[b] = ReplicaSetId{};
  for (uint32_t b = 1; b < kNumBuckets; b += 5) current[b] = ReplicaSetId(999);  // not listed
  const Owners after = Assign(current, sets);
  EXPECT_TRUE(Balanced(after, sets));
  // Listed sets only take (they are all below their shares): nothing moves between them.
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (current[b] != after[b]) {
      ASSERT_TRUE(current[b] == ReplicaSetId{} || current[b] == ReplicaSetId(999)) << b;
    }
  }
}

TEST(AssignTest, DeterministicAndIndependentOfSetOrder) {
  SeededRng rng(11);
  Sets sets = MakeSets(rng, 20, false);
  Owners current = Assign(Unowned(), sets);
  sets.push_back({NewId(rng, sets), 4});
  const Owners a = Assign(current, sets);
  EXPECT_EQ(Assign(current, sets), a);
  Sets reversed(sets.rbegin(), sets.rend());
  EXPECT_EQ(Assign(current, reversed), a);
}

TEST(AssignTest, TargetsAreTheCountsOfTheResult) {
  SeededRng rng(13);
  Sets sets = MakeSets(rng, 9, false);
  Owners current = Assign(Unowned(), sets);
  sets.erase(sets.begin() + 3);
  sets.push_back({NewId(rng, sets), 7});
  EXPECT_EQ(Targets(current, sets), CountPerSet(Assign(current, sets), sets));
}

TEST(AssignTest, BalancedMapIsAFixedPoint) {
  for (bool equal : {true, false}) {
    SeededRng rng(17);
    for (uint32_t n = 1; n <= kMaxSets; n += 7) {
      const Sets sets = MakeSets(rng, n, equal);
      const Owners owners = Assign(Unowned(), sets);
      EXPECT_EQ(Assign(owners, sets), owners) << Describe(sets);
    }
  }
}

// Grows a cluster from 1 to 65 sets one join at a time (the map each join starts from is the
// previous join's result), then shrinks it by random leaves.
TEST(AssignTest, JoinsThenLeaves) {
  for (bool equal : {true, false}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      SeededRng rng(seed * 1000 + equal);
      Sets sets = {{NewId(rng, {}), RandomWeight(rng, equal)}};
      Owners owners = Assign(Unowned(), sets);
      ASSERT_TRUE(Balanced(owners, sets));
      while (sets.size() <= kMaxSets) {
        const SetWeight joined{NewId(rng, sets), RandomWeight(rng, equal)};
        sets.push_back(joined);
        Owners after = Assign(owners, sets);
        ASSERT_TRUE(Balanced(after, sets)) << Describe(sets) << " seed " << seed;
        ASSERT_TRUE(JoinOk(owners, after, sets, joined.id)) << Describe(sets) << " seed " << seed;
        owners = std::move(after);
      }
      while (sets.size() > 1) {
        const size_t victim = rng.Uniform(sets.size());
        const ReplicaSetId left = sets[victim].id;
        sets.erase(sets.begin() + static_cast<std::ptrdiff_t>(victim));
        Owners after = Assign(owners, sets);
        ASSERT_TRUE(Balanced(after, sets)) << Describe(sets) << " seed " << seed;
        ASSERT_TRUE(LeaveOk(owners, after, left)) << Describe(sets) << " seed " << seed;
        owners = std::move(after);
      }
    }
  }
}

// For every N = 1..64, from a fresh balanced map: join of set N+1, and leave of each of a few sets.
TEST(AssignTest, JoinAndLeaveFromFreshMaps) {
  for (bool equal : {true, false}) {
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      SeededRng rng(seed * 7919 + equal);
      for (uint32_t n = 1; n <= kMaxSets; ++n) {
        Sets sets = MakeSets(rng, n, equal);
        const Owners owners = Assign(Unowned(), sets);
        Sets joined = sets;
        joined.push_back({NewId(rng, sets), RandomWeight(rng, equal)});
        const Owners after_join = Assign(owners, joined);
        ASSERT_TRUE(Balanced(after_join, joined)) << Describe(joined);
        ASSERT_TRUE(JoinOk(owners, after_join, joined, joined.back().id)) << Describe(joined);
        if (n == 1) continue;
        Sets left = sets;
        const size_t victim = rng.Uniform(n);
        left.erase(left.begin() + static_cast<std::ptrdiff_t>(victim));
        const Owners after_leave = Assign(owners, left);
        ASSERT_TRUE(Balanced(after_leave, left)) << Describe(left);
        ASSERT_TRUE(LeaveOk(owners, after_leave, sets[victim].id)) << Describe(sets);
      }
    }
  }
}

// A random history of `steps` joins, leaves and weight changes (1..64 sets), checking properties
// 1-4 after every step. Returns the number of (step, set) pairs off floor/ceil.
int RandomHistory(uint64_t seed, int steps, bool bimodal) {
  SeededRng rng(seed);
  // Weights uniform in 1..10, or 1 and 10 (half each).
  auto weight = [&] {
    return bimodal ? (rng.Bernoulli(0.5) ? 10u : 1u) : RandomWeight(rng, false);
  };
  Sets sets;
  const uint64_t n = 1 + rng.Uniform(kMaxSets);
  for (uint64_t i = 0; i < n; ++i) sets.push_back({NewId(rng, sets), weight()});
  Owners owners = Assign(Unowned(), sets);
  EXPECT_TRUE(Balanced(owners, sets));
  int widened = 0;
  for (int step = 0; step < steps; ++step) {
    const std::string context =
        "seed " + std::to_string(seed) + " step " + std::to_string(step) + ": " + Describe(sets);
    const uint64_t op = rng.Uniform(3);
    Sets next = sets;
    Owners after;
    if (op == 0 && sets.size() < kMaxSets) {  // join
      next.push_back({NewId(rng, sets), weight()});
      after = Assign(owners, next);
      EXPECT_TRUE(JoinOk(owners, after, next, next.back().id)) << context;
    } else if (op == 1 && sets.size() > 1) {  // leave
      const size_t victim = rng.Uniform(sets.size());
      next.erase(next.begin() + static_cast<std::ptrdiff_t>(victim));
      after = Assign(owners, next);
      EXPECT_TRUE(LeaveOk(owners, after, sets[victim].id)) << context;
    } else {  // weight change
      SetWeight& changed = next[rng.Uniform(next.size())];
      const uint32_t old_weight = changed.weight;
      for (int tries = 0; changed.weight == old_weight && tries < 100; ++tries) {
        changed.weight = bimodal ? 11 - old_weight : RandomWeight(rng, false);
      }
      after = Assign(owners, next);
      EXPECT_TRUE(WeightChangeOk(owners, after, sets, next, changed.id, !bimodal)) << context;
    }
    EXPECT_TRUE(Balanced(after, next, /*strict=*/false, &widened)) << context;
    if (testing::Test::HasFailure()) return widened;
    sets = std::move(next);
    owners = std::move(after);
  }
  return widened;
}

// Uniform weights 1..10: in these histories targets never even leave floor/ceil, and the strong
// form of property 3 holds.
TEST(AssignTest, RandomHistories) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    EXPECT_EQ(RandomHistory(seed, 200, /*bimodal=*/false), 0) << "seed " << seed;
    if (HasFailure()) return;
  }
}

// Weights 1 and 10 flipping, joins and leaves: properties 1-3 and the band (not strict floor/ceil).
TEST(AssignTest, RandomHistoriesWithBimodalWeights) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    RandomHistory(seed, 200, /*bimodal=*/true);
    if (HasFailure()) return;
  }
}

// A leave where strict floor/ceil targets would force a move between staying sets: 20 sets of
// weight 10 at floor (751 of 751.56), 17 of weight 1 of which 14 at ceil (76 of 75.16), and a
// leaver of weight 1. After the leave the light sets' share is 75.50: their ceil is still 76, and a
// leave must not make them give, so 14 sets need the +1 but only 9 exist (16384 - sum of floors).
// The heavy sets' targets widen below floor (within 1% of 755.02) instead.
TEST(AssignTest, LeaveThatStrictTargetsCannotServeWidensTheBand) {
  Sets sets;
  std::vector<uint32_t> counts;
  for (uint64_t i = 1; i <= 20; ++i) {
    sets.push_back({ReplicaSetId(100 + i), 10});
    counts.push_back(751);
  }
  for (uint64_t i = 1; i <= 17; ++i) {
    sets.push_back({ReplicaSetId(200 + i), 1});
    counts.push_back(i <= 14 ? 76 : 75);
  }
  sets.push_back({ReplicaSetId(300), 1});
  counts.push_back(75);
  Owners before;
  for (size_t i = 0; i < sets.size(); ++i) before.insert(before.end(), counts[i], sets[i].id);
  ASSERT_EQ(before.size(), kNumBuckets);
  ASSERT_TRUE(Balanced(before, sets));

  const Sets after_sets(sets.begin(), sets.end() - 1);
  const Owners after = Assign(before, after_sets);
  int widened = 0;
  EXPECT_TRUE(Balanced(after, after_sets, /*strict=*/false, &widened));
  EXPECT_GT(widened, 0);
  EXPECT_TRUE(LeaveOk(before, after, ReplicaSetId(300)));
  // Assigning again with nothing changed repairs the widened counts (moving between sets is fine
  // then: nobody joined or left).
  EXPECT_TRUE(Balanced(Assign(after, after_sets), after_sets));
}

// Property 5: holdings stay in few runs of consecutive buckets (short CLUSTER SLOTS), growing one
// set at a time and shrinking again.
size_t Runs(const Owners& o) {
  size_t runs = 0;
  for (uint32_t b = 0; b < kNumBuckets; ++b) runs += (b == 0 || o[b] != o[b - 1]) ? 1 : 0;
  return runs;
}

TEST(AssignTest, HoldingsStayContiguous) {
  Sets sets = {{ReplicaSetId(1), 1}};
  Owners owners = Assign(Unowned(), sets);
  EXPECT_EQ(Runs(owners), 1u);
  for (uint32_t i = 2; i <= 16; ++i) {
    sets.push_back({ReplicaSetId(i), 1});
    owners = Assign(owners, sets);
    // Each join adds at most one run per set that gives (and the new set's runs).
    EXPECT_LE(Runs(owners), static_cast<size_t>(i) * i) << i << " sets";
  }
  EXPECT_EQ(Runs(Assign(Unowned(), Sets{{ReplicaSetId(1), 1}, {ReplicaSetId(2), 1}})), 2u);
  const Owners three =
      Assign(Assign(Assign(Unowned(), Sets{{ReplicaSetId(1), 1}}),
                    Sets{{ReplicaSetId(1), 1}, {ReplicaSetId(2), 1}}),
             Sets{{ReplicaSetId(1), 1}, {ReplicaSetId(2), 1}, {ReplicaSetId(3), 1}});
  EXPECT_LE(Runs(three), 4u);
}

}  // namespace
}  // namespace shoal::sharding
