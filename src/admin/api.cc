#include "admin/api.h"

#include <string>
#include <vector>

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

void RegisterNodeApi(AdminServer& http, const std::atomic<node::Server*>& server) {
  http.Get("/api/v1/members", [&server](const HttpRequest&) {
    node::Server* s = server.load();
    node::ClusterNode* cluster = s != nullptr ? s->cluster() : nullptr;
    auto table = cluster != nullptr ? cluster->members() : nullptr;
    if (table == nullptr) return HttpReply::Problem(503, "membership is not running");
    return HttpReply::Json(MembersJson(*table));
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
