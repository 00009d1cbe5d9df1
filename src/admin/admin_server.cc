#include "admin/admin_server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>
#include <cerrno>
#include <thread>

#include "common/crypto.h"
#include "common/log.h"
#include "net/address.h"

namespace shoal::admin {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr char kProblemType[] = "application/problem+json";

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "";
  }
}

// Never throws: strings that are not valid UTF-8 are replaced, not refused.
std::string Dump(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Write(httplib::Response& res, const HttpReply& reply) {
  res.status = reply.status;
  if (reply.status == 204) return;
  res.set_content(Dump(reply.body), reply.content_type.c_str());
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// ---- HttpRequest / HttpReply ----

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::string HttpRequest::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return "";
}

Result<nlohmann::json> HttpRequest::JsonBody() const {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "the request body is not valid JSON");
  }
  return parsed;
}

HttpReply HttpReply::Problem(int status, std::string detail, std::string title, std::string type) {
  if (title.empty()) title = ReasonPhrase(status);
  nlohmann::json body = {{"type", std::move(type)},
                         {"title", std::move(title)},
                         {"status", status},
                         {"detail", std::move(detail)}};
  return HttpReply{status, std::move(body), kProblemType};
}

// ---- AdminServer ----

struct AdminServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listener_done{false};
  bool started = false;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> unauthorized{0};
  std::atomic<uint64_t> server_errors{0};
};

AdminServer::AdminServer(std::string host, uint16_t port, AdminOptions options)
    : impl_(std::make_unique<Impl>()), host_(std::move(host)), port_(port), options_(options) {
  httplib::Server& s = impl_->server;
  Impl* impl = impl_.get();
  const int threads = std::max(1, options_.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // httplib sets SO_REUSEPORT by default, which would let a second node share the port silently.
  s.set_socket_options([](int fd) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  });
  s.set_keep_alive_timeout(options_.keep_alive_timeout_s);
  s.set_read_timeout(options_.read_timeout_s, 0);
  s.set_payload_max_length(options_.max_body_bytes);

  const std::string token = options_.api_token;
  s.set_pre_routing_handler([impl, token](const httplib::Request& req, httplib::Response& res) {
    impl->requests.fetch_add(1, kRelaxed);
    if (token.empty() || (req.method == "GET" && req.path == "/health")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool ok = auth.size() > kBearer.size() &&
                    EqualsIgnoreCase(std::string_view(auth).substr(0, kBearer.size()), kBearer) &&
                    ConstantTimeEqual(std::string_view(auth).substr(kBearer.size()), token);
    if (ok) return httplib::Server::HandlerResponse::Unhandled;
    impl->unauthorized.fetch_add(1, kRelaxed);
    res.set_header("WWW-Authenticate", "Bearer realm=\"shoal\"");
    Write(res, HttpReply::Problem(401, auth.empty() ? "this API needs an admin token: "
                                                      "\"Authorization: Bearer <token>\""
                                                    : "the admin token is not valid"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Any 4xx/5xx without a body (httplib's own 404, 400 for a malformed request, 413...) becomes a
  // problem document; a handler's own problem is left as it is.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [impl](const httplib::Request& req,
             httplib::Response& res) -> httplib::Server::HandlerResponse {
        if (res.status >= 500) impl->server_errors.fetch_add(1, kRelaxed);
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string detail;
        if (res.status == 404) detail = "no route for " + req.method + " " + req.path;
        Write(res, HttpReply::Problem(res.status, std::move(detail)));
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SHOAL_LOG_ERROR("admin: {} {} failed: {}", req.method, req.path, what);
        Write(res, HttpReply::Problem(500, what));
      });

  Get("/health", [](const HttpRequest&) { return HttpReply::Json({{"status", "ok"}}); });
}

AdminServer::~AdminServer() { Stop(); }

namespace {
httplib::Server::Handler Adapt(HttpHandler handler) {
  return [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    r.remote_addr = req.remote_addr;
    r.matches.reserve(req.matches.size());
    for (const auto& m : req.matches) r.matches.push_back(m.str());
    r.query.assign(req.params.begin(), req.params.end());
    r.headers.assign(req.headers.begin(), req.headers.end());
    Write(res, handler(r));
  };
}
}  // namespace

void AdminServer::Get(std::string pattern, HttpHandler handler) {
  impl_->server.Get(pattern, Adapt(std::move(handler)));
}

void AdminServer::Post(std::string pattern, HttpHandler handler) {
  impl_->server.Post(pattern, Adapt(std::move(handler)));
}

Status AdminServer::Start() {
  if (impl_->started) return Status::Ok();
  // Resolve and probe with our own socket first: httplib reports a failed bind as a bare false,
  // the probe gives the errno (EADDRINUSE...) and the same address rules as the other listeners.
  auto addr = net::ResolveBindAddress(host_, port_);
  if (!addr.ok()) return addr.error();
  auto probe = net::OpenBoundSocket(*addr, SOCK_STREAM);
  if (!probe.ok()) return probe.error();
  ::close(*probe);

  const std::string numeric_host = addr->ToEndpoint().host;
  httplib::Server& s = impl_->server;
  if (port_ == 0) {
    const int bound = s.bind_to_any_port(numeric_host);
    if (bound <= 0) {
      return Error(std::make_error_code(std::errc::address_not_available),
                   "admin: cannot listen on " + numeric_host);
    }
    port_ = static_cast<uint16_t>(bound);
  } else if (!s.bind_to_port(numeric_host, port_)) {
    return Error(std::make_error_code(std::errc::address_in_use),
                 "admin: cannot listen on " + addr->ToEndpoint().ToString());
  }
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] {
    impl->server.listen_after_bind();
    impl->listener_done.store(true);
  });
  // stop() is a no-op until the accept loop runs, so do not return before it does.
  while (!s.is_running() && !impl_->listener_done.load()) std::this_thread::yield();
  SHOAL_LOG_INFO("admin: listening on {}", Endpoint{numeric_host, port_}.ToString());
  return Status::Ok();
}

void AdminServer::Stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

AdminServer::Stats AdminServer::stats() const {
  Stats s;
  s.requests = impl_->requests.load(kRelaxed);
  s.unauthorized = impl_->unauthorized.load(kRelaxed);
  s.server_errors = impl_->server_errors.load(kRelaxed);
  return s;
}

}  // namespace shoal::admin
