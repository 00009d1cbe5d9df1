// ASCII case folding for command names, options and subcommands (RESP is case-insensitive on
// them, and they are ASCII: no locale is consulted). One copy for every layer; Debian's Abseil
// builds its own string_view, so absl/strings/ascii.h does not take a std::string_view.
#pragma once

#include <string>
#include <string_view>

namespace shoal {

constexpr char AsciiToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
}
constexpr char AsciiToUpper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c & ~0x20) : c;
}

inline std::string AsciiLower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = AsciiToLower(c);
  return r;
}

inline std::string AsciiUpper(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = AsciiToUpper(c);
  return r;
}

constexpr bool AsciiEqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiToLower(a[i]) != AsciiToLower(b[i])) return false;
  }
  return true;
}

}  // namespace shoal
