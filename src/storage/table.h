// Table: the keyspace slice owned by one worker thread.
//
// Keys are grouped by bucket (Redis hash slot, 0..16383): each bucket is its own small open-
// addressing hash table of Entry pointers. That makes "all keys of bucket b" a direct walk (what
// CLUSTER GETKEYSINSLOT, SCAN and bucket migration need), and it keeps every table small, so a
// resize touches ~60 entries on a 1M-key node and never stalls the thread as one big rehash
// would (the reason Dragonfly splits its dashtable into segments).
//
// Expiry: lazy on access, plus ActiveExpireCycle() which walks the buckets that hold volatile keys
// from a rotating cursor within a work budget. Eviction: approximate LRU / random by sampling, as
// Redis does (maxmemory-samples keys, evict the least recently used).
//
// Memory accounting counts entry blocks as the allocator sized them plus table slots; it is what
// maxmemory is compared with (client buffers are not included; see docs/commands.md).
//
// Journal: with set_journal(), every change is recorded there as its effect (storage/journal.h):
// the mutating calls below record themselves; a caller that changes an entry in place (a hash's
// fields, OverwriteSameSize) reports it with ValueChanged / NoteHashSet / NoteHashDel.
//
// Thread-safety: none. A Table belongs to one worker thread; other threads reach it by messages.
// Entry pointers returned stay valid until the next mutating call on this table.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/rng.h"
#include "storage/entry.h"
#include "storage/journal.h"

namespace shoal::storage {

enum class EvictionPolicy { kNoEviction, kAllKeysLru, kVolatileLru, kAllKeysRandom };

struct TableStats {
  uint64_t keys = 0;
  uint64_t volatile_keys = 0;
  uint64_t expired_keys = 0;  // removed because their TTL passed (lazily or actively)
  uint64_t evicted_keys = 0;
  int64_t used_bytes = 0;
};

class Table {
 public:
  Table(const Clock* clock, uint64_t seed);
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // The live entry for `key` in bucket `b`, or nullptr. An expired entry is deleted on the way.
  // Find() marks the entry as used for LRU; Peek() does not.
  Entry* Find(BucketId b, std::string_view key);
  Entry* Peek(BucketId b, std::string_view key);

  // Inserts `e` (taking ownership), replacing and freeing any entry with the same key.
  void Put(BucketId b, Entry* e);
  // Swaps the block of an existing key for `replacement` (same key). The old block is NOT freed:
  // the caller frees it (Entry::Free or Entry::FreeShell, depending on how it was derived).
  // REQUIRES: `old` is the live entry for that key in bucket b.
  void Replace(BucketId b, Entry* old, Entry* replacement);
  // Deletes the key; returns whether it existed (an expired key counts as absent).
  bool Erase(BucketId b, std::string_view key);
  // Removes the key and hands its entry to the caller (nullptr if absent).
  Entry* Detach(BucketId b, std::string_view key);

  // Sets or clears (kNoExpire) the expiry of a live entry; returns the entry now in the table.
  Entry* SetExpire(BucketId b, Entry* e, int64_t expire_ms);

  // The entry for `key`, expired or not, without deleting it (replaying a journal).
  Entry* FindAny(BucketId b, std::string_view key);

  // Records changes made in place: a string's new value (same block), hash fields set or removed.
  void ValueChanged(BucketId b, const Entry* e) {
    if (Journaling()) JournalEntry(b, e);
  }
  void NoteHashSet(BucketId b, std::string_view key, std::string_view field,
                   std::string_view value) {
    if (Journaling()) journal_->Append(b, {"HSET", key, field, value});
  }
  void NoteHashDel(BucketId b, std::string_view key, std::string_view field) {
    if (Journaling()) journal_->Append(b, {"HDEL", key, field});
  }

  // Where changes are recorded (nullptr: nowhere). The journal must outlive the table.
  void set_journal(Journal* j) { journal_ = j; }
  Journal* journal() const { return journal_; }

