// libFuzzer target: the sharding layer's decoders — protocol messages (msgpack), bucket maps and
// migration chunks (storage dumps). The first byte picks the decoder. Each must reject bad input
// with an error, never crash, and a dump record it accepts must load into an entry.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sharding/bucket_map.h"
#include "sharding/messages.h"
#include "storage/dump.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto m = shoal::sharding::Decode(in);
      if (m.ok()) {
        // What decodes re-encodes and decodes again to the same kind.
        auto again = shoal::sharding::Decode(shoal::sharding::Encode(*m));
        if (!again.ok() || again->index() != m->index()) std::abort();
      }
      break;
    }
    case 1: {
      auto map = shoal::sharding::BucketMap::Decode(in);
      if (map.ok()) {
        for (const auto& r : map->Ranges()) {
          if (r.first > r.last || r.set_index >= map->sets().size()) std::abort();
        }
      }
      break;
    }
    case 2: {
      (void)shoal::storage::ForEachRecord(in, [](shoal::BucketId b, std::string_view rec) {
        if (b.value() >= shoal::kNumBuckets) std::abort();
        shoal::storage::Entry* e = shoal::storage::LoadRecord(rec);
        if (e == nullptr) std::abort();
        shoal::storage::Entry::Free(e);
      });
      break;
    }
  }
  return 0;
}
