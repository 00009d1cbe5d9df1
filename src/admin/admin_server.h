// AdminServer: the node's HTTP/1.1 admin listener (JSON API under /api/v1, /health, later the web
// UI and /metrics).
//
// Built on cpp-httplib (Debian's libcpp-httplib-dev): a small blocking server with a pool of
// threads, one per connection being served. Admin traffic is a few requests a second from an
// operator, a CLI or a monitoring probe, so a thread pool kept off the event loops is the simple
// and safe choice: a slow admin client can never stall a worker loop. httplib stays an
// implementation detail: this header does not include it.
//
// THREADING: handlers run on the HTTP pool's threads, concurrently with each other and with the
// event loops. A handler must reach engine state only through something thread-safe: an
// immutable snapshot the owning thread publishes (the member table, the bucket map), atomics
// (counters), or by running a function on the owning loop with CallOnLoop (admin/call_on_loop.h)
// and waiting for its answer with a timeout. It must never touch loop-owned objects directly.
//
// Errors are answered as problem JSON (RFC 7807, application/problem+json):
//   {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no route for GET /x"}
// for unknown routes, a missing or wrong API token (401), exceptions escaping a handler (500),
// and whatever a handler returns through HttpReply::Problem.
//
// Routes are registered before Start(); Start/Stop/destruction from one (any) thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace shoal::admin {

struct HttpRequest {
  std::string method;  // "GET", "POST"
  std::string path;    // without the query string
  std::string body;
  // The route's regex captures: matches[0] is the whole path, matches[1..] the groups.
  std::vector<std::string> matches;
  // Query parameters, in order (a name may repeat).
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string remote_addr;

  // The first value of header `name` (case-insensitive), or "" if absent.
  std::string Header(std::string_view name) const;
  // The first value of query parameter `name`, or "" if absent.
  std::string Query(std::string_view name) const;
  // The body parsed as JSON; an Error (std::errc::invalid_argument) naming the problem if it is
  // not JSON. Use with HttpReply::BadRequest.
  Result<nlohmann::json> JsonBody() const;
};

struct HttpReply {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::string content_type = "application/json";

  static HttpReply Json(nlohmann::json body, int status = 200) {
    return HttpReply{status, std::move(body), "application/json"};
  }
  // A problem document. `title` defaults to the status's reason phrase ("Not Found"), as RFC 7807
  // asks for the "about:blank" type.
  static HttpReply Problem(int status, std::string detail, std::string title = "",
                           std::string type = "about:blank");
  static HttpReply FromError(int status, const Error& error) {
    return Problem(status, error.message());
  }
};

// Runs on an HTTP thread (see THREADING above). Exceptions become a 500 problem.
using HttpHandler = std::function<HttpReply(const HttpRequest&)>;

struct AdminOptions {
  // When non-empty, every request except GET /health must carry "Authorization: Bearer <token>"
  // or gets 401. /health stays open so that load balancers and orchestrators can probe the node
  // without holding the secret.
  std::string api_token;
  // Worker threads: requests served at the same time. An idle keep-alive connection holds one
  // until `keep_alive_timeout_s`.
  int threads = 8;
  int keep_alive_timeout_s = 2;
  int read_timeout_s = 5;
  size_t max_body_bytes = 16 << 20;
};

class AdminServer {
 public:
  struct Stats {
    uint64_t requests = 0;
    uint64_t unauthorized = 0;   // 401s
    uint64_t server_errors = 0;  // 5xx answers
  };

  // `host` as for the other listeners ("" = every IPv4 interface, "::", "localhost", numeric);
  // port 0 picks a free port (see port()).
  AdminServer(std::string host, uint16_t port, AdminOptions options = {});
  ~AdminServer();  // Stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // `pattern` is a regular expression matched against the whole path, e.g.
  // "/api/v1/members/([0-9a-f]{32})"; groups land in HttpRequest::matches.
  // REQUIRES: before Start().
  void Get(std::string pattern, HttpHandler handler);
  void Post(std::string pattern, HttpHandler handler);

  // Binds and starts serving on threads of its own; returns once the port is bound, so a client
  // may connect right away. Errors: the bind's (EADDRINUSE when another process or listener
  // holds the port — the socket does not use SO_REUSEPORT, so the port is never shared).
  [[nodiscard]] Status Start();
  // Stops accepting, finishes the requests being served, joins the threads. Idempotent.
  void Stop();

  // The bound port. REQUIRES: Start() succeeded.
  uint16_t port() const { return port_; }
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string host_;
  uint16_t port_;
  AdminOptions options_;
};

}  // namespace shoal::admin
