// HashObj: the value of a Redis hash (field -> value). Owned by its Entry.
// Not thread-safe. Keeps an estimate of its own heap footprint so the table can account memory.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/hash.h"

namespace shoal::storage {

class HashObj {
 public:
  // Transparent hashing by std::string_view (Debian's Abseil has its own string_view type, so its
  // default string hash does not take std::string_view).
  struct FieldHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return Hash64(s); }
  };
  struct FieldEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  using Map = absl::flat_hash_map<std::string, std::string, FieldHash, FieldEq>;

  size_t size() const { return map_.size(); }
  const std::string* Get(std::string_view field) const {
    auto it = map_.find(field);
    return it == map_.end() ? nullptr : &it->second;
  }
  // Returns true if the field is new.
  bool Set(std::string_view field, std::string_view value);
  bool Erase(std::string_view field);
  const Map& map() const { return map_; }
  // Approximate heap bytes: strings + table slots.
  size_t bytes() const { return bytes_ + map_.capacity() * (sizeof(Map::slot_type) + 1); }

 private:
  static size_t StrBytes(std::string_view s) { return s.size() > 15 ? s.size() + 1 : 0; }
  Map map_;
  size_t bytes_ = 0;
};

}  // namespace shoal::storage
