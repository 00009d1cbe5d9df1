#include "membership/broadcast_queue.h"

#include <utility>

namespace shoal::membership {

void BroadcastQueue::Push(MemberId member, std::string framed, int weight) {
  if (auto it = by_member_.find(member); it != by_member_.end()) {
    queue_.erase(it->second);
    by_member_.erase(it);
  }
  const Key key{0, next_seq_++};
  queue_.emplace(key, Item{member, std::move(framed), weight});
  by_member_.emplace(member, key);
}

void BroadcastQueue::Take(size_t budget, size_t max_count, int limit,
                          std::vector<std::string>* out) {
  constexpr int kMaxMisses = 8;
  size_t used = 0, taken = 0;
  int misses = 0;
  std::vector<std::pair<Key, Item>> resend;
  for (auto it = queue_.begin(); it != queue_.end() && taken < max_count;) {
    const size_t size = it->second.framed.size();
    if (used + size > budget) {
      // A smaller update further down may still fit, but don't walk a long queue to find one.
      if (++misses >= kMaxMisses) break;
      ++it;
      continue;
    }
    used += size;
    ++taken;
    Key key = it->first;
    Item item = std::move(it->second);
    it = queue_.erase(it);
    ++key.transmits;
    out->push_back(item.framed);
    if (key.transmits >= limit * item.weight) {
      by_member_.erase(item.member);
    } else {
      resend.emplace_back(key, std::move(item));
    }
  }
  for (auto& [key, item] : resend) {
    by_member_[item.member] = key;
    queue_.emplace(key, std::move(item));
  }
}

void BroadcastQueue::Clear() {
  queue_.clear();
  by_member_.clear();
}

int BroadcastQueue::TransmitsOf(MemberId member) const {
  auto it = by_member_.find(member);
  return it == by_member_.end() ? -1 : it->second.transmits;
}

}  // namespace shoal::membership
