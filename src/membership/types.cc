#include "membership/types.h"

#include <algorithm>

namespace shoal::membership {
namespace {

std::string_view DescribeErrc(Errc e) {
  switch (e) {
    case Errc::kBadAuth:
      return "authentication failed";
    case Errc::kMalformed:
      return "malformed message";
    case Errc::kBadVersion:
      return "unsupported wire version";
    case Errc::kInvalidArgument:
      return "invalid argument";
  }
  return "";
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(Errc, "membership", DescribeErrc)

std::string_view ToString(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "unknown";
}

std::string_view ToString(MemberEventKind kind) {
  switch (kind) {
    case MemberEventKind::kJoined:
      return "joined";
    case MemberEventKind::kSuspect:
      return "suspect";
    case MemberEventKind::kAlive:
      return "alive";
    case MemberEventKind::kDead:
      return "dead";
    case MemberEventKind::kLeft:
      return "left";
    case MemberEventKind::kUpdated:
      return "updated";
  }
  return "unknown";
}

const Member* MemberTable::Find(MemberId id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id,
                             [](const Member& m, MemberId v) { return m.record.id < v; });
  return it != members_.end() && it->record.id == id ? &*it : nullptr;
}

size_t MemberTable::CountIn(MemberState state) const {
  return static_cast<size_t>(std::count_if(members_.begin(), members_.end(),
                                           [&](const Member& m) { return m.state == state; }));
}

std::vector<MemberId> MemberTable::IdsIn(MemberState state) const {
  std::vector<MemberId> out;
  for (const Member& m : members_) {
    if (m.state == state) out.push_back(m.record.id);
  }
  return out;
}

}  // namespace shoal::membership
