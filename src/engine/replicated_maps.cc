#include "engine/replicated_maps.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/glob.h"
#include "common/log.h"
#include "storage/hash_obj.h"

namespace shoal::engine {

namespace {

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

bool GetBytes(std::string_view* in, std::string_view* out) {
  uint32_t n;
  if (in->size() < 4) return false;
  std::memcpy(&n, in->data(), 4);
  in->remove_prefix(4);
  if (in->size() < n) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

// Calls fn(field, value) for each field of a hash blob's body; false if malformed.
template <typename F>
bool ForEachField(std::string_view body, F&& fn) {
  while (!body.empty()) {
    std::string_view f, v;
    if (!GetBytes(&body, &f) || !GetBytes(&body, &v)) return false;
    fn(f, v);
  }
  return true;
}

MapChange ToMapChange(const replicated::Change& c, bool local) {
  MapChange m;
  m.key = c.key;
  m.deleted = !c.value.has_value();
  m.expire_ms = c.expire_ms;
  m.local = local;
  m.origin = c.stamp.origin;
  if (c.value && !c.value->empty()) {
    const std::string_view v = *c.value;
    if (v[0] == 'h') {
      m.is_hash = true;
      ForEachField(v.substr(1), [&m](std::string_view f, std::string_view x) {
        m.fields.emplace_back(std::string(f), std::string(x));
      });
    } else {
      m.value = std::string(v.substr(1));
    }
  }
  return m;
}

}  // namespace

std::string StringValue(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 1);
  out.push_back('s');
  out.append(s);
  return out;
}

std::string EncodeValue(const storage::Entry& e) {
  if (e.type() == storage::ObjType::kString) return StringValue(e.str());
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  for (const auto& [f, v] : e.hash()->map()) fields.emplace_back(f, v);
  std::sort(fields.begin(), fields.end());
  std::string out = "h";
  for (const auto& [f, v] : fields) {
    PutU32(&out, static_cast<uint32_t>(f.size()));
    out.append(f);
    PutU32(&out, static_cast<uint32_t>(v.size()));
    out.append(v);
  }
  return out;
}

bool ValidValue(std::string_view v) {
  if (v.empty()) return false;
  if (v[0] == 's') return true;
  if (v[0] != 'h') return false;
  return ForEachField(v.substr(1), [](std::string_view, std::string_view) {});
}

storage::Entry* DecodeValue(std::string_view key, std::string_view v, int64_t expire_ms) {
  const int64_t exp = expire_ms < 0 ? storage::kNoExpire : expire_ms;
  if (v.empty()) return nullptr;
  if (v[0] == 's') return storage::Entry::NewString(key, v.substr(1), exp);
  if (v[0] != 'h') return nullptr;
  auto* h = new storage::HashObj();
  if (!ForEachField(v.substr(1), [h](std::string_view f, std::string_view x) { h->Set(f, x); })) {
    delete h;
    return nullptr;
  }
  return storage::Entry::NewHash(key, h, exp);
}

// ---- ReplicatedMap ----

ReplicatedMap::ReplicatedMap(std::string name, std::string prefix, membership::MemberId self,
                             const Clock* clock)
    : name_(std::move(name)), prefix_(std::move(prefix)), self_(self), clock_(clock) {}

std::optional<std::string> ReplicatedMap::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  const auto* e = map_.Get(key, clock_->NowUnixMillis());
  if (e == nullptr || e->value.empty() || e->value[0] != 's') return std::nullopt;
  return e->value.substr(1);
}

std::optional<std::vector<std::pair<std::string, std::string>>> ReplicatedMap::GetHash(
    std::string_view key) const {
  std::shared_lock lock(mu_);
  const auto* e = map_.Get(key, clock_->NowUnixMillis());
  if (e == nullptr || e->value.empty() || e->value[0] != 'h') return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  ForEachField(std::string_view(e->value).substr(1),
               [&out](std::string_view f, std::string_view v) {
                 out.emplace_back(std::string(f), std::string(v));
               });
  return out;
}

Status ReplicatedMap::Put(std::string_view key, std::string_view value, int64_t ttl_ms) {
  if (key.size() + value.size() > kMaxReplicatedValue) {
    return Error(std::make_error_code(std::errc::value_too_large),
                 "a replicated map's entries are limited to 32 MiB");
  }
  LocalWrite(key, StringValue(value),
             ttl_ms > 0 ? clock_->NowUnixMillis() + ttl_ms : replicated::kNoExpire);
  return Status::Ok();
}

