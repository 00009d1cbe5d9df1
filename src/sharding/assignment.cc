#include "sharding/assignment.h"

#include <algorithm>
#include <cassert>
#include <queue>
#include <string_view>
#include <tuple>

#include "common/hash.h"

namespace shoal::sharding {
namespace {

// Which buckets move (highest ids released, pool handed out in ascending order) is part of the
// algorithm: every coordinator must agree on it.

uint64_t HashU64(uint64_t v, uint64_t seed) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return Hash64(std::string_view(bytes, 8), seed);
}

// Rank of a bucket within its owner's buckets: the lowest ranks are released first. A set gives
// its highest bucket ids, so holdings stay in few contiguous ranges (CLUSTER SLOTS and NODES stay
// short, as with Redis Cluster's rebalancing), not scattered one bucket at a time.
uint64_t ReleaseRank(uint32_t bucket, ReplicaSetId /*owner*/) { return kNumBuckets - 1 - bucket; }

enum class Direction { kAny, kGive, kTake };

struct SetState {
  ReplicaSetId id;
  uint64_t weight = 0;
  size_t input_index = 0;  // position in the caller's `sets`
  uint32_t current = 0;    // buckets it owns now
  uint32_t floor = 0;      // floor and ceil of the exact share
  uint32_t ceil = 0;
  uint32_t lo = 0;  // the band: |t - q| <= max(1% of q, 1)
  uint32_t hi = 0;
  bool may_take = true;  // (a) of the header: taking / giving is penalised when false
  bool may_give = true;
  uint64_t tie = 0;  // hash of the id
  uint32_t target = 0;
};

// The sets to assign to, sorted by id (so that the input order does not matter), weight 0 dropped.
std::vector<SetState> Prepare(std::span<const SetWeight> sets) {
  std::vector<SetState> out;
  out.reserve(sets.size());
  for (size_t i = 0; i < sets.size(); ++i) {
    assert(sets[i].id != ReplicaSetId{});
    if (sets[i].weight == 0 || sets[i].id == ReplicaSetId{}) continue;
    SetState s;
    s.id = sets[i].id;
    s.weight = sets[i].weight;
    s.input_index = i;
    s.tie = HashU64(s.id.value(), 0);
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const SetState& a, const SetState& b) {
    return std::tie(a.id, a.input_index) < std::tie(b.id, b.input_index);
  });
  // Duplicate ids are a caller error; keep the first.
  assert(std::adjacent_find(out.begin(), out.end(), [](const SetState& a, const SetState& b) {
           return a.id == b.id;
         }) == out.end());
  out.erase(std::unique(out.begin(), out.end(),
                        [](const SetState& a, const SetState& b) { return a.id == b.id; }),
            out.end());
  return out;
}

// Maps a set id to a small index: open addressing over a power-of-two table (a lookup per bucket
// must be cheap; binary search over the sets costs more than the rest of Assign).
class IdIndex {
 public:
  template <typename Range, typename GetId>
  IdIndex(const Range& sets, GetId get_id) {
    size_t size = 16;
    while (size < 2 * sets.size()) size *= 2;
    mask_ = size - 1;
    slots_.assign(size, Slot{});
    int i = 0;
    for (const auto& s : sets) {
      const ReplicaSetId id = get_id(s);
      if (id != ReplicaSetId{}) {
        size_t h = Home(id);
        while (slots_[h].id != ReplicaSetId{} && slots_[h].id != id) h = (h + 1) & mask_;
        if (slots_[h].id == ReplicaSetId{}) slots_[h] = Slot{id, i};  // keep the first duplicate
      }
      ++i;
    }
  }
  // The index of `id` in the range given to the constructor, or -1.
  int Find(ReplicaSetId id) const {
    if (id == ReplicaSetId{}) return -1;
    for (size_t h = Home(id);; h = (h + 1) & mask_) {
      if (slots_[h].id == id) return slots_[h].index;
      if (slots_[h].id == ReplicaSetId{}) return -1;
    }
  }

 private:
  struct Slot {
    ReplicaSetId id;
    int index = -1;
  };
  size_t Home(ReplicaSetId id) const {
    return static_cast<size_t>((id.value() * 0x9e3779b97f4a7c15ULL) >> 32) & mask_;
  }
  size_t mask_ = 0;
  std::vector<Slot> slots_;
};

// All buckets in ascending order: the order in which pooled buckets are handed out, so that a
// set receives runs of consecutive buckets.
const std::vector<uint32_t>& PoolOrder() {
  static const std::vector<uint32_t> order = [] {
    std::vector<uint32_t> out(kNumBuckets);
    for (uint32_t b = 0; b < kNumBuckets; ++b) out[b] = b;
    return out;
  }();
  return order;
}

// A set that owns nothing and should own at least one bucket: one that joins.
bool IsNew(const SetState& s) { return s.current == 0 && s.floor >= 1; }

using u128 = unsigned __int128;
using i128 = __int128;

