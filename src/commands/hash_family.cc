// Hash commands: HSET HGET HDEL HGETALL and friends, counters, HRANDFIELD, HSCAN.
//
// Replies and error texts follow Redis 7 (t_hash.c). Every handler is a KeyHandler working on the
// one key at args[1]; a hash whose last field is deleted is removed, as Redis does.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commands/families.h"
#include "common/ascii.h"
#include "common/hash.h"
#include "common/keyslot.h"
#include "common/rng.h"
#include "engine/command.h"
#include "engine/shard.h"
#include "storage/entry.h"
#include "storage/hash_obj.h"
#include "storage/table.h"

namespace shoal::commands {

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
namespace {
using storage::Entry;
using storage::HashObj;
using storage::ObjType;
using Field = HashObj::Map::value_type;

// Redis keeps hashes of up to hash-max-listpack-entries (128) fields as a listpack, which HSCAN
// returns whole in one reply.
constexpr size_t kSmallHashFields = 128;
constexpr int64_t kDefaultScanCount = 10;
// Redis's MAX_LONG_DOUBLE_CHARS: the longest string string2ld accepts (exclusive).
constexpr size_t kMaxLongDoubleChars = 5 * 1024;

// The randomness of HRANDFIELD. Not reproducible on purpose: Redis's HRANDFIELD is not either.
Rng& ThreadRng() {
  thread_local RandomRng rng;
  return rng;
}

// The hash at args[1] for a read: nullptr if the key is missing. Counts a keyspace hit or miss.
// Sets *wrongtype (and returns nullptr) if the key holds another type; the caller replies.
const HashObj* ReadHash(ExecContext& ctx, bool* wrongtype) {
  const std::string_view key = ctx.args[1];
  Entry* e = ctx.table->Find(KeyBucket(key), key);
  if (ctx.shard != nullptr) {
    if (e != nullptr) {
      ++ctx.shard->stats().keyspace_hits;
    } else {
      ++ctx.shard->stats().keyspace_misses;
    }
  }
  *wrongtype = e != nullptr && e->type() != ObjType::kHash;
  if (e == nullptr || *wrongtype) return nullptr;
  return e->hash();
}

// A hash being changed by a write command: HashObj's calls, with each change reported to the
// table's journal (a hash created by the command is recorded whole when it is stored instead).
class HashEdit {
 public:
  HashEdit(HashObj* h, storage::Table* t, BucketId b, std::string_view key, bool note)
      : h_(h), t_(t), b_(b), key_(key), note_(note) {}
  size_t size() const { return h_->size(); }
  const std::string* Get(std::string_view field) const { return h_->Get(field); }
  bool Set(std::string_view field, std::string_view value) {
    const bool created = h_->Set(field, value);
    if (note_) t_->NoteHashSet(b_, key_, field, value);
    return created;
  }
  bool Erase(std::string_view field) {
    const bool erased = h_->Erase(field);
    if (erased && note_) t_->NoteHashDel(b_, key_, field);
    return erased;
  }

