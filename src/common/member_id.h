// A node's identity, used by every layer that names nodes: membership, sharding, the bus, the
// replicated maps and the wire formats.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "common/rng.h"

namespace shoal {

// A member's identity: 128 random bits chosen once per node (kept in its data dir), so it survives
// restarts and address changes and never collides in practice. The all-zero id means "none".
class MemberId {
 public:
  constexpr MemberId() = default;
  constexpr MemberId(uint64_t hi, uint64_t lo) : hi_(hi), lo_(lo) {}

  // From exactly 16 bytes, big-endian (e.g. SecureRandomBytes(16)); nullopt on another length.
  static std::optional<MemberId> FromBytes(std::string_view bytes);
  // 32 lowercase hex digits; nullopt on anything else.
  static std::optional<MemberId> Parse(std::string_view hex);
  // A non-zero id from `rng` (simulation and tests; production uses FromBytes(SecureRandomBytes)).
  static MemberId Random(Rng& rng);

  constexpr uint64_t hi() const { return hi_; }
  constexpr uint64_t lo() const { return lo_; }
  constexpr bool empty() const { return hi_ == 0 && lo_ == 0; }
  std::string ToBytes() const;   // 16 bytes, big-endian
  std::string ToString() const;  // 32 hex digits
  // The first 8 hex digits: enough to tell members apart in logs and traces.
  std::string ShortString() const { return ToString().substr(0, 8); }

  constexpr auto operator<=>(const MemberId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const MemberId& id) {
    return os << id.ToString();
  }

 private:
  uint64_t hi_ = 0;
  uint64_t lo_ = 0;
};

}  // namespace shoal

template <>
struct std::hash<shoal::MemberId> {
  size_t operator()(const shoal::MemberId& id) const {
    return static_cast<size_t>(id.hi() ^ (id.lo() * 0x9e3779b97f4a7c15ULL));
  }
};