// Marginal cost of raising set s's target from t to t + 1, compared lexicographically (see the
// header). Every component is non-decreasing in t, so the lexicographic total is convex and
// greedy allocation of units by lowest marginal cost is optimal.
struct Marginal {
  int direction;
  int band;
  int moved;
  i128 deviation;  // |(t+1)W - Kw| - |tW - Kw|
  uint64_t tie;
  uint64_t id;
  auto Key() const { return std::tie(direction, band, moved, deviation, tie, id); }
  bool operator>(const Marginal& o) const { return Key() > o.Key(); }
};

Marginal MarginalCost(const SetState& s, uint32_t t, uint64_t total_weight) {
  Marginal m;
  m.direction = 0;
  if (!s.may_take && t >= s.current) m.direction = 1;  // one more taken
  if (!s.may_give && t < s.current) m.direction = -1;  // one fewer given
  m.band = t < s.floor ? -1 : (t < s.ceil ? 0 : 1);
  m.moved = t >= s.current ? 1 : 0;
  const i128 exact = static_cast<i128>(kNumBuckets) * s.weight;
  const i128 w = total_weight;
  auto dev = [&](i128 x) { return x * w > exact ? x * w - exact : exact - x * w; };
  m.deviation = dev(t + 1) - dev(t);
  m.tie = s.tie;
  m.id = s.id.value();
  return m;
}

// For each bucket, the index in `sets` of its owner, or -1 if the owner is not listed.
std::vector<int> OwnerIndex(std::span<const ReplicaSetId> current,
                            const std::vector<SetState>& sets) {
  const IdIndex index(sets, [](const SetState& s) { return s.id; });
  std::vector<int> out(current.size());
  for (size_t b = 0; b < current.size(); ++b) out[b] = index.Find(current[b]);
  return out;
}

// Step 1 of the header: fills current, floor, ceil, lo, hi, may_take, may_give and target of every
// set.
void ComputeTargets(std::span<const int> owner_index, std::vector<SetState>& sets) {
  if (sets.empty()) return;
  uint32_t unlisted = 0;  // buckets unowned or owned by a set not in `sets`
  for (int i : owner_index) {
    if (i < 0) {
      ++unlisted;
    } else {
      ++sets[i].current;
    }
  }
  uint64_t total_weight = 0;
  for (const SetState& s : sets) total_weight += s.weight;
  const u128 w_total = total_weight;

  // Exact shares, bands, and which way the sets already holding buckets move as a whole: their
  // excess is (sum of new sets' shares) - (unlisted buckets). They give if it is at least one
  // bucket (a join), take if it is at most minus one (a leave). A new set is one that owns nothing
  // but should own at least floor(q) >= 1 buckets: a set whose share is under one bucket may own
  // nothing and is not joining.
  u128 new_sets_exact = 0;  // sum of K*w over sets holding nothing, in units of 1/W
  for (SetState& s : sets) {
    const u128 exact = static_cast<u128>(kNumBuckets) * s.weight;  // q = exact / W
    s.floor = static_cast<uint32_t>(exact / w_total);
    s.ceil = s.floor + (exact % w_total != 0 ? 1 : 0);
    if (exact >= 100 * w_total) {  // q >= 100: the band is 1% of q
      s.lo = static_cast<uint32_t>((99 * exact + 100 * w_total - 1) / (100 * w_total));
      s.hi = static_cast<uint32_t>((101 * exact) / (100 * w_total));
    } else {  // the band is 1 bucket
      s.lo = s.ceil == 0 ? 0 : s.ceil - 1;
      s.hi = s.floor + 1;
    }
    s.hi = std::min<uint32_t>(s.hi, kNumBuckets);
    if (IsNew(s)) new_sets_exact += exact;
  }
  const u128 unlisted_exact = static_cast<u128>(unlisted) * w_total;
  const Direction collective = unlisted_exact >= new_sets_exact + w_total   ? Direction::kTake
                               : new_sets_exact >= unlisted_exact + w_total ? Direction::kGive
                                                                            : Direction::kAny;
  for (SetState& s : sets) {
    if (IsNew(s)) continue;  // it only takes anyway
    // Only towards the exact share q (c < q <=> c < ceil(q); c > q <=> c > floor(q)), and never
    // against the staying sets' common direction.
    s.may_take = s.current < s.ceil && collective != Direction::kGive;
    s.may_give = s.current > s.floor && collective != Direction::kTake;
  }

  // Greedy: every set starts at the bottom of its band; the remaining units go one at a time to
  // the set whose next unit costs least.
  uint32_t assigned = 0;
  for (SetState& s : sets) {
    s.target = s.lo;
    assigned += s.lo;
  }
  assert(assigned <= kNumBuckets);
  using Entry = std::pair<Marginal, size_t>;
  auto greater = [](const Entry& a, const Entry& b) { return a.first > b.first; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(greater)> heap(greater);
  for (size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].target < sets[i].hi) {
      heap.emplace(MarginalCost(sets[i], sets[i].target, total_weight), i);
    }
  }
  while (assigned < kNumBuckets && !heap.empty()) {
    const size_t i = heap.top().second;
    heap.pop();
    SetState& s = sets[i];
    ++s.target;
    ++assigned;
    if (s.target < s.hi) heap.emplace(MarginalCost(s, s.target, total_weight), i);
  }
  assert(assigned == kNumBuckets);  // sum of hi >= sum of ceil >= K
}

}  // namespace

