// String commands: GET SET and friends, counters, ranges, MGET/MSET.
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

constexpr int64_t kMaxStringLen = 512LL << 20;

void CountRead(ExecContext& ctx, bool hit) {
  if (ctx.shard == nullptr) return;
  if (hit) {
    ++ctx.shard->stats().keyspace_hits;
  } else {
    ++ctx.shard->stats().keyspace_misses;
  }
}

// The string at key: nullptr if absent; sets *wrongtype for another type.
Entry* GetString(ExecContext& ctx, std::string_view key, bool* wrongtype) {
  Entry* e = ctx.table->Find(KeyBucket(key), key);
  *wrongtype = e != nullptr && e->type() != ObjType::kString;
  return *wrongtype ? nullptr : e;
}

void Get(ExecContext& ctx) {
  bool wrong;
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  CountRead(ctx, e != nullptr);
  if (e == nullptr) return ctx.out->NullBulk();
  ctx.out->Bulk(e->str());
}

// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
void Set(ExecContext& ctx) {
  Args a = ctx.args;
  bool nx = false, xx = false, get = false, keepttl = false;
  int64_t expire = kNoExpire;
  bool have_expire = false;
  for (size_t i = 3; i < a.size(); ++i) {
    const std::string opt = AsciiUpper(a[i]);
    const bool has_next = i + 1 < a.size();
    if (opt == "NX" && !xx) {
      nx = true;
    } else if (opt == "XX" && !nx) {
      xx = true;
    } else if (opt == "GET") {
      get = true;
    } else if (opt == "KEEPTTL" && !have_expire) {
      keepttl = true;
    } else if ((opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT") && has_next &&
               !keepttl && !have_expire) {
      const int64_t unit = (opt == "EX" || opt == "EXAT") ? 1000 : 1;
      const ExpiryForm form =
          opt == "EXAT" || opt == "PXAT" ? ExpiryForm::kAbsolute : ExpiryForm::kRelative;
      int64_t v;
      if (!ParseInt64(a[i + 1], &v)) return ctx.out->Error(kNotIntegerErr);
      if (!ParseExpiry(a[i + 1], unit, form, ctx.now_ms, &expire)) {
        return ctx.out->Error("ERR invalid expire time in 'set' command");
      }
      have_expire = true;
      ++i;
    } else {
      return ctx.out->Error(kSyntaxErr);
    }
  }
  const std::string_view key = a[1];
  const BucketId b = KeyBucket(key);
  Entry* old = ctx.table->Find(b, key);
  if (get && old != nullptr && old->type() != ObjType::kString) {
    return ctx.out->Error(kWrongTypeErr);
  }
  std::string old_value;
  if (get && old != nullptr) old_value.assign(old->str());
  const bool had_old = old != nullptr;
  if ((nx && had_old) || (xx && !had_old)) {
    if (get && had_old) return ctx.out->Bulk(old_value);
    return ctx.out->NullBulk();
  }
  if (keepttl && old != nullptr) expire = old->expire_ms();
  if (have_expire && expire <= ctx.now_ms) {
    // Already expired: Redis deletes the key and still replies OK.
    if (had_old) ctx.table->Erase(b, key);
  } else {
    ctx.table->Put(b, Entry::NewString(key, a[2], expire));
  }
  if (get) {
    if (had_old) return ctx.out->Bulk(old_value);
    return ctx.out->NullBulk();
  }
  ctx.out->Ok();
}

void SetNx(ExecContext& ctx) {
  const BucketId b = KeyBucket(ctx.args[1]);
  if (ctx.table->Find(b, ctx.args[1]) != nullptr) return ctx.out->Integer(0);
  ctx.table->Put(b, Entry::NewString(ctx.args[1], ctx.args[2], kNoExpire));
  ctx.out->Integer(1);
}

void SetExGeneric(ExecContext& ctx, int64_t unit, std::string_view name) {
  int64_t v, expire;
  if (!ParseInt64(ctx.args[2], &v)) return ctx.out->Error(kNotIntegerErr);
  if (!ParseExpiry(ctx.args[2], unit, ExpiryForm::kRelative, ctx.now_ms, &expire)) {
    return ctx.out->Error(fmt::format("ERR invalid expire time in '{}' command", name));
  }
  ctx.table->Put(KeyBucket(ctx.args[1]), Entry::NewString(ctx.args[1], ctx.args[3], expire));
  ctx.out->Ok();
}
void SetEx(ExecContext& ctx) { SetExGeneric(ctx, 1000, "setex"); }
void PSetEx(ExecContext& ctx) { SetExGeneric(ctx, 1, "psetex"); }

void GetSet(ExecContext& ctx) {
  bool wrong;
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (e == nullptr) {
    ctx.out->NullBulk();
  } else {
    ctx.out->Bulk(e->str());
  }
  ctx.table->Put(KeyBucket(ctx.args[1]), Entry::NewString(ctx.args[1], ctx.args[2], kNoExpire));
}

void GetDel(ExecContext& ctx) {
  bool wrong;
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (e == nullptr) return ctx.out->NullBulk();
  ctx.out->Bulk(e->str());
  ctx.table->Erase(KeyBucket(ctx.args[1]), ctx.args[1]);
}

// GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]
void GetEx(ExecContext& ctx) {
  Args a = ctx.args;
  int64_t expire = kNoExpire;
  bool set_expire = false, persist = false;
  if (a.size() > 2) {
    const std::string opt = AsciiUpper(a[2]);
    if (opt == "PERSIST" && a.size() == 3) {
      persist = true;
    } else if ((opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT") && a.size() == 4) {
      int64_t v;
      if (!ParseInt64(a[3], &v)) return ctx.out->Error(kNotIntegerErr);
      const int64_t unit = (opt == "EX" || opt == "EXAT") ? 1000 : 1;
      if (!ParseExpiry(
              a[3], unit,
              opt == "EXAT" || opt == "PXAT" ? ExpiryForm::kAbsolute : ExpiryForm::kRelative,
              ctx.now_ms, &expire)) {
        return ctx.out->Error("ERR invalid expire time in 'getex' command");
      }
      set_expire = true;
    } else {
      return ctx.out->Error(kSyntaxErr);
    }
  }
  bool wrong;
  const BucketId b = KeyBucket(a[1]);
  Entry* e = GetString(ctx, a[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (e == nullptr) return ctx.out->NullBulk();
  ctx.out->Bulk(e->str());
  if (set_expire && expire <= ctx.now_ms) {
    ctx.table->Erase(b, a[1]);
  } else if (set_expire) {
    ctx.table->SetExpire(b, e, expire);
  } else if (persist) {
    ctx.table->SetExpire(b, e, kNoExpire);
  }
}

void Append(ExecContext& ctx) {
  bool wrong;
  const BucketId b = KeyBucket(ctx.args[1]);
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (e == nullptr) {
    ctx.table->Put(b, Entry::NewString(ctx.args[1], ctx.args[2], kNoExpire));
    return ctx.out->Integer(static_cast<int64_t>(ctx.args[2].size()));
  }
  if (static_cast<int64_t>(e->str().size() + ctx.args[2].size()) > kMaxStringLen) {
    return ctx.out->Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  }
  std::string v;
  v.reserve(e->str().size() + ctx.args[2].size());
  v.append(e->str()).append(ctx.args[2]);
  Entry* n = Entry::NewString(ctx.args[1], v, e->expire_ms());
  ctx.table->Replace(b, e, n);
  Entry::Free(e);
  ctx.out->Integer(static_cast<int64_t>(v.size()));
}

void StrLen(ExecContext& ctx) {
  bool wrong;
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  ctx.out->Integer(e == nullptr ? 0 : static_cast<int64_t>(e->str().size()));
}

void GetRange(ExecContext& ctx) {
  int64_t start, end;
  if (!ParseInt64(ctx.args[2], &start) || !ParseInt64(ctx.args[3], &end)) {
    return ctx.out->Error(kNotIntegerErr);
  }
  bool wrong;
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  if (e == nullptr) return ctx.out->Bulk("");
  const std::string_view s = e->str();
  const int64_t len = static_cast<int64_t>(s.size());
  if (start < 0 && end < 0 && start > end) return ctx.out->Bulk("");
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) return ctx.out->Bulk("");
  ctx.out->Bulk(s.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

void SetRange(ExecContext& ctx) {
  int64_t offset;
  if (!ParseInt64(ctx.args[2], &offset)) return ctx.out->Error(kNotIntegerErr);
  if (offset < 0) return ctx.out->Error("ERR offset is out of range");
  const std::string_view val = ctx.args[3];
  bool wrong;
  const BucketId b = KeyBucket(ctx.args[1]);
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  const int64_t cur = e == nullptr ? 0 : static_cast<int64_t>(e->str().size());
  if (val.empty()) return ctx.out->Integer(cur);
  if (offset + static_cast<int64_t>(val.size()) > kMaxStringLen) {
    return ctx.out->Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  }
  std::string v(e == nullptr ? std::string_view() : e->str());
  if (v.size() < static_cast<size_t>(offset) + val.size())
    v.resize(static_cast<size_t>(offset) + val.size(), '\0');
  v.replace(static_cast<size_t>(offset), val.size(), val);
  if (e == nullptr) {
    ctx.table->Put(b, Entry::NewString(ctx.args[1], v, kNoExpire));
  } else if (v.size() == e->str().size()) {
    e->OverwriteSameSize(v);
    ctx.table->ValueChanged(b, e);
  } else {
    Entry* n = Entry::NewString(ctx.args[1], v, e->expire_ms());
    ctx.table->Replace(b, e, n);
    Entry::Free(e);
  }
  ctx.out->Integer(static_cast<int64_t>(v.size()));
}

void IncrByGeneric(ExecContext& ctx, int64_t delta) {
  bool wrong;
  const BucketId b = KeyBucket(ctx.args[1]);
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  int64_t cur = 0;
  if (e != nullptr && !ParseInt64(e->str(), &cur)) return ctx.out->Error(kNotIntegerErr);
  if ((delta > 0 && cur > std::numeric_limits<int64_t>::max() - delta) ||
      (delta < 0 && cur < std::numeric_limits<int64_t>::min() - delta)) {
    return ctx.out->Error(kOverflowErr);
  }
  const int64_t next = cur + delta;
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, next);
  const std::string_view text(buf, static_cast<size_t>(p - buf));
  if (e == nullptr) {
    ctx.table->Put(b, Entry::NewString(ctx.args[1], text, kNoExpire));
  } else if (text.size() == e->str().size()) {
    e->OverwriteSameSize(text);
    ctx.table->ValueChanged(b, e);
  } else {
    Entry* n = Entry::NewString(ctx.args[1], text, e->expire_ms());
    ctx.table->Replace(b, e, n);
    Entry::Free(e);
  }
  ctx.out->Integer(next);
}
void Incr(ExecContext& ctx) { IncrByGeneric(ctx, 1); }
void Decr(ExecContext& ctx) { IncrByGeneric(ctx, -1); }
void IncrBy(ExecContext& ctx) {
  int64_t d;
  if (!ParseInt64(ctx.args[2], &d)) return ctx.out->Error(kNotIntegerErr);
  IncrByGeneric(ctx, d);
}
void DecrBy(ExecContext& ctx) {
  int64_t d;
  if (!ParseInt64(ctx.args[2], &d)) return ctx.out->Error(kNotIntegerErr);
  if (d == std::numeric_limits<int64_t>::min()) {
    return ctx.out->Error("ERR decrement would overflow");
  }
  IncrByGeneric(ctx, -d);
}

// Formats like Redis's INCRBYFLOAT (util.c ld2string, LD_STR_HUMAN): "%.17Lf" on a long
// double, trailing zeros trimmed.
std::string FormatFloat(long double v) {
  char buf[5000];
  int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n <= 0 || n >= static_cast<int>(sizeof buf)) return std::to_string(static_cast<double>(v));
  std::string s(buf, static_cast<size_t>(n));
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

bool ParseLongDouble(std::string_view text, long double* out) {
  if (text.empty() || text.size() > 5000 || std::isspace(static_cast<unsigned char>(text[0])))
    return false;
  std::string tmp(text);
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size() || errno == ERANGE || std::isnan(v)) return false;
  *out = v;
  return true;
}

void IncrByFloat(ExecContext& ctx) {
  long double incr;
  if (!ParseLongDouble(ctx.args[2], &incr)) return ctx.out->Error(kNotFloatErr);
  bool wrong;
  const BucketId b = KeyBucket(ctx.args[1]);
  Entry* e = GetString(ctx, ctx.args[1], &wrong);
  if (wrong) return ctx.out->Error(kWrongTypeErr);
  long double cur = 0;
  if (e != nullptr && !ParseLongDouble(e->str(), &cur)) return ctx.out->Error(kNotFloatErr);
  const long double next = cur + incr;
  if (std::isnan(next) || std::isinf(next)) {
    return ctx.out->Error("ERR increment would produce NaN or Infinity");
  }
  const std::string text = FormatFloat(next);
  const int64_t expire = e == nullptr ? kNoExpire : e->expire_ms();
  ctx.table->Put(b, Entry::NewString(ctx.args[1], text, expire));
  ctx.out->Bulk(text);
}

// Single-worker paths of the multi-key commands.
TableFor SameTable(ExecContext& ctx) {
  storage::Table* t = ctx.table;
  return [t](std::string_view) { return t; };
}
void MGetKeyed(ExecContext& ctx) { DoMGet(ctx.args, ctx.out, SameTable(ctx)); }
void MSetKeyed(ExecContext& ctx) { DoMSet(ctx.args, ctx.out, SameTable(ctx), Overwrite::kAllowed); }
void MSetNxKeyed(ExecContext& ctx) {
  DoMSet(ctx.args, ctx.out, SameTable(ctx), Overwrite::kOnlyIfAbsent);
}

resp::DispatchResult MultiMGet(Engine& e, resp::Connection* c, Args args, resp::ReplyBuilder*) {
  std::vector<std::string> owned(args.begin(), args.end());
  std::vector<unsigned> shards;
  for (size_t i = 1; i < owned.size(); ++i) shards.push_back(e.ShardOf(owned[i]));
  Engine* eng = &e;
  return e.RunLocked(
      c, std::move(shards), [eng, owned = std::move(owned)](resp::ReplyBuilder& out) {
        std::vector<std::string_view> v(owned.begin(), owned.end());
        DoMGet(Args(v.data(), v.size()), &out,
               [eng](std::string_view k) { return &eng->shard(eng->ShardOf(k))->table(); });
      });
}

resp::DispatchResult MultiMSetGeneric(Engine& e, resp::Connection* c, Args args,
                                      resp::ReplyBuilder* out, Overwrite mode) {
  if (args.size() % 2 == 0) {
    out->Error(fmt::format("ERR wrong number of arguments for '{}' command",
                           mode == Overwrite::kOnlyIfAbsent ? "msetnx" : "mset"));
    return resp::DispatchResult::kDone;
  }
  std::vector<std::string> owned(args.begin(), args.end());
  std::vector<unsigned> shards;
  for (size_t i = 1; i < owned.size(); i += 2) shards.push_back(e.ShardOf(owned[i]));
  Engine* eng = &e;
  return e.RunLocked(
      c, shards, [eng, shards, mode, owned = std::move(owned)](resp::ReplyBuilder& o) {
        for (unsigned s : shards) {
          if (!eng->shard(s)->EnsureMemory()) {
            return o.Error("OOM command not allowed when used memory > 'maxmemory'.");
          }
        }
        std::vector<std::string_view> v(owned.begin(), owned.end());
        DoMSet(
            Args(v.data(), v.size()), &o,
            [eng](std::string_view k) { return &eng->shard(eng->ShardOf(k))->table(); }, mode);
      });
}
resp::DispatchResult MultiMSet(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* o) {
  return MultiMSetGeneric(e, c, a, o, Overwrite::kAllowed);
}
resp::DispatchResult MultiMSetNx(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* o) {
  return MultiMSetGeneric(e, c, a, o, Overwrite::kOnlyIfAbsent);
}

constexpr uint32_t kW = kCmdWrite | kCmdDenyOom;
constexpr uint32_t kR = kCmdReadOnly;
const CommandSpec kStringCommands[] = {
    {"get", 2, kR | kCmdFast, 1, 1, 1, Get, nullptr, "string",
     "Returns the string value of a key."},
    {"set", -3, kW, 1, 1, 1, Set, nullptr, "string",
     "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."},
    {"setnx", 3, kW | kCmdFast, 1, 1, 1, SetNx, nullptr, "string",
     "Set the string value of a key only when the key doesn't exist."},
    {"setex", 4, kW, 1, 1, 1, SetEx, nullptr, "string",
     "Sets the string value and expiration time of a key."},
    {"psetex", 4, kW, 1, 1, 1, PSetEx, nullptr, "string",
     "Sets both string value and expiration time in milliseconds of a key."},
    {"getset", 3, kW | kCmdFast, 1, 1, 1, GetSet, nullptr, "string",
     "Returns the previous string value of a key after setting it to a new value."},
    {"getdel", 2, kCmdWrite | kCmdFast, 1, 1, 1, GetDel, nullptr, "string",
     "Returns the string value of a key after deleting the key."},
    {"getex", -2, kCmdWrite | kCmdFast, 1, 1, 1, GetEx, nullptr, "string",
     "Returns the string value of a key after setting its expiration time."},
    {"append", 3, kW | kCmdFast, 1, 1, 1, Append, nullptr, "string",
     "Appends a string to the value of a key. Creates the key if it doesn't exist."},
    {"strlen", 2, kR | kCmdFast, 1, 1, 1, StrLen, nullptr, "string",
     "Returns the length of a string value."},
    {"getrange", 4, kR, 1, 1, 1, GetRange, nullptr, "string",
     "Returns a substring of the string stored at a key."},
    {"setrange", 4, kW, 1, 1, 1, SetRange, nullptr, "string",
     "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't "
     "exist."},
    {"incr", 2, kW | kCmdFast, 1, 1, 1, Incr, nullptr, "string",
     "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't "
     "exist."},
    {"decr", 2, kW | kCmdFast, 1, 1, 1, Decr, nullptr, "string",
     "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't "
     "exist."},
    {"incrby", 3, kW | kCmdFast, 1, 1, 1, IncrBy, nullptr, "string",
     "Increments the integer value of a key by a number. Uses 0 as initial value if the key "
     "doesn't exist."},
    {"decrby", 3, kW | kCmdFast, 1, 1, 1, DecrBy, nullptr, "string",
     "Decrements a number from the integer value of a key. Uses 0 as initial value if the key "
     "doesn't exist."},
    {"incrbyfloat", 3, kW | kCmdFast, 1, 1, 1, IncrByFloat, nullptr, "string",
     "Increment the floating point value of a key by a number. Uses 0 as initial value if the key "
     "doesn't exist."},
    {"mget", -2, kR | kCmdFast, 1, -1, 1, MGetKeyed, MultiMGet, "string",
     "Atomically returns the string values of one or more keys."},
    {"mset", -3, kW, 1, -1, 2, MSetKeyed, MultiMSet, "string",
     "Atomically creates or modifies the string values of one or more keys."},
    {"msetnx", -3, kW, 1, -1, 2, MSetNxKeyed, MultiMSetNx, "string",
     "Atomically modifies the string values of one or more keys only when all keys don't exist."},
};

}  // namespace

std::span<const CommandSpec> StringCommands() { return kStringCommands; }

bool ParseExpiry(std::string_view arg, int64_t unit_ms, ExpiryForm form, int64_t now_ms,
                 int64_t* out) {
  int64_t v;
  if (!ParseInt64(arg, &v)) return false;
  if (v <= 0) return false;
  if (v > std::numeric_limits<int64_t>::max() / unit_ms) return false;
  v *= unit_ms;
  if (form == ExpiryForm::kRelative) {
    if (v > std::numeric_limits<int64_t>::max() - now_ms) return false;
    v += now_ms;
  }
  *out = v;
  return true;
}

void DoMGet(Args args, resp::ReplyBuilder* out, const TableFor& table_for) {
  out->ArrayHeader(args.size() - 1);
  for (size_t i = 1; i < args.size(); ++i) {
    storage::Entry* e = Lookup(table_for(args[i]), args[i]);
    if (e == nullptr || e->type() != storage::ObjType::kString) {
      out->NullBulk();
    } else {
      out->Bulk(e->str());
    }
  }
}

void DoMSet(Args args, resp::ReplyBuilder* out, const TableFor& table_for, Overwrite mode) {
  const bool nx = mode == Overwrite::kOnlyIfAbsent;
  if (args.size() % 2 == 0) {
    return out->Error(
        fmt::format("ERR wrong number of arguments for '{}' command", nx ? "msetnx" : "mset"));
  }
  if (nx) {
    for (size_t i = 1; i < args.size(); i += 2) {
      if (Lookup(table_for(args[i]), args[i]) != nullptr) return out->Integer(0);
    }
  }
  for (size_t i = 1; i < args.size(); i += 2) {
    table_for(args[i])->Put(KeyBucket(args[i]),
                            storage::Entry::NewString(args[i], args[i + 1], storage::kNoExpire));
  }
  if (nx) return out->Integer(1);
  out->Ok();
}

}  // namespace shoal::commands