 private:
  HashObj* h_;
  storage::Table* t_;
  BucketId b_;
  std::string_view key_;
  bool note_;
};

// Runs fn(HashEdit&) on the hash at args[1], which writes the reply. A missing key gets a new hash,
// stored only if fn left a field in it; an existing hash is accounted through HashResized and
// removed if fn emptied it. Replies WRONGTYPE (without calling fn) for another type. With
// create == false a missing key is not created: fn is not called and `missing_reply` runs.
template <typename Fn, typename Missing>
void UpdateHash(ExecContext& ctx, bool create, Fn&& fn, Missing&& missing_reply) {
  const std::string_view key = ctx.args[1];
  const BucketId b = KeyBucket(key);
  Entry* e = ctx.table->Find(b, key);
  if (e != nullptr && e->type() != ObjType::kHash) return ctx.out->Error(kWrongTypeErr);
  if (e == nullptr) {
    if (!create) return missing_reply();
    auto* h = new HashObj();
    HashEdit edit(h, ctx.table, b, key, /*note=*/false);
    fn(edit);
    if (h->size() == 0) {
      delete h;
    } else {
      ctx.table->Put(b, Entry::NewHash(key, h, storage::kNoExpire));
    }
    return;
  }
  HashObj* h = e->hash();
  const size_t before = h->bytes();
  HashEdit edit(h, ctx.table, b, key, /*note=*/true);
  fn(edit);
  ctx.table->HashResized(before, h->bytes());
  if (h->size() == 0) ctx.table->Erase(b, key);
}

template <typename Fn>
void UpdateOrCreateHash(ExecContext& ctx, Fn&& fn) {
  UpdateHash(ctx, /*create=*/true, fn, [] {});
}

// Redis's string2ld: strtold over the whole string, no leading space, no NaN, no overflow.
bool ParseLongDouble(std::string_view s, long double* out) {
  if (s.empty() || s.size() >= kMaxLongDoubleChars) return false;
  if (std::isspace(static_cast<unsigned char>(s[0]))) return false;
  const std::string buf(s);
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size()) return false;
  if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0.0L)) return false;
  if (errno == EINVAL || std::isnan(v)) return false;
  *out = v;
  return true;
}