bool ReplicatedMap::Erase(std::string_view key) {
  bool existed = false;
  std::vector<MapChange> notes;
  bool was_empty = false;
  {
    std::unique_lock lock(mu_);
    existed = map_.Get(key, clock_->NowUnixMillis()) != nullptr;
    if (!existed) return false;
    was_empty = outbox_.empty();
    bool changed = false;
    notes.push_back(ApplyLocalLocked(key, std::nullopt, -1, &changed));
  }
  Wake(was_empty);
  Notify(std::move(notes));
  return existed;
}

std::vector<std::pair<std::string, std::string>> ReplicatedMap::Range(std::string_view begin,
                                                                      std::string_view end,
                                                                      size_t limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  {
    std::shared_lock lock(mu_);
    const int64_t now = clock_->NowUnixMillis();
    map_.ForEach([&](const std::string& k, const replicated::LwwMap::Entry& e) {
      if (!e.live || (e.expire_ms >= 0 && e.expire_ms <= now)) return true;
      if (k < begin || (!end.empty() && k >= end)) return true;
      out.emplace_back(k, !e.value.empty() && e.value[0] == 's' ? e.value.substr(1) : "");
      return true;
    });
  }
  std::sort(out.begin(), out.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

uint64_t ReplicatedMap::Scan(uint64_t cursor, size_t count, std::string_view glob,
                             std::string_view type, std::vector<std::string>* keys) const {
  const char want = type.empty() ? 0 : type == "string" ? 's' : type == "hash" ? 'h' : '?';
  std::shared_lock lock(mu_);
  return map_.Scan(cursor, count, clock_->NowUnixMillis(),
                   [&](const std::string& k, const replicated::LwwMap::Entry& e) {
                     if (want != 0 && (e.value.empty() || e.value[0] != want)) return;
                     if (glob.empty() || GlobMatch(glob, k)) keys->push_back(k);
                   });
}

size_t ReplicatedMap::size() const {
  std::shared_lock lock(mu_);
  return map_.size();
}

uint64_t ReplicatedMap::Watch(WatchFn fn) {
  std::lock_guard lock(watch_mu_);
  const uint64_t id = next_watch_++;
  watchers_.emplace(id, std::move(fn));
  has_watchers_.store(true, std::memory_order_release);
  return id;
}

void ReplicatedMap::Unwatch(uint64_t id) {
  std::lock_guard lock(watch_mu_);
  watchers_.erase(id);
  has_watchers_.store(!watchers_.empty(), std::memory_order_release);
}

void ReplicatedMap::Notify(std::vector<MapChange> changes) {
  if (changes.empty() || !has_watchers_.load(std::memory_order_acquire)) return;
  std::vector<WatchFn> fns;
  {
    std::lock_guard lock(watch_mu_);
    for (const auto& [id, fn] : watchers_) fns.push_back(fn);
  }
  for (const MapChange& c : changes) {
    for (const WatchFn& fn : fns) fn(c);
  }
}

MapChange ReplicatedMap::ApplyLocalLocked(std::string_view key, std::optional<std::string> value,
                                          int64_t expire_ms, bool* changed) {
  replicated::Change c;
  c.key = std::string(key);
  c.value = std::move(value);
  c.expire_ms = c.value ? expire_ms : replicated::kNoExpire;
  c.stamp.time = hlc_.Now(clock_->NowUnixMicros());
  c.stamp.origin = self_;
  *changed = map_.Apply(c);
  stats_.local_writes.fetch_add(1, std::memory_order_relaxed);
  MapChange note;
  if (has_watchers_.load(std::memory_order_acquire)) note = ToMapChange(c, true);
  outbox_.push_back(std::move(c));
  return note;
}

void ReplicatedMap::LocalWrite(std::string_view key, std::optional<std::string> value,
                               int64_t expire_ms) {
  std::vector<Write> one;
  one.push_back(Write{std::string(key), std::move(value), expire_ms});
  LocalWrites(std::move(one));
}

void ReplicatedMap::LocalWrites(std::vector<Write> writes) {
  if (writes.empty()) return;
  std::vector<MapChange> notes;
  bool was_empty;
  {
    std::unique_lock lock(mu_);
    was_empty = outbox_.empty();
    for (Write& w : writes) {
      bool changed = false;
      MapChange n = ApplyLocalLocked(w.key, std::move(w.value), w.expire_ms, &changed);
      if (has_watchers_.load(std::memory_order_relaxed)) notes.push_back(std::move(n));
    }
  }
  Wake(was_empty);
  Notify(std::move(notes));
}

void ReplicatedMap::Wake(bool was_empty) {
  if (!was_empty) return;
  std::function<void()> fn;
  {
    std::lock_guard lock(watch_mu_);
    fn = on_outbox_;
  }
  if (fn) fn();
}

std::vector<replicated::Change> ReplicatedMap::TakeOutbox() {
  std::unique_lock lock(mu_);
  std::vector<replicated::Change> out;
  out.swap(outbox_);
  return out;
}

size_t ReplicatedMap::ApplyRemote(const std::vector<replicated::Change>& changes,
                                  ChangeSource source) {
  size_t won = 0;
  std::vector<MapChange> notes;
  const bool watch = has_watchers_.load(std::memory_order_acquire);
  {
    std::unique_lock lock(mu_);
    const int64_t now = clock_->NowUnixMicros();
    for (const replicated::Change& c : changes) {
      if (c.value && !ValidValue(*c.value)) {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      hlc_.Observe(c.stamp.time, now);
      if (map_.Apply(c)) {
        ++won;
        if (watch) notes.push_back(ToMapChange(c, false));
      }
    }
  }
  stats_.remote_applied.fetch_add(won, std::memory_order_relaxed);
  stats_.remote_stale.fetch_add(changes.size() - won, std::memory_order_relaxed);
  if (source == ChangeSource::kSync)
    stats_.sync_entries_received.fetch_add(changes.size(), std::memory_order_relaxed);
  Notify(std::move(notes));
  return won;
}

Status ReplicatedMap::Load(const replicated::Snapshot& snap) {
  if (snap.map != name_) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "the snapshot is of map '" + snap.map + "', not '" + name_ + "'");
  }
  for (const replicated::Change& c : snap.changes) {
    if (c.value && !ValidValue(*c.value)) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   "the snapshot holds a malformed value for key '" + c.key.substr(0, 64) + "'");
    }
  }
  std::unique_lock lock(mu_);
  const int64_t now = clock_->NowUnixMicros();
  // Entries first, then the horizon: a live entry may be older than the horizon.
  replicated::RestoreSnapshot(snap, &map_);
  for (const replicated::Change& c : snap.changes) hlc_.Observe(c.stamp.time, now);
  return Status::Ok();
}

