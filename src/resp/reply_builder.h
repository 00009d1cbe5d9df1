// RESP reply encoder. Appends replies to a caller-owned std::string (a connection's output
// buffer) in protocol version 2 or 3, so command code is written once and HELLO 3 clients get the
// richer RESP3 types (null, map, set, push, double, boolean, verbatim string).
//
// RESP2 fallbacks are Redis's: null -> "$-1" / "*-1", map of n pairs -> array of 2n, set and push
// -> array, double -> bulk string, boolean -> integer 1/0, verbatim -> bulk string.
//
// Doubles are formatted like Redis 7.0 (addReplyDouble): "%.17g", and "inf", "-inf", "nan".
// (Redis 7.2 switched to the shortest round-trip form, e.g. "1.1" instead of
// "1.1000000000000001"; the redis-server we compare against in tests is 7.0.)
//
// The builder holds no buffer of its own and allocates nothing except by growing *out.
// Thread safety: none; use it on the thread that owns *out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::resp {

class ReplyBuilder {
 public:
  // REQUIRES: out != nullptr and outlives the builder; protocol is 2 or 3.
  ReplyBuilder(std::string* out, int protocol);

  int protocol() const { return protocol_; }
  void set_protocol(int protocol) { protocol_ = protocol; }
  std::string* out() { return out_; }

  // "+s\r\n". Any '\r' or '\n' in s is replaced by a space so the reply stays well-formed.
  void SimpleString(std::string_view s);
  void Ok();  // "+OK\r\n"
  // `msg` is the full error text including its code, e.g. "ERR unknown command 'x'" or
  // "WRONGTYPE Operation against a key holding the wrong kind of value"; writes "-msg\r\n" with
  // any '\r' or '\n' replaced by a space.
  void Error(std::string_view msg);
  void Integer(int64_t value);    // ":value\r\n"
  void Bulk(std::string_view s);  // "$len\r\ns\r\n", binary-safe
  void NullBulk();                // RESP2 "$-1\r\n", RESP3 "_\r\n"
  void NullArray();               // RESP2 "*-1\r\n", RESP3 "_\r\n"

  // Aggregate headers: the caller then writes exactly n elements (MapHeader: n keys and n values).
  void ArrayHeader(size_t n);  // "*n"
  void MapHeader(size_t n);    // RESP3 "%n", RESP2 "*2n"
  void SetHeader(size_t n);    // RESP3 "~n", RESP2 "*n"
  void PushHeader(size_t n);   // RESP3 ">n", RESP2 "*n"

  void Double(double value);  // RESP3 ",1.5\r\n", RESP2 bulk "1.5"
  void Bool(bool value);      // RESP3 "#t\r\n"/"#f\r\n", RESP2 ":1\r\n"/":0\r\n"
  // RESP3 "=len\r\nfmt:text\r\n", RESP2 bulk text. REQUIRES: format.size() == 3.
  void Verbatim(std::string_view text, std::string_view format = "txt");

  // ArrayHeader(items.size()) followed by a Bulk per item.
  void BulkArray(const std::vector<std::string_view>& items);

 private:
  // Appends type, decimal value and "\r\n".
  void Header(char type, int64_t value);
  void HeaderUnsigned(char type, size_t value);
  // Appends s with '\r' and '\n' replaced by spaces.
  void AppendLine(std::string_view s);

  std::string* out_;
  int protocol_;
};

}  // namespace shoal::resp
