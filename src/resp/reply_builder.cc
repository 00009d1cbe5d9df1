#include "resp/reply_builder.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>

namespace shoal::resp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// Formats like printf("%.17g") (Redis 7.0), with inf/-inf/nan spelled as RESP3 wants them.
// Returns the length written; `buf` must hold at least 32 chars.
size_t FormatDouble(double value, char* buf) {
  if (std::isinf(value)) {
    std::string_view s = value > 0 ? "inf" : "-inf";
    s.copy(buf, s.size());
    return s.size();
  }
  if (std::isnan(value)) {
    std::string_view s = "nan";
    s.copy(buf, s.size());
    return s.size();
  }
  auto [end, ec] = std::to_chars(buf, buf + 32, value, std::chars_format::general, 17);
  assert(ec == std::errc());
  return static_cast<size_t>(end - buf);
}

}  // namespace

ReplyBuilder::ReplyBuilder(std::string* out, int protocol) : out_(out), protocol_(protocol) {
  assert(out != nullptr);
  assert(protocol == 2 || protocol == 3);
}

void ReplyBuilder::Header(char type, int64_t value) {
  char buf[24];
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, value).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out_->append(buf, static_cast<size_t>(end + 2 - buf));
}

void ReplyBuilder::HeaderUnsigned(char type, size_t value) {
  char buf[24];
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, value).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out_->append(buf, static_cast<size_t>(end + 2 - buf));
}

void ReplyBuilder::AppendLine(std::string_view s) {
  size_t bad = s.find_first_of(kCrlf);
  if (bad == std::string_view::npos) {
    out_->append(s);
  } else {
    size_t start = out_->size();
    out_->append(s);
    for (size_t i = start + bad; i < out_->size(); ++i) {
      char& c = (*out_)[i];
      if (c == '\r' || c == '\n') c = ' ';
    }
  }
  out_->append(kCrlf);
}

void ReplyBuilder::SimpleString(std::string_view s) {
  out_->push_back('+');
  AppendLine(s);
}

void ReplyBuilder::Ok() { out_->append("+OK\r\n"); }

void ReplyBuilder::Error(std::string_view msg) {
  out_->push_back('-');
  AppendLine(msg);
}

void ReplyBuilder::Integer(int64_t value) { Header(':', value); }

void ReplyBuilder::Bulk(std::string_view s) {
  // Most values are small: assemble the whole reply on the stack and append once.
  constexpr size_t kSmall = 128;
  if (s.size() <= kSmall) {
    char buf[kSmall + 8];
    buf[0] = '$';
    char* p = std::to_chars(buf + 1, buf + 5, s.size()).ptr;
    *p++ = '\r';
    *p++ = '\n';
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
    *p++ = '\r';
    *p++ = '\n';
    out_->append(buf, static_cast<size_t>(p - buf));
    return;
  }
  HeaderUnsigned('$', s.size());
  out_->append(s);
  out_->append(kCrlf);
}

void ReplyBuilder::NullBulk() { out_->append(protocol_ == 3 ? "_\r\n" : "$-1\r\n"); }

void ReplyBuilder::NullArray() { out_->append(protocol_ == 3 ? "_\r\n" : "*-1\r\n"); }

void ReplyBuilder::ArrayHeader(size_t n) { HeaderUnsigned('*', n); }

void ReplyBuilder::MapHeader(size_t n) {
  if (protocol_ == 3) {
    HeaderUnsigned('%', n);
  } else {
    HeaderUnsigned('*', 2 * n);
  }
}

void ReplyBuilder::SetHeader(size_t n) { HeaderUnsigned(protocol_ == 3 ? '~' : '*', n); }

void ReplyBuilder::PushHeader(size_t n) { HeaderUnsigned(protocol_ == 3 ? '>' : '*', n); }

void ReplyBuilder::Double(double value) {
  char buf[40];
  size_t len = FormatDouble(value, buf + 1);
  if (protocol_ == 3) {
    buf[0] = ',';
    buf[len + 1] = '\r';
    buf[len + 2] = '\n';
    out_->append(buf, len + 3);
  } else {
    Bulk(std::string_view(buf + 1, len));
  }
}

void ReplyBuilder::Bool(bool value) {
  if (protocol_ == 3) {
    out_->append(value ? "#t\r\n" : "#f\r\n");
  } else {
    out_->append(value ? ":1\r\n" : ":0\r\n");
  }
}

void ReplyBuilder::Verbatim(std::string_view text, std::string_view format) {
  if (protocol_ != 3) {
    Bulk(text);
    return;
  }
  assert(format.size() == 3);
  HeaderUnsigned('=', text.size() + format.size() + 1);
  out_->append(format);
  out_->push_back(':');
  out_->append(text);
  out_->append(kCrlf);
}

void ReplyBuilder::BulkArray(const std::vector<std::string_view>& items) {
  ArrayHeader(items.size());
  for (std::string_view item : items) Bulk(item);
}

}  // namespace shoal::resp
