#include "admin/api.h"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/log.h"
#include "node/cluster.h"

namespace shoal::admin {

nlohmann::json MembersJson(const membership::MemberTable& table) {
  nlohmann::json members = nlohmann::json::array();
  for (const membership::Member& m : table.members()) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : m.record.labels) labels[k] = v;
    members.push_back({{"id", m.record.id.ToString()},
                       {"address", m.record.address.ToString()},
                       {"state", std::string(membership::ToString(m.state))},
                       {"incarnation", m.incarnation.value()},
                       {"client_port", m.record.client_port},
                       {"http_port", m.record.http_port},
                       {"roles", m.record.roles},
                       {"replica_set", m.record.replica_set.value()},
                       {"weight", m.record.weight},
                       {"labels", labels},
                       {"self", m.record.id == table.self()}});
  }
  return {{"self", table.self().ToString()}, {"version", table.version()}, {"members", members}};
}

nlohmann::json BucketsJson(const node::ShardingDriver::Snapshot& snap,
                           const membership::MemberTable* table, const membership::MemberId& self) {
  const sharding::BucketMap& map = *snap.map;
  nlohmann::json nodes = nlohmann::json::array();
  for (size_t i = 0; i < map.sets().size(); ++i) {
    const sharding::SetInfo& s = map.sets()[i];
    nodes.push_back({{"id", s.leader.ToString()},
                     {"replica_set", s.id.value()},
                     {"weight", s.weight},
                     {"address", s.cluster.ToString()},
                     {"client", s.client.ToString()},
                     {"buckets", map.CountOf(static_cast<uint16_t>(i))},
                     {"keys", s.keys},
                     {"self", s.leader == self}});
  }
  // Members that own nothing (yet): joining, leaving, or not storage nodes.
  if (table != nullptr) {
    for (const membership::Member& m : table->members()) {
      if (m.state != membership::MemberState::kAlive) continue;
      bool listed = false;
      for (const auto& s : map.sets()) listed |= s.leader == m.record.id;
      if (listed) continue;
      nodes.push_back({{"id", m.record.id.ToString()},
                       {"replica_set", sharding::AutoSetId(m.record.id).value()},
                       {"weight", m.record.weight},
                       {"address", m.record.address.ToString()},
                       {"client", Endpoint{m.record.address.host, m.record.client_port}.ToString()},
                       {"buckets", 0},
                       {"keys", 0},
                       {"self", m.record.id == self}});
    }
  }
  nlohmann::json ranges = nlohmann::json::array();
  for (const auto& r : map.Ranges()) {
    ranges.push_back({{"first", r.first},
                      {"last", r.last},
                      {"node", map.sets()[r.set_index].leader.ToString()}});
  }
  nlohmann::json flights = nlohmann::json::array();
  for (const auto& f : snap.flights) {
    flights.push_back({{"direction", f.outgoing ? "out" : "in"},
                       {"peer", f.peer.ToString()},
                       {"buckets", f.buckets},
                       {"phase", f.phase}});
  }
  const auto& c = snap.counters;
  return {{"epoch", map.epoch().value()},
          {"unowned", map.Unowned()},
          {"coordinator", snap.coordinator_id.ToString()},
          {"nodes", nodes},
          {"ranges", ranges},
          {"local",
           {{"active", snap.active},
            {"sending", snap.sending},
            {"receiving", snap.receiving},
            {"garbage", snap.garbage},
            {"leaving", snap.leaving},
            {"migrations", flights},
            {"buckets_sent", c.sent_buckets},
            {"buckets_received", c.received_buckets},
            {"buckets_adopted", c.adopted},
            {"buckets_lost", c.lost},
            {"batches_aborted", c.aborted_batches}}}};
}

nlohmann::json MetricsJson(const metrics::Registry& registry) {
  nlohmann::json out = nlohmann::json::array();
  registry.ForEach([&out](const metrics::Family& f, const std::vector<metrics::Sample>& samples) {
    nlohmann::json js = nlohmann::json::array();
    for (const metrics::Sample& s : samples) {
      nlohmann::json labels = nlohmann::json::object();
      for (size_t i = 0; i < f.label_names().size() && i < s.labels.size(); ++i) {
        labels[f.label_names()[i]] = s.labels[i];
      }
      nlohmann::json j = {{"labels", labels}};
      if (s.hist != nullptr) {
        nlohmann::json buckets = nlohmann::json::array();
        for (size_t b = 0; b < f.bounds().size(); ++b) {
          buckets.push_back({{"le", static_cast<double>(f.bounds()[b]) / f.scale()},
                             {"count", s.hist->cumulative[b]}});
        }
        j["buckets"] = buckets;
        j["sum"] = static_cast<double>(s.hist->sum) / f.scale();
        j["count"] = s.hist->count;
      } else {
        j["value"] = s.value;
      }
      js.push_back(std::move(j));
    }
    out.push_back({{"name", f.name()},
                   {"type", std::string(metrics::ToString(f.type()))},
                   {"help", f.help()},
                   {"samples", js}});
  });
  return {{"metrics", out}};
}

