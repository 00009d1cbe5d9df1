#include "common/glob.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace shoal {
namespace {

// Redis's recursive stringmatchlen, kept as the reference the linear matcher must agree with.
// Exponential on adversarial patterns: only ever called on short inputs.
bool Reference(const char* pattern, int plen, const char* string, int slen, bool nocase) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  while (plen && slen) {
    switch (pattern[0]) {
      case '*':
        while (plen && pattern[1] == '*') {
          pattern++;
          plen--;
        }
        if (plen == 1) return true;
        while (slen) {
          if (Reference(pattern + 1, plen - 1, string, slen, nocase)) return true;
          string++;
          slen--;
        }
        return false;
      case '?':
        string++;
        slen--;
        break;
      case '[': {
        pattern++;
        plen--;
        const bool negate = plen > 0 && pattern[0] == '^';
        if (negate) {
          pattern++;
          plen--;
        }
        bool match = false;
        while (true) {
          if (plen >= 2 && pattern[0] == '\\') {
            pattern++;
            plen--;
            if (nocase ? lower(pattern[0]) == lower(string[0]) : pattern[0] == string[0]) {
              match = true;
            }
          } else if (plen > 0 && pattern[0] == ']') {
            break;
          } else if (plen == 0) {
            pattern--;
            plen++;
            break;
          } else if (plen >= 3 && pattern[1] == '-') {
            char start = pattern[0], end = pattern[2], c = string[0];
            if (start > end) std::swap(start, end);
            if (nocase) {
              start = lower(start);
              end = lower(end);
              c = lower(c);
            }
            pattern += 2;
            plen -= 2;
            if (c >= start && c <= end) match = true;
          } else if (nocase ? lower(pattern[0]) == lower(string[0]) : pattern[0] == string[0]) {
            match = true;
          }
          pattern++;
          plen--;
        }
        if (negate) match = !match;
        if (!match) return false;
        string++;
        slen--;
        break;
      }
      case '\\':
        if (plen >= 2) {
          pattern++;
          plen--;
        }
        [[fallthrough]];
      default:
        if (nocase ? lower(pattern[0]) != lower(string[0]) : pattern[0] != string[0]) return false;
        string++;
        slen--;
        break;
    }
    pattern++;
    plen--;
    if (slen == 0) {
      while (plen && pattern[0] == '*') {
        pattern++;
        plen--;
      }
      break;
    }
  }
  return plen == 0 && slen == 0;
}

bool Ref(const std::string& p, const std::string& s, bool nocase = false) {
  return Reference(p.data(), static_cast<int>(p.size()), s.data(), static_cast<int>(s.size()),
                   nocase);
}

TEST(Glob, RedisExamples) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "heeeello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("h[b-a]llo", "hbllo"));  // reversed ranges are swapped
  EXPECT_TRUE(GlobMatch("h\\*llo", "h*llo"));
  EXPECT_FALSE(GlobMatch("h\\*llo", "hello"));
  EXPECT_TRUE(GlobMatch("[\\]]", "]"));
  EXPECT_TRUE(GlobMatch("user:*:name", "user:42:name"));
  EXPECT_FALSE(GlobMatch("user:*:name", "user:42:names"));
  EXPECT_TRUE(GlobMatch("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(GlobMatch("*a*b*", "xxbxxaxx"));
  EXPECT_TRUE(GlobMatch("HELLO", "hello", true));
  EXPECT_TRUE(GlobMatch("MAXMEM*", "maxmemory", true));
  EXPECT_FALSE(GlobMatch("HELLO", "hello"));
  // An unterminated class ends at the pattern's end: it matches one character, no more.
  EXPECT_TRUE(GlobMatch("[ab", "a"));
  EXPECT_FALSE(GlobMatch("[ab", "ab"));
  EXPECT_TRUE(GlobMatch("x\\", "x\\"));  // a trailing backslash is literal
}

TEST(Glob, AgreesWithRedisOnRandomPatterns) {
  std::mt19937 rng(20221);
  const std::string alphabet = "ab*?[]^-\\";
  const std::string text = "abc-]^";
  for (int i = 0; i < 200'000; ++i) {
    std::string p, s;
    const int plen = static_cast<int>(rng() % 9), slen = static_cast<int>(rng() % 9);
    for (int k = 0; k < plen; ++k) p += alphabet[rng() % alphabet.size()];
    for (int k = 0; k < slen; ++k) s += text[rng() % text.size()];
    const bool nocase = rng() % 4 == 0;
    if (nocase) {
      for (char& c : s) {
        if (rng() % 2) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
    }
    // One deliberate difference: Redis's loop never starts on an empty string, so even "*"
    // fails to match "" (KEYS and SCAN special-case "*" and hide it); here stars match "".
    const bool expected =
        s.empty() ? p.find_first_not_of('*') == std::string::npos : Ref(p, s, nocase);
    ASSERT_EQ(GlobMatch(p, s, nocase), expected)
        << "pattern '" << p << "' string '" << s << "' nocase " << nocase;
  }
}

// The patterns that made a recursive matcher run for minutes: each call here is O(|p| × |s|).
// Before the matcher became linear this test did not finish.
TEST(Glob, AdversarialPatternsStayLinear) {
  std::string pattern;
  for (int i = 0; i < 24; ++i) pattern += "a*";
  pattern += "b";
  const std::string key(64, 'a');
  for (int i = 0; i < 300; ++i) EXPECT_FALSE(GlobMatch(pattern, key));

  std::string many_stars;
  for (int i = 0; i < 5000; ++i) many_stars += "*?";
  many_stars += "[b]";
  const std::string long_key(100'000, 'a');
  EXPECT_FALSE(GlobMatch(many_stars, long_key));
  EXPECT_TRUE(GlobMatch(many_stars, long_key + "b"));

  std::string classes;
  for (int i = 0; i < 200; ++i) classes += "*[a-z]";
  classes += "!";
  EXPECT_FALSE(GlobMatch(classes, std::string(10'000, 'q')));
  EXPECT_TRUE(GlobMatch(classes, std::string(300, 'q') + "!"));
}

}  // namespace
}  // namespace shoal
