// Bucket assignment schemes side by side, on the 16384 buckets:
//   assign   sharding::Assign (sharding/assignment.h), each state the result of the previous
//            change (the cluster grows one join at a time);
//   ring128  a consistent-hash ring as libring builds it: each set has 128·weight points at
//            xxh3(set id, i), a bucket (at xxh3(bucket)) goes to the next point clockwise;
//   jump     jump consistent hash (Lamping & Veach 2014) of xxh3(bucket) over N sets. It has no
//            weights (n/a with random weights) and can only remove the last set: its leave column
//            is the removal of set N, the others' the removal of a random set.
// For N = 1..64 sets and S seeds (set ids, weights, which set leaves), with equal weights and with
// random weights 1..10, it measures from the state with N sets:
//   join   buckets moved when set N+1 joins / its exact share 16384·w/W (the optimum);
//   leave  buckets moved when one set leaves / its exact share;
//   dev    balance: max and min over sets of (count - share) / share, in % (worst over seeds);
//   cross  buckets that moved between two sets that both stay (join + leave, summed over seeds).
// join and leave are means over seeds; rows are printed for a few N, then the worst over all N.
// Nothing is asserted.
//
// Usage: assignment_bench [--seeds S]   (default 10)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "common/rng.h"
#include "sharding/assignment.h"

