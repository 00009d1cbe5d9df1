#include "storage/table.h"

#include <malloc.h>

#include <algorithm>
#include <string>

namespace shoal::storage {
namespace {
// Bytes a bucket set spends on slots and control bytes at a given capacity.
int64_t SetBytes(size_t capacity) { return static_cast<int64_t>(capacity * (sizeof(void*) + 1)); }
}  // namespace

Table::Table(const Clock* clock, uint64_t seed)
    : clock_(clock), rng_(seed), buckets_(kNumBuckets) {}

Table::~Table() {
  journal_ = nullptr;
  Clear();
}

void Table::JournalEntry(BucketId b, const Entry* e) {
  if (e->type() == ObjType::kString) {
    if (!e->has_expire()) return journal_->Append(b, {"SET", e->key(), e->str()});
    const std::string ms = std::to_string(e->expire_ms());
    return journal_->Append(b, {"SET", e->key(), e->str(), "PXAT", ms});
  }
  thread_local std::vector<std::string_view> args;
  const std::string ms = std::to_string(e->expire_ms());
  args.assign({"RESTOREHASH", e->key(), ms});
  for (const auto& [f, v] : e->hash()->map()) {
    args.emplace_back(f);
    args.emplace_back(v);
  }
  journal_->Append(b, args);
}

void Table::JournalDel(BucketId b, std::string_view key) { journal_->Append(b, {"DEL", key}); }

Entry* Table::FindAny(BucketId b, std::string_view key) {
  Bucket& bk = buckets_[b.value()];
  auto it = bk.set.find(key);
  return it == bk.set.end() ? nullptr : it->e;
}

void Table::Account(Bucket& bk, size_t old_capacity) {
  used_bytes_ += SetBytes(bk.set.capacity()) - SetBytes(old_capacity);
}

void Table::Unlink(Bucket& bk, Set::iterator it, bool free_entry) {
  Entry* e = it->e;
  const size_t cap = bk.set.capacity();
  if (e->has_expire()) {
    --bk.volatile_count;
    --volatile_keys_;
  }
  used_bytes_ -= static_cast<int64_t>(e->AllocatedBytes());
  bk.set.erase(it);
  --keys_;
  Account(bk, cap);
  if (free_entry) Entry::Free(e);
}

Entry* Table::Peek(BucketId b, std::string_view key) {
  Bucket& bk = buckets_[b.value()];
  auto it = bk.set.find(key);
  if (it == bk.set.end()) return nullptr;
  if (IsExpired(it->e)) {
    if (Journaling()) JournalDel(b, key);
    Unlink(bk, it, /*free_entry=*/true);
    ++expired_;
    return nullptr;
  }
  return it->e;
}

Entry* Table::Find(BucketId b, std::string_view key) {
  Entry* e = Peek(b, key);
  if (e != nullptr) e->set_lru(lru_clock_);
  return e;
}

void Table::Put(BucketId b, Entry* e) {
  Bucket& bk = buckets_[b.value()];
  e->set_lru(lru_clock_);
  const size_t cap = bk.set.capacity();
  auto [it, inserted] = bk.set.insert(Slot{e});
  if (!inserted) {
    Entry* old = it->e;
    if (old->has_expire()) {
      --bk.volatile_count;
      --volatile_keys_;
    }
    used_bytes_ -= static_cast<int64_t>(old->AllocatedBytes());
    it->e = e;
    Entry::Free(old);
  } else {
    ++keys_;
  }
  if (e->has_expire()) {
    ++bk.volatile_count;
    ++volatile_keys_;
  }
  used_bytes_ += static_cast<int64_t>(e->AllocatedBytes());
  Account(bk, cap);
  if (Journaling()) JournalEntry(b, e);
}

void Table::Replace(BucketId b, Entry* old, Entry* replacement) {
  ReplaceSlot(b, old, replacement);
  if (Journaling()) JournalEntry(b, replacement);
}

void Table::ReplaceSlot(BucketId b, Entry* old, Entry* replacement) {
  Bucket& bk = buckets_[b.value()];
  auto it = bk.set.find(old->key());
  it->e = replacement;
  replacement->set_lru(lru_clock_);
  // A hash's HashObj may move from `old` to `replacement`: measure the old block alone.
  used_bytes_ -= static_cast<int64_t>(malloc_usable_size(old));
  used_bytes_ += static_cast<int64_t>(malloc_usable_size(replacement));
  const int delta = (replacement->has_expire() ? 1 : 0) - (old->has_expire() ? 1 : 0);
  bk.volatile_count += delta;
  volatile_keys_ += delta;
}

bool Table::Erase(BucketId b, std::string_view key) {
  Bucket& bk = buckets_[b.value()];
  auto it = bk.set.find(key);
  if (it == bk.set.end()) return false;
  const bool expired = IsExpired(it->e);
  if (Journaling()) JournalDel(b, key);
  Unlink(bk, it, /*free_entry=*/true);
  if (expired) ++expired_;
  return !expired;
}

Entry* Table::Detach(BucketId b, std::string_view key) {
  Bucket& bk = buckets_[b.value()];
  auto it = bk.set.find(key);
  if (it == bk.set.end()) return nullptr;
  Entry* e = it->e;
  if (Journaling()) JournalDel(b, key);
  if (IsExpired(e)) {
    Unlink(bk, it, /*free_entry=*/true);
    ++expired_;
    return nullptr;
  }
  Unlink(bk, it, /*free_entry=*/false);
  return e;
}

Entry* Table::SetExpire(BucketId b, Entry* e, int64_t expire_ms) {
  if (e->expire_ms() == expire_ms) return e;
  if (Journaling()) {
    if (expire_ms == kNoExpire) {
      journal_->Append(b, {"PERSIST", e->key()});
    } else {
      journal_->Append(b, {"PEXPIREAT", e->key(), std::to_string(expire_ms)});
    }
  }
  if (e->has_expire() && expire_ms != kNoExpire) {
    e->set_expire_in_place(expire_ms);
    return e;
  }
  Entry* n = Entry::WithExpire(e, expire_ms);
  ReplaceSlot(b, e, n);
  Entry::FreeShell(e);
  return n;
}

size_t Table::Clear() {
  const size_t n = keys_;
  if (n > 0 && Journaling()) journal_->Append(kAllBuckets, {"FLUSHALL"});
  for (Bucket& bk : buckets_) {
    for (const Slot& s : bk.set) Entry::Free(s.e);
    Set().swap(bk.set);
    bk.volatile_count = 0;
  }
  keys_ = 0;
  volatile_keys_ = 0;
  used_bytes_ = 0;
  return n;
}

size_t Table::ClearBucket(BucketId b) {
  Bucket& bk = buckets_[b.value()];
  const size_t n = bk.set.size();
  if (n > 0 && Journaling()) journal_->Append(b, {"DROPBUCKET"});
  while (!bk.set.empty()) Unlink(bk, bk.set.begin(), /*free_entry=*/true);
  const size_t cap = bk.set.capacity();
  Set().swap(bk.set);
  Account(bk, cap);
  return n;
}

size_t Table::ActiveExpireCycle(size_t budget) {
  if (volatile_keys_ == 0) return 0;
  size_t examined = 0, expired = 0;
  const int64_t now = clock_->NowUnixMillis();
  for (uint32_t visited = 0; visited < kNumBuckets && examined < budget; ++visited) {
    Bucket& bk = buckets_[expire_cursor_];
    expire_cursor_ = (expire_cursor_ + 1) % kNumBuckets;
    if (bk.volatile_count == 0) continue;
    for (auto it = bk.set.begin(); it != bk.set.end();) {
      ++examined;
      Entry* e = it->e;
      auto next = std::next(it);
      if (e->has_expire() && e->expire_ms() <= now) {
        if (Journaling())
          JournalDel(BucketId(static_cast<uint16_t>(&bk - buckets_.data())), e->key());
        Unlink(bk, it, /*free_entry=*/true);
        ++expired;
      }
      it = next;
    }
  }
  expired_ += expired;
  return expired;
}

Entry* Table::SampleEntry(SamplePool pool, uint32_t* bucket) {
  const bool volatile_only = pool == SamplePool::kVolatileKeys;
  if (keys_ == 0 || (volatile_only && volatile_keys_ == 0)) return nullptr;
  auto usable = [&](const Bucket& bk) {
    return volatile_only ? bk.volatile_count > 0 : !bk.set.empty();
  };
  uint32_t b = static_cast<uint32_t>(rng_.Uniform(kNumBuckets));
  bool found = false;
  for (int tries = 0; tries < 32 && !found; ++tries) {
    if (usable(buckets_[b])) {
      found = true;
    } else {
      b = static_cast<uint32_t>(rng_.Uniform(kNumBuckets));
    }
  }
  for (uint32_t i = 0; i < kNumBuckets && !found; ++i) {
    b = (b + 1) % kNumBuckets;
    found = usable(buckets_[b]);
  }
  if (!found) return nullptr;
  const Set& set = buckets_[b].set;
  if (bucket != nullptr) *bucket = b;
  if (volatile_only) {
    size_t pick = rng_.Uniform(buckets_[b].volatile_count);
    for (const Slot& s : set) {
      if (s.e->has_expire() && pick-- == 0) return s.e;
    }
    return nullptr;
  }
  auto it = set.begin();
  std::advance(it, static_cast<long>(rng_.Uniform(set.size())));
  return it->e;
}

Entry* Table::RandomEntry() {
  for (int tries = 0; tries < 100; ++tries) {
    Entry* e = SampleEntry(SamplePool::kAnyKey, nullptr);
    if (e == nullptr) return nullptr;
    if (!IsExpired(e)) return e;
  }
  return nullptr;
}

bool Table::EvictOne(EvictionPolicy policy, int samples) {
  if (policy == EvictionPolicy::kNoEviction) return false;
  const SamplePool pool =
      policy == EvictionPolicy::kVolatileLru ? SamplePool::kVolatileKeys : SamplePool::kAnyKey;
  Entry* victim = nullptr;
  uint32_t victim_bucket = 0;
  if (policy == EvictionPolicy::kAllKeysRandom) {
    victim = SampleEntry(SamplePool::kAnyKey, &victim_bucket);
  } else {
    // Oldest of `samples` random candidates. The LRU clock wraps after 136 years.
    for (int i = 0; i < std::max(samples, 1); ++i) {
      uint32_t b = 0;
      Entry* e = SampleEntry(pool, &b);
      if (e == nullptr) break;
      if (victim == nullptr || e->lru() < victim->lru()) {
        victim = e;
        victim_bucket = b;
      }
    }
  }
  if (victim == nullptr) return false;
  Bucket& bk = buckets_[victim_bucket];
  if (Journaling()) JournalDel(BucketId(static_cast<uint16_t>(victim_bucket)), victim->key());
  Unlink(bk, bk.set.find(victim->key()), /*free_entry=*/true);
  ++evicted_;
  return true;
}

TableStats Table::stats() const {
  return TableStats{keys_.Get(), volatile_keys_.Get(), expired_.Get(), evicted_.Get(),
                    used_bytes_.Get()};
}

}  // namespace shoal::storage
