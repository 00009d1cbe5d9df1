// Redis Cluster's key -> bucket (hash slot) function: CRC16-XMODEM of the key, or of its hash tag,
// modulo 16384. The hash tag is the part between the first '{' and the next '}' when that part is
// non-empty ("{user1000}.following" and "{user1000}.followers" share a bucket; "foo{}{bar}" hashes
// the whole key).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/ids.h"

namespace shoal {

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
uint16_t Crc16(std::string_view data);

// The part of `key` that is hashed: its hash tag if it has one, else the whole key.
std::string_view HashTagOf(std::string_view key);

inline BucketId KeyBucket(std::string_view key) {
  return BucketId(static_cast<uint16_t>(Crc16(HashTagOf(key)) & (kNumBuckets - 1)));
}

}  // namespace shoal
