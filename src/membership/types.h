// Membership vocabulary: the member record a node advertises, member states, the
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
#include "common/member_id.h"
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

using shoal::MemberId;

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
