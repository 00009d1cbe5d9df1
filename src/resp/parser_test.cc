#include "resp/parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::resp {
namespace {

using namespace std::string_literals;
using Command = std::vector<std::string>;

// Everything a client's byte stream produced: the commands, then how parsing ended.
struct Outcome {
  std::vector<Command> commands;
  ParseStatus status = ParseStatus::kNeedMore;  // kNeedMore (stream ended) or kError
  std::string error;
  size_t leftover = 0;  // unconsumed bytes at the end (when not kError)

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{commands:[";
  for (const Command& c : o.commands) {
    os << "[";
    for (const std::string& a : c) os << testing::PrintToString(a) << ",";
    os << "],";
  }
  return os << "] status:" << static_cast<int>(o.status) << " error:" << o.error
            << " leftover:" << o.leftover << "}";
}

// Plays a connection: appends each chunk to its buffer, then parses and drops commands until
// the parser needs more. With `move_buffer`, the buffer is copied to a new address before every
// Parse() call, as a connection's buffer may be reallocated between reads.
Outcome Feed(const std::vector<std::string_view>& chunks, ParserLimits limits = {},
             bool move_buffer = false) {
  Parser parser(limits);
  Outcome out;
  std::string buf;
  for (std::string_view chunk : chunks) {
    buf.append(chunk);
    for (;;) {
      if (move_buffer) {
        std::string copy;
        copy.reserve(buf.size() + 64);
        copy = buf;
        buf.swap(copy);
      }
      ParseStatus status = parser.Parse(buf);
      if (status == ParseStatus::kOk) {
        EXPECT_GT(parser.consumed(), 0u);
        EXPECT_LE(parser.consumed(), buf.size());
        EXPECT_FALSE(parser.args().empty());
        out.commands.emplace_back(parser.args().begin(), parser.args().end());
        buf.erase(0, parser.consumed());
        continue;
      }
      if (status == ParseStatus::kError) {
        EXPECT_EQ(parser.consumed(), 0u);
        EXPECT_EQ(parser.Parse(buf), ParseStatus::kError) << "errors are sticky";
        out.status = status;
        out.error = parser.error();
        return out;
      }
      EXPECT_EQ(parser.consumed(), 0u);
      EXPECT_TRUE(parser.bytes_hint() == 0 || parser.bytes_hint() > buf.size());
      break;
    }
  }
  out.leftover = buf.size();
  return out;
}

Outcome Whole(std::string_view in, ParserLimits limits = {}) { return Feed({in}, limits); }

// Feeds `in` whole, split in two at every byte, in three pieces at every pair of positions (for
// short inputs), and byte by byte; all must agree. Returns the whole-input outcome.
Outcome ParseEverySplit(std::string_view in, ParserLimits limits = {}) {
  const Outcome whole = Whole(in, limits);
  for (size_t i = 1; i < in.size(); ++i) {
    EXPECT_EQ(Feed({in.substr(0, i), in.substr(i)}, limits, /*move_buffer=*/true), whole)
        << "split at " << i << " of " << testing::PrintToString(std::string(in));
  }
  if (in.size() <= 48) {
    for (size_t i = 1; i < in.size(); ++i) {
      for (size_t j = i + 1; j < in.size(); ++j) {
        EXPECT_EQ(Feed({in.substr(0, i), in.substr(i, j - i), in.substr(j)}, limits), whole)
            << "split at " << i << "," << j;
      }
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
  EXPECT_EQ(Feed(bytes, limits, /*move_buffer=*/true), whole) << "byte by byte";
  return whole;
}

Outcome Ok(std::vector<Command> commands, size_t leftover = 0) {
  return Outcome{std::move(commands), ParseStatus::kNeedMore, "", leftover};
}

Outcome Err(std::string error) { return Outcome{{}, ParseStatus::kError, std::move(error), 0}; }

Outcome OkThenErr(std::vector<Command> commands, std::string error) {
  return Outcome{std::move(commands), ParseStatus::kError, std::move(error), 0};
}

std::string Multibulk(const Command& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

// ---- multibulk ----

TEST(Parser, MultibulkCommand) {
  const std::string in = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
  Parser parser;
  ASSERT_EQ(parser.Parse(in), ParseStatus::kOk);
  EXPECT_EQ(parser.consumed(), in.size());
  ASSERT_EQ(parser.args().size(), 3u);
  EXPECT_EQ(parser.args()[0], "SET");
  EXPECT_EQ(parser.args()[1], "key");
  EXPECT_EQ(parser.args()[2], "value");
  EXPECT_EQ(ParseEverySplit(in), Ok({{"SET", "key", "value"}}));
}

TEST(Parser, MultibulkArgsPointIntoInput) {
  const std::string in = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  Parser parser;
  ASSERT_EQ(parser.Parse(in), ParseStatus::kOk);
  for (std::string_view a : parser.args()) {
    EXPECT_GE(a.data(), in.data());
    EXPECT_LE(a.data() + a.size(), in.data() + in.size());
  }
  EXPECT_EQ(parser.args()[1].data(), in.data() + in.find("k\r\n"));
}

TEST(Parser, OnlyOneCommandPerCall) {
  const std::string in = "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPONG\r\n";
  Parser parser;
  ASSERT_EQ(parser.Parse(in), ParseStatus::kOk);
  EXPECT_EQ(parser.consumed(), 14u);
  EXPECT_EQ(parser.args()[0], "PING");
  ASSERT_EQ(parser.Parse(std::string_view(in).substr(14)), ParseStatus::kOk);
  EXPECT_EQ(parser.args()[0], "PONG");
  EXPECT_EQ(parser.Parse(""), ParseStatus::kNeedMore);
  EXPECT_TRUE(parser.args().empty());
}

TEST(Parser, EmptyAndBinaryBulks) {
  EXPECT_EQ(ParseEverySplit("*2\r\n$0\r\n\r\n$0\r\n\r\n"), Ok({{"", ""}}));
  const std::string binary = "a\r\nb\0c\r\n\r\n\0"s;
  EXPECT_EQ(ParseEverySplit(Multibulk({"SET", binary, "\r\n"})), Ok({{"SET", binary, "\r\n"}}));
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  EXPECT_EQ(ParseEverySplit(Multibulk({all_bytes})), Ok({{all_bytes}}));
}

TEST(Parser, IncompleteInputNeedsMore) {
  for (std::string_view in :
       {"*", "*1", "*1\r", "*1\r\n", "*1\r\n$", "*1\r\n$3", "*1\r\n$3\r", "*1\r\n$3\r\n",
        "*1\r\n$3\r\nfoo", "*1\r\n$3\r\nfoo\r", "PING", "PING\r", "*0\r\n*1\r\n$3\r\nfo"}) {
    Parser parser;
    EXPECT_EQ(parser.Parse(in), ParseStatus::kNeedMore) << in;
    EXPECT_EQ(parser.consumed(), 0u) << in;
    EXPECT_EQ(Whole(in), Ok({}, in.size())) << in;
  }
}

TEST(Parser, EmptyRequestsAreSkipped) {
  // "*0", "*-1", empty and blank inline lines produce no command; consumed() covers them.
  const std::string in = "*0\r\n*-1\r\n\r\n\n  \t \r\n*1\r\n$4\r\nPING\r\n";
  Parser parser;
  ASSERT_EQ(parser.Parse(in), ParseStatus::kOk);
  EXPECT_EQ(parser.consumed(), in.size());
  EXPECT_EQ(ParseEverySplit(in), Ok({{"PING"}}));
  EXPECT_EQ(ParseEverySplit("*0\r\n\r\n*-1\r\n"), Ok({}, 11));  // kept until a command ends
}

TEST(Parser, SkippedEmptyRequestsAreNotConsumedOnNeedMore) {
  const std::string in = "*0\r\n\r\n*1\r\n$4\r\nPING\r\n";
  Parser parser;
  ASSERT_EQ(parser.Parse(std::string_view(in).substr(0, 12)), ParseStatus::kNeedMore);
  EXPECT_EQ(parser.consumed(), 0u);
  ASSERT_EQ(parser.Parse(in), ParseStatus::kOk);
  EXPECT_EQ(parser.consumed(), in.size());
  EXPECT_EQ(parser.args()[0], "PING");
}

TEST(Parser, BytesHintTellsTheSizeOfAPendingBulk) {
  Parser parser;
  EXPECT_EQ(parser.Parse("*2\r\n$1\r\na\r\n"), ParseStatus::kNeedMore);
  EXPECT_EQ(parser.bytes_hint(), 0u);  // the next bulk's length is not known yet
  Parser other;
  // "*0\r\n" (4) + "*1\r\n" (4) + "$1000\r\n" (7) + 1000 + "\r\n".
  EXPECT_EQ(other.Parse("*0\r\n*1\r\n$1000\r\nabc"), ParseStatus::kNeedMore);
  EXPECT_EQ(other.bytes_hint(), 1017u);
}

TEST(Parser, PipelineOfManyCommands) {
  std::string in;
  std::vector<Command> expected;
  for (int i = 0; i < 200; ++i) {
    Command cmd = {"SET", "key:" + std::to_string(i), std::string(i % 37, static_cast<char>(i))};
    if (i % 3 == 0) cmd = {"GET", "key:" + std::to_string(i)};
    if (i % 7 == 0) {
      in += "GET key:" + std::to_string(i) + "\r\n";  // inline, mixed in
      cmd = {"GET", "key:" + std::to_string(i)};
    } else {
      in += Multibulk(cmd);
    }
    if (i % 11 == 0) in += "*0\r\n\r\n";
    expected.push_back(cmd);
  }
  EXPECT_EQ(Whole(in), Ok(expected));
  // Every split of the whole pipeline is too slow with buffer moves; split the first 600 bytes
  // at every position and the rest in the middle.
  for (size_t i = 1; i < 600; ++i) {
    EXPECT_EQ(Feed({std::string_view(in).substr(0, i), std::string_view(in).substr(i)}),
              Ok(expected));
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < in.size(); ++i) bytes.push_back(std::string_view(in).substr(i, 1));
  EXPECT_EQ(Feed(bytes), Ok(expected));
}

TEST(Parser, BufferMayMoveBetweenCalls) {
  const std::string in = Multibulk({"SET", "k", std::string(100, 'v')});
  Parser parser;
  std::string first = in.substr(0, 30);
  ASSERT_EQ(parser.Parse(first), ParseStatus::kNeedMore);
  first.assign(1000, 'x');  // the old bytes are gone
  std::string second = in;
  ASSERT_EQ(parser.Parse(second), ParseStatus::kOk);
  EXPECT_EQ(parser.args()[2], std::string(100, 'v'));
}

TEST(Parser, ShorterInputAfterNeedMoreStartsOver) {
  Parser parser;
  ASSERT_EQ(parser.Parse("*2\r\n$3\r\nGET\r\n$1\r\n"), ParseStatus::kNeedMore);
  ASSERT_EQ(parser.Parse("*1\r\n$4\r\nPING\r\n"), ParseStatus::kOk);
  EXPECT_EQ(parser.args(), std::vector<std::string_view>{"PING"});
}

// ---- inline ----

TEST(Parser, InlineCommands) {
  EXPECT_EQ(ParseEverySplit("PING\r\n"), Ok({{"PING"}}));
  EXPECT_EQ(ParseEverySplit("PING\n"), Ok({{"PING"}}));
  EXPECT_EQ(ParseEverySplit("  set   k\tv  \r\n"), Ok({{"set", "k", "v"}}));
  EXPECT_EQ(ParseEverySplit("GET a\r\nGET b\nPING\r\n"),
            Ok({{"GET", "a"}, {"GET", "b"}, {"PING"}}));
  // Only one '\r' before the '\n' is the line end; another one separates arguments.
  EXPECT_EQ(ParseEverySplit("a b\r\r\n"), Ok({{"a", "b"}}));
  EXPECT_EQ(ParseEverySplit("a\rb\r\n"), Ok({{"a", "b"}}));
  // \v and \f are skipped between arguments but are not separators inside one (sdssplitargs).
  EXPECT_EQ(ParseEverySplit("\v\fa\vb c\n"), Ok({{"a\vb", "c"}}));
  // A NUL byte is an ordinary byte.
  EXPECT_EQ(ParseEverySplit("a\0b c\n"s), Ok({{"a\0b"s, "c"}}));
}

TEST(Parser, InlineQuoting) {
  // Cases from Redis's sdssplitargs and its tests/unit/protocol.tcl.
  EXPECT_EQ(ParseEverySplit("set \"a b\" 'c d'\r\n"), Ok({{"set", "a b", "c d"}}));
  EXPECT_EQ(ParseEverySplit("\"\\x41\"\r\n"), Ok({{"A"}}));
  EXPECT_EQ(ParseEverySplit("\"\\x4a\\x4B\\x00z\"\n"), Ok({{"JK\0z"s}}));
  EXPECT_EQ(ParseEverySplit("\"\\x4g\"\n"), Ok({{"x4g"}}));  // not hex: "\x" is just 'x'
  EXPECT_EQ(ParseEverySplit("\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n"), Ok({{"\n\r\t\b\a\\\"q"}}));
  EXPECT_EQ(ParseEverySplit("'it\\'s' 'a\\nb' 'x\"y'\n"), Ok({{"it's", "a\\nb", "x\"y"}}));
  EXPECT_EQ(ParseEverySplit("\"\" ''\n"), Ok({{"", ""}}));
  EXPECT_EQ(ParseEverySplit("a\"b c\" d\n"), Ok({{"ab c", "d"}}));  // a quote may open mid-word
  EXPECT_EQ(ParseEverySplit("\"a\"\t\"b\"\n"), Ok({{"a", "b"}}));
  EXPECT_EQ(ParseEverySplit("\"a\r\n"), Err("ERR Protocol error: unbalanced quotes in request"));
}

TEST(Parser, InlineUnbalancedQuotes) {
  const std::string kErr = "ERR Protocol error: unbalanced quotes in request";
  for (std::string_view in :
       {"set \"\"\"test-key\"\"\" test-value\r\n", "\"foo\"bar\n", "'foo'bar\n", "\"unterminated\n",
        "'unterminated\n", "\"abc\\\n", "'abc\\'\n"}) {
    EXPECT_EQ(ParseEverySplit(in), Err(kErr)) << in;
  }
  EXPECT_EQ(ParseEverySplit("PING\r\n\"x\n"), OkThenErr({{"PING"}}, kErr));
}

// ---- errors ----

TEST(Parser, InvalidMultibulkLength) {
  const std::string kErr = "ERR Protocol error: invalid multibulk length";
  for (std::string_view in :
       {"*abc\r\n", "*\r\n", "*-2\r\n", "*-10\r\n", "*01\r\n", "*+1\r\n", "* 1\r\n", "*1 \r\n",
        "*-0\r\n", "*3000000000\r\n", "*99999999999999999999999\r\n", "*1048577\r\n", "*1\rX",
        "*1\r\r\n"}) {
    EXPECT_EQ(ParseEverySplit(in), Err(kErr)) << in;
  }
  Parser parser;
  EXPECT_EQ(parser.Parse("*1048576\r\n"), ParseStatus::kNeedMore);  // the limit itself is fine
}

TEST(Parser, ExpectedDollar) {
  EXPECT_EQ(ParseEverySplit("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            Err("ERR Protocol error: expected '$', got 'f'"));
  EXPECT_EQ(ParseEverySplit("*1\r\nfoo\r\n"), Err("ERR Protocol error: expected '$', got 'f'"));
  EXPECT_EQ(ParseEverySplit("*1\r\n:1\r\n"), Err("ERR Protocol error: expected '$', got ':'"));
  EXPECT_EQ(ParseEverySplit("*1\r\n\r\n"), Err("ERR Protocol error: expected '$', got '\r'"));
}

TEST(Parser, InvalidBulkLength) {
  const std::string kErr = "ERR Protocol error: invalid bulk length";
  for (std::string_view in :
       {"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
        "*1\r\n$blabla\r\n", "*1\r\n$-1\r\n", "*1\r\n$\r\n", "*1\r\n$01\r\n",
        "*1\r\n$536870913\r\n", "*1\r\n$3\rX", "*1\r\n$99999999999999999999\r\n"}) {
    EXPECT_EQ(ParseEverySplit(in), Err(kErr)) << in;
  }
  Parser parser;
  EXPECT_EQ(parser.Parse("*1\r\n$536870912\r\n"), ParseStatus::kNeedMore);  // 512 MB is allowed
  EXPECT_EQ(parser.bytes_hint(), 16u + (512u << 20) + 2u);
}

TEST(Parser, BulkMustEndWithCrlf) {
  const std::string kErr = "ERR Protocol error: bulk string not followed by CRLF";
  for (std::string_view in : {"*1\r\n$3\r\nfooXY", "*1\r\n$3\r\nfoo\rX", "*1\r\n$3\r\nfoo\n\r",
                              "*1\r\n$3\r\nfooo\r\n", "*2\r\n$1\r\na\r\n$0\r\nb\r\n"}) {
    EXPECT_EQ(ParseEverySplit(in), Err(kErr)) << in;
  }
  Parser parser;
  EXPECT_EQ(parser.Parse("*1\r\n$3\r\nfooX"), ParseStatus::kError);  // known bad without waiting
}

TEST(Parser, TooBigHeaderLines) {
  // From Redis's "Protocol desync regression test": a request that never ends its first line.
  const std::string kAs(70000, 'A');
  EXPECT_EQ(Whole("\0"s + kAs), Err("ERR Protocol error: too big inline request"));
  EXPECT_EQ(Whole("*\0"s + kAs), Err("ERR Protocol error: too big mbulk count string"));
  EXPECT_EQ(Whole("$\0"s + kAs), Err("ERR Protocol error: too big inline request"));
  EXPECT_EQ(Whole("*1\r\n$\0"s + kAs), Err("ERR Protocol error: too big bulk count string"));
  // The same errors when the terminator is already there, so the answer does not depend on how
  // the bytes were split into reads.
  EXPECT_EQ(Whole(kAs + "\r\n"), Err("ERR Protocol error: too big inline request"));
  EXPECT_EQ(Whole("*" + kAs + "\r\n"), Err("ERR Protocol error: too big mbulk count string"));
  EXPECT_EQ(Whole("*1\r\n$" + kAs + "\r\n"), Err("ERR Protocol error: too big bulk count string"));
  for (size_t split : {1, 100, 65535, 65536, 65537, 65538, 70000, 70001}) {
    std::string in = "*1\r\n$" + kAs + "\r\n";
    EXPECT_EQ(Feed({std::string_view(in).substr(0, split), std::string_view(in).substr(split)}),
              Err("ERR Protocol error: too big bulk count string"))
        << split;
  }
}

TEST(Parser, InlineLengthLimitIsExact) {
  const std::string at_limit(64 * 1024, 'a');
  EXPECT_EQ(Whole(at_limit + "\n"), Ok({{at_limit}}));
  EXPECT_EQ(Whole(at_limit + "\r\n"), Err("ERR Protocol error: too big inline request"));
  EXPECT_EQ(Whole(at_limit), Ok({}, at_limit.size()));  // might still end right here
  EXPECT_EQ(Whole(at_limit + "a"), Err("ERR Protocol error: too big inline request"));
}

TEST(Parser, LimitsAreHonored) {
  ParserLimits limits;
  limits.max_bulk_len = 10;
  limits.max_multibulk_len = 2;
  limits.max_inline_len = 8;
  EXPECT_EQ(ParseEverySplit("*2\r\n$10\r\n0123456789\r\n$0\r\n\r\n", limits),
            Ok({{"0123456789", ""}}));
  EXPECT_EQ(ParseEverySplit("*1\r\n$11\r\n", limits),
            Err("ERR Protocol error: invalid bulk length"));
  EXPECT_EQ(ParseEverySplit("*3\r\n", limits), Err("ERR Protocol error: invalid multibulk length"));
  EXPECT_EQ(ParseEverySplit("12345678\n", limits), Ok({{"12345678"}}));
  EXPECT_EQ(ParseEverySplit("123456789\n", limits),
            Err("ERR Protocol error: too big inline request"));
  EXPECT_EQ(ParseEverySplit("*00000001\r\n", limits),
            Err("ERR Protocol error: too big mbulk count string"));
  EXPECT_EQ(ParseEverySplit("*1\r\n$00000001\r\n", limits),
            Err("ERR Protocol error: too big bulk count string"));

  Parser parser;
  parser.set_limits(limits);
  EXPECT_EQ(parser.Parse("*1\r\n$11\r\n"), ParseStatus::kError);
  parser.Reset();
  parser.set_limits({});
  EXPECT_EQ(parser.Parse("*1\r\n$11\r\n"), ParseStatus::kNeedMore);
}

TEST(Parser, ErrorIsStickyUntilReset) {
  Parser parser;
  ASSERT_EQ(parser.Parse("*x\r\n"), ParseStatus::kError);
  EXPECT_EQ(parser.error(), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(parser.Parse("PING\r\n"), ParseStatus::kError);
  parser.Reset();
  EXPECT_TRUE(parser.error().empty());
  ASSERT_EQ(parser.Parse("PING\r\n"), ParseStatus::kOk);
  EXPECT_EQ(parser.args()[0], "PING");
}

TEST(Parser, CommandsBeforeAnErrorAreDelivered) {
  EXPECT_EQ(ParseEverySplit("PING\r\n*1\r\n$4\r\nECHO\r\n*-5\r\n*1\r\n$4\r\nPING\r\n"),
            OkThenErr({{"PING"}, {"ECHO"}}, "ERR Protocol error: invalid multibulk length"));
}

// ---- big inputs: linear, not quadratic ----

TEST(Parser, BigBulkInSmallPiecesIsLinear) {
  // 8 MB in 64-byte pieces is 131072 calls: a parser that rescanned its input on each call
  // would touch ~500 GB and take minutes. Linear work takes milliseconds.
  const size_t kSize = 8 << 20;
  std::string value(kSize, 'x');
  for (size_t i = 0; i < kSize; i += 4099) value[i] = static_cast<char>(i);
  value[100] = '\r';
  value[101] = '\n';
  const std::string in = Multibulk({"SET", "big", value});
  const auto start = std::chrono::steady_clock::now();
  Parser parser;
  std::string buf;
  size_t calls = 0;
  ParseStatus status = ParseStatus::kNeedMore;
  for (size_t off = 0; off < in.size() && status != ParseStatus::kOk; off += 64) {
    buf.append(in, off, 64);
    status = parser.Parse(buf);
    ++calls;
    if (status == ParseStatus::kNeedMore && parser.bytes_hint() > 0) {
      EXPECT_EQ(parser.bytes_hint(), in.size());
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(status, ParseStatus::kOk);
  EXPECT_EQ(parser.consumed(), in.size());
  EXPECT_EQ(parser.args()[2].size(), kSize);
  EXPECT_TRUE(parser.args()[2] == value);
  EXPECT_GT(calls, 100000u);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(Parser, LongLinesInSmallPiecesAreLinear) {
  // A 4 MB inline line and a 4 MB header line fed 16 bytes at a time: each byte is searched once.
  ParserLimits limits;
  limits.max_inline_len = 8 << 20;
  const std::string word(4 << 20, 'w');
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& in : {word + " x\r\n", "*" + word + "\r\n"}) {
    Parser parser(limits);
    std::string buf;
    ParseStatus status = ParseStatus::kNeedMore;
    for (size_t off = 0; off < in.size() && status == ParseStatus::kNeedMore; off += 16) {
      buf.append(in, off, 16);
      status = parser.Parse(buf);
    }
    if (in[0] == '*') {
      EXPECT_EQ(status, ParseStatus::kError);
      EXPECT_EQ(parser.error(), "ERR Protocol error: invalid multibulk length");
    } else {
      ASSERT_EQ(status, ParseStatus::kOk);
      EXPECT_EQ(parser.args().size(), 2u);
      EXPECT_EQ(parser.args()[0].size(), word.size());
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace shoal::resp
