#include "replicated/replicator.h"

#include <iterator>
#include <system_error>
#include <utility>

#include "common/log.h"

namespace shoal::replicated {

Replicator::Replicator(MemberId self, RpcChannel* rpc, BroadcastFn broadcast,
                       ReplicatorOptions options, uint64_t seed, int64_t now_us)
    : self_(self),
      rpc_(rpc),
      broadcast_(std::move(broadcast)),
      options_(options),
      rng_(seed | 1),
      next_collect_us_(now_us + options.collect_every_us) {}

Replicator::~Replicator() { *alive_flag_ = false; }

uint64_t Replicator::NextRandom() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_;
}

void Replicator::Attach(LocalCopy* copy, int64_t now_us) {
  if (per_map_.contains(copy->name())) return;
  PerMap& pm = per_map_[copy->name()];
  pm.copy = copy;
  pm.next_sync_us = now_us + options_.sync_interval_us;
  for (const auto& [id, ep] : alive_) pm.pending_peers.insert(id);
  Flush(copy->name());
}

void Replicator::SetInterestReady(const std::string& map) {
  auto it = per_map_.find(map);
  if (it != per_map_.end()) it->second.interest_ready = true;
}

bool Replicator::pulled(const std::string& map) const {
  auto it = per_map_.find(map);
  return it != per_map_.end() && it->second.pulled;
}

bool Replicator::in_session(const std::string& map) const {
  auto it = per_map_.find(map);
  return it != per_map_.end() && it->second.session != nullptr;
}

void Replicator::Flush(const std::string& map) {
  auto it = per_map_.find(map);
  if (it == per_map_.end()) return;
  LocalCopy& copy = *it->second.copy;
  std::vector<Change> changes = copy.TakeOutbox();
  size_t start = 0;
  while (start < changes.size()) {
    size_t bytes = 0, end = start;
    while (end < changes.size() && (end == start || bytes < options_.max_batch_bytes)) {
      bytes += changes[end].key.size() + (changes[end].value ? changes[end].value->size() : 0) + 48;
      ++end;
    }
    std::vector<Change> part(std::make_move_iterator(changes.begin() + start),
                             std::make_move_iterator(changes.begin() + end));
    copy.stats().batches_sent.fetch_add(1, std::memory_order_relaxed);
    broadcast_(copy.name(), EncodeChanges(copy.name(), part));
    start = end;
  }
}

void Replicator::OnBatch(const MemberId& origin, const std::string& map, std::string_view payload) {
  if (origin == self_) return;  // our own batch, delivered locally
  auto it = per_map_.find(map);
  if (it == per_map_.end()) return;
  LocalCopy& copy = *it->second.copy;
  auto batch = DecodeChanges(payload);
  if (!batch.ok() || batch->map != map) {
    copy.stats().malformed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  copy.stats().batches_received.fetch_add(1, std::memory_order_relaxed);
  copy.ApplyRemote(batch->changes, ChangeSource::kBatch);
}

bool Replicator::RefuseAsFresh(const SyncRequest& req) const {
  if (req.kind != SyncKind::kCompare || req.fresh) return false;
  auto it = per_map_.find(req.map);
  if (it == per_map_.end()) return false;
  const PerMap& pm = it->second;
  // Only while this node's own first session is running or about to run: a node that cannot
  // complete one keeps answering, so a peer's session still repairs it in the end.
  return !pm.pulled && !alive_.empty() && (pm.session != nullptr || !pm.pending_peers.empty());
}

Result<std::string> Replicator::Answer(std::string_view request) {
  auto req = DecodeRequest(request);
  if (!req.ok()) return req.error();
  auto it = per_map_.find(req->map);
  if (it == per_map_.end()) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "no replicated map '" + req->map + "' on this node");
  }
  if (RefuseAsFresh(*req)) {
    return Error(std::make_error_code(std::errc::resource_unavailable_try_again),
                 std::string(kFreshResponder));
  }
  LocalCopy& copy = *it->second.copy;
  std::vector<Change> pushed;
  Result<std::string> answer = Error(std::make_error_code(std::errc::invalid_argument), "");
  copy.Read([&](const LwwMap& lm) { answer = replicated::Answer(lm, *req, &pushed); });
  if (answer.ok() && !pushed.empty()) copy.ApplyRemote(pushed, ChangeSource::kSync);
  return answer;
}

void Replicator::OnView(std::map<MemberId, Endpoint> alive, int64_t now_us) {
  alive.erase(self_);
  for (const auto& [id, ep] : alive) {
    if (alive_.contains(id)) continue;
    // Joined, or back after a crash or a partition.
    const int64_t interval = options_.sync_interval_us;
    for (auto& [name, pm] : per_map_) {
      if (!pm.pulled) {
        pm.pending_peers.insert(id);
      } else {
        pm.delayed_peers[id] = now_us + interval + static_cast<int64_t>(NextRandom() % interval);
      }
    }
  }
  alive_ = std::move(alive);
  if (alive_.empty()) {
    for (auto& [name, pm] : per_map_) pm.copy->stats().synced.store(true);  // alone
  }
}