// Redis's ld2string(LD_STR_HUMAN), used by HINCRBYFLOAT: "%.17Lf" with the trailing zeros (and a
// trailing '.') removed, "-0" written as "0". E.g. 10.5 -> "10.5", 5.0e3 -> "5000".
// REQUIRES: v is finite.
std::string FormatLongDoubleHuman(long double v) {
  char buf[kMaxLongDoubleChars];
  int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n < 0 || static_cast<size_t>(n) + 1 > sizeof buf) return "0";  // cannot happen for finite v
  std::string s(buf, static_cast<size_t>(n));
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// Redis's parseScanCursorOrReply: strtoul over the whole argument, no leading space.
bool ParseCursor(std::string_view s, uint64_t* out) {
  if (!s.empty() && std::isspace(static_cast<unsigned char>(s[0]))) return false;
  const std::string buf(s);
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(buf.c_str(), &end, 10);  // NOLINT(runtime/int)
  if (end != buf.c_str() + buf.size() || errno == ERANGE) return false;
  *out = v;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Writes

// HSET key field value [field value ...] / HMSET (same, replies +OK).
void HSetGeneric(ExecContext& ctx, bool hmset) {
  const Args a = ctx.args;
  if (a.size() % 2 == 1) {
    return ctx.out->Error("ERR wrong number of arguments for '" + AsciiLower(a[0]) + "' command");
  }
  UpdateOrCreateHash(ctx, [&](HashEdit& h) {
    int64_t created = 0;
    for (size_t i = 2; i + 1 < a.size(); i += 2) created += h.Set(a[i], a[i + 1]) ? 1 : 0;
    if (hmset) {
      ctx.out->Ok();
    } else {
      ctx.out->Integer(created);
    }
  });
}
void HSet(ExecContext& ctx) { HSetGeneric(ctx, false); }
void HMSet(ExecContext& ctx) { HSetGeneric(ctx, true); }

// HSETNX key field value
void HSetNx(ExecContext& ctx) {
  UpdateOrCreateHash(ctx, [&](HashEdit& h) {
    if (h.Get(ctx.args[2]) != nullptr) return ctx.out->Integer(0);
    h.Set(ctx.args[2], ctx.args[3]);
    ctx.out->Integer(1);
  });
}

// HDEL key field [field ...]
void HDel(ExecContext& ctx) {
  UpdateHash(
      ctx, /*create=*/false,
      [&](HashEdit& h) {
        int64_t deleted = 0;
        for (size_t i = 2; i < ctx.args.size(); ++i) {
          if (h.Erase(ctx.args[i])) {
            ++deleted;
            if (h.size() == 0) break;  // Redis stops here too: the key is about to go
          }
        }
        ctx.out->Integer(deleted);
      },
      [&] { ctx.out->Integer(0); });
}

// HINCRBY key field increment
void HIncrBy(ExecContext& ctx) {
  int64_t incr;
  if (!ParseInt64(ctx.args[3], &incr)) return ctx.out->Error(kNotIntegerErr);
  UpdateOrCreateHash(ctx, [&](HashEdit& h) {
    int64_t value = 0;
    if (const std::string* cur = h.Get(ctx.args[2]); cur != nullptr) {
      if (!ParseInt64(*cur, &value)) return ctx.out->Error("ERR hash value is not an integer");
    }
    if ((incr < 0 && value < 0 && incr < std::numeric_limits<int64_t>::min() - value) ||
        (incr > 0 && value > 0 && incr > std::numeric_limits<int64_t>::max() - value)) {
      return ctx.out->Error(kOverflowErr);
    }
    value += incr;
    h.Set(ctx.args[2], std::to_string(value));
    ctx.out->Integer(value);
  });
}

// HINCRBYFLOAT key field increment
void HIncrByFloat(ExecContext& ctx) {
  long double incr;
  if (!ParseLongDouble(ctx.args[3], &incr)) return ctx.out->Error(kNotFloatErr);
  if (std::isnan(incr) || std::isinf(incr)) return ctx.out->Error("ERR value is NaN or Infinity");
  UpdateOrCreateHash(ctx, [&](HashEdit& h) {
    long double value = 0;
    if (const std::string* cur = h.Get(ctx.args[2]); cur != nullptr) {
      if (!ParseLongDouble(*cur, &value)) return ctx.out->Error("ERR hash value is not a float");
    }
    value += incr;
    if (std::isnan(value) || std::isinf(value)) {
      return ctx.out->Error("ERR increment would produce NaN or Infinity");
    }
    const std::string s = FormatLongDoubleHuman(value);
    h.Set(ctx.args[2], s);
    ctx.out->Bulk(s);
  });
}

// ---------------------------------------------------------------------------------------------
// Reads

// HGET key field
void HGet(ExecContext& ctx) {
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  const std::string* v = h != nullptr ? h->Get(ctx.args[2]) : nullptr;
  if (v == nullptr) return ctx.out->NullBulk();
  ctx.out->Bulk(*v);
}

// HMGET key field [field ...]
void HMGet(ExecContext& ctx) {
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  ctx.out->ArrayHeader(ctx.args.size() - 2);
  for (size_t i = 2; i < ctx.args.size(); ++i) {
    const std::string* v = h != nullptr ? h->Get(ctx.args[i]) : nullptr;
    if (v == nullptr) {
      ctx.out->NullBulk();
    } else {
      ctx.out->Bulk(*v);
    }
  }
}

// HEXISTS key field
void HExists(ExecContext& ctx) {
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  ctx.out->Integer(h != nullptr && h->Get(ctx.args[2]) != nullptr ? 1 : 0);
}

// HLEN key
void HLen(ExecContext& ctx) {
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  ctx.out->Integer(h != nullptr ? static_cast<int64_t>(h->size()) : 0);
}

// HSTRLEN key field
void HStrLen(ExecContext& ctx) {
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  const std::string* v = h != nullptr ? h->Get(ctx.args[2]) : nullptr;
  ctx.out->Integer(v != nullptr ? static_cast<int64_t>(v->size()) : 0);
}

// HGETALL (fields and values, a map), HKEYS, HVALS (flat arrays).
void HGetAllGeneric(ExecContext& ctx, bool keys, bool values) {
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  const size_t n = h != nullptr ? h->size() : 0;
  if (keys && values) {
    ctx.out->MapHeader(n);
  } else {
    ctx.out->ArrayHeader(n);
  }
  if (h == nullptr) return;
  for (const auto& [f, v] : h->map()) {
    if (keys) ctx.out->Bulk(f);
    if (values) ctx.out->Bulk(v);
  }
}
void HGetAll(ExecContext& ctx) { HGetAllGeneric(ctx, true, true); }
void HKeys(ExecContext& ctx) { HGetAllGeneric(ctx, true, false); }
void HVals(ExecContext& ctx) { HGetAllGeneric(ctx, false, true); }

// One HRANDFIELD element: the field, or with values a [field, value] pair (RESP3) or the two
// items inline (RESP2, whose header counted them).
void ReplyRandomField(ExecContext& ctx, const Field& f, bool withvalues) {
  if (withvalues && ctx.out->protocol() > 2) ctx.out->ArrayHeader(2);
  ctx.out->Bulk(f.first);
  if (withvalues) ctx.out->Bulk(f.second);
}

void ReplyRandomHeader(ExecContext& ctx, uint64_t n, bool withvalues) {
  ctx.out->ArrayHeader(withvalues && ctx.out->protocol() == 2 ? n * 2 : n);
}

std::vector<const Field*> AllFields(const HashObj& h) {
  std::vector<const Field*> all;
  all.reserve(h.size());
  for (const Field& f : h.map()) all.push_back(&f);
  return all;
}

// HRANDFIELD key [count [WITHVALUES]]
void HRandField(ExecContext& ctx) {
  const Args a = ctx.args;
  if (a.size() == 2) {
    bool wrong;
    const HashObj* h = ReadHash(ctx, &wrong);
    if (wrong) return ctx.out->Error(kWrongTypeErr);
    if (h == nullptr || h->size() == 0) return ctx.out->NullBulk();
    auto it = h->map().begin();
    std::advance(it, static_cast<ptrdiff_t>(ThreadRng().Uniform(h->size())));
    return ctx.out->Bulk(it->first);
  }

  int64_t l;
  if (!ParseInt64(a[2], &l)) return ctx.out->Error(kNotIntegerErr);
  if (l == std::numeric_limits<int64_t>::min()) {
    return ctx.out->Error(
        "ERR value is out of range, must be between -9223372036854775807 and "
        "9223372036854775807");
  }
  bool withvalues = false;
  if (a.size() > 4 || (a.size() == 4 && !AsciiEqualsNoCase(a[3], "withvalues"))) {
    return ctx.out->Error(kSyntaxErr);
  }
  if (a.size() == 4) {
    withvalues = true;
    constexpr int64_t kHalf = std::numeric_limits<int64_t>::max() / 2;
    if (l < -kHalf || l > kHalf) return ctx.out->Error("ERR value is out of range");
  }

  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (h == nullptr) return ctx.out->ArrayHeader(0);  // an empty array even in RESP3, as Redis
  const uint64_t size = h->size();
  const bool uniq = l >= 0;
  const uint64_t count = uniq ? static_cast<uint64_t>(l) : static_cast<uint64_t>(-l);
  if (count == 0 || size == 0) return ctx.out->ArrayHeader(0);
  // Size the reply before building it: `count` elements of the hash's average encoded size.
  {
    const uint64_t elements = uniq ? std::min(count, size) : count;
    uint64_t total = 0;
    for (const Field& f : h->map()) {
      total += BulkReplyBytes(f.first.size());
      if (withvalues) total += BulkReplyBytes(f.second.size()) + (ctx.out->protocol() > 2 ? 4 : 0);
    }
    const double average = static_cast<double>(total) / static_cast<double>(size);
    const double estimate = average * static_cast<double>(elements);
    const std::string err = ReplyTooLargeError(
        estimate >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(estimate), ctx.reply_limit);
    if (!err.empty()) return ctx.out->Error(err);
  }

  // Negative count: `count` independent draws, repetitions allowed.
  if (!uniq || count == 1) {
    ReplyRandomHeader(ctx, count, withvalues);
    if (count == 1) {
      auto it = h->map().begin();
      std::advance(it, static_cast<ptrdiff_t>(ThreadRng().Uniform(size)));
      return ReplyRandomField(ctx, *it, withvalues);
    }
    const std::vector<const Field*> all = AllFields(*h);
    for (uint64_t i = 0; i < count; ++i) {
      ReplyRandomField(ctx, *all[ThreadRng().Uniform(all.size())], withvalues);
    }
    return;
  }

  // Positive count: distinct fields; the whole hash when it has no more than `count`.
  if (count >= size) {
    ReplyRandomHeader(ctx, size, withvalues);
    for (const Field& f : h->map()) ReplyRandomField(ctx, f, withvalues);
    return;
  }
  std::vector<const Field*> all = AllFields(*h);
  for (uint64_t i = 0; i < count; ++i) {  // partial Fisher-Yates shuffle
    std::swap(all[i], all[i + ThreadRng().Uniform(all.size() - i)]);
  }
  ReplyRandomHeader(ctx, count, withvalues);
  for (uint64_t i = 0; i < count; ++i) ReplyRandomField(ctx, *all[i], withvalues);
}

// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]
//
// A hash of up to 128 fields (what Redis keeps as a listpack) is returned whole, cursor "0",
// whatever the cursor given. A larger hash is walked in the order of a 64-bit hash of the field
// names (Hash64, independent of the table's layout): the cursor is the hash value to resume
// from, each call returns the (about) COUNT fields with the smallest hashes >= cursor (all fields
// sharing the last hash value included) and the next cursor, "0" when done. So fields present for
// the whole scan are returned exactly once even if the hash is resized, rehashed or has fields
// deleted between calls; fields added or removed meanwhile may or may not be returned. (Redis
// itself may return a field more than once when the hash is resized; clients tolerate both.)
// Unlike Redis, whose cursor walks the table's buckets, each call costs O(fields in the hash).
// COUNT bounds the fields examined; MATCH filters them afterwards, so a call may return fewer
// than COUNT, or none, with a non-zero cursor.
void HScan(ExecContext& ctx) {
  const Args a = ctx.args;
  uint64_t cursor;
  if (!ParseCursor(a[2], &cursor)) return ctx.out->Error("ERR invalid cursor");
  bool wrong;
  const HashObj* h = ReadHash(ctx, &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (h == nullptr) {
    ctx.out->ArrayHeader(2);
    ctx.out->Bulk("0");
    return ctx.out->ArrayHeader(0);
  }

  int64_t count = kDefaultScanCount;
  std::string_view pattern;
  bool use_pattern = false, novalues = false;
  for (size_t i = 3; i < a.size();) {
    const size_t left = a.size() - i;
    if (AsciiEqualsNoCase(a[i], "count") && left >= 2) {
      if (!ParseInt64(a[i + 1], &count)) return ctx.out->Error(kNotIntegerErr);
      if (count < 1) return ctx.out->Error(kSyntaxErr);
      i += 2;
    } else if (AsciiEqualsNoCase(a[i], "match") && left >= 2) {
      pattern = a[i + 1];
      use_pattern = pattern != "*";
      i += 2;
    } else if (AsciiEqualsNoCase(a[i], "novalues")) {
      novalues = true;
      ++i;
    } else {
      return ctx.out->Error(kSyntaxErr);
    }
  }

  std::vector<const Field*> found;
  uint64_t next = 0;
  if (h->size() <= kSmallHashFields) {
    found = AllFields(*h);
  } else {
    // Pass 1: the `count` smallest hashes >= cursor (a bounded max-heap), and the largest one.
    std::priority_queue<uint64_t> smallest;
    const size_t limit = static_cast<size_t>(std::min<int64_t>(count, INT32_MAX));
    uint64_t candidates = 0, max_seen = 0;
    for (const Field& f : h->map()) {
      const uint64_t hv = Hash64(f.first);
      if (hv < cursor) continue;
      ++candidates;
      max_seen = std::max(max_seen, hv);
      if (smallest.size() < limit) {
        smallest.push(hv);
      } else if (hv < smallest.top()) {
        smallest.pop();
        smallest.push(hv);
      }
    }
    // Pass 2: every field with a hash in [cursor, last].
    const uint64_t last = candidates <= limit ? max_seen : smallest.top();
    if (candidates > 0) {
      for (const Field& f : h->map()) {
        const uint64_t hv = Hash64(f.first);
        if (hv >= cursor && hv <= last) found.push_back(&f);
      }
    }
    next = (candidates == 0 || last == max_seen) ? 0 : last + 1;
  }
  if (use_pattern) {
    std::erase_if(found, [&](const Field* f) { return !GlobMatch(pattern, f->first); });
  }

  ctx.out->ArrayHeader(2);
  ctx.out->Bulk(std::to_string(next));
  ctx.out->ArrayHeader(novalues ? found.size() : found.size() * 2);
  for (const Field* f : found) {
    ctx.out->Bulk(f->first);
    if (!novalues) ctx.out->Bulk(f->second);
  }
}

constexpr uint32_t kWriteGrow = kCmdWrite | kCmdDenyOom;

// Sorted by name. Arity, flags and summaries as Redis 7.0's command table.
constexpr CommandSpec kHashCommands[] = {
    {"hdel", -3, kCmdWrite | kCmdFast, 1, 1, 1, HDel, nullptr, "hash",
     "Delete one or more hash fields"},
    {"hexists", 3, kCmdReadOnly | kCmdFast, 1, 1, 1, HExists, nullptr, "hash",
     "Determine if a hash field exists"},
    {"hget", 3, kCmdReadOnly | kCmdFast, 1, 1, 1, HGet, nullptr, "hash",
     "Get the value of a hash field"},
    {"hgetall", 2, kCmdReadOnly, 1, 1, 1, HGetAll, nullptr, "hash",
     "Get all the fields and values in a hash"},
    {"hincrby", 4, kWriteGrow | kCmdFast, 1, 1, 1, HIncrBy, nullptr, "hash",
     "Increment the integer value of a hash field by the given number"},
    {"hincrbyfloat", 4, kWriteGrow | kCmdFast, 1, 1, 1, HIncrByFloat, nullptr, "hash",
     "Increment the float value of a hash field by the given amount"},
    {"hkeys", 2, kCmdReadOnly, 1, 1, 1, HKeys, nullptr, "hash", "Get all the fields in a hash"},
    {"hlen", 2, kCmdReadOnly | kCmdFast, 1, 1, 1, HLen, nullptr, "hash",
     "Get the number of fields in a hash"},
    {"hmget", -3, kCmdReadOnly | kCmdFast, 1, 1, 1, HMGet, nullptr, "hash",
     "Get the values of all the given hash fields"},
    {"hmset", -4, kWriteGrow | kCmdFast, 1, 1, 1, HMSet, nullptr, "hash",
     "Set multiple hash fields to multiple values"},
    {"hrandfield", -2, kCmdReadOnly, 1, 1, 1, HRandField, nullptr, "hash",
     "Get one or multiple random fields from a hash"},
    {"hscan", -3, kCmdReadOnly, 1, 1, 1, HScan, nullptr, "hash",
     "Incrementally iterate hash fields and associated values"},
    {"hset", -4, kWriteGrow | kCmdFast, 1, 1, 1, HSet, nullptr, "hash",
     "Set the string value of a hash field"},
    {"hsetnx", 4, kWriteGrow | kCmdFast, 1, 1, 1, HSetNx, nullptr, "hash",
     "Set the value of a hash field, only if the field does not exist"},
    {"hstrlen", 3, kCmdReadOnly | kCmdFast, 1, 1, 1, HStrLen, nullptr, "hash",
     "Get the length of the value of a hash field"},
    {"hvals", 2, kCmdReadOnly, 1, 1, 1, HVals, nullptr, "hash", "Get all the values in a hash"},
};

}  // namespace

std::span<const CommandSpec> HashCommands() { return kHashCommands; }

}  // namespace shoal::commands
