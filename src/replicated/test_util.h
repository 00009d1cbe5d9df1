// Helpers shared by the replicated layer's tests: changes with readable stamps, and a map's whole
// contents as a comparable value.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "replicated/lww_map.h"

namespace shoal::replicated::testing {

inline Stamp At(uint64_t t, uint64_t node, uint32_t logical = 0) {
  return Stamp{HlcTime{t, logical}, MemberId(0, node)};
}
inline Change Put(std::string k, std::string v, uint64_t t, uint64_t node,
                  int64_t expire_ms = kNoExpire) {
  return Change{std::move(k), std::move(v), At(t, node), expire_ms};
}
inline Change Del(std::string k, uint64_t t, uint64_t node) {
  return Change{std::move(k), std::nullopt, At(t, node)};
}

// Everything a map holds, in key order: (value, stamp, expiry, live) per key.
using Contents = std::map<std::string, std::tuple<std::string, Stamp, int64_t, bool>>;
inline Contents ContentsOf(const LwwMap& m) {
  Contents c;
  m.ForEach([&c](const std::string& k, const LwwMap::Entry& e) {
    EXPECT_TRUE(c.emplace(k, std::make_tuple(e.value, e.stamp, e.expire_ms, e.live)).second)
        << "ForEach visited " << k << " twice";
    return true;
  });
  return c;
}

}  // namespace shoal::replicated::testing
