#include "resp/parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace shoal::resp {
namespace {

constexpr size_t kMaxReserve = 1024;  // never trust a client's count for more than this

constexpr std::string_view kErrInvalidMultibulkLen = "ERR Protocol error: invalid multibulk length";
constexpr std::string_view kErrInvalidBulkLen = "ERR Protocol error: invalid bulk length";
constexpr std::string_view kErrTooBigInline = "ERR Protocol error: too big inline request";
constexpr std::string_view kErrTooBigMbulk = "ERR Protocol error: too big mbulk count string";
constexpr std::string_view kErrTooBigBulk = "ERR Protocol error: too big bulk count string";
constexpr std::string_view kErrUnbalancedQuotes =
    "ERR Protocol error: unbalanced quotes in request";
constexpr std::string_view kErrBulkNoCrlf = "ERR Protocol error: bulk string not followed by CRLF";

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') <= 9; }

// isspace() in the C locale, without the locale lookup.
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline int HexValue(char c) {
  if (c <= '9') return c - '0';
  if (c <= 'F') return c - 'A' + 10;
  return c - 'a' + 10;
}

// Redis's string2ll: optional '-', then no leading zeros, no '+', no spaces, no overflow.
bool ParseInt64(const char* s, size_t len, int64_t* out) {
  if (len == 0 || len > 20) return false;
  if (len == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    if (++i == len) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  uint64_t v = static_cast<uint64_t>(s[i++] - '0');
  for (; i < len; ++i) {
    if (!IsDigit(s[i])) return false;
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  constexpr uint64_t kMaxPositive = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMaxPositive + 1) return false;
    *out = v == kMaxPositive + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  } else {
    if (v > kMaxPositive) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

// The common header line: a short non-negative number followed by "\r\n", all present. Up to 18
// digits cannot overflow. False sends everything else (negative, long, incomplete, malformed) to
// the slow path, which decides between kOk, kNeedMore and the errors.
[[gnu::always_inline]] inline bool ReadNumberLineFast(const char* p, size_t n, size_t begin,
                                                      size_t max_line, int64_t* value,
                                                      size_t* next) {
  size_t i = begin + 1;
  if (i + 2 > n || !IsDigit(p[i])) return false;
  int64_t v = p[i] - '0';
  ++i;
  if (v != 0) {
    const size_t limit = std::min(n, begin + 19);
    while (i < limit && IsDigit(p[i])) v = v * 10 + (p[i++] - '0');
  }
  if (i + 1 >= n || p[i] != '\r' || p[i + 1] != '\n' || i - begin > max_line) return false;
  *value = v;
  *next = i + 2;
  return true;
}

}  // namespace

Parser::Parser(ParserLimits limits) : limits_(limits) {}

void Parser::Reset() {
  StartOver();
  failed_ = false;
  args_.clear();
  consumed_ = 0;
  bytes_hint_ = 0;
  error_.clear();
}

void Parser::StartOver() {
  state_ = State::kCommandStart;
  in_spans_ = false;
  pos_ = 0;
  scan_pos_ = 0;
  seen_ = 0;
  args_left_ = 0;
  bulk_len_ = 0;
  spans_.clear();
}

ParseStatus Parser::Parse(std::string_view input) {
  if (failed_) return ParseStatus::kError;
  args_.clear();
  consumed_ = 0;
  const char* p = input.data();
  const size_t n = input.size();
  if (n < seen_) StartOver();  // the caller broke the contract; be safe rather than fast

  for (;;) {
    switch (state_) {
      case State::kCommandStart: {
        if (pos_ >= n) return NeedMore(p, n);
        if (p[pos_] != '*') {
          ParseStatus status = ParseInline(p, n);
          if (status == ParseStatus::kOk && args_.empty()) continue;  // empty line: skip it
          return status;
        }
        int64_t count;
        size_t next;
        if (!ReadNumberLineFast(p, n, pos_, limits_.max_inline_len, &count, &next)) {
          switch (ReadNumberLineSlow(p, n, pos_, &count, &next)) {
            case LineStatus::kOk:
              break;
            case LineStatus::kNeedMore:
              return NeedMore(p, n);
            case LineStatus::kTooLong:
              return Fail(kErrTooBigMbulk);
            case LineStatus::kBad:
              return Fail(kErrInvalidMultibulkLen);
          }
        }
        if (count <= 0) {
          if (count < -1) return Fail(kErrInvalidMultibulkLen);
          pos_ = next;  // "*0" and "*-1": an empty request, skip it
          scan_pos_ = 0;
          continue;
        }
        if (count > limits_.max_multibulk_len) return Fail(kErrInvalidMultibulkLen);
        pos_ = next;
        scan_pos_ = 0;
        args_left_ = count;
        args_.reserve(std::min(static_cast<size_t>(count), kMaxReserve));
        state_ = State::kBulkHeader;
        [[fallthrough]];
      }
      case State::kBulkHeader: {
        if (pos_ >= n) return NeedMore(p, n);
        if (p[pos_] != '$') {
          std::string message = "ERR Protocol error: expected '$', got ' '";
          message[message.size() - 2] = p[pos_];
          return Fail(message);
        }
        int64_t len;
        size_t next;
        if (!ReadNumberLineFast(p, n, pos_, limits_.max_inline_len, &len, &next)) {
          switch (ReadNumberLineSlow(p, n, pos_, &len, &next)) {
            case LineStatus::kOk:
              break;
            case LineStatus::kNeedMore:
              return NeedMore(p, n);
            case LineStatus::kTooLong:
              return Fail(kErrTooBigBulk);
            case LineStatus::kBad:
              return Fail(kErrInvalidBulkLen);
          }
        }
        if (len < 0 || len > limits_.max_bulk_len) return Fail(kErrInvalidBulkLen);
        pos_ = next;
        scan_pos_ = 0;
        bulk_len_ = len;
        state_ = State::kBulkBody;
        [[fallthrough]];
      }
      case State::kBulkBody: {
        const size_t len = static_cast<size_t>(bulk_len_);
        const size_t avail = n - pos_;
        if (avail < len + 2) {
          // Report a bad terminator as soon as its first byte is here: the whole input would fail
          // the same way, so this stays split-independent.
          if (avail > len && p[pos_ + len] != '\r') return Fail(kErrBulkNoCrlf);
          return NeedMore(p, n);
        }
        if (p[pos_ + len] != '\r' || p[pos_ + len + 1] != '\n') return Fail(kErrBulkNoCrlf);
        if (in_spans_) {
          spans_.push_back({pos_, len});
        } else {
          args_.emplace_back(p + pos_, len);
        }
        pos_ += len + 2;
        if (--args_left_ == 0) return in_spans_ ? FinishFromSpans(p) : Finish();
        state_ = State::kBulkHeader;
        continue;
      }
    }
  }
}

Parser::LineStatus Parser::ReadNumberLineSlow(const char* p, size_t n, size_t begin, int64_t* value,
                                              size_t* next) {
  const size_t from = std::max(begin + 1, scan_pos_);
  const void* cr = from < n ? std::memchr(p + from, '\r', n - from) : nullptr;
  if (cr == nullptr) {
    if (n - begin > limits_.max_inline_len) return LineStatus::kTooLong;
    scan_pos_ = n;
    return LineStatus::kNeedMore;
  }
  const size_t r = static_cast<size_t>(static_cast<const char*>(cr) - p);
  if (r - begin > limits_.max_inline_len) return LineStatus::kTooLong;
  if (r + 1 >= n) {
    scan_pos_ = r;
    return LineStatus::kNeedMore;
  }
  if (p[r + 1] != '\n' || !ParseInt64(p + begin + 1, r - begin - 1, value)) {
    return LineStatus::kBad;
  }
  *next = r + 2;
  return LineStatus::kOk;
}

ParseStatus Parser::ParseInline(const char* p, size_t n) {
  const size_t from = std::max(pos_, scan_pos_);
  const void* nl = std::memchr(p + from, '\n', n - from);
  if (nl == nullptr) {
    if (n - pos_ > limits_.max_inline_len) return Fail(kErrTooBigInline);
    scan_pos_ = n;
    return NeedMore(p, n);
  }
  const size_t newline = static_cast<size_t>(static_cast<const char*>(nl) - p);
  if (newline - pos_ > limits_.max_inline_len) return Fail(kErrTooBigInline);
  size_t end = newline;
  if (end > pos_ && p[end - 1] == '\r') --end;
  if (!SplitInline(p + pos_, end - pos_)) return Fail(kErrUnbalancedQuotes);
  pos_ = newline + 1;
  scan_pos_ = 0;
  if (spans_.empty()) return ParseStatus::kOk;  // the caller skips empty lines
  return FinishFromSpans(inline_buf_.data());
}

bool Parser::SplitInline(const char* s, size_t len) {
  // A port of sdssplitargs with explicit bounds instead of a NUL terminator.
  inline_buf_.clear();
  spans_.clear();
  size_t i = 0;
  for (;;) {
    while (i < len && IsSpace(s[i])) ++i;
    if (i == len) return true;
    const size_t start = inline_buf_.size();
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      if (in_double) {
        if (i == len) return false;  // unterminated quotes
        const char c = s[i];
        if (c == '\\' && i + 3 < len && s[i + 1] == 'x' && IsHexDigit(s[i + 2]) &&
            IsHexDigit(s[i + 3])) {
          inline_buf_.push_back(static_cast<char>(HexValue(s[i + 2]) * 16 + HexValue(s[i + 3])));
          i += 4;
        } else if (c == '\\' && i + 1 < len) {
          char e = s[i + 1];
          switch (e) {
            case 'n':
              e = '\n';
              break;
            case 'r':
              e = '\r';
              break;
            case 't':
              e = '\t';
              break;
            case 'b':
              e = '\b';
              break;
            case 'a':
              e = '\a';
              break;
            default:
              break;
          }
          inline_buf_.push_back(e);
          i += 2;
        } else if (c == '"') {
          // The closing quote must be followed by a space or nothing at all.
          if (i + 1 < len && !IsSpace(s[i + 1])) return false;
          done = true;
          ++i;
        } else {
          inline_buf_.push_back(c);
          ++i;
        }
      } else if (in_single) {
        if (i == len) return false;
        const char c = s[i];
        if (c == '\\' && i + 1 < len && s[i + 1] == '\'') {
          inline_buf_.push_back('\'');
          i += 2;
        } else if (c == '\'') {
          if (i + 1 < len && !IsSpace(s[i + 1])) return false;
          done = true;
          ++i;
        } else {
          inline_buf_.push_back(c);
          ++i;
        }
      } else if (i == len) {
        done = true;
      } else {
        const char c = s[i++];
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
            done = true;
            break;
          case '"':
            in_double = true;
            break;
          case '\'':
            in_single = true;
            break;
          default:
            inline_buf_.push_back(c);
            break;
        }
      }
    }
    spans_.push_back({start, inline_buf_.size() - start});
  }
}