Status ReplicatedMap::Save(const std::string& path, Env& env) {
  // The lock is taken per storage group (~n/4096 entries), so writers wait microseconds, not the
  // whole encoding (0.5 s for 1M entries).
  HlcTime horizon;
  {
    std::shared_lock lock(mu_);
    horizon = map_.horizon();
  }
  replicated::SnapshotWriter w(name_, horizon, clock_->NowUnixMillis());
  for (uint32_t g = 0; g < replicated::kGroups; ++g) {
    std::shared_lock lock(mu_);
    map_.ForEachInGroup(
        g, [&w](const std::string& k, const replicated::LwwMap::Entry& e) { w.Add(k, e); });
  }
  std::string bytes = w.Finish();
  Status st = env.CreateDirs(ParentDir(path));
  if (st.ok()) st = WriteFileAtomically(env, path, bytes);
  if (st.ok()) {
    stats_.saves.fetch_add(1, std::memory_order_relaxed);
    stats_.last_save_unix.store(clock_->NowUnixMillis() / 1000, std::memory_order_relaxed);
  }
  return st;
}

void ReplicatedMap::Maintain(int64_t now_ms, int64_t tombstone_ttl_ms, Tombstones tombstones) {
  std::unique_lock lock(mu_);
  stats_.expired.fetch_add(map_.ExpireSome(now_ms, 64), std::memory_order_relaxed);
  if (tombstones == Tombstones::kCollect) {
    const int64_t h = (now_ms - tombstone_ttl_ms) * 1000;
    if (h > 0) {
      stats_.tombstones_collected.fetch_add(
          map_.CollectTombstones(HlcTime{static_cast<uint64_t>(h), 0}), std::memory_order_relaxed);
    }
  }
}

// ---- ReplicatedMaps ----

ReplicatedMaps::ReplicatedMaps(const Clock* clock, const config::ServerConfig& cfg, Env* env)
    : clock_(clock), cfg_(cfg), env_(env) {
  for (const auto& d : cfg.replicated_maps) (void)Declare(d.name, d.prefix);
}

