#include "sharding/assignment.h"

#include <algorithm>
#include <map>

namespace shoal::sharding {

std::vector<ReplicaSetId> Assign(std::span<const ReplicaSetId> current,
                                 std::span<const SetWeight> sets) {
  std::vector<ReplicaSetId> out(current.begin(), current.end());
  if (sets.empty()) return out;
  uint64_t total = 0;
  for (const auto& s : sets) total += s.weight;
  std::map<ReplicaSetId, int64_t> quota, have;
  int64_t given = 0;
  for (const auto& s : sets) {
    quota[s.id] = static_cast<int64_t>(kNumBuckets * s.weight / total);
    given += quota[s.id];
  }
  for (size_t i = 0; given < kNumBuckets; ++i, ++given) quota[sets[i % sets.size()].id]++;
  std::vector<uint32_t> free;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    auto q = quota.find(out[b]);
    if (q == quota.end() || have[out[b]] >= q->second) {
      free.push_back(b);
    } else {
      ++have[out[b]];
    }
  }
  size_t f = 0;
  for (const auto& s : sets) {
    while (have[s.id] < quota[s.id] && f < free.size()) {
      out[free[f++]] = s.id;
      ++have[s.id];
    }
  }
  return out;
}

}  // namespace shoal::sharding