ParseStatus Parser::Finish() {
  consumed_ = pos_;
  bytes_hint_ = 0;
  StartOver();
  return ParseStatus::kOk;
}

ParseStatus Parser::FinishFromSpans(const char* base) {
  args_.resize(spans_.size());
  for (size_t i = 0; i < spans_.size(); ++i) {
    args_[i] = std::string_view(base + spans_[i].offset, spans_[i].len);
  }
  return Finish();
}

ParseStatus Parser::NeedMore(const char* p, size_t n) {
  seen_ = n;
  bytes_hint_ = state_ == State::kBulkBody ? pos_ + static_cast<size_t>(bulk_len_) + 2 : 0;
  if (!in_spans_ && state_ != State::kCommandStart) {
    // The input may move before the next call: switch this command to offsets, once.
    spans_.clear();
    spans_.reserve(args_.size());
    for (std::string_view a : args_) {
      spans_.push_back({static_cast<size_t>(a.data() - p), a.size()});
    }
    in_spans_ = true;
  }
  args_.clear();
  return ParseStatus::kNeedMore;
}

ParseStatus Parser::Fail(std::string_view message) {
  failed_ = true;
  error_.assign(message);
  args_.clear();
  consumed_ = 0;
  bytes_hint_ = 0;
  return ParseStatus::kError;
}

}  // namespace shoal::resp
