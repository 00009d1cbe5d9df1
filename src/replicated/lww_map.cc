#include "replicated/lww_map.h"

#include <cstring>

#include "common/hash.h"

namespace shoal::replicated {

LwwMap::LwwMap() : groups_(kGroups) {}

uint64_t LwwMap::KeyHash(std::string_view key) { return Hash64(key, 0x5eed); }

uint64_t LwwMap::EntryHash(std::string_view key, const Stamp& s) {
  char buf[28];
  std::memcpy(buf, &s.time.wall, 8);
  std::memcpy(buf + 8, &s.time.logical, 4);
  const uint64_t hi = s.origin.hi(), lo = s.origin.lo();
  std::memcpy(buf + 12, &hi, 8);
  std::memcpy(buf + 20, &lo, 8);
  return Hash64(std::string_view(buf, sizeof buf), Hash64(key));
}

Change LwwMap::ToChange(std::string_view key, const Entry& e) {
  Change c;
  c.key = std::string(key);
  if (e.live) {
    c.value = e.value;
    c.expire_ms = e.expire_ms;
  }
  c.stamp = e.stamp;
  return c;
}

bool LwwMap::Apply(const Change& c) {
  if (c.stamp.time < horizon_) return false;  // older than collected tombstones
  Group& g = groups_[GroupOf(KeyHash(c.key))];
  auto it = g.entries.find(c.key);
  if (it != g.entries.end()) {
    Entry& e = it->second;
    if (!(e.stamp < c.stamp)) return false;
    g.digest ^= EntryHash(c.key, e.stamp);
    if (e.live) --live_;
    wire_bytes_ -= WireBytes(c.key.size(), e.value.size());
  } else {
    it = g.entries.emplace(c.key, Entry{}).first;
    ++entries_;
  }
  Entry& e = it->second;
  e.stamp = c.stamp;
  e.live = c.value.has_value();
  e.value = c.value ? *c.value : std::string();
  e.expire_ms = e.live ? c.expire_ms : kNoExpire;
  if (e.live) ++live_;
  wire_bytes_ += WireBytes(c.key.size(), e.value.size());
  g.digest ^= EntryHash(c.key, e.stamp);
  return true;
}

const LwwMap::Entry* LwwMap::Find(std::string_view key) const {
  const Group& g = groups_[GroupOf(KeyHash(key))];
  auto it = g.entries.find(absl::string_view(key.data(), key.size()));
  return it == g.entries.end() ? nullptr : &it->second;
}

const LwwMap::Entry* LwwMap::Get(std::string_view key, int64_t now_ms) const {
  const Entry* e = Find(key);
  if (e == nullptr || !e->live) return nullptr;
  if (e->expire_ms != kNoExpire && e->expire_ms <= now_ms) return nullptr;
  return e;
}

size_t LwwMap::ExpireSome(int64_t now_ms, size_t budget,
                          const std::function<void(std::string_view key)>& on_expired) {
  size_t n = 0;
  for (size_t i = 0; i < budget && i < kGroups; ++i) {
    Group& g = groups_[expire_cursor_];
    expire_cursor_ = (expire_cursor_ + 1) % kGroups;
    for (auto& [k, e] : g.entries) {
      if (!e.live || e.expire_ms == kNoExpire || e.expire_ms > now_ms) continue;
      wire_bytes_ -= WireBytes(k.size(), e.value.size());
      e.live = false;
      e.value = std::string();
      e.expire_ms = kNoExpire;
      wire_bytes_ += WireBytes(k.size(), 0);
      --live_;
      ++n;
      if (on_expired) on_expired(k);
    }
  }
  return n;
}

size_t LwwMap::CollectTombstones(HlcTime horizon) {
  if (horizon_ < horizon) horizon_ = horizon;
  size_t n = 0;
  for (Group& g : groups_) {
    for (auto it = g.entries.begin(); it != g.entries.end();) {
      if (!it->second.live && it->second.stamp.time < horizon_) {
        g.digest ^= EntryHash(it->first, it->second.stamp);
        wire_bytes_ -= WireBytes(it->first.size(), 0);
        g.entries.erase(it++);
        --entries_;
        ++n;
      } else {
        ++it;
      }
    }
  }
  return n;
}

void LwwMap::Clear() {
  for (Group& g : groups_) {
    g.entries.clear();
    g.digest = 0;
  }
  live_ = entries_ = 0;
  wire_bytes_ = 0;
  // A horizon kept from the old contents would refuse the replacement's older live entries.
  horizon_ = HlcTime{};
  expire_cursor_ = 0;
}

uint64_t LwwMap::Digest(int bits, uint32_t node) const {
  if (bits <= kGroupBits) {
    const uint32_t span = 1u << (kGroupBits - bits);
    const uint32_t first = bits == 0 ? 0 : node * span;
    uint64_t d = 0;
    for (uint32_t i = 0; i < span; ++i) d ^= groups_[first + i].digest;
    return d;
  }
  // Deeper than a group: scan the group for the entries under this prefix.
  const int shift = 64 - bits;
  const Group& g = groups_[node >> (bits - kGroupBits)];
  uint64_t d = 0;
  for (const auto& [k, e] : g.entries) {
    if ((KeyHash(k) >> shift) == node) d ^= EntryHash(k, e.stamp);
  }
  return d;
}

void LwwMap::ForEachInLeaf(
    uint32_t leaf, const std::function<void(const std::string& key, const Entry& e)>& fn) const {
  const Group& g = groups_[leaf >> (kLeafBits - kGroupBits)];
  for (const auto& [k, e] : g.entries) {
    if (LeafOf(k) == leaf) fn(k, e);
  }
}

void LwwMap::ForEach(const std::function<bool(const std::string& key, const Entry& e)>& fn) const {
  for (const Group& g : groups_) {
    for (const auto& [k, e] : g.entries) {
      if (!fn(k, e)) return;
    }
  }
}

void LwwMap::ForEachInGroup(
    uint32_t group, const std::function<void(const std::string& key, const Entry& e)>& fn) const {
  for (const auto& [k, e] : groups_[group].entries) fn(k, e);
}

uint64_t LwwMap::Scan(uint64_t cursor, size_t count, int64_t now_ms,
                      const std::function<void(const std::string& key, const Entry& e)>& fn) const {
  size_t seen = 0;
  uint64_t g = cursor;
  while (g < kGroups) {
    for (const auto& [k, e] : groups_[g].entries) {
      if (!e.live || (e.expire_ms != kNoExpire && e.expire_ms <= now_ms)) continue;
      fn(k, e);
      ++seen;
    }
    ++g;
    if (seen >= count) break;
  }
  return g >= kGroups ? 0 : g;
}

}  // namespace shoal::replicated