ReplicatedMaps::~ReplicatedMaps() = default;

void ReplicatedMaps::set_self(membership::MemberId self) {
  std::lock_guard lock(mu_);
  self_ = self;
  for (const auto& m : maps_) m->set_self(self);
}

Result<ReplicatedMap*> ReplicatedMaps::Declare(std::string name, std::string prefix) {
  std::vector<std::function<void(ReplicatedMap*)>> fns;
  ReplicatedMap* m = nullptr;
  {
    std::lock_guard lock(mu_);
    std::vector<config::ReplicatedMapDecl> decls;
    for (const auto& x : maps_) {
      if (x->name() == name && x->prefix() == prefix) return x.get();
      decls.push_back({x->name(), x->prefix()});
    }
    Status st = config::AddReplicatedMap(decls, {name, prefix});
    if (!st.ok()) return st.error();
    maps_.push_back(std::make_unique<ReplicatedMap>(name, prefix, self_, clock_));
    m = maps_.back().get();
    auto cat = std::make_unique<Catalog>();
    for (const auto& x : maps_) cat->maps.push_back(x.get());
    catalog_.store(cat.get(), std::memory_order_release);
    catalogs_.push_back(std::move(cat));
    fns = on_declare_;
  }
  for (auto& fn : fns) fn(m);
  return m;
}

ReplicatedMap* ReplicatedMaps::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& x : maps_) {
    if (x->name() == name) return x.get();
  }
  return nullptr;
}

std::vector<ReplicatedMap*> ReplicatedMaps::All() const {
  std::lock_guard lock(mu_);
  std::vector<ReplicatedMap*> out;
  for (const auto& x : maps_) out.push_back(x.get());
  return out;
}

void ReplicatedMaps::OnDeclare(std::function<void(ReplicatedMap*)> fn) {
  std::vector<ReplicatedMap*> now;
  {
    std::lock_guard lock(mu_);
    on_declare_.push_back(fn);
    for (const auto& x : maps_) now.push_back(x.get());
  }
  for (ReplicatedMap* m : now) fn(m);
}

std::string ReplicatedMaps::SnapshotPath(const ReplicatedMap& m) const {
  if (cfg_.data_dir.empty()) return std::string();
  return (std::filesystem::path(cfg_.data_dir) / "replicated" / (m.name() + ".snap")).string();
}

Status ReplicatedMaps::LoadSnapshots() {
  for (ReplicatedMap* m : All()) {
    const std::string path = SnapshotPath(*m);
    if (path.empty() || !env_->Exists(path)) continue;
    auto snap = replicated::LoadSnapshotFile(*env_, path);
    if (!snap.ok()) {
      return Error(snap.error().code(), "replicated map '" + m->name() +
                                            "': " + snap.error().message() +
                                            " (move the file away to start without it)");
    }
    // A snapshot older than the tombstone ttl may hold keys deleted since, whose tombstones the
    // peers have collected: merged, they would come back. Refuse it rather than guess.
    const int64_t age_ms = clock_->NowUnixMillis() - snap->saved_unix_ms;
    if (snap->saved_unix_ms > 0 && age_ms > cfg_.replicated_tombstone_ttl * 1000) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   fmt::format("replicated map '{}': {} was saved {} s ago, longer than "
                               "replicated-tombstone-ttl ({} s): keys deleted since could come "
                               "back; refusing to load it (move it away to start empty and sync "
                               "from the peers, or, if no peer holds the map, raise "
                               "replicated-tombstone-ttl above its age)",
                               m->name(), path, age_ms / 1000, cfg_.replicated_tombstone_ttl));
    }
    Status st = m->Load(*snap);
    if (!st.ok()) {
      return Error(st.error().code(),
                   "replicated map '" + m->name() + "': " + path + ": " + st.error().message());
    }
    SHOAL_LOG_INFO("replicated map '{}': loaded {} entries from {}", m->name(), m->size(), path);
  }
  return Status::Ok();
}

Status ReplicatedMaps::SaveAll() {
  Status first = Status::Ok();
  for (ReplicatedMap* m : All()) {
    const std::string path = SnapshotPath(*m);
    if (path.empty()) {
      return Error(std::make_error_code(std::errc::invalid_argument),
                   "no data-dir is set: replicated maps cannot be saved");
    }
    Status st = m->Save(path, *env_);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

}  // namespace shoal::engine
