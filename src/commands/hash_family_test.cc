// Hash commands, driven directly through their KeyHandlers against a Table (no sockets, no shard).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "commands/families.h"
#include "common/clock.h"
#include "common/keyslot.h"
#include "engine/command.h"
#include "resp/reply_builder.h"
#include "storage/entry.h"
#include "storage/table.h"

namespace shoal::commands {

using namespace engine;  // NOLINT

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
namespace {

std::string Int(int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::string Arr(size_t n) { return "*" + std::to_string(n) + "\r\n"; }
std::string Err(std::string_view s) { return "-" + std::string(s) + "\r\n"; }
const std::string kNil = "$-1\r\n";
const std::string kOk = "+OK\r\n";
const std::string kWrongType = Err(kWrongTypeErr);

// A minimal RESP reader for the replies under test: arrays (*), maps (%) and bulk strings.
struct Node {
  std::string str;
  std::vector<Node> items;
};
Node ReadNode(std::string_view s, size_t* pos) {
  const char type = s[*pos];
  const size_t eol = s.find("\r\n", *pos);
  const int64_t n = std::stoll(std::string(s.substr(*pos + 1, eol - *pos - 1)));
  *pos = eol + 2;
  Node node;
  if (type == '$') {
    node.str = std::string(s.substr(*pos, static_cast<size_t>(n)));
    *pos += static_cast<size_t>(n) + 2;
  } else if (type == '*' || type == '%') {
    const int64_t count = type == '%' ? 2 * n : n;
    for (int64_t i = 0; i < count; ++i) node.items.push_back(ReadNode(s, pos));
  } else {
    ADD_FAILURE() << "unexpected RESP type " << type;
  }
  return node;
}
Node Parse(std::string_view s) {
  size_t pos = 0;
  Node n = ReadNode(s, &pos);
  EXPECT_EQ(pos, s.size());
  return n;
}

class HashTest : public ::testing::Test {
 protected:
  std::string Run(std::vector<std::string> args, int proto = 2) {
    const CommandSpec* spec = nullptr;
    std::string name = args[0];
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const CommandSpec& s : HashCommands()) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      ADD_FAILURE() << "no command " << name;
      return "";
    }
    const int argc = static_cast<int>(args.size());
    EXPECT_TRUE(spec->arity > 0 ? argc == spec->arity : argc >= -spec->arity) << name;
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    resp::ReplyBuilder rb(&out, proto);
    ExecContext ctx{views, &rb, nullptr, &table, clock.NowUnixMillis(), reply_limit};
    spec->key_handler(ctx);
    return out;
  }
  bool Exists(std::string_view key) { return table.Find(KeyBucket(key), key) != nullptr; }
  int64_t reply_limit = 256 << 20;  // client-output-buffer-limit's default
  void PutString(std::string_view key, std::string_view v) {
    table.Put(KeyBucket(key), storage::Entry::NewString(key, v, storage::kNoExpire));
  }
  // Fills `key` with n fields f0..f{n-1} -> v0..v{n-1}.
  void Fill(const std::string& key, int n) {
    std::vector<std::string> args{"HSET", key};
    for (int i = 0; i < n; ++i) {
      args.push_back("f" + std::to_string(i));
      args.push_back("v" + std::to_string(i));
    }
    ASSERT_EQ(Run(args), Int(n));
  }
  // The field -> value pairs of a flat RESP2 field/value array.
  static std::map<std::string, std::string> Pairs(const Node& arr) {
    std::map<std::string, std::string> m;
    for (size_t i = 0; i + 1 < arr.items.size(); i += 2) m[arr.items[i].str] = arr.items[i + 1].str;
    return m;
  }

