// Command tests without sockets: a Server on an ephemeral port would need I/O, so these drive
// the KeyHandlers directly against a Table with a fake clock (the Run({"SET","k","v"}) harness).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/keyslot.h"
#include "engine/command.h"
#include "storage/table.h"

namespace shoal::engine {
namespace {

class Cmd : public ::testing::Test {
 protected:
  std::string Run(std::vector<std::string> args, int proto = 2) {
    const CommandSpec* spec = FindCommand(args[0]);
    if (spec == nullptr) return "<unknown>";
    std::vector<std::string_view> views(args.begin(), args.end());
    const int argc = static_cast<int>(args.size());
    if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
      return "<arity>";
    }
    std::string out;
    resp::ReplyBuilder rb(&out, proto);
    ExecContext ctx{Args(views.data(), views.size()), &rb, nullptr, &table, clock.NowUnixMillis()};
    EXPECT_NE(spec->key_handler, nullptr) << args[0];
    spec->key_handler(ctx);
    return out;
  }
  FakeClock clock;
  storage::Table table{&clock, 1};
};

TEST_F(Cmd, GetSetBasics) {
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"GET", "k"}, 3), "_\r\n");
  EXPECT_EQ(Run({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(Run({"get", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "NX"}), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "XX", "GET"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"SET", "n", "w", "XX"}), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "abc"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "10", "PX", "10"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "9223372036854775807"}),
            "-ERR invalid expire time in 'set' command\r\n");
}

TEST_F(Cmd, SetWithTtlExpiresOnTheFakeClock) {
  EXPECT_EQ(Run({"SET", "k", "v", "PX", "1500"}), "+OK\r\n");
  EXPECT_EQ(Run({"PTTL", "k"}), ":1500\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":2\r\n");  // rounded as Redis
  clock.AdvanceMillis(1499);
  EXPECT_EQ(Run({"GET", "k"}), "$1\r\nv\r\n");
  clock.AdvanceMillis(1);
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":-2\r\n");
}

TEST_F(Cmd, KeepTtlAndPersist) {
  Run({"SET", "k", "v", "EX", "100"});
  Run({"SET", "k", "w", "KEEPTTL"});
  EXPECT_EQ(Run({"TTL", "k"}), ":100\r\n");
  Run({"SET", "k", "x"});
  EXPECT_EQ(Run({"TTL", "k"}), ":-1\r\n");
  Run({"EXPIRE", "k", "50"});
  EXPECT_EQ(Run({"PERSIST", "k"}), ":1\r\n");
  EXPECT_EQ(Run({"PERSIST", "k"}), ":0\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":-1\r\n");
}

TEST_F(Cmd, ExpireOptions) {
  Run({"SET", "k", "v"});
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "XX"}), ":0\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "NX"}), ":1\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "50", "GT"}), ":0\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "50", "LT"}), ":1\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "50", "NX", "XX"}),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
  EXPECT_EQ(Run({"EXPIRE", "nokey", "50"}), ":0\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "-1"}), ":1\r\n");  // a past time deletes
  EXPECT_EQ(Run({"EXISTS", "k"}), ":0\r\n");
  Run({"SET", "k", "v"});
  const int64_t at = clock.NowUnixMillis() / 1000 + 10;
  EXPECT_EQ(Run({"EXPIREAT", "k", std::to_string(at)}), ":1\r\n");
  EXPECT_EQ(Run({"EXPIRETIME", "k"}), ":" + std::to_string(at) + "\r\n");
}

TEST_F(Cmd, Counters) {
  EXPECT_EQ(Run({"INCR", "c"}), ":1\r\n");
  EXPECT_EQ(Run({"INCRBY", "c", "9"}), ":10\r\n");
  EXPECT_EQ(Run({"DECR", "c"}), ":9\r\n");
  EXPECT_EQ(Run({"DECRBY", "c", "10"}), ":-1\r\n");
  Run({"SET", "c", "9223372036854775807"});
  EXPECT_EQ(Run({"INCR", "c"}), "-ERR increment or decrement would overflow\r\n");
  Run({"SET", "s", "abc"});
  EXPECT_EQ(Run({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  Run({"SET", "s", " 1"});
  EXPECT_EQ(Run({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"INCRBY", "c", "1.5"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "10.5"}), "$4\r\n10.5\r\n");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "0.1"}), "$4\r\n10.6\r\n");
  Run({"SET", "g", "5.0e3"});
  EXPECT_EQ(Run({"INCRBYFLOAT", "g", "2.0e2"}), "$4\r\n5200\r\n");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "x"}), "-ERR value is not a valid float\r\n");
}

TEST_F(Cmd, IncrKeepsTtl) {
  Run({"SET", "c", "1", "EX", "100"});
  Run({"INCRBY", "c", "1000"});
  EXPECT_EQ(Run({"TTL", "c"}), ":100\r\n");
  EXPECT_EQ(Run({"GET", "c"}), "$4\r\n1001\r\n");
}

