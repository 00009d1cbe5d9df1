// AdminServer: the node's HTTP/1.1 admin listener (JSON API under /api/v1, /health, /metrics in
// Prometheus text, static files for a web UI). A reply is JSON, or bytes with a content type of
// their own (HttpReply::Bytes).
//
// DESIGN: one I/O thread serves every connection asynchronously (Boost.Beast over Asio, kept
// private to admin_server.cc: this header names neither), and a small pool of handler threads
// runs the route handlers. A connection costs a socket and a few kilobytes, not a thread, so idle
// or slow clients (a slowloris sending a header byte a second, hundreds of idle keep-alive
// connections) cannot starve /health or the API: the I/O thread only reads, parses and writes,
// and never waits for a handler. Handlers may block for a while (CallOnLoop with a timeout); they
// block a pool thread, never the I/O thread. GET /health is answered on the I/O thread itself, so
// it answers even while every handler thread is busy.
//
// Limits (AdminOptions): a deadline for a whole request, headers and body (read_timeout_s; a
// connection that has not delivered a full request by then is closed), an idle timeout between
// keep-alive requests, a body size limit (413), and caps on open connections per client address
// and in total. A connection over a cap is answered 503 and closed at once, and counted in
// Stats::rejected_connections. A request without Content-Length (and not chunked) has no body,
// as HTTP/1.1 says: nothing ever waits for a body that was not announced.
//
// STREAMING (future: server-sent events for the web UI's live updates): a connection is a
// session object on the I/O thread that a handler's reply is posted back to; a streaming reply
// would be a session that, after writing the headers, stays open without a request deadline and
// writes chunks posted to the I/O thread from any thread. Such connections count against the
// same caps. Nothing in the public API below has to change for that except a new reply kind.
//
// THREADING: handlers run on the handler pool's threads, concurrently with each other and with
// the event loops. A handler must reach engine state only through something thread-safe: an
// immutable snapshot the owning thread publishes (the member table, the bucket map), atomics
// (counters), or by running a function on the owning loop with CallOnLoop (admin/call_on_loop.h)
// and waiting for its answer with a timeout. It must never touch loop-owned objects directly.
//
// AUTH: with a non-empty AdminOptions::api_token, every request that is not a GET (POST: the
// ones that change something) must carry "Authorization: Bearer <token>" or gets 401. GETs
// (/health, /metrics, the read-only API) stay open, so probes and dashboards need no secret.
//
// Errors are answered as problem JSON (RFC 7807, application/problem+json):
//   {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no route for GET /x"}
// for unknown routes, a missing or wrong API token (401), malformed requests (400), bodies over
// the limit (413), exceptions escaping a handler (500), and whatever a handler returns through
// HttpReply::Problem. The detail is never empty for the server's own problems.
//
// Routes are registered before Start(); Start/Stop/destruction from one (any) thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  // The body parsed as JSON; an empty (or all-whitespace) body is an empty object {}, so a POST
  // without a body means "the defaults". An Error (std::errc::invalid_argument) naming the
  // problem if it is not JSON. Use with HttpReply::FromError(400, ...).
  Result<nlohmann::json> JsonBody() const;
};

struct HttpReply {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::string content_type = "application/json";
  // Extra response headers (Content-Type and Content-Length are set from the fields above).
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body sent as is (plain text, a file's bytes) instead of `body` as JSON.
  std::optional<std::string> raw;

  static HttpReply Json(nlohmann::json body, int status = 200) {
    return HttpReply{status, std::move(body), "application/json", {}, std::nullopt};
  }
  // A body of bytes with its content type ("text/plain; charset=utf-8" by default).
  static HttpReply Bytes(std::string bytes, std::string content_type = "text/plain; charset=utf-8",
                         int status = 200) {
    return HttpReply{status, nlohmann::json(), std::move(content_type), {}, std::move(bytes)};
  }
  // A problem document. `title` defaults to the status's reason phrase ("Not Found"), as RFC 7807
  // asks for the "about:blank" type.
  static HttpReply Problem(int status, std::string detail, std::string title = "",
                           std::string type = "about:blank");
  static HttpReply FromError(int status, const Error& error) {
    return Problem(status, error.message());
  }
};

// Runs on a handler thread (see THREADING above). Exceptions become a 500 problem.
using HttpHandler = std::function<HttpReply(const HttpRequest&)>;

// Static files under `root` for a route whose first capture group is the path below it
// (e.g. Get("/ui(/.*)?", StaticFiles("/usr/share/shoal/ui"))). A path ending in "/" (or empty)
// serves its index.html. The content type follows the extension (html, css, js, json, svg, png,
// ico, txt, map, woff2; others application/octet-stream). A path with a ".." segment, a
// backslash or a NUL byte is refused (400); a missing file, a directory without index.html, or
// anything that resolves (through symlinks) outside `root` is 404.
HttpHandler StaticFiles(std::string root);
// The content type for a file name, by its extension.
std::string ContentTypeFor(std::string_view filename);

struct AdminOptions {
  // When non-empty, every request but a GET must carry "Authorization: Bearer <token>" or gets
  // 401 (see AUTH above).
  std::string api_token;
  // Threads running route handlers: how many slow handlers may run at once. Requests beyond that
  // wait in a queue (bounded by the connection caps: one request in flight per connection).
  int handler_threads = 4;
  // Deadline for one whole request, from its first byte (or from the accept) to its last body
  // byte. Slow or silent clients are closed when it passes.
  int read_timeout_s = 5;
  // How long an idle keep-alive connection may wait for its next request.
  int keep_alive_timeout_s = 2;
  // Deadline for writing one response.
  int write_timeout_s = 10;
  // Open connections allowed from one client address, and in total; connections over either cap
  // are answered 503 and closed at once.
  int max_connections_per_client = 128;
  int max_connections = 4096;
  size_t max_body_bytes = 16 << 20;
};

class AdminServer {
 public:
  struct Stats {
    uint64_t requests = 0;
    uint64_t unauthorized = 0;          // 401s
    uint64_t server_errors = 0;         // 5xx answers (not counting rejected connections)
    uint64_t connections = 0;           // open now
    uint64_t accepted = 0;              // connections accepted since Start
    uint64_t rejected_connections = 0;  // closed at accept: over a connection cap
    uint64_t timed_out = 0;             // closed by the request deadline or the idle timeout
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

  // Binds and starts serving on threads of its own (one I/O thread, the handler pool); returns
  // once the port is listening, so a client may connect right away. Errors: the bind's (EADDRINUSE
  // when another process or listener holds the port — the socket does not use SO_REUSEPORT, so the
  // port is never shared).
  [[nodiscard]] Status Start();
  // Stops accepting, closes every connection (requests not yet answered get no answer), waits for
  // the handlers that are running to return, joins the threads. Idempotent; a stopped server
  // cannot be started again.
  void Stop();

  // The bound port. REQUIRES: Start() succeeded.
  uint16_t port() const { return port_; }
  Stats stats() const;

  struct Impl;  // admin_server.cc's (public only so that its connection class can name it)

 private:
  std::unique_ptr<Impl> impl_;
  std::string host_;
  uint16_t port_;
  AdminOptions options_;
};

}  // namespace shoal::admin
