// The frame format of the internal node-to-node RPC (net/rpc.h), as pure functions: no sockets,
// no state, so the decoder can be fed anything (tests split input at every byte; a libFuzzer
// target only needs to call DecodeFrame on its input).
//
//   u32  length            big-endian; the number of bytes that follow (header + body)
//   u8   kind              1 request, 2 response, 3 error
//   u64  request id        big-endian; chosen by the caller, echoed by the response
//   u8   method length     requests only
//   ...  method name       requests only, 1..255 bytes
//   ...  body              the rest: request/response bytes, or the error's message
//
// The length is checked against the receiver's limit as soon as its 4 bytes are in, before any
// of the body is buffered, so a peer cannot make a node allocate more than the limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::net::rpc {

enum class FrameKind : uint8_t { kRequest = 1, kResponse = 2, kError = 3 };

inline constexpr size_t kLengthPrefixSize = 4;
inline constexpr size_t kMaxMethodLength = 255;
// Smallest valid length: kind + id (a response or error with an empty body).
inline constexpr size_t kMinFrameLength = 1 + 8;
// Default limit on `length`. Large enough for a bucket-migration batch or a replicated-map
// snapshot chunk; senders split anything bigger.
inline constexpr size_t kDefaultMaxFrameSize = 64 << 20;

struct Frame {
  FrameKind kind = FrameKind::kRequest;
  uint64_t id = 0;
  std::string_view method;  // requests only
  std::string_view body;
};

enum class DecodeStatus { kOk, kNeedMore, kError };

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;     // kOk: bytes of the frame, to drop from the input
  Frame frame;             // kOk: views into the input
  const char* error = "";  // kError: what is wrong, for logs and the peer's error
};

// Decodes the first frame of `input`. kNeedMore when `input` holds only a prefix of a valid
// frame; kError when it cannot become one (length over `max_frame_size` or under the minimum,
// unknown kind, empty or over-long method name, method in a non-request).
DecodeResult DecodeFrame(std::string_view input, size_t max_frame_size = kDefaultMaxFrameSize);

// The size the frame will have on the wire, length prefix excluded (compare with the limit).
size_t FrameLength(FrameKind kind, std::string_view method, size_t body_size);

// Appends one frame. REQUIRES: method.size() <= kMaxMethodLength (and non-empty for requests),
// FrameLength(...) <= UINT32_MAX.
void AppendFrame(std::string* out, FrameKind kind, uint64_t id, std::string_view method,
                 std::string_view body);

}  // namespace shoal::net::rpc