void RegisterNodeApi(AdminServer& http, const std::atomic<node::Server*>& server) {
  // Prometheus text exposition format 0.0.4, from the node's metrics registry.
  http.Get("/metrics", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    if (s == nullptr) return HttpReply::Problem(503, "the node is not running");
    return HttpReply::Bytes(s->engine().metrics().RenderPrometheus(),
                            std::string(metrics::Registry::kPrometheusContentType));
  });
  http.Get("/api/v1/metrics", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    if (s == nullptr) return HttpReply::Problem(503, "the node is not running");
    return HttpReply::Json(MetricsJson(s->engine().metrics()));
  });
  http.Get("/api/v1/buckets", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    node::ClusterNode* cluster = s != nullptr ? s->cluster() : nullptr;
    const node::ShardingDriver* sharding = cluster != nullptr ? cluster->sharding() : nullptr;
    if (sharding == nullptr) return HttpReply::Problem(503, "sharding is not running");
    const auto snap = sharding->snapshot();
    if (snap.map == nullptr) return HttpReply::Problem(503, "no bucket map yet");
    auto table = cluster->members();
    return HttpReply::Json(BucketsJson(snap, table.get(), cluster->id()));
  });
  http.Get("/api/v1/members", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    node::ClusterNode* cluster = s != nullptr ? s->cluster() : nullptr;
    auto table = cluster != nullptr ? cluster->members() : nullptr;
    if (table == nullptr) return HttpReply::Problem(503, "membership is not running");
    return HttpReply::Json(MembersJson(*table));
  });
  // Replicated maps: each map's size and counters; POST saves snapshots now.
  http.Get("/api/v1/maps", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    if (s == nullptr) return HttpReply::Problem(503, "the node is not running");
    nlohmann::json maps = nlohmann::json::array();
    for (engine::ReplicatedMap* m : s->engine().replicated().All()) {
      const engine::ReplicatedMapStats& k = m->stats();
      nlohmann::json j = {{"name", m->name()}, {"prefix", m->prefix()}, {"mode", "replicated"}};
      m->WithShared([&j](const replicated::LwwMap& lm) {
        j["keys"] = lm.size();
        j["tombstones"] = lm.tombstones();
        j["bytes"] = lm.wire_bytes();
        return 0;
      });
      j["synced"] = k.synced.load();
      j["local_writes"] = k.local_writes.load();
      j["remote_applied"] = k.remote_applied.load();
      j["syncs"] = k.syncs.load();
      j["sync_failures"] = k.sync_failures.load();
      j["sync_bytes"] = k.sync_bytes.load();
      j["saves"] = k.saves.load();
      j["last_save_unix"] = k.last_save_unix.load();
      j["snapshot"] = s->engine().replicated().SnapshotPath(*m);
      maps.push_back(std::move(j));
    }
    return HttpReply::Json({{"maps", maps}});
  });
  http.Post("/api/v1/maps/save", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    if (s == nullptr) return HttpReply::Problem(503, "the node is not running");
    Status st = s->engine().replicated().SaveAll();
    if (!st.ok()) return HttpReply::Problem(500, st.error().message());
    return HttpReply::Json({{"saved", s->engine().replicated().All().size()}});
  });
  // Graceful leave: the same as SIGTERM (hand the buckets over, leave the membership, exit);
  // {"force": true} the same as a SIGTERM during a leave (exit now, keeping what was not handed
  // over).
  http.Post("/api/v1/leave", [&server](const HttpRequest& req) {
    bool force = false;
    if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
      auto body = req.JsonBody();
      if (!body.ok()) return HttpReply::FromError(400, body.error());
      if (!body->is_object()) return HttpReply::Problem(400, "expected {\"force\": true|false}");
      if (body->contains("force")) {
        if (!(*body)["force"].is_boolean()) {
          return HttpReply::Problem(400, "\"force\" must be true or false");
        }
        force = (*body)["force"].get<bool>();
      }
    }
    node::Server* s = server.load();
    if (s == nullptr) return HttpReply::Problem(503, "the node is not running");
    SHOAL_LOG_INFO("admin API: leave requested{}", force ? " (forced)" : "");
    s->RequestStop(force ? node::Server::StopMode::kForce : node::Server::StopMode::kGraceful);
    return HttpReply::Json({{"leaving", true}, {"force", s->force_requested()}}, 202);
  });
  http.Post("/api/v1/join", [&server](const HttpRequest& req) {
    auto body = req.JsonBody();
    if (!body.ok()) return HttpReply::FromError(400, body.error());
    if (!body->contains("seeds") || !(*body)["seeds"].is_array() || (*body)["seeds"].empty()) {
      return HttpReply::Problem(400, "expected {\"seeds\": [\"host:cluster-port\", ...]}");
    }
    std::vector<Endpoint> seeds;
    for (const auto& s : (*body)["seeds"]) {
      auto ep = s.is_string() ? Endpoint::Parse(s.get<std::string>()) : std::nullopt;
      if (!ep) return HttpReply::Problem(400, "seed " + s.dump() + " is not \"host:port\"");
      seeds.push_back(*ep);
    }
    node::Server* srv = server.load();
    node::ClusterNode* cluster = srv != nullptr ? srv->cluster() : nullptr;
    if (cluster == nullptr) return HttpReply::Problem(503, "membership is not running");
    cluster->Join(seeds);
    return HttpReply::Json({{"joining", (*body)["seeds"]}}, 202);
  });
}

}  // namespace shoal::admin
