#include "net/rpc_frame.h"

#include <cassert>

namespace shoal::net::rpc {
namespace {

uint32_t LoadU32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

uint64_t LoadU64(const char* p) { return (uint64_t{LoadU32(p)} << 32) | uint64_t{LoadU32(p + 4)}; }

void PutU32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

DecodeResult Fail(const char* why) {
  DecodeResult r;
  r.status = DecodeStatus::kError;
  r.error = why;
  return r;
}

}  // namespace

DecodeResult DecodeFrame(std::string_view input, size_t max_frame_size) {
  DecodeResult r;
  if (input.size() < kLengthPrefixSize) return r;
  const size_t length = LoadU32(input.data());
  if (length > max_frame_size) return Fail("frame larger than the limit");
  if (length < kMinFrameLength) return Fail("frame shorter than its header");
  // Check the kind as soon as it is in, so garbage is refused without waiting for `length` bytes.
  if (input.size() > kLengthPrefixSize) {
    const auto kind = static_cast<uint8_t>(input[kLengthPrefixSize]);
    if (kind < 1 || kind > 3) return Fail("unknown frame kind");
  }
  if (input.size() < kLengthPrefixSize + length) return r;

  const char* p = input.data() + kLengthPrefixSize;
  const char* end = p + length;
  Frame f;
  f.kind = static_cast<FrameKind>(static_cast<uint8_t>(*p++));
  f.id = LoadU64(p);
  p += 8;
  if (f.kind == FrameKind::kRequest) {
    if (p == end) return Fail("request without a method name");
    const size_t method_len = static_cast<uint8_t>(*p++);
    if (method_len == 0) return Fail("empty method name");
    if (static_cast<size_t>(end - p) < method_len) return Fail("method name past the frame end");
    f.method = std::string_view(p, method_len);
    p += method_len;
  }
  f.body = std::string_view(p, static_cast<size_t>(end - p));
  r.status = DecodeStatus::kOk;
  r.consumed = kLengthPrefixSize + length;
  r.frame = f;
  return r;
}

size_t FrameLength(FrameKind kind, std::string_view method, size_t body_size) {
  return 1 + 8 + (kind == FrameKind::kRequest ? 1 + method.size() : 0) + body_size;
}

void AppendFrame(std::string* out, FrameKind kind, uint64_t id, std::string_view method,
                 std::string_view body) {
  assert(method.size() <= kMaxMethodLength);
  const size_t length = FrameLength(kind, method, body.size());
  assert(length <= UINT32_MAX);
  out->reserve(out->size() + kLengthPrefixSize + length);
  PutU32(out, static_cast<uint32_t>(length));
  out->push_back(static_cast<char>(kind));
  PutU32(out, static_cast<uint32_t>(id >> 32));
  PutU32(out, static_cast<uint32_t>(id));
  if (kind == FrameKind::kRequest) {
    out->push_back(static_cast<char>(method.size()));
    out->append(method);
  }
  out->append(body);
}

}  // namespace shoal::net::rpc
