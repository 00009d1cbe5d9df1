// libFuzzer target: the SWIM packet and state-blob decoders. Whatever the bytes, decoding must
// return a value or an error — never crash, hang or read out of bounds — and a packet that
// decodes must survive a re-seal/re-open round trip with the same cookie: its messages, encoded
// again and sealed, open to the same messages (and fail to open under another cookie). A state
// blob that opens must encode and open again to the same table.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "membership/codec.h"

namespace {

constexpr std::string_view kCookie = "cookie";

void ResealRoundTrip(const std::vector<shoal::membership::Message>& messages) {
  if (messages.size() > 255) std::abort();  // the count is one byte
  std::vector<std::string> framed;
  framed.reserve(messages.size());
  for (const auto& m : messages) framed.push_back(shoal::membership::EncodeMessage(m));
  const std::vector<std::string_view> views(framed.begin(), framed.end());
  const std::string packet = shoal::membership::SealPacket(kCookie, views);
  auto reopened = shoal::membership::OpenPacket(kCookie, packet);
  if (!reopened.ok() || *reopened != messages) std::abort();
  if (shoal::membership::OpenPacket("another cookie", packet).ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto body = shoal::membership::DecodePacketBody(in); body.ok()) ResealRoundTrip(*body);
  if (auto opened = shoal::membership::OpenPacket(kCookie, in); opened.ok()) {
    ResealRoundTrip(*opened);
  }
  if (auto blob = shoal::membership::DecodeStateBlob(kCookie, in); blob.ok()) {
    const std::string again = shoal::membership::EncodeStateBlob(kCookie, *blob);
    auto reopened = shoal::membership::DecodeStateBlob(kCookie, again);
    if (!reopened.ok() || *reopened != *blob) std::abort();
  }
  return 0;
}
