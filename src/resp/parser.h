// RESP request parser: turns the bytes a client sends into commands (argument vectors).
//
// Design. The parser is sans-I/O and resumable: the connection owns the input buffer, calls
// Parse() with everything it has not consumed yet, and gets back kOk (one command, as views into
// that buffer), kNeedMore or kError. Nothing is copied for multibulk requests, which is what every
// client library and redis-benchmark send; inline requests ("PING\r\n" typed into telnet) are rare
// and are unescaped into storage owned by the parser.
//
// Resumption is by offsets, never pointers, because the caller may grow (and so move) its buffer
// between calls. On kNeedMore the parser remembers the multibulk count, the arguments already
// complete and how far the current line has been searched, so a 512 MB bulk arriving in 16 KB
// pieces costs O(n), and a header line dribbled in byte by byte is searched once.
//
// Compatibility. Both request forms and the error texts are Redis's (networking.c:
// processMultibulkBuffer, processInlineBuffer, sdssplitargs). Where Redis's result depends on how
// the bytes were split into reads, this parser picks the split-independent rule, so a request
// gives the same answer however it arrives (tests and the fuzzer check exactly that):
//   - A header line ("*N", "$N") or inline line longer than `max_inline_len` is an error even when
//     its terminator is already in the buffer (Redis only checks while the terminator is missing).
//   - A bulk not followed by "\r\n", and a header's '\r' not followed by '\n', are protocol errors
//     (Redis silently skips two bytes).
//   - "*N" with N < -1 is "invalid multibulk length" (Redis treats any N <= 0 as an empty request).
//   - An inline line may contain '\0'; it is an ordinary byte (Redis stops at it).
//
// Limits (ParserLimits) default to Redis's: proto-max-bulk-len 512 MB, PROTO_INLINE_MAX_SIZE
// 64 KB. Redis's own multibulk limit is INT_MAX; ours defaults to 1M arguments, far above any real
// command (MSET of 500k pairs) yet small enough that a hostile count cannot make us reserve
// memory: reservations from the client's count are capped at 1024 entries anyway.
//
// Thread safety: none; one Parser per connection, used by the thread that owns the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::resp {

enum class ParseStatus { kOk, kNeedMore, kError };

struct ParserLimits {
  int64_t max_bulk_len = 512LL << 20;       // largest "$N" accepted (Redis proto-max-bulk-len)
  int64_t max_multibulk_len = 1024 * 1024;  // largest "*N" accepted
  size_t max_inline_len = 64 * 1024;        // longest inline line or "*N"/"$N" header line
};

class Parser {
 public:
  explicit Parser(ParserLimits limits = {});
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
  Parser(Parser&&) = default;  // invalidates args() of the moved-from parser
  Parser& operator=(Parser&&) = default;

  // Takes effect from the next line parsed.
  void set_limits(const ParserLimits& limits) { limits_ = limits; }
  const ParserLimits& limits() const { return limits_; }

  // Parses at most one command from the start of `input`.
  //
  // kOk: args() holds the command (never empty); consumed() is the number of bytes it took,
  //   including any empty requests ("\r\n", "*0\r\n", "*-1\r\n") skipped before it. The caller
  //   drops those bytes and calls again with the rest for the next command.
  // kNeedMore: nothing is consumed. The caller keeps all of `input`, appends more bytes and calls
  //   again with the longer input (which may live at a different address). bytes_hint() is the
  //   total input size the current command is known to need so far (0 if not known yet), so the
  //   caller can reserve once for a big bulk.
  // kError: error() is the Redis error text without the leading '-', e.g.
  //   "ERR Protocol error: invalid multibulk length". The parser stays failed (every later call
  //   returns kError) until Reset(); the connection should reply and close.
  //
  // REQUIRES: after kNeedMore, `input` starts with the same bytes as the previous call's. (If it
  //   is shorter, the parser detects that and starts the command over.)
  ParseStatus Parse(std::string_view input);

  // The last command parsed. Multibulk arguments point into the `input` given to Parse() and are
  // valid while those bytes are; inline arguments point into storage owned by the parser. Either
  // way they are valid only until the next call to Parse() or Reset().
  const std::vector<std::string_view>& args() const { return args_; }
  // Bytes taken by the last kOk; 0 after kNeedMore and kError.
  size_t consumed() const { return consumed_; }
  // See Parse(): valid after kNeedMore.
  size_t bytes_hint() const { return bytes_hint_; }
  // Set after kError.
  const std::string& error() const { return error_; }

  // Forgets any partial command and a previous error. Keeps limits and allocated capacity.
  void Reset();

 private:
  enum class State : uint8_t { kCommandStart, kBulkHeader, kBulkBody };
  enum class LineStatus : uint8_t { kOk, kNeedMore, kBad, kTooLong };
  // An argument's location: an offset into the input (multibulk) or into inline_buf_ (inline).
  struct Span {
    size_t offset;
    size_t len;
  };

  // Reads the decimal number of a header line starting at p[begin] (the '*' or '$'), for the
  // lines the inline fast path in parser.cc does not take.
  LineStatus ReadNumberLineSlow(const char* p, size_t n, size_t begin, int64_t* value,
                                size_t* next);
  // Parses the inline request line at pos_. kOk with empty args_ means an empty line (skip it).
  ParseStatus ParseInline(const char* p, size_t n);
  // Splits one inline line like Redis's sdssplitargs into inline_buf_/spans_. False: unbalanced
  // quotes.
  bool SplitInline(const char* s, size_t len);

  // kOk with args_ already filled / filled from spans_ relative to `base`.
  ParseStatus Finish();
  ParseStatus FinishFromSpans(const char* base);
  ParseStatus NeedMore(const char* p, size_t n);
  ParseStatus Fail(std::string_view message);
  void StartOver();

  ParserLimits limits_;
  State state_ = State::kCommandStart;
  bool failed_ = false;
  // A command parsed within one call goes straight into args_ as views. One that needs more input
  // is switched to spans_ (offsets) at its first kNeedMore and stays there until it completes, so
  // each finished argument is converted once.
  bool in_spans_ = false;
  // Offsets below are relative to the start of `input`.
  size_t pos_ = 0;       // next byte to parse
  size_t scan_pos_ = 0;  // the current line has no terminator before this offset
  size_t seen_ = 0;      // input size at the last kNeedMore
  int64_t args_left_ = 0;
  int64_t bulk_len_ = 0;
  std::vector<Span> spans_;
  std::string inline_buf_;

  std::vector<std::string_view> args_;
  size_t consumed_ = 0;
  size_t bytes_hint_ = 0;
  std::string error_;
};

}  // namespace shoal::resp
