// libFuzzer target: the internal RPC frame decoder, fed a stream of frames. It must consume
// within bounds, make progress on every kOk, and stop at the first error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/rpc_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int guard = 0; guard < 10000 && !in.empty(); ++guard) {
    auto r = shoal::net::rpc::DecodeFrame(in, 1 << 20);
    if (r.status != shoal::net::rpc::DecodeStatus::kOk) break;
    if (r.consumed == 0 || r.consumed > in.size()) std::abort();
    in.remove_prefix(r.consumed);
  }
  return 0;
}