std::vector<uint32_t> Targets(std::span<const ReplicaSetId> current,
                              std::span<const SetWeight> sets) {
  assert(current.size() == kNumBuckets);
  std::vector<SetState> state = Prepare(sets);
  ComputeTargets(OwnerIndex(current, state), state);
  std::vector<uint32_t> out(sets.size(), 0);
  for (const SetState& s : state) out[s.input_index] = s.target;
  return out;
}

std::vector<ReplicaSetId> Assign(std::span<const ReplicaSetId> current,
                                 std::span<const SetWeight> sets) {
  assert(current.size() == kNumBuckets);
  std::vector<SetState> state = Prepare(sets);
  if (state.empty()) return std::vector<ReplicaSetId>(current.size(), ReplicaSetId{});
  const std::vector<int> owner_index = OwnerIndex(current, state);
  ComputeTargets(owner_index, state);

  // Step 2: which buckets go. Pool membership per bucket: 0 = stays, 1 = unlisted (unowned or
  // departed), 2 = released by a set above its target.
  std::vector<uint8_t> pool(current.size(), 0);
  std::vector<std::vector<uint32_t>> held(state.size());  // only for sets that give
  for (uint32_t b = 0; b < current.size(); ++b) {
    const int i = owner_index[b];
    if (i < 0) {
      pool[b] = 1;
    } else if (state[i].current > state[i].target) {
      held[i].push_back(b);
    }
  }
  std::vector<std::pair<uint64_t, uint32_t>> ranked;
  for (size_t i = 0; i < state.size(); ++i) {
    if (state[i].current <= state[i].target) continue;
    ranked.clear();
    for (uint32_t b : held[i]) ranked.emplace_back(ReleaseRank(b, state[i].id), b);
    const size_t n = state[i].current - state[i].target;
    std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(n) - 1,
                     ranked.end());
    for (size_t k = 0; k < n; ++k) pool[ranked[k].second] = 2;
  }

  // Hand the pools out in xxh3(bucket) order: staying sets (holding buckets now) first from the
  // unlisted buckets, new sets first from the released ones; then whatever is left.
  std::vector<uint32_t> unlisted;
  std::vector<uint32_t> released;
  for (uint32_t b : PoolOrder()) {
    if (pool[b] == 1) unlisted.push_back(b);
    if (pool[b] == 2) released.push_back(b);
  }
  std::vector<ReplicaSetId> out(current.begin(), current.end());
  std::vector<uint32_t> need(state.size(), 0);
  for (size_t i = 0; i < state.size(); ++i) {
    if (state[i].target > state[i].current) need[i] = state[i].target - state[i].current;
  }
  size_t next_unlisted = 0;
  size_t next_released = 0;
  auto serve = [&](bool staying, const std::vector<uint32_t>& from, size_t& next) {
    for (size_t i = 0; i < state.size(); ++i) {
      if ((state[i].current > 0) != staying) continue;
      while (need[i] > 0 && next < from.size()) {
        out[from[next++]] = state[i].id;
        --need[i];
      }
    }
  };
  serve(true, unlisted, next_unlisted);
  serve(false, released, next_released);
  serve(true, released, next_released);
  serve(false, unlisted, next_unlisted);
  // The targets sum to kNumBuckets, so the pools are exactly used up; were they not, a bucket
  // must not keep a departed owner.
  assert(next_unlisted == unlisted.size() && next_released == released.size());
  for (; next_unlisted < unlisted.size(); ++next_unlisted) {
    out[unlisted[next_unlisted]] = ReplicaSetId{};
  }
  return out;
}

std::vector<uint32_t> CountPerSet(std::span<const ReplicaSetId> owners,
                                  std::span<const SetWeight> sets) {
  const IdIndex index(sets, [](const SetWeight& s) { return s.id; });
  std::vector<uint32_t> counts(sets.size(), 0);
  for (ReplicaSetId owner : owners) {
    const int i = index.Find(owner);
    if (i >= 0) ++counts[i];
  }
  return counts;
}

uint32_t CountMoved(std::span<const ReplicaSetId> before, std::span<const ReplicaSetId> after) {
  assert(before.size() == after.size());
  uint32_t moved = 0;
  for (size_t b = 0; b < before.size() && b < after.size(); ++b) {
    if (before[b] != after[b]) ++moved;
  }
  return moved;
}

std::vector<double> ExactShares(std::span<const SetWeight> sets) {
  double total = 0;
  for (const SetWeight& s : sets) total += s.weight;
  std::vector<double> out;
  out.reserve(sets.size());
  for (const SetWeight& s : sets) {
    out.push_back(total > 0 ? kNumBuckets * static_cast<double>(s.weight) / total : 0);
  }
  return out;
}

}  // namespace shoal::sharding