  // Scans `key` to the end with `opts`; returns how often each field was seen (checking values).
  std::map<std::string, int> ScanAll(const std::string& key, std::vector<std::string> opts,
                                     int* calls) {
    std::map<std::string, int> seen;
    std::string cursor = "0";
    *calls = 0;
    do {
      std::vector<std::string> args{"HSCAN", key, cursor};
      args.insert(args.end(), opts.begin(), opts.end());
      const Node r = Parse(Run(args));
      if (r.items.size() != 2) {
        ADD_FAILURE() << "bad HSCAN reply";
        break;
      }
      cursor = r.items[0].str;
      for (const auto& [f, v] : Pairs(r.items[1])) {
        EXPECT_EQ("v" + f.substr(1), v);
        ++seen[f];
      }
      if (++*calls > 100000) {
        ADD_FAILURE() << "HSCAN does not end";
        break;
      }
    } while (cursor != "0");
    return seen;
  }

  FakeClock clock;
  storage::Table table{&clock, 1};
};

TEST_F(HashTest, SpecTable) {
  std::map<std::string_view, std::pair<int, uint32_t>> want = {
      {"hdel", {-3, kCmdWrite | kCmdFast}},
      {"hexists", {3, kCmdReadOnly | kCmdFast}},
      {"hget", {3, kCmdReadOnly | kCmdFast}},
      {"hgetall", {2, kCmdReadOnly}},
      {"hincrby", {4, kCmdWrite | kCmdDenyOom | kCmdFast}},
      {"hincrbyfloat", {4, kCmdWrite | kCmdDenyOom | kCmdFast}},
      {"hkeys", {2, kCmdReadOnly}},
      {"hlen", {2, kCmdReadOnly | kCmdFast}},
      {"hmget", {-3, kCmdReadOnly | kCmdFast}},
      {"hmset", {-4, kCmdWrite | kCmdDenyOom | kCmdFast}},
      {"hrandfield", {-2, kCmdReadOnly}},
      {"hscan", {-3, kCmdReadOnly}},
      {"hset", {-4, kCmdWrite | kCmdDenyOom | kCmdFast}},
      {"hsetnx", {4, kCmdWrite | kCmdDenyOom | kCmdFast}},
      {"hstrlen", {3, kCmdReadOnly | kCmdFast}},
      {"hvals", {2, kCmdReadOnly}},
  };
  ASSERT_EQ(HashCommands().size(), want.size());
  std::string_view prev;
  for (const CommandSpec& s : HashCommands()) {
    SCOPED_TRACE(s.name);
    EXPECT_LT(prev, s.name);  // sorted
    prev = s.name;
    ASSERT_TRUE(want.count(s.name));
    EXPECT_EQ(s.arity, want[s.name].first);
    EXPECT_EQ(s.flags, want[s.name].second);
    EXPECT_EQ(s.first_key, 1);
    EXPECT_EQ(s.last_key, 1);
    EXPECT_EQ(s.key_step, 1);
    EXPECT_NE(s.key_handler, nullptr);
    EXPECT_EQ(s.conn_handler, nullptr);
    EXPECT_EQ(s.group, "hash");
    EXPECT_FALSE(s.summary.empty());
  }
}

TEST_F(HashTest, SetGetAndFriends) {
  EXPECT_EQ(Run({"HSET", "h", "a", "1", "b", "2"}), Int(2));
  EXPECT_EQ(Run({"HSET", "h", "a", "10", "c", "3"}), Int(1));  // only c is new
  EXPECT_EQ(Run({"HGET", "h", "a"}), Bulk("10"));
  EXPECT_EQ(Run({"HGET", "h", "zz"}), kNil);
  EXPECT_EQ(Run({"HGET", "nokey", "a"}), kNil);
  EXPECT_EQ(Run({"HGET", "nokey", "a"}, 3), "_\r\n");
  EXPECT_EQ(Run({"HLEN", "h"}), Int(3));
  EXPECT_EQ(Run({"HLEN", "nokey"}), Int(0));
  EXPECT_EQ(Run({"HEXISTS", "h", "b"}), Int(1));
  EXPECT_EQ(Run({"HEXISTS", "h", "zz"}), Int(0));
  EXPECT_EQ(Run({"HEXISTS", "nokey", "b"}), Int(0));
  EXPECT_EQ(Run({"HSTRLEN", "h", "a"}), Int(2));
  EXPECT_EQ(Run({"HSTRLEN", "h", "zz"}), Int(0));
  EXPECT_EQ(Run({"HSTRLEN", "nokey", "a"}), Int(0));
  EXPECT_EQ(Run({"HMGET", "h", "a", "zz", "c"}), Arr(3) + Bulk("10") + kNil + Bulk("3"));
  EXPECT_EQ(Run({"HMGET", "nokey", "a", "b"}), Arr(2) + kNil + kNil);
  EXPECT_EQ(Run({"HMGET", "h", "zz"}, 3), Arr(1) + "_\r\n");
  // Binary-safe fields and values.
  const std::string f("f\0\r\n", 4), v("\xff\0v", 3);
  EXPECT_EQ(Run({"HSET", "bin", f, v}), Int(1));
  EXPECT_EQ(Run({"HGET", "bin", f}), Bulk(v));
}

TEST_F(HashTest, HmsetAndArity) {
  EXPECT_EQ(Run({"HMSET", "h", "a", "1", "b", "2"}), kOk);
  EXPECT_EQ(Run({"HMSET", "h", "a", "3"}), kOk);
  EXPECT_EQ(Run({"HGET", "h", "a"}), Bulk("3"));
  EXPECT_EQ(Run({"HLEN", "h"}), Int(2));
  EXPECT_EQ(Run({"HSET", "h", "a", "1", "b"}),
            Err("ERR wrong number of arguments for 'hset' command"));
  EXPECT_EQ(Run({"hmset", "x", "a", "1", "b"}),
            Err("ERR wrong number of arguments for 'hmset' command"));
  EXPECT_FALSE(Exists("x"));
  EXPECT_EQ(Run({"HGET", "h", "b"}), Bulk("2"));  // the failed HSET changed nothing
}

TEST_F(HashTest, SetNx) {
  EXPECT_EQ(Run({"HSETNX", "h", "a", "1"}), Int(1));
  EXPECT_EQ(Run({"HSETNX", "h", "a", "2"}), Int(0));
  EXPECT_EQ(Run({"HGET", "h", "a"}), Bulk("1"));
  EXPECT_EQ(Run({"HSETNX", "h", "b", "2"}), Int(1));
  EXPECT_EQ(Run({"HLEN", "h"}), Int(2));
}

TEST_F(HashTest, DelRemovesEmptyHash) {
  EXPECT_EQ(Run({"HDEL", "nokey", "a"}), Int(0));
  EXPECT_FALSE(Exists("nokey"));
  Run({"HSET", "h", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(Run({"HDEL", "h", "a", "zz", "a"}), Int(1));
  EXPECT_EQ(Run({"HLEN", "h"}), Int(2));
  EXPECT_TRUE(Exists("h"));
  EXPECT_EQ(Run({"HDEL", "h", "b", "c", "b"}), Int(2));
  EXPECT_FALSE(Exists("h"));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(Run({"HGETALL", "h"}), Arr(0));
}

TEST_F(HashTest, MemoryAccountingReturnsToZero) {
  const int64_t empty = table.used_bytes();
  Fill("h", 300);
  EXPECT_GT(table.used_bytes(), empty + 300 * 4);
  std::vector<std::string> del{"HDEL", "h"};
  for (int i = 0; i < 300; ++i) del.push_back("f" + std::to_string(i));
  EXPECT_EQ(Run(del), Int(300));
  EXPECT_FALSE(Exists("h"));
  EXPECT_LT(table.used_bytes(), empty + 64);  // only the bucket's slots remain
}

TEST_F(HashTest, GetAllKeysValsResp2AndResp3) {
  Run({"HSET", "h", "a", "1", "b", "2"});
  const std::string r2 = Run({"HGETALL", "h"});
  EXPECT_EQ(r2.substr(0, 4), "*4\r\n");
  const std::map<std::string, std::string> want = {{"a", "1"}, {"b", "2"}};
  EXPECT_EQ(Pairs(Parse(r2)), want);
  EXPECT_TRUE(r2 == Arr(4) + Bulk("a") + Bulk("1") + Bulk("b") + Bulk("2") ||
              r2 == Arr(4) + Bulk("b") + Bulk("2") + Bulk("a") + Bulk("1"));

  const std::string r3 = Run({"HGETALL", "h"}, 3);
  EXPECT_TRUE(r3 == "%2\r\n" + Bulk("a") + Bulk("1") + Bulk("b") + Bulk("2") ||
              r3 == "%2\r\n" + Bulk("b") + Bulk("2") + Bulk("a") + Bulk("1"))
      << r3;

  const std::string keys = Run({"HKEYS", "h"}, 3);
  EXPECT_TRUE(keys == Arr(2) + Bulk("a") + Bulk("b") || keys == Arr(2) + Bulk("b") + Bulk("a"));
  const std::string vals = Run({"HVALS", "h"}, 3);
  EXPECT_TRUE(vals == Arr(2) + Bulk("1") + Bulk("2") || vals == Arr(2) + Bulk("2") + Bulk("1"));

  EXPECT_EQ(Run({"HGETALL", "nokey"}), Arr(0));
  EXPECT_EQ(Run({"HGETALL", "nokey"}, 3), "%0\r\n");
  EXPECT_EQ(Run({"HKEYS", "nokey"}, 3), Arr(0));
  EXPECT_EQ(Run({"HVALS", "nokey"}, 3), Arr(0));
}

TEST_F(HashTest, WrongType) {
  PutString("s", "hello");
  const std::vector<std::vector<std::string>> cmds = {
      {"HSET", "s", "a", "1"},
      {"HMSET", "s", "a", "1"},
      {"HSETNX", "s", "a", "1"},
      {"HGET", "s", "a"},
      {"HMGET", "s", "a"},
      {"HDEL", "s", "a"},
      {"HGETALL", "s"},
      {"HKEYS", "s"},
      {"HVALS", "s"},
      {"HEXISTS", "s", "a"},
      {"HLEN", "s"},
      {"HSTRLEN", "s", "a"},
      {"HINCRBY", "s", "a", "1"},
      {"HINCRBYFLOAT", "s", "a", "1"},
      {"HRANDFIELD", "s"},
      {"HRANDFIELD", "s", "0"},
      {"HRANDFIELD", "s", "-3", "WITHVALUES"},
      {"HSCAN", "s", "0"},
  };
  for (const auto& c : cmds) EXPECT_EQ(Run(c), kWrongType) << c[0];
  ASSERT_NE(table.Find(KeyBucket("s"), "s"), nullptr);
  EXPECT_EQ(table.Find(KeyBucket("s"), "s")->str(), "hello");
}

TEST_F(HashTest, IncrBy) {
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "5"}), Int(5));
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "-7"}), Int(-2));
  EXPECT_EQ(Run({"HGET", "h", "n"}), Bulk("-2"));
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "x"}), Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "1.5"}), Err("ERR value is not an integer or out of range"));

  Run({"HSET", "h", "s", "abc", "sp", " 1", "big", "9223372036854775807", "small",
       "-9223372036854775808"});
  EXPECT_EQ(Run({"HINCRBY", "h", "s", "1"}), Err("ERR hash value is not an integer"));
  EXPECT_EQ(Run({"HINCRBY", "h", "sp", "1"}), Err("ERR hash value is not an integer"));
  EXPECT_EQ(Run({"HINCRBY", "h", "big", "1"}), Err("ERR increment or decrement would overflow"));
  EXPECT_EQ(Run({"HINCRBY", "h", "big", "-1"}), Int(9223372036854775806));
  EXPECT_EQ(Run({"HINCRBY", "h", "small", "-1"}), Err("ERR increment or decrement would overflow"));
  EXPECT_EQ(Run({"HINCRBY", "h", "small", "0"}), Int(INT64_MIN));
  EXPECT_EQ(Run({"HGET", "h", "s"}), Bulk("abc"));  // unchanged after the error

  // A failed HINCRBY on a missing key creates nothing.
  EXPECT_EQ(Run({"HINCRBY", "nokey", "n", "x"}),
            Err("ERR value is not an integer or out of range"));
  EXPECT_FALSE(Exists("nokey"));
}

