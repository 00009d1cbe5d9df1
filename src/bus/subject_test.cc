#include "bus/subject.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace shoal::bus {
namespace {

TEST(Subject, ValidSubjectsAndPatterns) {
  for (const char* s : {"a", "a.b", "orders.eu.created", "a-b_c.1.ü"}) {
    EXPECT_TRUE(ValidateSubject(s).ok()) << s;
    EXPECT_TRUE(ValidatePattern(s).ok()) << s;
  }
  for (const char* p : {"*", ">", "a.>", "*.b", "a.*.c", "*.*.>", "a.*"}) {
    EXPECT_TRUE(ValidatePattern(p).ok()) << p;
    EXPECT_FALSE(ValidateSubject(p).ok()) << p;
  }
}

TEST(Subject, InvalidOnesSayWhy) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c : std::vector<Case>{{"", "empty"},
                                         {".", "token 1 is empty"},
                                         {"a.", "token 2 is empty"},
                                         {".a", "token 1 is empty"},
                                         {"a..b", "token 2 is empty"},
                                         {"a b", "whitespace"},
                                         {"a.\tb", "whitespace"},
                                         {"a.>.b", "'>' may only be the last token"},
                                         {">.a", "'>' may only be the last token"},
                                         {"a*", "mixes a wildcard"},
                                         {"a.b>", "mixes a wildcard"}}) {
    const Status s = ValidatePattern(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.error().code(), RoutingErrc::kInvalidSubject);
    EXPECT_NE(s.error().message().find(c.why), std::string::npos) << s.error().message();
  }
  const Status s = ValidateSubject("a.*");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("not allowed in a subject"), std::string::npos);
  std::string deep = "a";
  for (size_t i = 0; i < kMaxTokens; ++i) deep += ".a";
  EXPECT_FALSE(ValidateSubject(deep).ok());
  EXPECT_FALSE(ValidatePattern(deep).ok());
}

TEST(Subject, Matches) {
  EXPECT_TRUE(Matches("a.b", "a.b"));
  EXPECT_FALSE(Matches("a.b", "a.c"));
  EXPECT_FALSE(Matches("a.b", "a.b.c"));
  EXPECT_FALSE(Matches("a.b.c", "a.b"));
  EXPECT_TRUE(Matches("a.>", "a.b"));
  EXPECT_TRUE(Matches("a.>", "a.b.c.d"));
  EXPECT_FALSE(Matches("a.>", "a"));
  EXPECT_FALSE(Matches("a.>", "b.c"));
  EXPECT_TRUE(Matches(">", "a"));
  EXPECT_TRUE(Matches(">", "a.b.c"));
  EXPECT_TRUE(Matches("*.b", "a.b"));
  EXPECT_TRUE(Matches("*.b", "x.b"));
  EXPECT_FALSE(Matches("*.b", "b"));
  EXPECT_FALSE(Matches("*.b", "a.b.c"));
  EXPECT_TRUE(Matches("a.*.c", "a.b.c"));
  EXPECT_FALSE(Matches("a.*.c", "a.c"));
  EXPECT_FALSE(Matches("a.*.c", "a.b.x.c"));
  EXPECT_TRUE(Matches("*", "a"));
  EXPECT_FALSE(Matches("*", "a.b"));
  EXPECT_TRUE(Matches("*.>", "a.b"));
  EXPECT_FALSE(Matches("*.>", "a"));
  // Invalid either side: no match.
  EXPECT_FALSE(Matches("a..b", "a..b"));
  EXPECT_FALSE(Matches("*", ""));
  EXPECT_FALSE(Matches("a.*", "a.*"));
  EXPECT_FALSE(Matches(">", "a. b"));
}