TEST_F(Cmd, AppendStrlenRanges) {
  EXPECT_EQ(Run({"APPEND", "s", "Hello"}), ":5\r\n");
  EXPECT_EQ(Run({"APPEND", "s", " World"}), ":11\r\n");
  EXPECT_EQ(Run({"STRLEN", "s"}), ":11\r\n");
  EXPECT_EQ(Run({"GETRANGE", "s", "0", "4"}), "$5\r\nHello\r\n");
  EXPECT_EQ(Run({"GETRANGE", "s", "-5", "-1"}), "$5\r\nWorld\r\n");
  EXPECT_EQ(Run({"GETRANGE", "s", "5", "3"}), "$0\r\n\r\n");
  EXPECT_EQ(Run({"GETRANGE", "s", "0", "100"}), "$11\r\nHello World\r\n");
  EXPECT_EQ(Run({"SETRANGE", "s", "6", "Redis"}), ":11\r\n");
  EXPECT_EQ(Run({"GET", "s"}), "$11\r\nHello Redis\r\n");
  EXPECT_EQ(Run({"SETRANGE", "z", "3", "ab"}), ":5\r\n");
  EXPECT_EQ(Run({"GET", "z"}), std::string("$5\r\n\0\0\0ab\r\n", 11));
  EXPECT_EQ(Run({"SETRANGE", "z", "-1", "ab"}), "-ERR offset is out of range\r\n");
  EXPECT_EQ(Run({"SETRANGE", "z", "536870912", "ab"}),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
}

TEST_F(Cmd, GetSetGetDelGetEx) {
  EXPECT_EQ(Run({"GETSET", "k", "1"}), "$-1\r\n");
  EXPECT_EQ(Run({"GETSET", "k", "2"}), "$1\r\n1\r\n");
  EXPECT_EQ(Run({"GETEX", "k", "EX", "100"}), "$1\r\n2\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":100\r\n");
  EXPECT_EQ(Run({"GETEX", "k", "PERSIST"}), "$1\r\n2\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":-1\r\n");
  EXPECT_EQ(Run({"GETEX", "k", "FOO"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"GETDEL", "k"}), "$1\r\n2\r\n");
  EXPECT_EQ(Run({"GETDEL", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"SETNX", "k", "a"}), ":1\r\n");
  EXPECT_EQ(Run({"SETNX", "k", "b"}), ":0\r\n");
  EXPECT_EQ(Run({"SETEX", "k", "10", "c"}), "+OK\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":10\r\n");
  EXPECT_EQ(Run({"SETEX", "k", "0", "c"}), "-ERR invalid expire time in 'setex' command\r\n");
  EXPECT_EQ(Run({"PSETEX", "k", "1000", "d"}), "+OK\r\n");
  EXPECT_EQ(Run({"PTTL", "k"}), ":1000\r\n");
}

TEST_F(Cmd, MultiKeyOnOneTable) {
  EXPECT_EQ(Run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(Run({"MGET", "a", "b", "c"}), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
  EXPECT_EQ(Run({"MSETNX", "c", "3", "a", "x"}), ":0\r\n");
  EXPECT_EQ(Run({"GET", "c"}), "$-1\r\n");
  EXPECT_EQ(Run({"MSETNX", "c", "3", "d", "4"}), ":1\r\n");
  EXPECT_EQ(Run({"EXISTS", "a", "b", "a", "zz"}), ":3\r\n");
  EXPECT_EQ(Run({"DEL", "a", "b", "zz"}), ":2\r\n");
  EXPECT_EQ(Run({"RENAME", "c", "e"}), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "e"}), "$1\r\n3\r\n");
  EXPECT_EQ(Run({"RENAMENX", "e", "d"}), ":0\r\n");
  EXPECT_EQ(Run({"RENAME", "nokey", "x"}), "-ERR no such key\r\n");
  EXPECT_EQ(Run({"MSET", "a"}), "<arity>");
}

TEST_F(Cmd, WrongTypeErrors) {
  auto* h = new storage::HashObj();
  h->Set("f", "v");
  table.Put(KeyBucket("h"), storage::Entry::NewHash("h", h, storage::kNoExpire));
  const std::string wrong =
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
  EXPECT_EQ(Run({"GET", "h"}), wrong);
  EXPECT_EQ(Run({"INCR", "h"}), wrong);
  EXPECT_EQ(Run({"APPEND", "h", "x"}), wrong);
  EXPECT_EQ(Run({"TYPE", "h"}), "+hash\r\n");
  EXPECT_EQ(Run({"MGET", "h"}), "*1\r\n$-1\r\n");
  EXPECT_EQ(Run({"SET", "h", "v"}), "+OK\r\n");  // SET overwrites any type
  EXPECT_EQ(Run({"TYPE", "h"}), "+string\r\n");
  EXPECT_EQ(Run({"TYPE", "nokey"}), "+none\r\n");
}

TEST(CommandTable, KeyPositionsAndLookup) {
  const CommandSpec* mset = FindCommand("MsEt");
  ASSERT_NE(mset, nullptr);
  std::vector<std::string_view> a = {"mset", "k1", "v1", "k2", "v2"};
  EXPECT_EQ(KeyPositions(*mset, Args(a.data(), a.size())), (KeyPosList{1, 3}));
  EXPECT_EQ(FindCommand("nosuch"), nullptr);
}

TEST(Parse, Int64StrictLikeRedis) {
  int64_t v;
  EXPECT_TRUE(ParseInt64("-12", &v));
  EXPECT_EQ(v, -12);
  EXPECT_FALSE(ParseInt64("012", &v));
  EXPECT_FALSE(ParseInt64("+1", &v));
  EXPECT_FALSE(ParseInt64(" 1", &v));
  EXPECT_FALSE(ParseInt64("9223372036854775808", &v));
  EXPECT_TRUE(ParseInt64("0", &v));
}

}  // namespace
}  // namespace shoal::engine
