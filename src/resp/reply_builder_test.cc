#include "resp/reply_builder.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <string>

namespace shoal::resp {
namespace {

using namespace std::string_literals;

// Runs `write` against a fresh builder for `protocol` and returns what it wrote.
template <typename F>
std::string Write(int protocol, F write) {
  std::string out;
  ReplyBuilder rb(&out, protocol);
  write(rb);
  return out;
}

// Same bytes for RESP2 and RESP3.
template <typename F>
std::string Both(F write) {
  std::string v2 = Write(2, write);
  EXPECT_EQ(v2, Write(3, write));
  return v2;
}

TEST(ReplyBuilder, SimpleStringsAndErrors) {
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Ok(); }), "+OK\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.SimpleString("PONG"); }), "+PONG\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.SimpleString(""); }), "+\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Error("ERR unknown command 'foo'"); }),
            "-ERR unknown command 'foo'\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Error("WRONGTYPE Operation against a key"); }),
            "-WRONGTYPE Operation against a key\r\n");
}

TEST(ReplyBuilder, NewlinesInLinesBecomeSpaces) {
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Error("ERR bad\r\nthing\n"); }), "-ERR bad  thing \r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.SimpleString("a\rb"); }), "+a b\r\n");
}

TEST(ReplyBuilder, Integers) {
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Integer(0); }), ":0\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Integer(42); }), ":42\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Integer(-7); }), ":-7\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Integer(std::numeric_limits<int64_t>::max()); }),
            ":9223372036854775807\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Integer(std::numeric_limits<int64_t>::min()); }),
            ":-9223372036854775808\r\n");
}

TEST(ReplyBuilder, BulkStringsAreBinarySafe) {
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Bulk("hello"); }), "$5\r\nhello\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Bulk(""); }), "$0\r\n\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.Bulk("a\r\n\0b"s); }), "$5\r\na\r\n\0b\r\n"s);
  const std::string big(100000, 'z');
  EXPECT_EQ(Both([&](ReplyBuilder& rb) { rb.Bulk(big); }), "$100000\r\n" + big + "\r\n");
}

TEST(ReplyBuilder, Nulls) {
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.NullBulk(); }), "$-1\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.NullBulk(); }), "_\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.NullArray(); }), "*-1\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.NullArray(); }), "_\r\n");
}

TEST(ReplyBuilder, AggregateHeaders) {
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.ArrayHeader(0); }), "*0\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.ArrayHeader(12345); }), "*12345\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.MapHeader(3); }), "*6\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.MapHeader(3); }), "%3\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.SetHeader(2); }), "*2\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.SetHeader(2); }), "~2\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.PushHeader(3); }), "*3\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.PushHeader(3); }), ">3\r\n");
}

TEST(ReplyBuilder, HelloStyleMap) {
  auto hello = [](ReplyBuilder& rb) {
    rb.MapHeader(2);
    rb.Bulk("server");
    rb.Bulk("shoal");
    rb.Bulk("proto");
    rb.Integer(rb.protocol());
  };
  EXPECT_EQ(Write(2, hello), "*4\r\n$6\r\nserver\r\n$5\r\nshoal\r\n$5\r\nproto\r\n:2\r\n");
  EXPECT_EQ(Write(3, hello), "%2\r\n$6\r\nserver\r\n$5\r\nshoal\r\n$5\r\nproto\r\n:3\r\n");
}

TEST(ReplyBuilder, Doubles) {
  auto d = [](int protocol, double v) {
    return Write(protocol, [v](ReplyBuilder& rb) { rb.Double(v); });
  };
  EXPECT_EQ(d(3, 1.5), ",1.5\r\n");
  EXPECT_EQ(d(2, 1.5), "$3\r\n1.5\r\n");
  EXPECT_EQ(d(3, 3.0), ",3\r\n");
  EXPECT_EQ(d(3, -0.0), ",-0\r\n");
  EXPECT_EQ(d(3, 0.1), ",0.10000000000000001\r\n");  // Redis 7.0 prints %.17g
  EXPECT_EQ(d(2, 10.5), "$4\r\n10.5\r\n");
  EXPECT_EQ(d(3, 1e17), ",1e+17\r\n");
  EXPECT_EQ(d(3, 1e16), ",10000000000000000\r\n");
  EXPECT_EQ(d(3, std::numeric_limits<double>::infinity()), ",inf\r\n");
  EXPECT_EQ(d(3, -std::numeric_limits<double>::infinity()), ",-inf\r\n");
  EXPECT_EQ(d(3, std::numeric_limits<double>::quiet_NaN()), ",nan\r\n");
  EXPECT_EQ(d(2, std::numeric_limits<double>::infinity()), "$3\r\ninf\r\n");
  EXPECT_EQ(d(2, -std::numeric_limits<double>::infinity()), "$4\r\n-inf\r\n");
  // Same digits as printf("%.17g") across magnitudes.
  for (double v : {1.1, -2.5e-300, 123456789.123456789, 5e-324, 1.7976931348623157e308, 1e-5,
                   0.3333333333333333, 9007199254740993.0, 1e21, 42.0}) {
    char buf[64];
    int len = std::snprintf(buf, sizeof(buf), ",%.17g\r\n", v);
    EXPECT_EQ(d(3, v), std::string(buf, static_cast<size_t>(len))) << v;
  }
}

TEST(ReplyBuilder, Booleans) {
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.Bool(true); }), "#t\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.Bool(false); }), "#f\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.Bool(true); }), ":1\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.Bool(false); }), ":0\r\n");
}

TEST(ReplyBuilder, Verbatim) {
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.Verbatim("Some string"); }),
            "=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(Write(3, [](ReplyBuilder& rb) { rb.Verbatim("# x\r\n", "mkd"); }),
            "=9\r\nmkd:# x\r\n\r\n");
  EXPECT_EQ(Write(2, [](ReplyBuilder& rb) { rb.Verbatim("Some string"); }),
            "$11\r\nSome string\r\n");
}

TEST(ReplyBuilder, BulkArray) {
  EXPECT_EQ(Both([](ReplyBuilder& rb) {
              rb.BulkArray({"a", "", "ccc"});
            }),
            "*3\r\n$1\r\na\r\n$0\r\n\r\n$3\r\nccc\r\n");
  EXPECT_EQ(Both([](ReplyBuilder& rb) { rb.BulkArray({}); }), "*0\r\n");
}

TEST(ReplyBuilder, AppendsToExistingOutput) {
  std::string out = "+QUEUED\r\n";
  ReplyBuilder rb(&out, 2);
  EXPECT_EQ(rb.out(), &out);
  rb.Integer(1);
  rb.NullBulk();
  rb.set_protocol(3);
  rb.NullBulk();
  EXPECT_EQ(out, "+QUEUED\r\n:1\r\n$-1\r\n_\r\n");
}

}  // namespace
}  // namespace shoal::resp
