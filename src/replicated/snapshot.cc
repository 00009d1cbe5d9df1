#include "replicated/snapshot.h"

#include <cstring>

#include "common/hash.h"
#include "common/wire.h"

namespace shoal::replicated {

namespace {

constexpr std::string_view kMagic = "SHOALRM1";
constexpr std::string_view kEnd = "SHOALEND";
constexpr uint32_t kFormat = 2;  // 1 had no save time; still read

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

class In {
 public:
  In(std::string_view s, std::string_view what) : s_(s), what_(what) {}
  template <typename T>
  bool Get(T* v) {
    if (s_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (s_.size() - pos_ < n) return false;
    *out = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return s_.size() - pos_; }
  Error Fail(const std::string& why) const {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 std::string(what_) + ": " + why + " (at byte " + std::to_string(pos_) + " of " +
                     std::to_string(s_.size()) + "); refusing to load it");
  }

 private:
  std::string_view s_;
  std::string_view what_;
  size_t pos_ = 0;
};

std::string EncodeOne(const Change& c) {
  // One change as a batch of one would repeat the map name: write the change array alone.
  std::string b = EncodeChanges("-", {c});
  return b;
}

}  // namespace

SnapshotWriter::SnapshotWriter(std::string_view name, HlcTime horizon, int64_t saved_unix_ms) {
  out_.append(kMagic);
  Put<uint32_t>(&out_, kFormat);
  Put<uint32_t>(&out_, static_cast<uint32_t>(name.size()));
  out_.append(name);
  Put<uint64_t>(&out_, horizon.wall);
  Put<uint32_t>(&out_, horizon.logical);
  Put<int64_t>(&out_, saved_unix_ms);
  count_at_ = out_.size();
  Put<uint64_t>(&out_, 0);  // the record count, filled in by Finish
}

void SnapshotWriter::Add(const std::string& key, const LwwMap::Entry& e) {
  const std::string rec = EncodeOne(LwwMap::ToChange(key, e));
  Put<uint32_t>(&out_, static_cast<uint32_t>(rec.size()));
  out_.append(rec);
  ++count_;
}

std::string SnapshotWriter::Finish() {
  std::memcpy(out_.data() + count_at_, &count_, sizeof count_);
  Put<uint64_t>(&out_, Hash64(out_));
  out_.append(kEnd);
  return std::move(out_);
}

std::string EncodeSnapshot(std::string_view name, const LwwMap& map, int64_t saved_unix_ms) {
  SnapshotWriter w(name, map.horizon(), saved_unix_ms);
  map.ForEach([&w](const std::string& k, const LwwMap::Entry& e) {
    w.Add(k, e);
    return true;
  });
  return w.Finish();
}

Result<Snapshot> DecodeSnapshot(std::string_view bytes, std::string_view what) {
  In in(bytes, what);
  if (bytes.size() < kMagic.size() && kMagic.starts_with(bytes)) {
    return in.Fail(bytes.empty() ? "empty file" : "truncated (shorter than the header)");
  }
  std::string_view magic;
  if (!in.Bytes(kMagic.size(), &magic) || magic != kMagic) {
    return in.Fail("not a shoal replicated-map snapshot (bad magic)");
  }
  // Checksum first: any flipped byte anywhere is reported as such.
  if (bytes.size() < kMagic.size() + 8 + kEnd.size() ||
      bytes.substr(bytes.size() - kEnd.size()) != kEnd) {
    return in.Fail("truncated or corrupt (no end marker)");
  }
  const size_t body = bytes.size() - kEnd.size() - 8;
  uint64_t sum;
  std::memcpy(&sum, bytes.data() + body, 8);
  if (Hash64(bytes.substr(0, body)) != sum) return in.Fail("checksum mismatch (corrupt file)");
  uint32_t format, name_len, logical;
  uint64_t wall, count;
  std::string_view name;
  if (!in.Get(&format)) return in.Fail("truncated header");
  if (format != 1 && format != kFormat) {
    return in.Fail("unsupported format version " + std::to_string(format));
  }
  int64_t saved = 0;
  if (!in.Get(&name_len) || name_len == 0 || name_len > 256 || !in.Bytes(name_len, &name) ||
      !in.Get(&wall) || !in.Get(&logical) || (format >= 2 && !in.Get(&saved)) || !in.Get(&count)) {
    return in.Fail("bad header");
  }
  Snapshot s;
  s.saved_unix_ms = saved;
  s.map = std::string(name);
  s.horizon = HlcTime{wall, logical};
  if (count > body / 5) return in.Fail("record count larger than the file");
  s.changes.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t len;
    std::string_view rec;
    if (in.pos() + 4 > body || !in.Get(&len) || in.pos() + len > body || !in.Bytes(len, &rec)) {
      return in.Fail("record " + std::to_string(i) + " truncated");
    }
    Result<ChangeBatch> b = DecodeChanges(rec);
    if (!b.ok() || b->changes.size() != 1) {
      return in.Fail("record " + std::to_string(i) + " malformed" +
                     (b.ok() ? std::string() : ": " + b.error().message()));
    }
    s.changes.push_back(std::move(b->changes[0]));
  }
  if (in.pos() != body) return in.Fail("trailing bytes after the last record");
  return s;
}

void RestoreSnapshot(const Snapshot& snapshot, LwwMap* map) {
  map->Clear();
  for (const Change& c : snapshot.changes) map->Apply(c);
  map->CollectTombstones(snapshot.horizon);
}

Result<Snapshot> LoadSnapshotFile(Env& env, const std::string& path) {
  Result<std::string> bytes = env.ReadFile(path);
  if (!bytes.ok()) return bytes.error();
  return DecodeSnapshot(*bytes, path);
}

}  // namespace shoal::replicated