TEST_F(HashTest, IncrByFloat) {
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "10.5"}), Bulk("10.5"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "0.1"}), Bulk("10.6"));
  EXPECT_EQ(Run({"HGET", "h", "f"}), Bulk("10.6"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "g", "5.0e3"}), Bulk("5000"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "g", "-5000"}), Bulk("0"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "g", "-0.0"}), Bulk("0"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "g", "-1.25"}), Bulk("-1.25"));
  // An integer value written by HINCRBY is a valid float.
  Run({"HINCRBY", "h", "i", "17179869184"});
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "i", "1.5"}), Bulk("17179869185.5"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "i", "0x10"}), Bulk("17179869201.5"));  // strtold hex

  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "abc"}), Err("ERR value is not a valid float"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", ""}), Err("ERR value is not a valid float"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", " 1"}), Err("ERR value is not a valid float"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "nan"}), Err("ERR value is not a valid float"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "inf"}), Err("ERR value is NaN or Infinity"));
  Run({"HSET", "h", "s", "abc", "big", "1e4932"});
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "s", "1"}), Err("ERR hash value is not a float"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "big", "1e4932"}),
            Err("ERR increment would produce NaN or Infinity"));
  EXPECT_EQ(Run({"HGET", "h", "f"}), Bulk("10.6"));
  EXPECT_EQ(Run({"HINCRBYFLOAT", "nokey", "f", "x"}), Err("ERR value is not a valid float"));
  EXPECT_FALSE(Exists("nokey"));
}

