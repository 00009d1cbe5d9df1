#include "replicated/lww_map.h"

#include "common/hash.h"

namespace shoal::replicated {

size_t LwwMap::RangeOf(std::string_view key) { return Hash64(key, 0x5eed) % kRanges; }

uint64_t LwwMap::EntryHash(std::string_view key, const Entry& e) {
  uint64_t h = Hash64(key);
  h = Hash64(std::string_view(reinterpret_cast<const char*>(&e.stamp.time.wall), 8), h);
  h = Hash64(std::string_view(reinterpret_cast<const char*>(&e.stamp.time.logical), 4), h);
  const uint64_t o[2] = {e.stamp.origin.hi(), e.stamp.origin.lo()};
  h = Hash64(std::string_view(reinterpret_cast<const char*>(o), sizeof o), h);
  return Hash64(e.value ? std::string_view(*e.value) : std::string_view("\0tomb", 5), h);
}

bool LwwMap::Apply(const Change& c) {
  if (c.stamp.time < horizon_) return false;  // older than collected tombstones
  auto it = entries_.find(c.key);
  const size_t r = RangeOf(c.key);
  if (it != entries_.end()) {
    if (!(it->second.stamp < c.stamp)) return false;
    digests_[r] ^= EntryHash(c.key, it->second);
    if (it->second.value) --live_;
    it->second = Entry{c.value, c.stamp};
  } else {
    it = entries_.emplace(c.key, Entry{c.value, c.stamp}).first;
  }
  if (c.value) ++live_;
  digests_[r] ^= EntryHash(c.key, it->second);
  return true;
}

const std::string* LwwMap::Get(std::string_view key) const {
  auto it = entries_.find(absl::string_view(key.data(), key.size()));
  if (it == entries_.end() || !it->second.value) return nullptr;
  return &*it->second.value;
}

size_t LwwMap::CollectTombstones(HlcTime horizon) {
  if (horizon_ < horizon) horizon_ = horizon;
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.value && it->second.stamp.time < horizon_) {
      digests_[RangeOf(it->first)] ^= EntryHash(it->first, it->second);
      entries_.erase(it++);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

std::vector<size_t> LwwMap::DiffRanges(const std::array<uint64_t, kRanges>& other) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < kRanges; ++i) {
    if (digests_[i] != other[i]) out.push_back(i);
  }
  return out;
}

std::vector<Change> LwwMap::RangeChanges(size_t range) const {
  std::vector<Change> out;
  for (const auto& [k, e] : entries_) {
    if (RangeOf(k) == range) out.push_back(Change{k, e.value, e.stamp});
  }
  return out;
}

}  // namespace shoal::replicated
