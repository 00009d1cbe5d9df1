#include "common/glob.h"

#include <utility>

#include "common/ascii.h"

namespace shoal {
namespace {

char Fold(char c, bool nocase) { return nocase ? AsciiToLower(c) : c; }

// Matches the one pattern element at `p` (not a '*') against `c`; `*next` is set to the position
// after the element. An unterminated class ends at the end of the pattern, as in Redis.
bool MatchElement(std::string_view pat, size_t p, char c, bool nocase, size_t* next) {
  const char fc = Fold(c, nocase);
  switch (pat[p]) {
    case '?':
      *next = p + 1;
      return true;
    case '[': {
      ++p;
      const bool negate = p < pat.size() && pat[p] == '^';
      if (negate) ++p;
      bool match = false;
      while (p < pat.size() && pat[p] != ']') {
        if (pat[p] == '\\' && p + 1 < pat.size()) {
          ++p;
          if (Fold(pat[p], nocase) == fc) match = true;
        } else if (p + 2 < pat.size() && pat[p + 1] == '-') {
          char a = Fold(pat[p], nocase), b = Fold(pat[p + 2], nocase);
          if (a > b) std::swap(a, b);
          if (fc >= a && fc <= b) match = true;
          p += 2;
        } else if (Fold(pat[p], nocase) == fc) {
          match = true;
        }
        ++p;
      }
      *next = p < pat.size() ? p + 1 : p;  // past the ']', or the end of an unterminated class
      return match != negate;
    }
    case '\\':
      if (p + 1 < pat.size()) ++p;
      [[fallthrough]];
    default:
      *next = p + 1;
      return Fold(pat[p], nocase) == fc;
  }
}

}  // namespace

bool GlobMatch(std::string_view pat, std::string_view str, bool nocase) {
  constexpr size_t kNone = std::string_view::npos;
  size_t p = 0, s = 0;
  size_t star_p = kNone;  // pattern position just after the latest '*'
  size_t star_s = 0;      // string position that star's run currently ends at
  while (true) {
    if (p < pat.size() && pat[p] == '*') {
      while (p < pat.size() && pat[p] == '*') ++p;
      if (p == pat.size()) return true;  // a trailing '*' takes the rest
      star_p = p;
      star_s = s;
      continue;
    }
    if (p == pat.size() && s == str.size()) return true;
    size_t next = 0;
    if (p < pat.size() && s < str.size() && MatchElement(pat, p, str[s], nocase, &next)) {
      p = next;
      ++s;
      continue;
    }
    // Mismatch: let the latest star swallow one more character and retry from there.
    if (star_p == kNone || star_s >= str.size()) return false;
    s = ++star_s;
    p = star_p;
  }
}

}  // namespace shoal