TEST_F(HashTest, RandField) {
  EXPECT_EQ(Run({"HRANDFIELD", "nokey"}), kNil);
  EXPECT_EQ(Run({"HRANDFIELD", "nokey"}, 3), "_\r\n");
  EXPECT_EQ(Run({"HRANDFIELD", "nokey", "5"}), Arr(0));
  EXPECT_EQ(Run({"HRANDFIELD", "nokey", "-5", "WITHVALUES"}, 3), Arr(0));

  Fill("h", 10);
  const Node one = Parse(Run({"HRANDFIELD", "h"}));
  EXPECT_EQ(one.str.substr(0, 1), "f");
  EXPECT_EQ(Run({"HRANDFIELD", "h", "0"}), Arr(0));

  // Positive count: distinct fields, at most the hash's size.
  for (int count : {1, 3, 9, 10, 25}) {
    const Node r = Parse(Run({"HRANDFIELD", "h", std::to_string(count)}));
    const size_t want = static_cast<size_t>(std::min(count, 10));
    ASSERT_EQ(r.items.size(), want);
    std::set<std::string> distinct;
    for (const Node& n : r.items) distinct.insert(n.str);
    EXPECT_EQ(distinct.size(), want);
  }
  // Negative count: exactly |count| draws, repetitions allowed.
  const Node many = Parse(Run({"HRANDFIELD", "h", "-50"}));
  ASSERT_EQ(many.items.size(), 50u);
  std::set<std::string> seen;
  for (const Node& n : many.items) seen.insert(n.str);
  EXPECT_LE(seen.size(), 10u);
  EXPECT_GT(seen.size(), 1u);  // 50 draws all equal: probability 10^-49

  // WITHVALUES: a flat array in RESP2, pairs in RESP3.
  const Node flat = Parse(Run({"HRANDFIELD", "h", "3", "withvalues"}));
  ASSERT_EQ(flat.items.size(), 6u);
  for (auto [f, v] : Pairs(flat)) EXPECT_EQ("v" + f.substr(1), v);
  const Node nested = Parse(Run({"HRANDFIELD", "h", "-4", "WITHVALUES"}, 3));
  ASSERT_EQ(nested.items.size(), 4u);
  for (const Node& p : nested.items) {
    ASSERT_EQ(p.items.size(), 2u);
    EXPECT_EQ("v" + p.items[0].str.substr(1), p.items[1].str);
  }
  const Node whole = Parse(Run({"HRANDFIELD", "h", "100", "WITHVALUES"}, 3));
  EXPECT_EQ(whole.items.size(), 10u);

  EXPECT_EQ(Run({"HRANDFIELD", "h", "x"}), Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(Run({"HRANDFIELD", "h", "1", "foo"}), Err("ERR syntax error"));
  EXPECT_EQ(Run({"HRANDFIELD", "h", "1", "WITHVALUES", "x"}), Err("ERR syntax error"));
  EXPECT_EQ(Run({"HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"}),
            Err("ERR value is out of range"));
  EXPECT_EQ(Run({"HRANDFIELD", "h", "-9223372036854775808"}),
            Err("ERR value is out of range, must be between -9223372036854775807 and "
                "9223372036854775807"));
}

TEST_F(HashTest, ScanSmallHashIsOneReply) {
  EXPECT_EQ(Run({"HSCAN", "nokey", "0"}), Arr(2) + Bulk("0") + Arr(0));
  Fill("h", 100);
  const Node r = Parse(Run({"HSCAN", "h", "0", "COUNT", "5"}));
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0].str, "0");
  const auto pairs = Pairs(r.items[1]);
  EXPECT_EQ(pairs.size(), 100u);
  for (const auto& [f, v] : pairs) EXPECT_EQ("v" + f.substr(1), v);

  const Node m = Parse(Run({"HSCAN", "h", "0", "MATCH", "f1?", "NOVALUES"}, 3));
  EXPECT_EQ(m.items[0].str, "0");
  std::set<std::string> got;
  for (const Node& n : m.items[1].items) got.insert(n.str);
  std::set<std::string> want;
  for (int i = 10; i < 20; ++i) want.insert("f" + std::to_string(i));
  EXPECT_EQ(got, want);

  EXPECT_EQ(Run({"HSCAN", "h", "x"}), Err("ERR invalid cursor"));
  EXPECT_EQ(Run({"HSCAN", "h", " 1"}), Err("ERR invalid cursor"));
  EXPECT_EQ(Run({"HSCAN", "h", "0", "COUNT", "0"}), Err("ERR syntax error"));
  EXPECT_EQ(Run({"HSCAN", "h", "0", "COUNT", "x"}),
            Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(Run({"HSCAN", "h", "0", "COUNT"}), Err("ERR syntax error"));
  EXPECT_EQ(Run({"HSCAN", "h", "0", "FOO"}), Err("ERR syntax error"));
}