  // Called after a hash value changed size, with its bytes() before the change.
  void HashResized(size_t old_hash_bytes, size_t new_hash_bytes) {
    used_bytes_ += static_cast<int64_t>(new_hash_bytes) - static_cast<int64_t>(old_hash_bytes);
  }

  size_t size() const { return keys_; }
  size_t BucketSize(BucketId b) const { return buckets_[b.value()].set.size(); }
  // Calls fn(Entry*) for each entry of bucket b, expired ones included (callers check
  // IsExpired). fn must not mutate the table.
  template <typename F>
  void ForEachInBucket(BucketId b, F&& fn) const {
    for (const Slot& s : buckets_[b.value()].set) fn(s.e);
  }
  bool IsExpired(const Entry* e) const {
    return e->has_expire() && e->expire_ms() <= clock_->NowUnixMillis();
  }

  // Deletes every key. Returns the number deleted.
  size_t Clear();
  // Deletes every key of bucket b (a bucket migrated away). Returns the number deleted.
  size_t ClearBucket(BucketId b);

  // One round of active expiry: examines at most `budget` entries in buckets that hold volatile
  // keys, continuing where the last call stopped. Returns the number of keys expired.
  size_t ActiveExpireCycle(size_t budget);

  // Evicts one key chosen by `policy` from `samples` random candidates. Returns false if no key
  // qualifies (empty table, or volatile-lru with no volatile key, or noeviction).
  bool EvictOne(EvictionPolicy policy, int samples);

  // A random live key's entry, or nullptr if the table is empty.
  Entry* RandomEntry();

  // The LRU clock, in seconds, stamped on entries by Find(). Set by the owner's timer.
  void set_lru_clock(uint32_t seconds) { lru_clock_ = seconds; }

  // Thread-safe: the counters are single-writer atomics (metrics::OwnedValue).
  TableStats stats() const;
  int64_t used_bytes() const { return used_bytes_; }
  const Clock* clock() const { return clock_; }

 private:
  struct Slot {
    mutable Entry* e;  // mutable: Replace() swaps the block; the key, hence the hash, is unchanged
  };
  struct SlotHash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const { return Hash64(k); }
    size_t operator()(const Slot& s) const { return Hash64(s.e->key()); }
  };
  struct SlotEq {
    using is_transparent = void;
    bool operator()(const Slot& a, const Slot& b) const { return a.e->key() == b.e->key(); }
    bool operator()(const Slot& a, std::string_view b) const { return a.e->key() == b; }
    bool operator()(std::string_view a, const Slot& b) const { return a == b.e->key(); }
  };
  using Set = absl::flat_hash_set<Slot, SlotHash, SlotEq>;
  struct Bucket {
    Set set;
    uint32_t volatile_count = 0;
  };

  // Takes the next LSN; true if the record must be built.
  bool Journaling() { return journal_ != nullptr && journal_->Next(); }
  void JournalEntry(BucketId b, const Entry* e);
  void JournalDel(BucketId b, std::string_view key);
  void ReplaceSlot(BucketId b, Entry* old, Entry* replacement);

  // Accounting around a change to one bucket's set.
  void Account(Bucket& bk, size_t old_capacity);
  void Unlink(Bucket& bk, Set::iterator it, bool free_entry);
  enum class SamplePool { kAnyKey, kVolatileKeys };  // kVolatileKeys: keys with a TTL only
  Entry* SampleEntry(SamplePool pool, uint32_t* bucket);

  const Clock* clock_;
  Journal* journal_ = nullptr;
  SeededRng rng_;
  std::vector<Bucket> buckets_;
  // Written by the owning worker, read by any thread (stats(), used_bytes(), size()).
  metrics::OwnedValue<size_t> keys_{0};
  metrics::OwnedValue<size_t> volatile_keys_{0};
  metrics::OwnedValue<uint64_t> expired_{0};
  metrics::OwnedValue<uint64_t> evicted_{0};
  metrics::OwnedValue<int64_t> used_bytes_{0};
  uint32_t lru_clock_ = 0;
  uint32_t expire_cursor_ = 0;
};

}  // namespace shoal::storage
