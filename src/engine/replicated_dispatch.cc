// RESP commands on replicated map keys: the engine sends any keyed command whose keys all start
// with one map's prefix here, on the client's own worker, against the local full copy — never
// forwarded, never MOVED, in both cluster modes. The command's own handler runs on a scratch
// table loaded with the keys' current values; what it leaves there is applied to the map.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "common/keyslot.h"
#include "engine/engine.h"
#include "engine/replicated_maps.h"
#include "engine/resp_error.h"

namespace shoal::engine {

using resp::DispatchResult;

void ReplicatedMap::ExecuteCommand(const CommandSpec& spec, Args args, const KeyPosList& pos,
                                   resp::ReplyBuilder* out, Shard* shard, storage::Table* scratch) {
  const bool write = (spec.flags & kCmdWrite) != 0;
  absl::InlinedVector<std::string_view, 4> keys;
  for (size_t p : pos) {
    if (std::find(keys.begin(), keys.end(), args[p]) == keys.end()) keys.push_back(args[p]);
  }
  const int64_t now = clock_->NowUnixMillis();
  auto load = [&] {
    for (std::string_view k : keys) {
      const auto* e = map_.Get(k, now);
      if (e == nullptr) continue;
      if (storage::Entry* x = DecodeValue(k, e->value, e->expire_ms)) scratch->Put(KeyBucket(k), x);
    }
  };
  auto unload = [&] {
    for (std::string_view k : keys) scratch->Erase(KeyBucket(k), k);
  };
  if (spec.name == "get") {
    // The hot read, straight from the blob (same replies as the string handler).
    std::shared_lock lock(mu_);
    const auto* e = map_.Get(keys[0], now);
    if (e == nullptr) {
      ++shard->stats().keyspace_misses;
      return out->NullBulk();
    }
    if (e->value.empty() || e->value[0] != 's') return out->Error(kWrongTypeErr);
    ++shard->stats().keyspace_hits;
    return out->Bulk(std::string_view(e->value).substr(1));
  }
  ExecContext ctx{args, out, shard, scratch, now, shard->limits().output_buffer_limit};
  if (!write) {
    std::shared_lock lock(mu_);
    load();
    spec.key_handler(ctx);
    unload();
    return;
  }
  std::vector<MapChange> notes;
  bool was_empty;
  {
    std::unique_lock lock(mu_);
    was_empty = outbox_.empty();
    load();
    spec.key_handler(ctx);
    for (std::string_view k : keys) {
      storage::Entry* e = scratch->Peek(KeyBucket(k), k);
      const auto* old = map_.Get(k, now);
      std::optional<std::string> value;
      int64_t expire = replicated::kNoExpire;
      if (e != nullptr) {
        value = EncodeValue(*e);
        expire = e->has_expire() ? e->expire_ms() : replicated::kNoExpire;
      }
      if (old == nullptr && !value) continue;  // absent before and after
      if (old != nullptr && value && old->value == *value && old->expire_ms == expire) continue;
      bool changed = false;
      MapChange n = ApplyLocalLocked(k, std::move(value), expire, &changed);
      if (has_watchers_.load(std::memory_order_relaxed)) notes.push_back(std::move(n));
    }
    unload();
  }
  // A value grown past the limit (APPEND, SETRANGE, HSET after HSET) is applied here but may
  // not reach the peers: documented in docs/replicated.md.
  Wake(was_empty);
  Notify(std::move(notes));
}

std::optional<DispatchResult> Engine::DispatchReplicated(resp::Connection* c,
                                                         const CommandSpec& spec, Args args,
                                                         resp::ReplyBuilder* out) {
  // The common case, a command on one key outside every map, costs one prefix check.
  if (spec.first_key == spec.last_key && static_cast<size_t>(spec.first_key) < args.size() &&
      replicated_->MatchKey(args[static_cast<size_t>(spec.first_key)]) == nullptr) {
    return std::nullopt;
  }
  const KeyPosList pos = KeyPositions(spec, args);
  ReplicatedMap* map = nullptr;
  size_t matched = 0;
  for (size_t p : pos) {
    ReplicatedMap* m = replicated_->MatchKey(args[p]);
    if (m == nullptr) continue;
    if (map != nullptr && m != map) {
      out->Error(fmt::format("CROSSSLOT Keys in request belong to replicated maps '{}' and '{}'",
                             map->name(), m->name()));
      return DispatchResult::kDone;
    }
    map = m;
    ++matched;
  }
  if (map == nullptr) return std::nullopt;
  if (matched != pos.size()) {
    out->Error(fmt::format("CROSSSLOT Keys in request mix replicated map '{}' with keys outside it",
                           map->name()));
    return DispatchResult::kDone;
  }
  if (spec.key_handler == nullptr) {
    out->Error(fmt::format("ERR '{}' is not supported on replicated map keys", spec.name));
    return DispatchResult::kDone;
  }
  if (spec.flags & kCmdWrite) {
    size_t total = 0;
    for (std::string_view a : args) total += a.size();
    if (total > kMaxReplicatedValue) {
      out->Error(
          fmt::format("ERR writes to replicated map '{}' are limited to 32 MiB of "
                      "arguments",
                      map->name()));
      return DispatchResult::kDone;
    }
  }
  static_cast<ClientInfo*>(c->state())->asking = false;
  Shard* home = CurrentShard();
  ++home->stats().commands;
  ++home->stats().replicated_commands;
  map->ExecuteCommand(spec, args, pos, out, home, &home->scratch());
  return DispatchResult::kDone;
}

}  // namespace shoal::engine