TEST_F(HashTest, ScanLargeHashReturnsEveryField) {
  Fill("h", 1000);
  int calls = 0;
  std::map<std::string, int> seen = ScanAll("h", {}, &calls);
  EXPECT_EQ(seen.size(), 1000u);
  for (const auto& [f, n] : seen) EXPECT_GE(n, 1) << f;
  EXPECT_GT(calls, 50);  // about 10 fields per call
  EXPECT_LT(calls, 200);

  seen = ScanAll("h", {"COUNT", "100"}, &calls);
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_GE(calls, 10);
  EXPECT_LT(calls, 20);

  // A count larger than the hash: one call.
  seen = ScanAll("h", {"COUNT", "5000"}, &calls);
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(calls, 1);
}

TEST_F(HashTest, ScanLargeHashMatchAndNoValues) {
  Fill("h", 1000);
  int calls = 0;
  const std::map<std::string, int> seen = ScanAll("h", {"MATCH", "f9*", "COUNT", "50"}, &calls);
  std::set<std::string> want = {"f9"};
  for (int i = 90; i < 100; ++i) want.insert("f" + std::to_string(i));
  for (int i = 900; i < 1000; ++i) want.insert("f" + std::to_string(i));
  std::set<std::string> got;
  for (const auto& [f, n] : seen) got.insert(f);
  EXPECT_EQ(got, want);

  std::set<std::string> keys;
  std::string cursor = "0";
  do {
    const Node r = Parse(Run({"HSCAN", "h", cursor, "NOVALUES", "COUNT", "64"}, 3));
    cursor = r.items[0].str;
    for (const Node& n : r.items[1].items) {
      EXPECT_EQ(n.str[0], 'f');  // fields only
      keys.insert(n.str);
    }
  } while (cursor != "0");
  EXPECT_EQ(keys.size(), 1000u);
}

