#include "common/glob.h"

#include <cctype>
#include <utility>

namespace shoal {

bool GlobMatch(std::string_view pat, std::string_view str, bool nocase) {
  auto lower = [&](char c) {
    return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
  };
  size_t p = 0, s = 0;
  while (p < pat.size()) {
    switch (pat[p]) {
      case '*': {
        while (p + 1 < pat.size() && pat[p + 1] == '*') ++p;
        if (p + 1 == pat.size()) return true;
        for (size_t k = s; k <= str.size(); ++k) {
          if (GlobMatch(pat.substr(p + 1), str.substr(k), nocase)) return true;
        }
        return false;
      }
      case '?':
        if (s >= str.size()) return false;
        ++s;
        break;
      case '[': {
        if (s >= str.size()) return false;
        ++p;
        const bool negate = p < pat.size() && pat[p] == '^';
        if (negate) ++p;
        bool match = false;
        while (p < pat.size() && pat[p] != ']') {
          if (pat[p] == '\\' && p + 1 < pat.size()) {
            ++p;
            if (lower(pat[p]) == lower(str[s])) match = true;
          } else if (p + 2 < pat.size() && pat[p + 1] == '-') {
            char a = lower(pat[p]), b = lower(pat[p + 2]);
            if (a > b) std::swap(a, b);
            const char c = lower(str[s]);
            if (c >= a && c <= b) match = true;
            p += 2;
          } else if (lower(pat[p]) == lower(str[s])) {
            match = true;
          }
          ++p;
        }
        if (negate) match = !match;
        if (!match) return false;
        ++s;
        if (p >= pat.size()) return true;  // unterminated class: Redis treats end as ']'
        break;
      }
      case '\\':
        if (p + 1 < pat.size()) ++p;
        [[fallthrough]];
      default:
        if (s >= str.size() || lower(pat[p]) != lower(str[s])) return false;
        ++s;
        break;
    }
    ++p;
  }
  return s == str.size();
}

}  // namespace shoal
