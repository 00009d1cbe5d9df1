#include "storage/journal.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "storage/table.h"

namespace shoal::storage {
namespace {

std::atomic<uint64_t> g_next_group{1};

void EncodeArg(std::string* out, std::string_view a) {
  char num[24];
  auto r = std::to_chars(num, num + sizeof num, a.size());
  out->push_back('$');
  out->append(num, r.ptr);
  out->append("\r\n");
  out->append(a);
  out->append("\r\n");
}

template <typename It>
void Encode(std::string* out, It begin, It end) {
  out->clear();
  char num[24];
  auto r = std::to_chars(num, num + sizeof num, static_cast<size_t>(end - begin));
  out->push_back('*');
  out->append(num, r.ptr);
  out->append("\r\n");
  for (It it = begin; it != end; ++it) EncodeArg(out, *it);
}

Status Bad(std::string what) {
  return Error(std::make_error_code(std::errc::invalid_argument), "journal op: " + what);
}

bool ParseLen(std::string_view s, size_t* pos, size_t* out) {
  const size_t eol = s.find("\r\n", *pos);
  if (eol == std::string_view::npos) return false;
  auto r = std::from_chars(s.data() + *pos, s.data() + eol, *out);
  if (r.ec != std::errc() || r.ptr != s.data() + eol) return false;
  *pos = eol + 2;
  return true;
}

bool ParseMs(std::string_view s, int64_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool Is(std::string_view a, std::string_view b) { return a == b; }

}  // namespace

Journal::Journal(size_t max_records, size_t max_bytes)
    : max_records_(std::max<size_t>(max_records, 1)), max_bytes_(max_bytes) {}

uint64_t Journal::NewGroupId() { return g_next_group.fetch_add(1, std::memory_order_relaxed); }

Status Journal::Subscribe(JournalConsumer* c, Lsn from) {
  const uint64_t last = lsn_.load(std::memory_order_relaxed);
  if (from.value() == 0 || from.value() > last + 1) {
    return Bad("LSN " + std::to_string(from.value()) + " is not reached yet");
  }
  const uint64_t oldest = ring_.empty() ? last + 1 : ring_.front().lsn.value();
  if (from.value() < oldest) {
    return Bad("LSN " + std::to_string(from.value()) + " is no longer held (oldest " +
               std::to_string(oldest) + ")");
  }
  for (const JournalRecord& r : ring_) {
    if (r.lsn >= from) c->OnRecord(r);
  }
  consumers_.push_back(c);
  return Status::Ok();
}

void Journal::Unsubscribe(JournalConsumer* c) {
  consumers_.erase(std::remove(consumers_.begin(), consumers_.end(), c), consumers_.end());
  if (consumers_.empty()) {
    // Nothing is recorded while nobody listens: what is held would have a gap after it.
    ring_.clear();
    ring_bytes_ = 0;
  }
}

void Journal::Append(BucketId b, std::initializer_list<std::string_view> args) {
  Encode(&buf_, args.begin(), args.end());
  Push(b, buf_);
}

void Journal::Append(BucketId b, const std::vector<std::string_view>& args) {
  Encode(&buf_, args.begin(), args.end());
  Push(b, buf_);
}

void Journal::Push(BucketId b, std::string op) {
  JournalRecord r;
  r.lsn = lsn();
  r.bucket = b;
  r.op = std::move(op);
  if (in_unit_) {
    pending_.push_back(std::move(r));
    return;
  }
  Deliver(r);
}

void Journal::FlushUnit(uint64_t group, uint32_t parts) {
  if (group == 0 && pending_.size() > 1) group = NewGroupId();
  if (group != 0) {
    for (JournalRecord& r : pending_) {
      r.group = group;
      r.group_parts = parts;
    }
    pending_.back().group_end = true;
  }
  for (const JournalRecord& r : pending_) Deliver(r);
  pending_.clear();
}

void Journal::Deliver(const JournalRecord& r) {
  ring_.push_back(r);
  ring_bytes_ += r.op.size();
  while (ring_.size() > max_records_ || (ring_bytes_ > max_bytes_ && ring_.size() > 1)) {
    ring_bytes_ -= ring_.front().op.size();
    ring_.pop_front();
  }
  for (JournalConsumer* c : consumers_) c->OnRecord(ring_.back());
}

Status ParseJournalOp(std::string_view op, std::vector<std::string_view>* args) {
  args->clear();
  size_t pos = 1, n = 0;
  if (op.empty() || op[0] != '*' || !ParseLen(op, &pos, &n)) return Bad("no array header");
  for (size_t i = 0; i < n; ++i) {
    size_t len = 0;
    if (pos >= op.size() || op[pos] != '$') return Bad("no bulk header");
    ++pos;
    if (!ParseLen(op, &pos, &len) || op.size() - pos < len + 2) return Bad("short bulk");
    args->push_back(op.substr(pos, len));
    pos += len + 2;
  }
  if (pos != op.size()) return Bad("trailing bytes");
  return Status::Ok();
}

Status ApplyJournalOp(Table& t, BucketId b, std::string_view op) {
  thread_local std::vector<std::string_view> a;
  if (Status st = ParseJournalOp(op, &a); !st.ok()) return st;
  if (a.empty()) return Bad("empty");
  const std::string_view name = a[0];
  if (Is(name, "SET") && (a.size() == 3 || a.size() == 5)) {
    int64_t exp = kNoExpire;
    if (a.size() == 5 && (!Is(a[3], "PXAT") || !ParseMs(a[4], &exp))) return Bad("SET expiry");
    t.Put(b, Entry::NewString(a[1], a[2], exp));
    return Status::Ok();
  }
  if (Is(name, "DEL") && a.size() == 2) {
    t.Erase(b, a[1]);
    return Status::Ok();
  }
  if ((Is(name, "PEXPIREAT") && a.size() == 3) || (Is(name, "PERSIST") && a.size() == 2)) {
    int64_t exp = kNoExpire;
    if (a.size() == 3 && !ParseMs(a[2], &exp)) return Bad("PEXPIREAT time");
    Entry* e = t.FindAny(b, a[1]);
    if (e == nullptr) return Bad("expiry of a missing key");
    t.SetExpire(b, e, exp);
    return Status::Ok();
  }
  if (Is(name, "RESTOREHASH") && a.size() >= 3 && a.size() % 2 == 1) {
    int64_t exp = kNoExpire;
    if (!ParseMs(a[2], &exp)) return Bad("RESTOREHASH expiry");
    auto* h = new HashObj();
    for (size_t i = 3; i + 1 < a.size(); i += 2) h->Set(a[i], a[i + 1]);
    t.Put(b, Entry::NewHash(a[1], h, exp));
    return Status::Ok();
  }
  if ((Is(name, "HSET") && a.size() >= 4 && a.size() % 2 == 0) ||
      (Is(name, "HDEL") && a.size() >= 3)) {
    const bool set = Is(name, "HSET");
    Entry* e = t.FindAny(b, a[1]);
    if (e != nullptr && e->type() != ObjType::kHash) return Bad("hash op on another type");
    if (e == nullptr) {
      if (!set) return Status::Ok();
      e = Entry::NewHash(a[1], new HashObj(), kNoExpire);
      t.Put(b, e);
    }
    HashObj* h = e->hash();
    const size_t before = h->bytes();
    if (set) {
      for (size_t i = 2; i + 1 < a.size(); i += 2) h->Set(a[i], a[i + 1]);
    } else {
      for (size_t i = 2; i < a.size(); ++i) h->Erase(a[i]);
    }
    t.HashResized(before, h->bytes());
    if (h->size() == 0) t.Erase(b, a[1]);
    return Status::Ok();
  }
  if (Is(name, "FLUSHALL") && a.size() == 1) {
    t.Clear();
    return Status::Ok();
  }
  if (Is(name, "DROPBUCKET") && a.size() == 1) {
    t.ClearBucket(b);
    return Status::Ok();
  }
  return Bad("unknown operation " + std::string(name));
}

}  // namespace shoal::storage