TEST_F(HashTest, ScanSurvivesChangesBetweenCalls) {
  Fill("h", 1000);
  std::map<std::string, int> seen;
  std::string cursor = "0";
  int round = 0;
  do {
    const Node r = Parse(Run({"HSCAN", "h", cursor}));
    cursor = r.items[0].str;
    for (const auto& [f, v] : Pairs(r.items[1])) ++seen[f];
    // Grow the hash (forcing rehashes) and delete fields other than f0..f999.
    for (int i = 0; i < 20; ++i) {
      Run({"HSET", "h", "x" + std::to_string(round) + "_" + std::to_string(i), "y"});
    }
    if (round > 0) Run({"HDEL", "h", "x" + std::to_string(round - 1) + "_0"});
    ++round;
  } while (cursor != "0" && round < 100000);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(seen["f" + std::to_string(i)], 1) << i;  // present throughout: exactly once
  }
}

TEST_F(HashTest, ScanCursorPastTheEnd) {
  Fill("h", 200);
  EXPECT_EQ(Run({"HSCAN", "h", "18446744073709551615"}), Arr(2) + Bulk("0") + Arr(0));
  EXPECT_EQ(Run({"HSCAN", "h", "18446744073709551616"}), Err("ERR invalid cursor"));
}

}  // namespace
}  // namespace shoal::commands

