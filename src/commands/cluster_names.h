// Redis Cluster node names for shoal members.
//
// Redis Cluster names a node with 40 hex digits (a SHA-1 sized id) and clients check that length
// (CLUSTER NODES, CLUSTER SLOTS, MOVED parsers). A shoal member id has 32 hex digits, so the name
// is the member id followed by 8 hex digits of a hash of it: stable for the member's lifetime,
// unique as the id is, and mapped back by ParseNodeName (which checks those 8 digits). The empty
// member id (no control plane: unit tests, a node without cluster) is named by 40 zeros.
//
// Used by the CLUSTER commands, MOVED/ASK redirections and the admin API; header-only.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/hash.h"
#include "membership/types.h"

namespace shoal::commands {

inline constexpr size_t kNodeNameLength = 40;

inline std::string NodeName(const membership::MemberId& id) {
  if (id.empty()) return std::string(kNodeNameLength, '0');
  const auto check = static_cast<uint32_t>(Hash64(id.ToBytes(), /*seed=*/0x5e0a1c1u));
  return fmt::format("{}{:08x}", id.ToString(), check);
}

// The member named by `name` (as NodeName writes it: lower case), or nullopt.
inline std::optional<membership::MemberId> ParseNodeName(std::string_view name) {
  if (name.size() != kNodeNameLength) return std::nullopt;
  std::optional<membership::MemberId> id = membership::MemberId::Parse(name.substr(0, 32));
  if (!id || NodeName(*id) != name) return std::nullopt;
  return id;
}

}  // namespace shoal::commands