namespace shoal::sharding {
namespace {

constexpr uint32_t kMaxSets = 64;
constexpr uint32_t kRingPoints = 128;

using Owners = std::vector<ReplicaSetId>;
using Sets = std::vector<SetWeight>;

uint64_t HashBucket(uint32_t b) {
  const char bytes[2] = {static_cast<char>(b & 0xff), static_cast<char>(b >> 8)};
  return Hash64(std::string_view(bytes, 2));
}

uint64_t HashPoint(ReplicaSetId id, uint32_t i) {
  char bytes[12];
  const uint64_t v = id.value();
  std::memcpy(bytes, &v, 8);
  std::memcpy(bytes + 8, &i, 4);
  return Hash64(std::string_view(bytes, sizeof bytes));
}

// The buckets sorted by their position on the ring, computed once.
struct BucketPositions {
  std::vector<std::pair<uint64_t, uint32_t>> sorted;
  BucketPositions() {
    for (uint32_t b = 0; b < kNumBuckets; ++b) sorted.emplace_back(HashBucket(b), b);
    std::sort(sorted.begin(), sorted.end());
  }
};

// A ring of (position, set index) points, sorted by position.
using Ring = std::vector<std::pair<uint64_t, uint32_t>>;

void AddToRing(Ring& ring, const SetWeight& set, uint32_t index) {
  Ring points;
  for (uint32_t i = 0; i < kRingPoints * set.weight; ++i) {
    points.emplace_back(HashPoint(set.id, i), index);
  }
  std::sort(points.begin(), points.end());
  const size_t middle = ring.size();
  ring.insert(ring.end(), points.begin(), points.end());
  std::inplace_merge(ring.begin(), ring.begin() + static_cast<std::ptrdiff_t>(middle), ring.end());
}

Owners RingOwners(const Ring& ring, const Sets& sets, const BucketPositions& buckets) {
  Owners out(kNumBuckets);
  size_t p = 0;
  for (const auto& [pos, b] : buckets.sorted) {
    while (p < ring.size() && ring[p].first < pos) ++p;
    out[b] = sets[ring[p < ring.size() ? p : 0].second].id;  // past the last point: wrap around
  }
  return out;
}

int32_t JumpConsistentHash(uint64_t key, int32_t num_buckets) {
  int64_t b = -1;
  int64_t j = 0;
  while (j < num_buckets) {
    b = j;
    key = key * 2862933555777941757ULL + 1;
    j = static_cast<int64_t>(static_cast<double>(b + 1) * (static_cast<double>(1LL << 31) /
                                                           static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<int32_t>(b);
}

Owners JumpOwners(const Sets& sets) {
  Owners out(kNumBuckets);
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    out[b] = sets[JumpConsistentHash(HashBucket(b), static_cast<int32_t>(sets.size()))].id;
  }
  return out;
}

struct Cell {
  double join_sum = 0;
  double join_max = 0;
  int joins = 0;
  double leave_sum = 0;
  double leave_max = 0;
  int leaves = 0;
  double dev_max = -1e9;
  double dev_min = 1e9;
  double dev_buckets = 0;  // max |count - share|
  uint64_t cross = 0;
  bool used = false;
};

enum Scheme { kAssign, kRing, kJump, kSchemes };
const char* const kSchemeNames[kSchemes] = {"assign", "ring128", "jump"};

struct Table {
  Cell cells[kMaxSets + 1][kSchemes];
};

void RecordBalance(Cell& cell, const Owners& owners, const Sets& sets) {
  const std::vector<uint32_t> counts = CountPerSet(owners, sets);
  const std::vector<double> shares = ExactShares(sets);
  for (size_t i = 0; i < sets.size(); ++i) {
    const double dev = (counts[i] - shares[i]) / shares[i] * 100;
    cell.dev_max = std::max(cell.dev_max, dev);
    cell.dev_min = std::min(cell.dev_min, dev);
    cell.dev_buckets = std::max(cell.dev_buckets, std::abs(counts[i] - shares[i]));
  }
  cell.used = true;
}

// Moved buckets / the joiner's share; counts buckets that went to anyone but the joiner.
void RecordJoin(Cell& cell, const Owners& before, const Owners& after, const Sets& sets_after) {
  const SetWeight& joined = sets_after.back();
  const double share = ExactShares(sets_after).back();
  uint32_t moved = 0;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (before[b] == after[b]) continue;
    ++moved;
    if (after[b] != joined.id) ++cell.cross;
  }
  const double ratio = moved / share;
  cell.join_sum += ratio;
  cell.join_max = std::max(cell.join_max, ratio);
  ++cell.joins;
}

void RecordLeave(Cell& cell, const Owners& before, const Owners& after, ReplicaSetId left,
                 double share) {
  uint32_t moved = 0;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (before[b] == after[b]) continue;
    ++moved;
    if (before[b] != left) ++cell.cross;
  }
  const double ratio = moved / share;
  cell.leave_sum += ratio;
  cell.leave_max = std::max(cell.leave_max, ratio);
  ++cell.leaves;
}

void RunSeed(uint64_t seed, bool equal, const BucketPositions& buckets, Table& table) {
  SeededRng rng(seed * 2 + (equal ? 0 : 1));
  auto weight = [&] { return equal ? 1u : static_cast<uint32_t>(1 + rng.Uniform(10)); };
  // The kMaxSets + 1 sets, in joining order.
  Sets all;
  while (all.size() <= kMaxSets) {
    const ReplicaSetId id(rng.Next() | 1);
    if (std::none_of(all.begin(), all.end(), [&](const SetWeight& s) { return s.id == id; })) {
      all.push_back({id, weight()});
    }
  }
  Sets sets = {all[0]};
  Owners assign = Assign(Owners(kNumBuckets), sets);
  Ring ring;
  AddToRing(ring, all[0], 0);
  for (uint32_t n = 1; n <= kMaxSets; ++n) {
    // State with n sets: sets == all[0..n), assign is its map, ring its ring.
    const Owners ring_owners = RingOwners(ring, all, buckets);
    const Owners jump_owners = JumpOwners(sets);
    Cell* cells = table.cells[n];
    RecordBalance(cells[kAssign], assign, sets);
    RecordBalance(cells[kRing], ring_owners, sets);
    if (equal) RecordBalance(cells[kJump], jump_owners, sets);

    if (n >= 2) {  // leaves: a random set (assign, ring), the last one (jump)
      const uint32_t victim = static_cast<uint32_t>(rng.Uniform(n));
      const double share = ExactShares(sets)[victim];
      Sets left = sets;
      left.erase(left.begin() + victim);
      RecordLeave(cells[kAssign], assign, Assign(assign, left), sets[victim].id, share);
      Ring ring_left = ring;
      std::erase_if(ring_left, [&](const auto& p) { return p.second == victim; });
      RecordLeave(cells[kRing], ring_owners, RingOwners(ring_left, all, buckets), sets[victim].id,
                  share);
      if (equal) {
        const Sets jump_left(sets.begin(), sets.end() - 1);
        RecordLeave(cells[kJump], jump_owners, JumpOwners(jump_left), sets.back().id,
                    ExactShares(sets).back());
      }
    }

    // Join of set n+1; the joined state is the next iteration's.
    sets.push_back(all[n]);
    Owners assign_next = Assign(assign, sets);
    RecordJoin(cells[kAssign], assign, assign_next, sets);
    assign = std::move(assign_next);
    AddToRing(ring, all[n], n);
    RecordJoin(cells[kRing], ring_owners, RingOwners(ring, all, buckets), sets);
    if (equal) RecordJoin(cells[kJump], jump_owners, JumpOwners(sets), sets);
  }
}

std::string Ratio(double sum, int count) {
  if (count == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", sum / count);
  return buf;
}

std::string Dev(const Cell& c) {
  if (!c.used) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f/%+.1f", c.dev_max, c.dev_min);
  return buf;
}

std::string Count(const Cell& c, bool any) {
  if (!any) return "n/a";
  return std::to_string(c.cross);
}

void PrintRow(const char* label, const Cell* cells, bool equal) {
  std::printf("%5s |", label);
  for (int s = 0; s < kSchemes; ++s) {
    const bool na = s == kJump && !equal;
    std::printf(" %7s", na ? "n/a" : Ratio(cells[s].join_sum, cells[s].joins).c_str());
  }
  std::printf(" |");
  for (int s = 0; s < kSchemes; ++s) {
    const bool na = s == kJump && !equal;
    std::printf(" %7s", na ? "n/a" : Ratio(cells[s].leave_sum, cells[s].leaves).c_str());
  }
  std::printf(" |");
  for (int s = 0; s < kSchemes; ++s) std::printf(" %13s", Dev(cells[s]).c_str());
  std::printf(" |");
  for (int s = 0; s < kSchemes; ++s) {
    std::printf(" %6s", Count(cells[s], !(s == kJump && !equal)).c_str());
  }
  std::printf("\n");
}

void Print(const Table& table, bool equal, int seeds) {
  std::printf("\n%s weights, %d seeds%s\n", equal ? "equal" : "random (1..10)", seeds,
              equal ? "" : " (jump: no weights)");
  std::printf(
      "      | join moved / optimum    | leave moved / optimum   |"
      " balance: max/min deviation from share, %%    | moved between staying\n");
  std::printf("    N |");
  for (int k = 0; k < 2; ++k) {
    for (int s = 0; s < kSchemes; ++s) {
      std::printf(" %7s", s == kJump && k == 1 ? "jump*" : kSchemeNames[s]);
    }
    std::printf(" |");
  }
  for (int s = 0; s < kSchemes; ++s) std::printf(" %13s", kSchemeNames[s]);
  std::printf(" |");
  for (int s = 0; s < kSchemes; ++s) std::printf(" %6s", kSchemeNames[s]);
  std::printf("\n");
  for (uint32_t n : {1u, 2u, 3u, 4u, 8u, 16u, 32u, 64u}) {
    PrintRow(std::to_string(n).c_str(), table.cells[n], equal);
  }
  // Worst over N = 1..64: the largest mean ratios, the extreme deviations, all cross moves.
  Cell worst[kSchemes];
  for (int s = 0; s < kSchemes; ++s) {
    double join_worst = 0;
    double leave_worst = 0;
    for (uint32_t n = 1; n <= kMaxSets; ++n) {
      const Cell& c = table.cells[n][s];
      if (c.joins > 0) join_worst = std::max(join_worst, c.join_sum / c.joins);
      if (c.leaves > 0) leave_worst = std::max(leave_worst, c.leave_sum / c.leaves);
      worst[s].dev_max = std::max(worst[s].dev_max, c.dev_max);
      worst[s].dev_min = std::min(worst[s].dev_min, c.dev_min);
      worst[s].cross += c.cross;
      worst[s].used |= c.used;
    }
    worst[s].join_sum = join_worst;
    worst[s].joins = 1;
    worst[s].leave_sum = leave_worst;
    worst[s].leaves = 1;
  }
  PrintRow("worst", worst, equal);
  // The single worst join over all N and seeds, for assign (the 1.02 bound is per join).
  double single = 0;
  double dev_buckets = 0;
  for (uint32_t n = 1; n <= kMaxSets; ++n) {
    single = std::max(single, table.cells[n][kAssign].join_max);
    dev_buckets = std::max(dev_buckets, table.cells[n][kAssign].dev_buckets);
  }
  std::printf(
      "assign, over all N and seeds: worst single join moved %.4f x the optimum; largest\n"
      "|count - share| %.3f buckets\n",
      single, dev_buckets);
}

}  // namespace
}  // namespace shoal::sharding

int main(int argc, char** argv) {
  using namespace shoal::sharding;
  int seeds = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
      seeds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--seeds S]\n", argv[0]);
      return 2;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const BucketPositions buckets;
  for (bool equal : {true, false}) {
    auto table = std::make_unique<Table>();
    for (int seed = 1; seed <= seeds; ++seed) RunSeed(seed, equal, buckets, *table);
    Print(*table, equal, seeds);
  }
  std::printf(
      "\njoin/leave: 1.000 is optimal (exactly the joiner's/leaver's share moves); below 1 means\n"
      "the joiner got (or the leaver had) less than its share. jump*: removing the last set only\n"
      "(jump cannot remove another). %.1f s\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
