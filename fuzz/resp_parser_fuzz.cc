// libFuzzer target for resp::Parser. Run with scripts/fuzz.sh.
//
// Input layout: byte 0 picks the limits (Redis defaults, or tiny ones so the limit paths are
// reached), bytes 1-2 pick a split point, the rest is the client's byte stream. The stream is
// parsed whole, in two pieces split at that point, and in pieces of 1..8 bytes; all three must
// give the same commands and the same final status and error. Along the way: consumed() never
// exceeds the input, kOk always carries a non-empty command, multibulk arguments lie inside the
// input, and bytes_hint() is either unknown or more than the bytes at hand.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"

namespace {

using shoal::resp::ParserLimits;
using shoal::resp::ParseStatus;

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  ParseStatus status = ParseStatus::kNeedMore;
  std::string error;
  size_t leftover = 0;

  bool operator==(const Outcome&) const = default;
};

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "resp_parser_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

// Appends the chunks one by one to a connection-like buffer, draining commands after each.
Outcome Feed(const std::vector<std::string_view>& chunks, const ParserLimits& limits) {
  shoal::resp::Parser parser(limits);
  Outcome out;
  std::string buf;
  for (std::string_view chunk : chunks) {
    buf.append(chunk);
    for (;;) {
      // Copy to a fresh allocation so resumption by stale pointers would be caught by ASan.
      std::string moved(buf);
      buf.swap(moved);
      ParseStatus status = parser.Parse(buf);
      if (status == ParseStatus::kOk) {
        Check(parser.consumed() > 0, "kOk consumed something");
        Check(parser.consumed() <= buf.size(), "consumed <= input size");
        Check(!parser.args().empty(), "kOk has arguments");
        for (std::string_view a : parser.args()) {
          // Either inside the input (multibulk) or parser-owned (inline); both must be readable.
          const auto arg = reinterpret_cast<uintptr_t>(a.data());
          const auto begin = reinterpret_cast<uintptr_t>(buf.data());
          if (arg >= begin && arg <= begin + buf.size()) {
            Check(arg + a.size() <= begin + parser.consumed(), "arg inside command");
          }
        }
        out.commands.emplace_back(parser.args().begin(), parser.args().end());
        buf.erase(0, parser.consumed());
        continue;
      }
      Check(parser.consumed() == 0, "nothing consumed unless kOk");
      if (status == ParseStatus::kError) {
        Check(!parser.error().empty(), "error text set");
        Check(parser.Parse(buf) == ParseStatus::kError, "errors are sticky");
        out.status = status;
        out.error = parser.error();
        return out;
      }
      Check(parser.bytes_hint() == 0 || parser.bytes_hint() > buf.size(), "bytes_hint");
      break;
    }
  }
  out.leftover = buf.size();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  ParserLimits limits;
  const uint8_t mode = data[0];
  if (mode & 1) {
    limits.max_bulk_len = mode >> 4;                 // 0..15
    limits.max_multibulk_len = (mode >> 1) & 7;      // 0..7
    limits.max_inline_len = 1 + ((mode >> 2) & 31);  // 1..32
  }
  const size_t split_hint = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
  const std::string_view in(reinterpret_cast<const char*>(data + 3), size - 3);

  const Outcome whole = Feed({in}, limits);
  const size_t split = in.empty() ? 0 : split_hint % (in.size() + 1);
  const Outcome two = Feed({in.substr(0, split), in.substr(split)}, limits);
  Check(two == whole, "whole and split agree");

  std::vector<std::string_view> pieces;
  for (size_t off = 0, i = 0; off < in.size(); ++i) {
    const size_t len = 1 + ((split_hint >> (i % 13)) + i) % 8;
    pieces.push_back(in.substr(off, len));
    off += len;
  }
  Check(Feed(pieces, limits) == whole, "whole and small pieces agree");
  return 0;
}
