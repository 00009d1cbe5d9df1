// Membership vocabulary: member ids, the member record a node advertises, member states, the
// immutable member table that worker threads read, member events, and the module's error codes.
// Plain values, no behaviour beyond formatting and lookup; the protocol lives in swim.h.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/ids.h"
#include "common/result.h"
#include "common/rng.h"
#include "common/transport.h"

namespace shoal::membership {

enum class Errc {
  kBadAuth = 1,     // HMAC missing or wrong: not from a holder of the cluster cookie
  kMalformed,       // authenticated (or unauthenticated) bytes that do not decode
  kBadVersion,      // a wire version this build does not speak
  kInvalidArgument  // a caller's mistake (e.g. UpdateSelf with another member's id)
};
SHOAL_ERROR_CATEGORY_DECL(Errc)

}  // namespace shoal::membership

template <>
struct std::is_error_code_enum<shoal::membership::Errc> : std::true_type {};

namespace shoal::membership {

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

// What a node advertises about itself. Owned by that node: only it changes its record (through
// Swim::UpdateSelf), and every change spreads with a higher incarnation.
struct MemberRecord {
  MemberId id;
  Endpoint address;          // cluster address: SWIM over UDP, push-pull and RPC over TCP
  uint16_t client_port = 0;  // RESP clients; 0 = none
  uint16_t http_port = 0;    // admin API; 0 = none
  std::vector<std::string> roles;
  ReplicaSetId replica_set;  // 0 = not in a replica set
  uint32_t weight = 1;       // share of buckets relative to other replica sets
  std::map<std::string, std::string> labels;

  bool operator==(const MemberRecord&) const = default;
};

// SWIM's states, in the order that breaks ties at equal incarnation: a later state wins over an
// earlier one for the same incarnation (suspect beats alive, dead beats suspect, left beats dead).
enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };
std::string_view ToString(MemberState state);

// One row of a member table.
struct Member {
  MemberRecord record;
  MemberState state = MemberState::kAlive;
  Incarnation incarnation;
  // On the owning node's monotonic clock; meaningful only on the node that made the table.
  int64_t state_since_micros = 0;

  bool operator==(const Member&) const = default;
};

// An immutable, versioned copy of one node's view, sorted by id. Published by the thread that
// drives Swim and read by any thread without locks: it never changes after construction.
class MemberTable {
 public:
  MemberTable(uint64_t version, MemberId self, std::vector<Member> members)
      : version_(version), self_(self), members_(std::move(members)) {}

  // Increases with every change the node makes to its view (never repeats for one Swim object).
  uint64_t version() const { return version_; }
  MemberId self() const { return self_; }
  const std::vector<Member>& members() const { return members_; }
  const Member* Find(MemberId id) const;
  size_t CountIn(MemberState state) const;
  // Ids of the members in `state`, ascending.
  std::vector<MemberId> IdsIn(MemberState state) const;

 private:
  uint64_t version_;
  MemberId self_;
  std::vector<Member> members_;
};

// A change of a remote member as seen by this node. Delivered synchronously through
// SwimOutput::OnMemberEvent in the order the core made the changes (a stable order: for the same
// inputs, the same sequence), never for the node itself.
enum class MemberEventKind : uint8_t {
  kJoined,   // first seen (or seen again after it left or was forgotten)
  kSuspect,  // alive -> suspect
  kAlive,    // suspect or dead -> alive (refuted, or back after a partition or restart)
  kDead,     // declared dead (by us or by gossip)
  kLeft,     // left gracefully
  kUpdated,  // alive, and its record changed (new incarnation)
};
std::string_view ToString(MemberEventKind kind);

struct MemberEvent {
  MemberEventKind kind;
  Member member;  // the row after the change
};

}  // namespace shoal::membership

template <>
struct std::hash<shoal::membership::MemberId> {
  size_t operator()(const shoal::membership::MemberId& id) const {
    return static_cast<size_t>(id.hi() ^ (id.lo() * 0x9e3779b97f4a7c15ULL));
  }
};
