#include "node/replicated_driver.h"

#include "common/log.h"
#include "engine/engine.h"

namespace shoal::node {

using engine::ReplicatedMap;
using engine::ReplicatedMapStats;

namespace {
constexpr int64_t kMaintainEveryUs = 100'000;
constexpr int64_t kCollectEveryUs = 10'000'000;
}  // namespace

ReplicatedDriver::ReplicatedDriver(const ServiceContext& ctx)
    : Service("replicated"),
      maps_(&ctx.engine->replicated()),
      bus_(ctx.services->Find<Bus>()),
      loop_(ctx.loop),
      client_(ctx.rpc_client),
      self_(ctx.self),
      clock_(ctx.clock),
      cfg_(maps_->config()) {
  rng_ ^= self_.lo() ^ static_cast<uint64_t>(clock_->MonotonicMicros());
  const int64_t now = clock_->MonotonicMicros();
  next_collect_us_ = now + kCollectEveryUs;
  next_save_us_ = now + cfg_.replicated_save_interval * 1'000'000;
}

ReplicatedDriver::~ReplicatedDriver() { Detach(); }

void ReplicatedDriver::Detach() {
  *alive_flag_ = false;
  for (ReplicatedMap* m : maps_->All()) m->set_on_outbox(nullptr);
}

Status ReplicatedDriver::Load() { return maps_->LoadSnapshots(); }

void ReplicatedDriver::Stop() {
  if (!cfg_.data_dir.empty()) {
    Status st = maps_->SaveAll();
    if (!st.ok()) {
      SHOAL_LOG_ERROR("replicated maps: snapshot at exit failed: {}", st.error().message());
    }
  }
  Detach();
}

Status ReplicatedDriver::Start(net::RpcServer* server) {
  ServeMethod(
      server, kReplicatedSyncMethod, [this](std::string_view body, net::Responder responder) {
        auto req = replicated::DecodeRequest(body);
        if (!req.ok()) {
          responder.Fail(req.error().message());
          return;
        }
        ReplicatedMap* m = maps_->Find(req->map);
        if (m == nullptr) {
          responder.Fail("no replicated map '" + req->map + "' on this node");
          return;
        }
        if (RefuseAsFresh(*req)) {
          responder.Fail(std::string(replicated::kFreshResponder));
          return;
        }
        std::vector<replicated::Change> pushed;
        auto answer = m->WithShared(
            [&](const replicated::LwwMap& lm) { return replicated::Answer(lm, *req, &pushed); });
        if (!answer.ok()) {
          responder.Fail(answer.error().message());
          return;
        }
        if (!pushed.empty()) {
          m->ApplyRemote(pushed, ReplicatedMap::ChangeSource::kSync);
        }
        responder.Reply(std::move(*answer));
      });
  maps_->OnDeclare([this](ReplicatedMap* m) {
    if (loop_->InLoopThread()) {
      Attach(m);
    } else {
      loop_->Post([this, m] { Attach(m); });
    }
  });
  return Status::Ok();
}

bool ReplicatedDriver::RefuseAsFresh(const replicated::SyncRequest& req) const {
  if (req.kind != replicated::SyncKind::kCompare || req.fresh) return false;
  auto it = per_map_.find(req.map);
  if (it == per_map_.end()) return false;
  const PerMap& pm = it->second;
  // Only while this node's own first session is running or about to run: a node that cannot
  // complete one keeps answering, so a peer's session still repairs it in the end.
  return !pm.pulled && !alive_.empty() && (pm.session != nullptr || !pm.pending_peers.empty());
}

void ReplicatedDriver::Attach(ReplicatedMap* m) {
  if (per_map_.contains(m->name())) return;
  PerMap& pm = per_map_[m->name()];
  pm.map = m;
  pm.next_sync_us = clock_->MonotonicMicros() + cfg_.replicated_sync_interval_ms * 1000;
  for (const auto& id : alive_) pm.pending_peers.insert(id);
  std::weak_ptr<bool> alive = alive_flag_;
  const std::string name = m->name();
  m->set_on_outbox([this, alive, name] {
    loop_->Post([this, alive, name] {
      if (alive.expired() || !*alive.lock()) return;
      auto it = per_map_.find(name);
      if (it != per_map_.end()) Flush(it->second);
    });
  });
  bus_->Run([this, alive, name](bus::Dispatcher& d) {
    auto sub = d.Subscribe(bus::Space::kReplicated, "", name,
                           [this, alive](const bus::Publication& p, const std::string&,
                                         std::function<void(uint64_t)> done) {
                             if (!alive.expired() && *alive.lock()) OnBatch(p);
                             done(1);
                           });
    if (!sub.ok()) {
      SHOAL_LOG_ERROR("replicated map '{}': cannot subscribe: {}", name, sub.error().message());
      return;
    }
    d.SyncInterest([this, alive, name] {
      if (alive.expired() || !*alive.lock()) return;
      auto it = per_map_.find(name);
      if (it != per_map_.end()) it->second.interest_ready = true;
    });
  });
  // Writes made before the driver existed (none normally) go out now.
  Flush(pm);
}

void ReplicatedDriver::Flush(PerMap& pm) {
  std::vector<replicated::Change> changes = pm.map->TakeOutbox();
  if (changes.empty()) return;
  size_t start = 0;
  while (start < changes.size()) {
    size_t bytes = 0, end = start;
    while (end < changes.size() && (end == start || bytes < kMaxBatchBytes)) {
      bytes += changes[end].key.size() + (changes[end].value ? changes[end].value->size() : 0) + 48;
      ++end;
    }
    std::vector<replicated::Change> part(std::make_move_iterator(changes.begin() + start),
                                         std::make_move_iterator(changes.begin() + end));
    std::string payload = replicated::EncodeChanges(pm.map->name(), part);
    pm.map->stats().batches_sent.fetch_add(1, std::memory_order_relaxed);
    bus_->Run([name = pm.map->name(), payload = std::move(payload)](bus::Dispatcher& d) mutable {
      d.Publish(bus::Space::kReplicated, "", name, std::move(payload), [](Result<uint64_t>) {});
    });
    start = end;
  }
}

void ReplicatedDriver::OnBatch(const bus::Publication& p) {
  if (p.origin == self_) return;  // our own batch, delivered locally
  auto batch = replicated::DecodeChanges(p.payload);
  auto it = per_map_.find(p.subject);
  if (it == per_map_.end()) return;
  if (!batch.ok() || batch->map != p.subject) {
    it->second.map->stats().malformed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  it->second.map->stats().batches_received.fetch_add(1, std::memory_order_relaxed);
  it->second.map->ApplyRemote(batch->changes, ReplicatedMap::ChangeSource::kBatch);
}

uint64_t ReplicatedDriver::NextRandom() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_;
}

std::vector<membership::MemberId> ReplicatedDriver::AlivePeers() const {
  return std::vector<membership::MemberId>(alive_.begin(), alive_.end());
}

void ReplicatedDriver::OnView(std::shared_ptr<const membership::MemberTable> view) {
  view_ = view;
  std::set<membership::MemberId> now;
  for (const membership::Member& m : view->members()) {
    if (m.record.id == self_ || m.state != membership::MemberState::kAlive) continue;
    now.insert(m.record.id);
    if (!alive_.contains(m.record.id)) {
      // Joined, or back after a crash or a partition (see PerMap::delayed_peers).
      const int64_t now_us = clock_->MonotonicMicros();
      const int64_t interval_us = cfg_.replicated_sync_interval_ms * 1000;
      for (auto& [name, pm] : per_map_) {
        if (!pm.pulled) {
          pm.pending_peers.insert(m.record.id);
        } else {
          pm.delayed_peers[m.record.id] =
              now_us + interval_us + static_cast<int64_t>(NextRandom() % interval_us);
        }
      }
    }
  }
  alive_ = std::move(now);
  if (alive_.empty()) {
    for (auto& [name, pm] : per_map_) pm.map->stats().synced.store(true);  // alone: nothing to do
  }
}

void ReplicatedDriver::Tick(int64_t now) {
  for (auto& [name, pm] : per_map_) MaybeStartSync(pm, now);
  if (now >= next_maintain_us_) {
    next_maintain_us_ = now + kMaintainEveryUs;
    const bool collect = now >= next_collect_us_;
    if (collect) next_collect_us_ = now + kCollectEveryUs;
    for (auto& [name, pm] : per_map_) {
      // Not before this node's first completed sync (unless it runs standalone, with no seeds
      // and no discovery): the horizon refuses older changes, and a node that has not yet
      // received its peers' old entries — one alone at boot until its seeds answer included —
      // would refuse them for good.
      const bool standalone = alive_.empty() && cfg_.seeds.empty() && cfg_.discovery_dns.empty();
      pm.map->Maintain(clock_->NowUnixMillis(), cfg_.replicated_tombstone_ttl * 1000,
                       collect && (pm.pulled || standalone) ? ReplicatedMap::Tombstones::kCollect
                                                            : ReplicatedMap::Tombstones::kKeep);
    }
  }
  if (cfg_.replicated_save_interval > 0 && !cfg_.data_dir.empty() && now >= next_save_us_) {
    next_save_us_ = now + cfg_.replicated_save_interval * 1'000'000;
    for (auto& [name, pm] : per_map_) {
      Status st = pm.map->Save(maps_->SnapshotPath(*pm.map), maps_->env());
      if (!st.ok()) {
        SHOAL_LOG_ERROR("replicated map '{}': snapshot failed: {}", name, st.error().message());
      }
    }
  }
}

void ReplicatedDriver::SyncNow(std::string map) {
  loop_->Post([this, alive = std::weak_ptr<bool>(alive_flag_), map] {
    if (alive.expired() || !*alive.lock()) return;
    auto it = per_map_.find(map);
    if (it == per_map_.end() || alive_.empty()) return;
    // As a newly seen peer: not put off by writes in flight.
    const std::vector<membership::MemberId> peers = AlivePeers();
    it->second.pending_peers.insert(peers[NextRandom() % peers.size()]);
  });
}

void ReplicatedDriver::MaybeStartSync(PerMap& pm, int64_t now_us) {
  if (pm.session != nullptr || !pm.interest_ready || alive_.empty()) return;
  // Newly alive peers first.
  for (auto it = pm.delayed_peers.begin(); it != pm.delayed_peers.end();) {
    if (it->second <= now_us) {
      pm.pending_peers.insert(it->first);
      it = pm.delayed_peers.erase(it);
    } else {
      ++it;
    }
  }
  while (!pm.pending_peers.empty()) {
    const membership::MemberId peer = *pm.pending_peers.begin();
    pm.pending_peers.erase(pm.pending_peers.begin());
    if (alive_.contains(peer)) return StartSession(pm, peer);
  }
  const ReplicatedMapStats& k = pm.map->stats();
  const uint64_t activity = k.local_writes.load(std::memory_order_relaxed) +
                            k.batches_received.load(std::memory_order_relaxed);
  if (activity != pm.activity) {
    pm.activity = activity;
    pm.active_us = now_us;
  }
  if (now_us < pm.next_sync_us) return;
  const int64_t interval_us = cfg_.replicated_sync_interval_ms * 1000;
  if (now_us - pm.active_us < kQuietUs &&
      now_us - pm.last_round_us < kMaxQuietWaitRounds * interval_us) {
    return;  // writes in flight: try again next tick
  }
  pm.next_sync_us = now_us + interval_us;
  pm.last_round_us = now_us;
  const std::vector<membership::MemberId> peers = AlivePeers();
  StartSession(pm, peers[NextRandom() % peers.size()]);
}

void ReplicatedDriver::StartSession(PerMap& pm, const membership::MemberId& peer) {
  pm.session = std::make_unique<replicated::SyncSession>(pm.map->name());
  pm.peer = peer;
  std::string req = pm.map->WithShared(
      [&pm](const replicated::LwwMap& lm) { return pm.session->Start(lm, !pm.pulled); });
  SendStep(pm.map->name(), std::move(req));
}

void ReplicatedDriver::SendStep(const std::string& name, std::string request) {
  auto it = per_map_.find(name);
  if (it == per_map_.end()) return;
  PerMap& pm = it->second;
  const membership::Member* m = view_ == nullptr ? nullptr : view_->Find(pm.peer);
  if (m == nullptr) return EndSession(pm, false);
  std::weak_ptr<bool> alive = alive_flag_;
  client_->Call(
      m->record.address, kReplicatedSyncMethod, std::move(request), kSyncCallTimeoutMs,
      [this, alive, name](Result<std::string> r) {
        if (alive.expired() || !*alive.lock()) return;
        auto it = per_map_.find(name);
        if (it == per_map_.end() || it->second.session == nullptr) return;
        PerMap& pm = it->second;
        if (!r.ok()) {
          if (r.error().message().find(replicated::kFreshResponder) != std::string::npos) {
            // It pulls from us (or another peer) itself; nothing is wrong.
            pm.map->stats().sync_deferred.fetch_add(1, std::memory_order_relaxed);
            pm.session.reset();
            return;
          }
          SHOAL_LOG_DEBUG("replicated map '{}': sync with {} failed: {}", name,
                          pm.peer.ShortString(), r.error().message());
          return EndSession(pm, false);
        }
        auto step = pm.map->WithShared(
            [&](const replicated::LwwMap& lm) { return pm.session->OnAnswer(lm, *r); });
        if (!step.ok()) {
          SHOAL_LOG_WARN("replicated map '{}': bad sync answer from {}: {}", name,
                         pm.peer.ShortString(), step.error().message());
          return EndSession(pm, false);
        }
        if (!step->received.empty())
          pm.map->ApplyRemote(step->received, ReplicatedMap::ChangeSource::kSync);
        if (!step->request) return EndSession(pm, true);
        SendStep(name, std::move(*step->request));
      });
}

void ReplicatedDriver::EndSession(PerMap& pm, bool ok) {
  ReplicatedMapStats& k = pm.map->stats();
  const replicated::SyncStats& s = pm.session->stats();
  k.sync_bytes.fetch_add(s.bytes_sent + s.bytes_received, std::memory_order_relaxed);
  k.sync_entries_sent.fetch_add(s.entries_sent, std::memory_order_relaxed);
  if (ok) {
    pm.pulled = true;
    k.syncs.fetch_add(1, std::memory_order_relaxed);
    if (!k.synced.exchange(true)) {
      SHOAL_LOG_INFO("replicated map '{}': synced from {} ({} entries received, {} bytes)",
                     pm.map->name(), pm.peer.ShortString(), s.entries_received,
                     s.bytes_sent + s.bytes_received);
    }
  } else {
    k.sync_failures.fetch_add(1, std::memory_order_relaxed);
  }
  pm.session.reset();
}

}  // namespace shoal::node
