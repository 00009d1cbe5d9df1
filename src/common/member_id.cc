#include "common/member_id.h"

namespace shoal {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

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

}  // namespace shoal
