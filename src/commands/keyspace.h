// Helpers shared by the command implementations: key lookup across tables, expiry arguments.
#pragma once

#include <functional>
#include <string_view>

#include "common/keyslot.h"
#include "engine/command.h"
#include "storage/table.h"

namespace shoal::commands {

using engine::Args;

// Finds the table holding a key: the executing worker's table for a keyed command, or the owning
// worker's (locked) table inside Engine::RunLocked. Multi-key logic is written once against it.
using TableFor = std::function<storage::Table*(std::string_view key)>;

inline storage::Entry* Lookup(storage::Table* t, std::string_view key) {
  return t->Find(KeyBucket(key), key);
}

// Parses an expiry given in `unit_ms` units (1000 for seconds), relative or absolute, into an
// absolute unix-ms time. False on a non-integer, non-positive or overflowing value.
enum class ExpiryForm { kRelative, kAbsolute };  // EX/PX from now; EXAT/PXAT a unix time
bool ParseExpiry(std::string_view arg, int64_t unit_ms, ExpiryForm form, int64_t now_ms,
                 int64_t* out);

// Reply helpers for the multi-key commands, shared by their single- and multi-worker paths.
void DoMGet(Args args, resp::ReplyBuilder* out, const TableFor& table_for);
// kOnlyIfAbsent: MSETNX and RENAMENX, which write only when no target key exists.
enum class Overwrite { kAllowed, kOnlyIfAbsent };
void DoMSet(Args args, resp::ReplyBuilder* out, const TableFor& table_for, Overwrite mode);
void DoDel(Args args, resp::ReplyBuilder* out, const TableFor& table_for);
void DoExists(Args args, resp::ReplyBuilder* out, const TableFor& table_for);
void DoRename(Args args, resp::ReplyBuilder* out, const TableFor& table_for, Overwrite mode);

// SCAN's options, [MATCH pattern] [COUNT n] [TYPE string|hash], from a[from] on; shared by SCAN
// and RMAP.SCAN. False (the error written to `out`) on a bad option or value.
struct ScanOptions {
  std::string pattern;  // "" = every key
  std::string type;     // "" = any, else lower case
  int64_t count = 10;
};
bool ParseScanOptions(Args a, size_t from, ScanOptions* opts, resp::ReplyBuilder* out);

}  // namespace shoal::commands