void Replicator::Tick(int64_t now_us, int64_t now_unix_ms) {
  for (auto& [name, pm] : per_map_) MaybeStartSync(pm, now_us);
  if (now_us < next_maintain_us_) return;
  next_maintain_us_ = now_us + options_.maintain_every_us;
  const bool collect = now_us >= next_collect_us_;
  if (collect) next_collect_us_ = now_us + options_.collect_every_us;
  const bool standalone = alive_.empty() && options_.standalone;
  for (auto& [name, pm] : per_map_) {
    pm.copy->Maintain(
        now_unix_ms, options_.tombstone_ttl_ms,
        collect && (pm.pulled || standalone) ? Tombstones::kCollect : Tombstones::kKeep);
  }
}

void Replicator::SyncNow(const std::string& map) {
  auto it = per_map_.find(map);
  if (it == per_map_.end() || alive_.empty()) return;
  auto peer = alive_.begin();
  std::advance(peer, static_cast<long>(NextRandom() % alive_.size()));
  it->second.pending_peers.insert(peer->first);
}

void Replicator::MaybeStartSync(PerMap& pm, int64_t now_us) {
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
    const MemberId peer = *pm.pending_peers.begin();
    pm.pending_peers.erase(pm.pending_peers.begin());
    if (alive_.contains(peer)) return StartSession(pm, peer);
  }
  const MapStats& k = pm.copy->stats();
  const uint64_t activity = k.local_writes.load(std::memory_order_relaxed) +
                            k.batches_received.load(std::memory_order_relaxed);
  if (activity != pm.activity) {
    pm.activity = activity;
    pm.active_us = now_us;
  }
  if (now_us < pm.next_sync_us) return;
  if (now_us - pm.active_us < options_.quiet_us &&
      now_us - pm.last_round_us < options_.max_quiet_wait_rounds * options_.sync_interval_us) {
    return;  // writes in flight: try again next tick
  }
  pm.next_sync_us = now_us + options_.sync_interval_us;
  pm.last_round_us = now_us;
  auto peer = alive_.begin();
  std::advance(peer, static_cast<long>(NextRandom() % alive_.size()));
  StartSession(pm, peer->first);
}

void Replicator::StartSession(PerMap& pm, const MemberId& peer) {
  pm.session = std::make_unique<SyncSession>(pm.copy->name());
  pm.peer = peer;
  std::string req;
  pm.copy->Read([&pm, &req](const LwwMap& lm) { req = pm.session->Start(lm, !pm.pulled); });
  SendStep(pm.copy->name(), std::move(req));
}

void Replicator::SendStep(const std::string& name, std::string request) {
  auto it = per_map_.find(name);
  if (it == per_map_.end()) return;
  PerMap& pm = it->second;
  auto peer = alive_.find(pm.peer);
  if (peer == alive_.end()) return EndSession(pm, false);
  std::weak_ptr<bool> alive = alive_flag_;
  rpc_->Call(peer->second, kSyncMethod, std::move(request), options_.call_timeout_us,
             [this, alive, name](Result<std::string> r) {
               if (alive.expired() || !*alive.lock()) return;
               auto it = per_map_.find(name);
               if (it == per_map_.end() || it->second.session == nullptr) return;
               PerMap& pm = it->second;
               if (!r.ok()) {
                 if (r.error().message().find(kFreshResponder) != std::string::npos) {
                   // It pulls from us (or another peer) itself; nothing is wrong.
                   pm.copy->stats().sync_deferred.fetch_add(1, std::memory_order_relaxed);
                   pm.session.reset();
                   return;
                 }
                 SHOAL_LOG_DEBUG("replicated map '{}': sync with {} failed: {}", name,
                                 pm.peer.ShortString(), r.error().message());
                 return EndSession(pm, false);
               }
               Result<SyncSession::Step> step =
                   Error(std::make_error_code(std::errc::invalid_argument), "");
               pm.copy->Read([&](const LwwMap& lm) { step = pm.session->OnAnswer(lm, *r); });
               if (!step.ok()) {
                 SHOAL_LOG_WARN("replicated map '{}': bad sync answer from {}: {}", name,
                                pm.peer.ShortString(), step.error().message());
                 return EndSession(pm, false);
               }
               if (!step->received.empty())
                 pm.copy->ApplyRemote(step->received, ChangeSource::kSync);
               if (!step->request) return EndSession(pm, true);
               SendStep(name, std::move(*step->request));
             });
}

void Replicator::EndSession(PerMap& pm, bool ok) {
  MapStats& k = pm.copy->stats();
  const SyncStats& s = pm.session->stats();
  k.sync_bytes.fetch_add(s.bytes_sent + s.bytes_received, std::memory_order_relaxed);
  k.sync_entries_sent.fetch_add(s.entries_sent, std::memory_order_relaxed);
  if (ok) {
    pm.pulled = true;
    k.syncs.fetch_add(1, std::memory_order_relaxed);
    if (!k.synced.exchange(true)) {
      SHOAL_LOG_INFO("replicated map '{}': synced from {} ({} entries received, {} bytes)",
                     pm.copy->name(), pm.peer.ShortString(), s.entries_received,
                     s.bytes_sent + s.bytes_received);
    }
  } else {
    k.sync_failures.fetch_add(1, std::memory_order_relaxed);
  }
  pm.session.reset();
}

}  // namespace shoal::replicated
