// Generic key commands: DEL EXISTS TYPE, expiry, RENAME, and the keyspace-wide KEYS SCAN
// RANDOMKEY DBSIZE FLUSHDB FLUSHALL.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "commands/families.h"
#include "commands/keyspace.h"
#include "common/ascii.h"
#include "engine/engine.h"

namespace shoal::commands {

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
namespace {
using storage::Entry;
using storage::kNoExpire;
using storage::ObjType;

TableFor SameTable(ExecContext& ctx) {
  storage::Table* t = ctx.table;
  return [t](std::string_view) { return t; };
}

// Runs `fn` over the locked tables of every worker that owns one of `keys` (positions in args).
template <typename Fn>
resp::DispatchResult AcrossWorkers(Engine& e, resp::Connection* c, Args args,
                                   const std::vector<size_t>& key_pos, Fn fn) {
  std::vector<std::string> owned(args.begin(), args.end());
  std::vector<unsigned> shards;
  for (size_t p : key_pos) shards.push_back(e.ShardOf(owned[p]));
  Engine* eng = &e;
  return e.RunLocked(
      c, std::move(shards), [eng, fn, owned = std::move(owned)](resp::ReplyBuilder& out) {
        std::vector<std::string_view> v(owned.begin(), owned.end());
        fn(Args(v.data(), v.size()), &out,
           [eng](std::string_view k) { return &eng->shard(eng->ShardOf(k))->table(); });
      });
}

std::vector<size_t> AllFrom1(Args args) {
  std::vector<size_t> p;
  for (size_t i = 1; i < args.size(); ++i) p.push_back(i);
  return p;
}

void DelKeyed(ExecContext& ctx) { DoDel(ctx.args, ctx.out, SameTable(ctx)); }
void ExistsKeyed(ExecContext& ctx) { DoExists(ctx.args, ctx.out, SameTable(ctx)); }
void RenameKeyed(ExecContext& ctx) {
  DoRename(ctx.args, ctx.out, SameTable(ctx), Overwrite::kAllowed);
}
void RenameNxKeyed(ExecContext& ctx) {
  DoRename(ctx.args, ctx.out, SameTable(ctx), Overwrite::kOnlyIfAbsent);
}

resp::DispatchResult DelMulti(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder*) {
  return AcrossWorkers(e, c, a, AllFrom1(a),
                       [](Args x, resp::ReplyBuilder* o, const TableFor& t) { DoDel(x, o, t); });
}
resp::DispatchResult ExistsMulti(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder*) {
  return AcrossWorkers(e, c, a, AllFrom1(a),
                       [](Args x, resp::ReplyBuilder* o, const TableFor& t) { DoExists(x, o, t); });
}
resp::DispatchResult RenameMulti(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder*) {
  return AcrossWorkers(e, c, a, {1, 2}, [](Args x, resp::ReplyBuilder* o, const TableFor& t) {
    DoRename(x, o, t, Overwrite::kAllowed);
  });
}
resp::DispatchResult RenameNxMulti(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder*) {
  return AcrossWorkers(e, c, a, {1, 2}, [](Args x, resp::ReplyBuilder* o, const TableFor& t) {
    DoRename(x, o, t, Overwrite::kOnlyIfAbsent);
  });
}

void Type(ExecContext& ctx) {
  Entry* e = Lookup(ctx.table, ctx.args[1]);
  if (e == nullptr) return ctx.out->SimpleString("none");
  ctx.out->SimpleString(e->type() == ObjType::kString ? "string" : "hash");
}

// EXPIRE key seconds [NX | XX | GT | LT], and PEXPIRE / EXPIREAT / PEXPIREAT.
void ExpireGeneric(ExecContext& ctx, int64_t unit, bool absolute, std::string_view name) {
  Args a = ctx.args;
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < a.size(); ++i) {
    const std::string o = AsciiUpper(a[i]);
    if (o == "NX")
      nx = true;
    else if (o == "XX")
      xx = true;
    else if (o == "GT")
      gt = true;
    else if (o == "LT")
      lt = true;
    else
      return ctx.out->Error(fmt::format("ERR Unsupported option {}", a[i]));
  }
  if (nx && (xx || gt || lt)) {
    return ctx.out->Error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) return ctx.out->Error("ERR GT and LT options at the same time are not compatible");
  int64_t v;
  if (!ParseInt64(a[2], &v)) return ctx.out->Error(kNotIntegerErr);
  // Overflow checks as Redis: the absolute time in ms must fit.
  if (v > std::numeric_limits<int64_t>::max() / unit ||
      v < std::numeric_limits<int64_t>::min() / unit) {
    return ctx.out->Error(fmt::format("ERR invalid expire time in '{}' command", name));
  }
  int64_t when = v * unit;
  if (!absolute) {
    if ((when > 0 && when > std::numeric_limits<int64_t>::max() - ctx.now_ms)) {
      return ctx.out->Error(fmt::format("ERR invalid expire time in '{}' command", name));
    }
    when += ctx.now_ms;
  }
  const BucketId b = KeyBucket(a[1]);
  Entry* e = ctx.table->Find(b, a[1]);
  if (e == nullptr) return ctx.out->Integer(0);
  const int64_t cur = e->expire_ms();  // kNoExpire (-1) = infinite
  if (nx && cur != kNoExpire) return ctx.out->Integer(0);
  if (xx && cur == kNoExpire) return ctx.out->Integer(0);
  if (gt && (cur == kNoExpire || when <= cur)) return ctx.out->Integer(0);
  if (lt && cur != kNoExpire && when >= cur) return ctx.out->Integer(0);
  if (when <= ctx.now_ms) {
    ctx.table->Erase(b, a[1]);
  } else {
    ctx.table->SetExpire(b, e, when);
  }
  ctx.out->Integer(1);
}
void Expire(ExecContext& ctx) { ExpireGeneric(ctx, 1000, false, "expire"); }
void PExpire(ExecContext& ctx) { ExpireGeneric(ctx, 1, false, "pexpire"); }
void ExpireAt(ExecContext& ctx) { ExpireGeneric(ctx, 1000, true, "expireat"); }
void PExpireAt(ExecContext& ctx) { ExpireGeneric(ctx, 1, true, "pexpireat"); }

void TtlGeneric(ExecContext& ctx, int64_t unit) {
  Entry* e = Lookup(ctx.table, ctx.args[1]);
  if (e == nullptr) return ctx.out->Integer(-2);
  if (!e->has_expire()) return ctx.out->Integer(-1);
  const int64_t left = std::max<int64_t>(e->expire_ms() - ctx.now_ms, 0);
  ctx.out->Integer(unit == 1 ? left : (left + 500) / 1000);
}
void Ttl(ExecContext& ctx) { TtlGeneric(ctx, 1000); }
void PTtl(ExecContext& ctx) { TtlGeneric(ctx, 1); }
void ExpireTime(ExecContext& ctx) {
  Entry* e = Lookup(ctx.table, ctx.args[1]);
  if (e == nullptr) return ctx.out->Integer(-2);
  ctx.out->Integer(e->has_expire() ? e->expire_ms() / 1000 : -1);
}
void PExpireTime(ExecContext& ctx) {
  Entry* e = Lookup(ctx.table, ctx.args[1]);
  if (e == nullptr) return ctx.out->Integer(-2);
  ctx.out->Integer(e->has_expire() ? e->expire_ms() : -1);
}

void Persist(ExecContext& ctx) {
  const BucketId b = KeyBucket(ctx.args[1]);
  Entry* e = ctx.table->Find(b, ctx.args[1]);
  if (e == nullptr || !e->has_expire()) return ctx.out->Integer(0);
  ctx.table->SetExpire(b, e, kNoExpire);
  ctx.out->Integer(1);
}

// KEYS pattern: every worker's table in bucket order, in steps of about kKeysStepMicros with
// every worker locked, released in between so that one KEYS over millions of keys never stalls
// the workers' other clients for more than a step. Like SCAN, it returns every key present for
// the whole command exactly once; a key written or deleted during it may or may not be there
// (Redis's KEYS is atomic; it also blocks the server for as long as it runs). A reply that would
// exceed client-output-buffer-limit is refused with an error as soon as that is known.
constexpr int64_t kKeysStepMicros = 2000;

resp::DispatchResult Keys(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder*) {
  struct State {
    std::string pattern;
    uint32_t next_bucket = 0;
    std::vector<std::string> keys;
    uint64_t reply_bytes = 0;
    int64_t limit = 0;
  };
  auto st = std::make_shared<State>();
  st->pattern = std::string(a[1]);
  st->limit = e.CurrentShard()->limits().output_buffer_limit;
  Engine* eng = &e;
  return e.RunLockedAllInSteps(c, [eng, st](resp::ReplyBuilder& out) {
    const bool all = st->pattern == "*";
    const int64_t start = eng->clock()->MonotonicMicros();
    while (st->next_bucket < kNumBuckets) {
      const uint32_t b = st->next_bucket++;
      storage::Table& t = eng->shard(b % eng->num_shards())->table();
      t.ForEachInBucket(BucketId(static_cast<uint16_t>(b)), [&](Entry* en) {
        if (t.IsExpired(en) || !(all || GlobMatch(st->pattern, en->key()))) return;
        st->keys.emplace_back(en->key());
        st->reply_bytes += BulkReplyBytes(en->key().size());
      });
      if (std::string err = ReplyTooLargeError(st->reply_bytes, st->limit); !err.empty()) {
        out.Error(err + " (KEYS; SCAN returns the keys in parts)");
        return true;
      }
      if (eng->clock()->MonotonicMicros() - start >= kKeysStepMicros) return false;
    }
    out.ArrayHeader(st->keys.size());
    for (const std::string& k : st->keys) out.Bulk(k);
    return true;
  });
}

// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is the next bucket to visit:
// whole buckets are returned at a time, so every key present for the whole scan is returned
// exactly once. COUNT is the number of keys to examine per call, as in Redis a hint: a call also
// ends after kScanCallMicros of work (past a whole bucket), so a huge COUNT cannot hold every
// worker locked for long.
constexpr int64_t kScanCallMicros = 5000;

resp::DispatchResult Scan(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  int64_t cursor;
  if (!ParseInt64(a[1], &cursor) || cursor < 0) {
    out->Error("ERR invalid cursor");
    return resp::DispatchResult::kDone;
  }
  ScanOptions opts;
  if (!ParseScanOptions(a, 2, &opts, out)) return resp::DispatchResult::kDone;
  const std::string& pattern = opts.pattern;
  const std::string& type = opts.type;
  const int64_t count = opts.count;
  if (cursor >= kNumBuckets) cursor = kNumBuckets;  // past the end: nothing left
  Engine* eng = &e;
  return e.RunLockedAll(c, [eng, cursor, pattern, type, count](resp::ReplyBuilder& out) {
    std::vector<std::string_view> keys;
    uint32_t b = static_cast<uint32_t>(cursor);
    int64_t examined = 0;
    const int64_t start = eng->clock()->MonotonicMicros();
    for (; b < kNumBuckets && examined < count; ++b) {
      if (b != static_cast<uint32_t>(cursor) &&
          eng->clock()->MonotonicMicros() - start >= kScanCallMicros) {
        break;
      }
      storage::Table& t = eng->shard(b % eng->num_shards())->table();
      t.ForEachInBucket(BucketId(static_cast<uint16_t>(b)), [&](Entry* en) {
        ++examined;
        if (t.IsExpired(en)) return;
        if (!pattern.empty() && !GlobMatch(pattern, en->key())) return;
        if (!type.empty() && type != (en->type() == ObjType::kString ? "string" : "hash")) return;
        keys.push_back(en->key());
      });
    }
    out.ArrayHeader(2);
    out.Bulk(b >= kNumBuckets ? "0" : std::to_string(b));
    out.ArrayHeader(keys.size());
    for (auto k : keys) out.Bulk(k);
  });
}

resp::DispatchResult RandomKey(Engine& e, resp::Connection* c, Args, resp::ReplyBuilder*) {
  Engine* eng = &e;
  return e.RunLockedAll(c, [eng](resp::ReplyBuilder& out) {
    // Pick a worker in proportion to its key count, then a random key there.
    size_t total = 0;
    for (unsigned i = 0; i < eng->num_shards(); ++i) total += eng->shard(i)->table().size();
    if (total == 0) return out.NullBulk();
    size_t pick = static_cast<size_t>(eng->clock()->MonotonicMicros()) % total;
    for (unsigned i = 0; i < eng->num_shards(); ++i) {
      storage::Table& t = eng->shard(i)->table();
      if (pick < t.size()) {
        Entry* en = t.RandomEntry();
        if (en != nullptr) return out.Bulk(en->key());
        break;
      }
      pick -= t.size();
    }
    out.NullBulk();
  });
}

resp::DispatchResult DbSize(Engine& e, resp::Connection* c, Args, resp::ReplyBuilder*) {
  Engine* eng = &e;
  return e.RunLockedAll(c, [eng](resp::ReplyBuilder& out) {
    size_t total = 0;
    for (unsigned i = 0; i < eng->num_shards(); ++i) total += eng->shard(i)->table().size();
    out.Integer(static_cast<int64_t>(total));
  });
}

resp::DispatchResult Flush(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  if (a.size() > 2 ||
      (a.size() == 2 && AsciiUpper(a[1]) != "ASYNC" && AsciiUpper(a[1]) != "SYNC")) {
    out->Error(kSyntaxErr);
    return resp::DispatchResult::kDone;
  }
  Engine* eng = &e;
  return e.RunLockedAll(c, [eng](resp::ReplyBuilder& o) {
    for (unsigned i = 0; i < eng->num_shards(); ++i) eng->shard(i)->table().Clear();
    o.Ok();
  });
}

constexpr uint32_t kW = kCmdWrite;
constexpr uint32_t kR = kCmdReadOnly;
const CommandSpec kKeyCommands[] = {
    {"del", -2, kW, 1, -1, 1, DelKeyed, DelMulti, "generic", "Deletes one or more keys."},
    {"unlink", -2, kW | kCmdFast, 1, -1, 1, DelKeyed, DelMulti, "generic",
     "Asynchronously deletes one or more keys (in shoal: the same as DEL)."},
    {"exists", -2, kR | kCmdFast, 1, -1, 1, ExistsKeyed, ExistsMulti, "generic",
     "Determines whether one or more keys exist."},
    {"touch", -2, kR | kCmdFast, 1, -1, 1, ExistsKeyed, ExistsMulti, "generic",
     "Alters the last access time of one or more keys; returns how many exist."},
    {"type", 2, kR | kCmdFast, 1, 1, 1, Type, nullptr, "generic",
     "Determines the type of value stored at a key."},
    {"expire", -3, kW | kCmdFast, 1, 1, 1, Expire, nullptr, "generic",
     "Sets the expiration time of a key in seconds."},
    {"pexpire", -3, kW | kCmdFast, 1, 1, 1, PExpire, nullptr, "generic",
     "Sets the expiration time of a key in milliseconds."},
    {"expireat", -3, kW | kCmdFast, 1, 1, 1, ExpireAt, nullptr, "generic",
     "Sets the expiration time of a key to a Unix timestamp."},
    {"pexpireat", -3, kW | kCmdFast, 1, 1, 1, PExpireAt, nullptr, "generic",
     "Sets the expiration time of a key to a Unix milliseconds timestamp."},
    {"expiretime", 2, kR | kCmdFast, 1, 1, 1, ExpireTime, nullptr, "generic",
     "Returns the expiration time of a key as a Unix timestamp."},
    {"pexpiretime", 2, kR | kCmdFast, 1, 1, 1, PExpireTime, nullptr, "generic",
     "Returns the expiration time of a key as a Unix milliseconds timestamp."},
    {"ttl", 2, kR | kCmdFast, 1, 1, 1, Ttl, nullptr, "generic",
     "Returns the expiration time in seconds of a key."},
    {"pttl", 2, kR | kCmdFast, 1, 1, 1, PTtl, nullptr, "generic",
     "Returns the expiration time in milliseconds of a key."},
    {"persist", 2, kW | kCmdFast, 1, 1, 1, Persist, nullptr, "generic",
     "Removes the expiration time of a key."},
    {"rename", 3, kW, 1, 2, 1, RenameKeyed, RenameMulti, "generic",
     "Renames a key and overwrites the destination."},
    {"renamenx", 3, kW | kCmdFast, 1, 2, 1, RenameNxKeyed, RenameNxMulti, "generic",
     "Renames a key only when the target key name doesn't exist."},
    {"keys", 2, kR | kCmdKeyspace, 0, 0, 0, nullptr, Keys, "generic",
     "Returns all key names that match a pattern."},
    {"scan", -2, kR | kCmdKeyspace, 0, 0, 0, nullptr, Scan, "generic",
     "Iterates over the key names in the database."},
    {"randomkey", 1, kR | kCmdKeyspace, 0, 0, 0, nullptr, RandomKey, "generic",
     "Returns a random key name from the database."},
    {"dbsize", 1, kR | kCmdFast | kCmdKeyspace, 0, 0, 0, nullptr, DbSize, "server",
     "Returns the number of keys in the database."},
    {"flushdb", -1, kW | kCmdKeyspace, 0, 0, 0, nullptr, Flush, "server",
     "Removes all keys from the current database."},
    {"flushall", -1, kW | kCmdKeyspace, 0, 0, 0, nullptr, Flush, "server",
     "Removes all keys from all databases."},
};

}  // namespace