namespace shoal::commands {
namespace {

// A count whose reply could never be sent is refused at once with an error, before any of it is
// built (it used to build gigabytes, then drop the client when the output buffer overflowed).
TEST_F(HashTest, RandFieldRefusesRepliesOverTheOutputLimit) {
  Fill("h", 10);
  const std::string huge = Run({"HRANDFIELD", "h", "-1000000000", "WITHVALUES"});
  EXPECT_EQ(huge.rfind("-ERR the reply would take about ", 0), 0u) << huge;
  EXPECT_NE(huge.find("client-output-buffer-limit"), std::string::npos) << huge;
  EXPECT_EQ(Run({"HRANDFIELD", "h", "-1000000000"}).rfind("-ERR the reply would take", 0), 0u);
  // Under the limit: answered as before.
  EXPECT_EQ(Parse(Run({"HRANDFIELD", "h", "-1000", "WITHVALUES"})).items.size(), 2000u);
  // A positive count is capped by the hash's size, so only the hash's own size matters.
  EXPECT_EQ(Parse(Run({"HRANDFIELD", "h", "1000000000000", "WITHVALUES"})).items.size(), 20u);
  reply_limit = 100;
  EXPECT_EQ(Run({"HRANDFIELD", "h", "1000", "WITHVALUES"}).rfind("-ERR the reply would", 0), 0u);
  EXPECT_EQ(Parse(Run({"HRANDFIELD", "h", "2"})).items.size(), 2u);
  reply_limit = 0;  // no limit: nothing is refused
  EXPECT_EQ(Parse(Run({"HRANDFIELD", "h", "-5000"})).items.size(), 5000u);
}

}  // namespace
}  // namespace shoal::commands
