// PLACEHOLDER (replaced by the real assignment): see assignment.cc.
#pragma once
#include <span>
#include <vector>
#include "common/ids.h"
namespace shoal::sharding {
struct SetWeight {
  ReplicaSetId id;
  uint32_t weight;
};
std::vector<ReplicaSetId> Assign(std::span<const ReplicaSetId> current,
                                 std::span<const SetWeight> sets);
}  // namespace shoal::sharding
