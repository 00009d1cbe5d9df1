#include "node/replicated_driver.h"

#include <map>
#include <utility>

#include "common/log.h"
#include "engine/engine.h"

namespace shoal::node {

using engine::ReplicatedMap;

namespace {

replicated::ReplicatorOptions OptionsFrom(const config::ServerConfig& cfg) {
  replicated::ReplicatorOptions o;
  o.sync_interval_us = cfg.replicated_sync_interval_ms * 1000;
  o.tombstone_ttl_ms = cfg.replicated_tombstone_ttl * 1000;
  o.standalone = cfg.seeds.empty() && cfg.discovery_dns.empty();
  return o;
}

}  // namespace

ReplicatedDriver::ReplicatedDriver(const ServiceContext& ctx)
    : Service("replicated"),
      maps_(&ctx.engine->replicated()),
      bus_(ctx.services->Find<Bus>()),
      loop_(ctx.loop),
      channel_(ctx.rpc_client),
      self_(ctx.self),
      clock_(ctx.clock),
      cfg_(maps_->config()),
      replicator_(
          self_, &channel_,
          [this](const std::string& map, std::string batch) {
            bus_->Run([map, batch = std::move(batch)](bus::Dispatcher& d) mutable {
              d.Publish(bus::Space::kReplicated, "", map, std::move(batch),
                        [](Result<uint64_t>) {});
            });
          },
          OptionsFrom(cfg_), self_.lo() ^ static_cast<uint64_t>(clock_->MonotonicMicros()),
          clock_->MonotonicMicros()) {
  next_save_us_ = clock_->MonotonicMicros() + cfg_.replicated_save_interval * 1'000'000;
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
  ServeMethod(server, replicated::kSyncMethod,
              [this](std::string_view body, net::Responder responder) {
                Result<std::string> answer = replicator_.Answer(body);
                if (answer.ok()) {
                  responder.Reply(std::move(*answer));
                } else {
                  responder.Fail(answer.error().message());
                }
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

void ReplicatedDriver::Attach(ReplicatedMap* m) {
  std::weak_ptr<bool> alive = alive_flag_;
  const std::string name = m->name();
  m->set_on_outbox([this, alive, name] {
    loop_->Post([this, alive, name] {
      if (!alive.expired() && *alive.lock()) replicator_.Flush(name);
    });
  });
  bus_->Run([this, alive, name](bus::Dispatcher& d) {
    auto sub = d.Subscribe(bus::Space::kReplicated, "", name,
                           [this, alive](const bus::Publication& p, const std::string&,
                                         std::function<void(uint64_t)> done) {
                             if (!alive.expired() && *alive.lock()) {
                               replicator_.OnBatch(p.origin, p.subject, p.payload);
                             }
                             done(1);
                           });
    if (!sub.ok()) {
      SHOAL_LOG_ERROR("replicated map '{}': cannot subscribe: {}", name, sub.error().message());
      return;
    }
    d.SyncInterest([this, alive, name] {
      if (!alive.expired() && *alive.lock()) replicator_.SetInterestReady(name);
    });
  });
  // Writes made before the driver existed (none normally) go out now.
  replicator_.Attach(m, clock_->MonotonicMicros());
}

void ReplicatedDriver::OnView(std::shared_ptr<const membership::MemberTable> view) {
  std::map<membership::MemberId, Endpoint> alive;
  for (const membership::Member& m : view->members()) {
    if (m.record.id == self_ || m.state != membership::MemberState::kAlive) continue;
    alive.emplace(m.record.id, m.record.address);
  }
  replicator_.OnView(std::move(alive), clock_->MonotonicMicros());
}

void ReplicatedDriver::Tick(int64_t now) {
  replicator_.Tick(now, clock_->NowUnixMillis());
  if (cfg_.replicated_save_interval > 0 && !cfg_.data_dir.empty() && now >= next_save_us_) {
    next_save_us_ = now + cfg_.replicated_save_interval * 1'000'000;
    for (ReplicatedMap* m : maps_->All()) {
      Status st = m->Save(maps_->SnapshotPath(*m), maps_->env());
      if (!st.ok()) {
        SHOAL_LOG_ERROR("replicated map '{}': snapshot failed: {}", m->name(),
                        st.error().message());
      }
    }
  }
}

void ReplicatedDriver::SyncNow(std::string map) {
  loop_->Post([this, alive = std::weak_ptr<bool>(alive_flag_), map] {
    if (!alive.expired() && *alive.lock()) replicator_.SyncNow(map);
  });
}

}  // namespace shoal::node
