#include "membership/types.h"

#include <algorithm>

namespace shoal::membership {
namespace {

class ErrcCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "membership"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::kBadAuth:
        return "authentication failed";
      case Errc::kMalformed:
        return "malformed message";
      case Errc::kBadVersion:
        return "unsupported wire version";
      case Errc::kInvalidArgument:
        return "invalid argument";
    }
    return "unknown error";
  }
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

const std::error_category& ErrcCategory() {
  static const ErrcCategoryImpl category;
  return category;
}

std::optional<MemberId> MemberId::FromBytes(std::string_view bytes) {
  if (bytes.size() != 16) return std::nullopt;
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | static_cast<uint8_t>(bytes[i]);
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | static_cast<uint8_t>(bytes[i]);
  return MemberId(hi, lo);
}

std::optional<MemberId> MemberId::Parse(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  uint64_t parts[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    const int d = HexDigit(hex[i]);
    if (d < 0) return std::nullopt;
    parts[i / 16] = (parts[i / 16] << 4) | static_cast<uint64_t>(d);
  }
  return MemberId(parts[0], parts[1]);
}

MemberId MemberId::Random(Rng& rng) {
  for (;;) {
    MemberId id(rng.Next(), rng.Next());
    if (!id.empty()) return id;
  }
}

std::string MemberId::ToBytes() const {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(hi_ >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<char>(lo_ >> (56 - 8 * i));
  return out;
}

std::string MemberId::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) out[i] = kHex[(hi_ >> (60 - 4 * i)) & 0xf];
  for (int i = 0; i < 16; ++i) out[16 + i] = kHex[(lo_ >> (60 - 4 * i)) & 0xf];
  return out;
}

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
