// Entry: one key and its value in a single heap block, the unit the storage tables hold.
//
// Layout: [Header 16 B][expire ms, 8 B, only when kHasExpire][key bytes][value]
// where value is the string's bytes (kString) or a HashObj* (kHash). A 16-byte key with a 32-byte
// string value and no TTL is exactly 64 bytes, one jemalloc size class with no slack: Redis spends
// a dictEntry, an sds key and a robj + embstr on the same pair.
//
// An entry's key never changes; a value change that alters its size (APPEND, SETRANGE, EXPIRE on a
// key without TTL) builds a new block and the table swaps the pointer (Table::Replace).
// Not thread-safe: an entry belongs to the table (worker thread) that holds it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "storage/hash_obj.h"

namespace shoal::storage {

enum class ObjType : uint8_t { kString = 0, kHash = 1 };

inline constexpr int64_t kNoExpire = -1;

class Entry {
 public:
  static Entry* NewString(std::string_view key, std::string_view value, int64_t expire_ms);
  // Takes ownership of `hash`.
  static Entry* NewHash(std::string_view key, HashObj* hash, int64_t expire_ms);
  // Frees the block and, for a hash, the HashObj it owns.
  static void Free(Entry* e);
  // A copy of `e` with another expiry (kNoExpire removes it). A hash's HashObj moves to the copy;
  // the caller then frees `e` with FreeShell (not Free).
  static Entry* WithExpire(Entry* e, int64_t expire_ms);
  static void FreeShell(Entry* e);

  ObjType type() const { return static_cast<ObjType>(h_.type); }
  bool has_expire() const { return h_.flags & kHasExpire; }
  int64_t expire_ms() const {
    if (!has_expire()) return kNoExpire;
    int64_t v;
    std::memcpy(&v, data(), sizeof v);
    return v;
  }
  // Updates an existing expiry in place. REQUIRES: has_expire().
  void set_expire_in_place(int64_t ms) { std::memcpy(data(), &ms, sizeof ms); }

  std::string_view key() const { return {data() + expire_bytes(), h_.key_len}; }
  // REQUIRES: type() == kString.
  std::string_view str() const { return {data() + expire_bytes() + h_.key_len, h_.val_len}; }
  // REQUIRES: type() == kHash.
  HashObj* hash() const {
    HashObj* p;
    std::memcpy(&p, data() + expire_bytes() + h_.key_len, sizeof p);
    return p;
  }
  // Overwrites a string value of the same length in place (SETRANGE within bounds, INCR when the
  // digits count is unchanged). REQUIRES: type() == kString, value.size() == str().size().
  void OverwriteSameSize(std::string_view value) {
    std::memcpy(data() + expire_bytes() + h_.key_len, value.data(), value.size());
  }

  uint32_t lru() const { return h_.lru; }
  void set_lru(uint32_t v) { h_.lru = v; }

  // Bytes this block occupies in the allocator.
  size_t AllocatedBytes() const;

 private:
  static constexpr uint8_t kHasExpire = 1;
  struct Header {
    uint32_t lru;  // seconds on the table's LRU clock at the last access
    uint8_t type;
    uint8_t flags;
    uint16_t reserved;
    uint32_t key_len;
    uint32_t val_len;
  };
  static_assert(sizeof(Header) == 16);

  static Entry* Allocate(ObjType type, std::string_view key, size_t val_len, int64_t expire_ms);
  size_t expire_bytes() const { return has_expire() ? 8 : 0; }
  char* data() { return reinterpret_cast<char*>(this) + sizeof(Header); }
  const char* data() const { return reinterpret_cast<const char*>(this) + sizeof(Header); }

  Header h_;
};

}  // namespace shoal::storage