std::vector<int> Sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(SubjectIndex, InsertMatchErase) {
  SubjectIndex<int> index;
  EXPECT_TRUE(*index.Insert("a.b", 1));
  EXPECT_FALSE(*index.Insert("a.b", 1));  // same subscription
  EXPECT_TRUE(*index.Insert("a.b", 2));
  EXPECT_TRUE(*index.Insert("a.*", 1));  // same id through another pattern: another subscription
  EXPECT_TRUE(*index.Insert("a.>", 3));
  EXPECT_TRUE(*index.Insert(">", 4));
  EXPECT_TRUE(*index.Insert("*.b", 5));
  EXPECT_TRUE(*index.Insert("a.*.c", 6));
  EXPECT_EQ(index.Count(), 7u);

  const Result<bool> bad = index.Insert("a..b", 9);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), RoutingErrc::kInvalidSubject);
  EXPECT_EQ(index.Count(), 7u);

  EXPECT_EQ(Sorted(index.Match("a.b")), (std::vector<int>{1, 1, 2, 3, 4, 5}));
  EXPECT_EQ(Sorted(index.Match("a.b.c")), (std::vector<int>{3, 4, 6}));
  EXPECT_EQ(Sorted(index.Match("a")), (std::vector<int>{4}));
  EXPECT_EQ(Sorted(index.Match("x.b")), (std::vector<int>{4, 5}));
  EXPECT_TRUE(index.Match("a..b").empty());  // invalid subjects match nothing
  EXPECT_TRUE(index.Match("a.*").empty());

  EXPECT_TRUE(index.Erase("a.b", 1));
  EXPECT_FALSE(index.Erase("a.b", 1));
  EXPECT_FALSE(index.Erase("a.b.c", 1));
  EXPECT_FALSE(index.Erase("a.*", 2));
  EXPECT_FALSE(index.Erase("a..", 2));
  EXPECT_EQ(Sorted(index.Match("a.b")), (std::vector<int>{1, 2, 3, 4, 5}));
  for (auto [p, id] : std::vector<std::pair<const char*, int>>{
           {"a.b", 2}, {"a.*", 1}, {"a.>", 3}, {">", 4}, {"*.b", 5}, {"a.*.c", 6}}) {
    EXPECT_TRUE(index.Erase(p, id)) << p;
  }
  EXPECT_TRUE(index.Empty());
  EXPECT_TRUE(index.Match("a.b").empty());
  EXPECT_TRUE(*index.Insert("a.b", 1));  // the pruned trie is still usable
  EXPECT_EQ(index.Match("a.b"), std::vector<int>{1});
}

TEST(SubjectIndex, StringIds) {
  SubjectIndex<std::string> index;
  ASSERT_TRUE(*index.Insert("orders.>", "audit"));
  ASSERT_TRUE(*index.Insert("orders.*.created", "mailer"));
  std::vector<std::string> got = index.Match("orders.eu.created");
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"audit", "mailer"}));
}

// Many subscribers on one node: 10,000 on distinct subjects and 10,000 on one subject.
TEST(SubjectIndex, TenThousandsOfSubscriptions) {
  SubjectIndex<int> index;
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_TRUE(*index.Insert("user." + std::to_string(i) + ".updated", i));
    ASSERT_TRUE(*index.Insert("news", i));
  }
  ASSERT_TRUE(*index.Insert("user.*.updated", -1));
  EXPECT_EQ(index.Count(), 20'001u);
  EXPECT_EQ(Sorted(index.Match("user.1234.updated")), (std::vector<int>{-1, 1234}));
  EXPECT_EQ(index.Match("news").size(), 10'000u);
  for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(index.Erase("news", i));
  EXPECT_TRUE(index.Match("news").empty());
  EXPECT_EQ(index.Count(), 10'001u);
}

// SubjectIndex::Match against a brute-force Matches over every subscription.
TEST(SubjectIndex, RandomizedAgainstBruteForce) {
  std::mt19937_64 rng(20261123);
  const std::vector<std::string> alphabet = {"a", "b", "c", "d"};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto subject = [&] {
    std::string s = alphabet[pick(alphabet.size())];
    const size_t n = pick(4);
    for (size_t i = 0; i < n; ++i) s += "." + alphabet[pick(alphabet.size())];
    return s;
  };
  auto pattern = [&] {
    const size_t n = 1 + pick(4);
    std::string p;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) p += ".";
      const size_t r = pick(10);
      if (i + 1 == n && r == 0) {
        p += ">";
      } else if (r < 3) {
        p += "*";
      } else {
        p += alphabet[pick(alphabet.size())];
      }
    }
    return p;
  };
  for (int round = 0; round < 20; ++round) {
    SubjectIndex<int> index;
    std::vector<std::pair<std::string, int>> subs;
    for (int i = 0; i < 400; ++i) {
      std::string p = pattern();
      const int id = static_cast<int>(pick(50));
      const bool fresh = std::find(subs.begin(), subs.end(), std::make_pair(p, id)) == subs.end();
      ASSERT_EQ(*index.Insert(p, id), fresh) << p;
      if (fresh) subs.emplace_back(std::move(p), id);
    }
    // Erase a random third.
    for (size_t i = 0; i < subs.size();) {
      if (pick(3) == 0) {
        ASSERT_TRUE(index.Erase(subs[i].first, subs[i].second));
        subs.erase(subs.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    ASSERT_EQ(index.Count(), subs.size());
    for (int q = 0; q < 200; ++q) {
      const std::string s = subject();
      std::vector<int> want;
      for (const auto& [p, id] : subs) {
        if (Matches(p, s)) want.push_back(id);
      }
      ASSERT_EQ(Sorted(index.Match(s)), Sorted(want)) << s;
    }
  }
}

}  // namespace
}  // namespace shoal::bus
