#include "storage/entry.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace shoal::storage {

Entry* Entry::Allocate(ObjType type, std::string_view key, size_t val_len, int64_t expire_ms) {
  const bool expires = expire_ms != kNoExpire;
  const size_t size = sizeof(Header) + (expires ? 8 : 0) + key.size() + val_len;
  void* mem = std::malloc(size);
  if (mem == nullptr) throw std::bad_alloc();
  auto* e = static_cast<Entry*>(mem);
  e->h_ =
      Header{0, static_cast<uint8_t>(type),        static_cast<uint8_t>(expires ? kHasExpire : 0),
             0, static_cast<uint32_t>(key.size()), static_cast<uint32_t>(val_len)};
  if (expires) e->set_expire_in_place(expire_ms);
  std::memcpy(e->data() + e->expire_bytes(), key.data(), key.size());
  return e;
}

Entry* Entry::NewString(std::string_view key, std::string_view value, int64_t expire_ms) {
  Entry* e = Allocate(ObjType::kString, key, value.size(), expire_ms);
  std::memcpy(e->data() + e->expire_bytes() + key.size(), value.data(), value.size());
  return e;
}

Entry* Entry::NewHash(std::string_view key, HashObj* hash, int64_t expire_ms) {
  Entry* e = Allocate(ObjType::kHash, key, sizeof(HashObj*), expire_ms);
  std::memcpy(e->data() + e->expire_bytes() + key.size(), &hash, sizeof hash);
  return e;
}

Entry* Entry::WithExpire(Entry* e, int64_t expire_ms) {
  if (e->type() == ObjType::kString) return NewString(e->key(), e->str(), expire_ms);
  Entry* n = NewHash(e->key(), e->hash(), expire_ms);
  n->set_lru(e->lru());
  return n;
}

void Entry::FreeShell(Entry* e) { std::free(e); }

void Entry::Free(Entry* e) {
  if (e->type() == ObjType::kHash) delete e->hash();
  std::free(e);
}

size_t Entry::AllocatedBytes() const {
  size_t n = malloc_usable_size(const_cast<Entry*>(this));
  if (type() == ObjType::kHash) n += sizeof(HashObj) + hash()->bytes();
  return n;
}

bool HashObj::Set(std::string_view field, std::string_view value) {
  auto [it, inserted] = map_.try_emplace(std::string(field));
  if (inserted) {
    bytes_ += StrBytes(field);
  } else {
    bytes_ -= StrBytes(it->second);
  }
  it->second.assign(value);
  bytes_ += StrBytes(value);
  return inserted;
}

bool HashObj::Erase(std::string_view field) {
  auto it = map_.find(field);
  if (it == map_.end()) return false;
  bytes_ -= StrBytes(it->first) + StrBytes(it->second);
  map_.erase(it);
  return true;
}

}  // namespace shoal::storage
