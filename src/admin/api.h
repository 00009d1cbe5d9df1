// The node's HTTP admin API (under /api/v1), served by an AdminServer.
//
//   GET  /api/v1/members   the member table: {"self": id, "version": n, "members": [{"id",
//                          "address", "state" (alive|suspect|dead|left), "incarnation",
//                          "client_port", "http_port", "roles", "replica_set", "weight",
//                          "labels"}]}
//   POST /api/v1/join      {"seeds": ["host:cluster-port", ...]}: join through these nodes
//   GET  /api/v1/metrics   the metrics registry as JSON: {"metrics": [{"name", "type" (counter|
//                          gauge|histogram), "help", "samples": [{"labels": {name: value},
//                          "value"} or, for histograms, {"labels", "buckets": [{"le", "count"}]
//                          (cumulative), "sum", "count"}]}]}
//   GET  /metrics          the same registry in Prometheus text format 0.0.4 (docs/metrics.md)
//   GET  /health           (AdminServer's own) {"status": "ok"}
//
// With an admin token (AdminOptions::api_token) the POSTs need "Authorization: Bearer <token>";
// the GETs stay open. A POST without a body means {} (the defaults).
//
// Handlers run on the HTTP server's handler threads; they read the member table through
// ClusterNode::members() (an immutable snapshot) and reach the control thread only by message.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>

#include "admin/admin_server.h"
#include "common/metrics.h"
#include "membership/types.h"
#include "node/server.h"

namespace shoal::admin {

// Registers the routes above. `server` may be null until the node has started (the routes then
// answer 503); it and what it points to must outlive `http`'s serving.
void RegisterNodeApi(AdminServer& http, const std::atomic<node::Server*>& server);

// JSON form of the metrics registry (GET /api/v1/metrics).
nlohmann::json MetricsJson(const metrics::Registry& registry);

// JSON form of a member table (also used by `shoal status` tests).
nlohmann::json MembersJson(const membership::MemberTable& table);

}  // namespace shoal::admin