bool ParseScanOptions(Args a, size_t from, ScanOptions* opts, resp::ReplyBuilder* out) {
  for (size_t i = from; i < a.size(); i += 2) {
    const std::string o = AsciiUpper(a[i]);
    if (i + 1 >= a.size()) {
      out->Error(kSyntaxErr);
      return false;
    }
    if (o == "MATCH") {
      opts->pattern.assign(a[i + 1]);
    } else if (o == "COUNT") {
      if (!ParseInt64(a[i + 1], &opts->count)) {
        out->Error(kNotIntegerErr);
        return false;
      }
      if (opts->count < 1) {
        out->Error(kSyntaxErr);
        return false;
      }
    } else if (o == "TYPE") {
      opts->type = AsciiLower(a[i + 1]);
    } else {
      out->Error(kSyntaxErr);
      return false;
    }
  }
  return true;
}

std::span<const CommandSpec> KeyCommands() { return kKeyCommands; }

void DoDel(Args args, resp::ReplyBuilder* out, const TableFor& table_for) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); ++i)
    n += table_for(args[i])->Erase(KeyBucket(args[i]), args[i]) ? 1 : 0;
  out->Integer(n);
}

void DoExists(Args args, resp::ReplyBuilder* out, const TableFor& table_for) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); ++i)
    n += Lookup(table_for(args[i]), args[i]) != nullptr ? 1 : 0;
  out->Integer(n);
}

void DoRename(Args args, resp::ReplyBuilder* out, const TableFor& table_for, Overwrite mode) {
  const bool nx = mode == Overwrite::kOnlyIfAbsent;
  const std::string_view src = args[1], dst = args[2];
  storage::Table* st = table_for(src);
  storage::Table* dt = table_for(dst);
  Entry* e = Lookup(st, src);
  if (e == nullptr) return out->Error(kNoSuchKeyErr);
  if (src == dst) return nx ? out->Integer(0) : out->Ok();
  if (nx && Lookup(dt, dst) != nullptr) return out->Integer(0);
  Entry* old = st->Detach(KeyBucket(src), src);
  Entry* moved;
  if (old->type() == ObjType::kString) {
    moved = Entry::NewString(dst, old->str(), old->expire_ms());
    Entry::Free(old);
  } else {
    moved = Entry::NewHash(dst, old->hash(), old->expire_ms());
    Entry::FreeShell(old);
  }
  dt->Put(KeyBucket(dst), moved);
  if (nx) return out->Integer(1);
  out->Ok();
}

}  // namespace shoal::commands
