#include "storage/dump.h"

#include <cstring>
#include <system_error>

namespace shoal::storage {
namespace {

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool Need(size_t n) const { return s_.size() - pos_ >= n; }
  template <typename T>
  bool Get(T* v) {
    if (!Need(sizeof(T))) return false;
    std::memcpy(v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Bytes(std::string_view* v) {
    uint32_t n;
    if (!Get(&n) || !Need(n)) return false;
    *v = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

Status Malformed(size_t at, const char* what) {
  return Error(std::make_error_code(std::errc::invalid_argument),
               std::string("malformed dump at byte ") + std::to_string(at) + ": " + what);
}

}  // namespace

void DumpEntry(BucketId b, const Entry& e, std::string* out) {
  const uint16_t bucket = b.value();
  out->append(reinterpret_cast<const char*>(&bucket), 2);
  out->push_back(static_cast<char>(e.type()));
  const int64_t exp = e.expire_ms();
  out->append(reinterpret_cast<const char*>(&exp), 8);
  PutU32(out, static_cast<uint32_t>(e.key().size()));
  out->append(e.key());
  if (e.type() == ObjType::kString) {
    PutU32(out, static_cast<uint32_t>(e.str().size()));
    out->append(e.str());
  } else {
    const HashObj* h = e.hash();
    PutU32(out, static_cast<uint32_t>(h->size()));
    for (const auto& [f, v] : h->map()) {
      PutU32(out, static_cast<uint32_t>(f.size()));
      out->append(f);
      PutU32(out, static_cast<uint32_t>(v.size()));
      out->append(v);
    }
  }
}

Status ForEachRecord(std::string_view dump,
                     const std::function<void(BucketId, std::string_view)>& fn) {
  Cursor c(dump);
  while (!c.done()) {
    const size_t start = c.pos();
    uint16_t bucket = 0;
    uint8_t type = 0;
    int64_t exp = 0;
    std::string_view key, v;
    if (!c.Get(&bucket) || !c.Get(&type) || !c.Get(&exp) || !c.Bytes(&key)) {
      return Malformed(start, "truncated header");
    }
    if (bucket >= kNumBuckets) return Malformed(start, "bucket out of range");
    if (exp < kNoExpire) return Malformed(start, "bad expiry");
    if (type == static_cast<uint8_t>(ObjType::kString)) {
      if (!c.Bytes(&v)) return Malformed(start, "truncated value");
    } else if (type == static_cast<uint8_t>(ObjType::kHash)) {
      uint32_t fields;
      if (!c.Get(&fields)) return Malformed(start, "truncated hash");
      for (uint32_t i = 0; i < fields; ++i) {
        if (!c.Bytes(&v) || !c.Bytes(&v)) return Malformed(start, "truncated hash field");
      }
    } else {
      return Malformed(start, "unknown type");
    }
    fn(BucketId(bucket), dump.substr(start, c.pos() - start));
  }
  return Status::Ok();
}

Entry* LoadRecord(std::string_view record) {
  Cursor c(record);
  uint16_t bucket = 0;
  uint8_t type = 0;
  int64_t exp = kNoExpire;
  std::string_view key, v;
  c.Get(&bucket);
  c.Get(&type);
  c.Get(&exp);
  c.Bytes(&key);
  if (type == static_cast<uint8_t>(ObjType::kString)) {
    c.Bytes(&v);
    return Entry::NewString(key, v, exp);
  }
  uint32_t fields = 0;
  c.Get(&fields);
  auto* h = new HashObj();
  for (uint32_t i = 0; i < fields; ++i) {
    std::string_view f;
    c.Bytes(&f);
    c.Bytes(&v);
    h->Set(f, v);
  }
  return Entry::NewHash(key, h, exp);
}

}  // namespace shoal::storage
