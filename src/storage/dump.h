// The serialised form of entries, for bucket migration (and, later, DUMP/RESTORE and snapshots).
//
// A dump is a sequence of records, each self-delimiting:
//   u16 bucket | u8 type | i64 expire_ms (-1 = none) | u32 key_len | key |
//   string: u32 len | bytes          hash: u32 fields | (u32 len | field | u32 len | value)*
// integers little-endian. ForEachRecord validates every length against the input before anything
// is built, so a truncated or corrupt dump is an error, never a crash or a partial entry.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/result.h"
#include "storage/entry.h"

namespace shoal::storage {

// Appends `e` (of bucket b) to `out`.
void DumpEntry(BucketId b, const Entry& e, std::string* out);

// Calls fn(bucket, record) for each record of `dump`; an Error (invalid argument) if any record is
// malformed (then fn may have been called for the records before it).
Status ForEachRecord(std::string_view dump,
                     const std::function<void(BucketId, std::string_view)>& fn);

// Builds the entry of one record that ForEachRecord returned. Never fails on such a record.
Entry* LoadRecord(std::string_view record);

}  // namespace shoal::storage
