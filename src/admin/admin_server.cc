#include "admin/admin_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/ascii.h"
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

}  // namespace

// ---- HttpRequest / HttpReply ----

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (AsciiEqualsNoCase(k, name)) return v;
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
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 std::string("the request body is not valid JSON: ") + e.what());
  }
}

HttpReply HttpReply::Problem(int status, std::string detail, std::string title, std::string type) {
  if (title.empty()) title = ReasonPhrase(status);
  nlohmann::json body = {{"type", std::move(type)},
                         {"title", std::move(title)},
                         {"status", status},
                         {"detail", std::move(detail)}};
  return HttpReply{status, std::move(body), kProblemType, {}, std::nullopt};
}

// ---- AdminServer ----

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kHeaderLimit = 16 << 10;

struct Route {
  std::string method;
  std::regex pattern;
  HttpHandler handler;
  bool inline_on_io = false;  // trivial and non-blocking (/health): answered on the I/O thread
};

// A fixed set of threads running queued tasks in order.
class HandlerPool {
 public:
  void Start(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  void Submit(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  // Lets the running tasks finish, drops the queued ones, joins the threads.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mu_);
      dropped.swap(queue_);
    }
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding (and '+' as space in query components). Malformed escapes stay as they are.
std::string PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && in[i] == '+' ? ' ' : in[i]);
  }
  return out;
}

void ParseQuery(std::string_view q, std::vector<std::pair<std::string, std::string>>& out) {
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view item = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    std::string_view k = item.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    out.emplace_back(PercentDecode(k, true), PercentDecode(v, true));
  }
}

bool Authorized(std::string_view auth, const std::string& token) {
  constexpr std::string_view kBearer = "Bearer ";
  return auth.size() > kBearer.size() &&
         AsciiEqualsNoCase(auth.substr(0, kBearer.size()), kBearer) &&
         ConstantTimeEqual(auth.substr(kBearer.size()), token);
}

}  // namespace

class Session;

struct AdminServer::Impl {
  AdminOptions options;
  std::vector<Route> routes;

  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> unauthorized{0};
  std::atomic<uint64_t> server_errors{0};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> timed_out{0};

  // I/O-thread state (and, once the I/O thread is joined, the stopping thread's). Declared before
  // `io` so that sessions destroyed with io's pending handlers still find them.
  std::unordered_map<std::string, int> per_client;
  std::unordered_set<Session*> sessions;

  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  HandlerPool pool;
  std::thread io_thread;
  bool started = false;
  bool stopped = false;

  void Accept();
  void OnAccept(boost::system::error_code ec, tcp::socket socket);
  // Runs on the I/O thread: the reply to `req`, or nullopt when it was handed to the pool (the
  // session then gets it posted back).
  std::optional<HttpReply> Dispatch(const std::shared_ptr<Session>& session, HttpRequest& req);
};

namespace {

HttpReply Invoke(const HttpHandler& handler, const HttpRequest& req) {
  try {
    return handler(req);
  } catch (const std::exception& e) {
    SHOAL_LOG_ERROR("admin: {} {} failed: {}", req.method, req.path, e.what());
    return HttpReply::Problem(500, e.what());
  } catch (...) {
    SHOAL_LOG_ERROR("admin: {} {} failed: unknown exception", req.method, req.path);
    return HttpReply::Problem(500, "unknown exception");
  }
}

}  // namespace

// One connection. Lives on the I/O thread: every member is touched there only (a handler on the
// pool gets a copy of the request and posts its reply back). Shared ownership keeps it alive
// while an operation or a handler is pending; the last owner is always on the I/O thread (or the
// stopping thread once the I/O thread is joined), because the pool moves its reference into the
// reply it posts back.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(AdminServer::Impl* impl, tcp::socket socket, std::string peer)
      : impl_(impl), stream_(std::move(socket)), peer_(std::move(peer)) {
    impl_->sessions.insert(this);
    ++impl_->per_client[peer_];
    impl_->connections.fetch_add(1, kRelaxed);
  }
  ~Session() {
    impl_->sessions.erase(this);
    auto it = impl_->per_client.find(peer_);
    if (it != impl_->per_client.end() && --it->second <= 0) impl_->per_client.erase(it);
    impl_->connections.fetch_sub(1, kRelaxed);
  }

  // The first request's deadline runs from the accept: a client that connects and says nothing
  // is closed like one that says too little.
  void Start() { ReadRequest(); }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // Called on the I/O thread with a handler's reply.
  void Reply(HttpReply reply) { Write(std::move(reply)); }

 private:
  // Between keep-alive requests: wait up to the idle timeout for the next request's first bytes,
  // then give the whole request the request deadline.
  void WaitForNextRequest() {
    if (buffer_.size() > 0) return ReadRequest();  // pipelined: already here
    stream_.expires_after(std::chrono::seconds(impl_->options.keep_alive_timeout_s));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) {
                                if (ec == beast::error::timeout)
                                  self->impl_->timed_out.fetch_add(1, kRelaxed);
                                return self->Close();
                              }
                              self->buffer_.commit(n);
                              self->ReadRequest();
                            });
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(impl_->options.max_body_bytes);
    // One deadline for headers, "100 Continue" and body alike.
    stream_.expires_after(std::chrono::seconds(impl_->options.read_timeout_s));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A client that sent "Expect: 100-continue" (curl does for bodies over 1 KiB) waits for the
  // go-ahead before sending its body.
  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    const auto expect = parser_->get()[http::field::expect];
    if (!parser_->is_done() && AsciiEqualsNoCase({expect.data(), expect.size()}, "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](beast::error_code e, size_t) {
                          if (e) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRead({});
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == beast::error::timeout) {
      impl_->timed_out.fetch_add(1, kRelaxed);
      return Close();
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec) {
      if (ec.category() != beast::error_code(http::error::end_of_stream).category()) {
        return Close();  // a socket error: nobody to answer
      }
      impl_->requests.fetch_add(1, kRelaxed);
      keep_alive_ = false;
      if (ec == http::error::body_limit) {
        return Write(
            HttpReply::Problem(413, fmt::format("the request body is over the limit of {} bytes",
                                                impl_->options.max_body_bytes)));
      }
      if (ec == http::error::header_limit) {
        return Write(HttpReply::Problem(
            431, fmt::format("the request headers are over the limit of {} bytes", kHeaderLimit),
            "Request Header Fields Too Large"));
      }
      return Write(HttpReply::Problem(400, "malformed HTTP request: " + ec.message()));
    }
    stream_.expires_never();  // no deadline while a handler works; the write sets its own
    http::request<http::string_body> msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();

    HttpRequest req;
    req.method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    const size_t q = target.find('?');
    req.path = PercentDecode(target.substr(0, q), false);
    if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), req.query);
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote_addr = peer_;
    std::optional<HttpReply> reply = impl_->Dispatch(shared_from_this(), req);
    if (reply) Write(std::move(*reply));
  }

  void Write(HttpReply reply) {
    if (reply.status >= 500) impl_->server_errors.fetch_add(1, kRelaxed);
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(reply.status));
    res->set(http::field::server, "shoal");
    for (auto& [k, v] : reply.headers) res->set(k, v);
    if (reply.status != 204 && reply.status != 304) {
      res->set(http::field::content_type, reply.content_type);
      res->body() = reply.raw ? std::move(*reply.raw) : Dump(reply.body);
    }
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    stream_.expires_after(std::chrono::seconds(impl_->options.write_timeout_s));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        if (!res->keep_alive()) return self->LingeringClose();
                        self->WaitForNextRequest();
                      });
  }

  // After a last answer: stop sending, then read and discard what the client still sends (the
  // rest of a body over the limit, say) until it closes or a second passes. Closing at once with
  // unread input would reset the connection, and the client could lose the answer.
  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    stream_.expires_after(std::chrono::seconds(1));
    Drain();
  }
  void Drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->Drain();
                            });
  }

  AdminServer::Impl* impl_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string peer_;
  bool keep_alive_ = true;
};

std::optional<HttpReply> AdminServer::Impl::Dispatch(const std::shared_ptr<Session>& session,
                                                     HttpRequest& req) {
  requests.fetch_add(1, kRelaxed);
  // Reads stay open; whatever changes something needs the token. Checked before routing, so
  // that a caller without the token learns nothing about which routes exist.
  if (!options.api_token.empty() && req.method != "GET") {
    const std::string auth = req.Header("Authorization");
    if (!Authorized(auth, options.api_token)) {
      unauthorized.fetch_add(1, kRelaxed);
      HttpReply reply = HttpReply::Problem(
          401, auth.empty() ? "this request needs the admin token: \"Authorization: Bearer "
                              "<token>\" (see admin-token)"
                            : "the admin token is not valid");
      reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"shoal\"");
      return reply;
    }
  }
  for (const Route& route : routes) {
    if (route.method != req.method) continue;
    std::smatch m;
    if (!std::regex_match(req.path, m, route.pattern)) continue;
    req.matches.reserve(m.size());
    for (const auto& g : m) req.matches.push_back(g.str());
    if (route.inline_on_io) return Invoke(route.handler, req);
    pool.Submit([this, self = session, handler = &route.handler, r = std::move(req)]() mutable {
      HttpReply reply = Invoke(*handler, r);
      // Moving `self` into the posted function keeps the session's last owner on the I/O thread.
      asio::post(io, [self = std::move(self), reply = std::move(reply)]() mutable {
        self->Reply(std::move(reply));
      });
    });
    return std::nullopt;
  }
  return HttpReply::Problem(404, "no route for " + req.method + " " + req.path);
}

void AdminServer::Impl::Accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void AdminServer::Impl::OnAccept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Out of file descriptors (EMFILE/ENFILE) or a transient error: try again shortly rather
    // than spin.
    SHOAL_LOG_WARN("admin: accept failed: {}", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](boost::system::error_code e) {
      if (!e) Accept();
    });
    return;
  }
  Accept();
  boost::system::error_code peer_ec;
  tcp::endpoint peer = socket.remote_endpoint(peer_ec);
  if (peer_ec) return;  // already gone
  asio::ip::address addr = peer.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  std::string key = addr.to_string();
  auto it = per_client.find(key);
  const int from_client = it == per_client.end() ? 0 : it->second;
  if (sessions.size() >= static_cast<size_t>(std::max(0, options.max_connections)) ||
      from_client >= options.max_connections_per_client) {
    rejected.fetch_add(1, kRelaxed);
    // Best effort, without waiting: a fresh socket's send buffer takes this small answer.
    const HttpReply problem = HttpReply::Problem(
        503,
        from_client >= options.max_connections_per_client
            ? fmt::format("too many admin connections from {} (the limit is {})", key,
                          options.max_connections_per_client)
            : fmt::format("too many admin connections (the limit is {})", options.max_connections));
    const std::string body = Dump(problem.body);
    const std::string wire = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nServer: shoal\r\nContent-Type: {}\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        kProblemType, body.size(), body);
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(wire), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    return;
  }
  accepted.fetch_add(1, kRelaxed);
  socket.set_option(tcp::no_delay(true), peer_ec);
  std::make_shared<Session>(this, std::move(socket), std::move(key))->Start();
}

AdminServer::AdminServer(std::string host, uint16_t port, AdminOptions options)
    : impl_(std::make_unique<Impl>()), host_(std::move(host)), port_(port), options_(options) {
  impl_->options = options_;
  impl_->options.read_timeout_s = std::max(1, impl_->options.read_timeout_s);
  impl_->options.keep_alive_timeout_s = std::max(1, impl_->options.keep_alive_timeout_s);
  impl_->options.write_timeout_s = std::max(1, impl_->options.write_timeout_s);
  impl_->options.handler_threads = std::max(1, impl_->options.handler_threads);
  Get("/health", [](const HttpRequest&) { return HttpReply::Json({{"status", "ok"}}); });
  impl_->routes.back().inline_on_io = true;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Get(std::string pattern, HttpHandler handler) {
  impl_->routes.push_back(Route{"GET", std::regex(pattern), std::move(handler)});
}

void AdminServer::Post(std::string pattern, HttpHandler handler) {
  impl_->routes.push_back(Route{"POST", std::regex(pattern), std::move(handler)});
}

Status AdminServer::Start() {
  if (impl_->started) return Status::Ok();
  if (impl_->stopped) {
    return Error(std::make_error_code(std::errc::operation_not_permitted),
                 "admin: a stopped server cannot be started again");
  }
  // Our own socket: the same address rules and errno-carrying errors (EADDRINUSE...) as the
  // other listeners, and never SO_REUSEPORT.
  auto addr = net::ResolveBindAddress(host_, port_);
  if (!addr.ok()) return addr.error();
  auto fd = net::OpenBoundSocket(*addr, SOCK_STREAM);
  if (!fd.ok()) return fd.error();
  if (::listen(*fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(*fd);
    return Error(std::error_code(err, std::generic_category()),
                 "admin: listen on " + addr->ToEndpoint().ToString());
  }
  auto local = net::LocalSocketAddress(*fd);
  if (!local.ok()) {
    ::close(*fd);
    return local.error();
  }
  const Endpoint bound = local->ToEndpoint();
  boost::system::error_code ec;
  const tcp protocol = bound.host.find(':') != std::string::npos ? tcp::v6() : tcp::v4();
  impl_->acceptor.assign(protocol, *fd, ec);
  if (ec) {
    ::close(*fd);
    return Error(std::error_code(ec.value(), std::generic_category()), "admin: " + ec.message());
  }
  port_ = bound.port;
  impl_->started = true;
  impl_->Accept();
  impl_->pool.Start(impl_->options.handler_threads);
  impl_->io_thread = std::thread([impl = impl_.get()] { impl->io.run(); });
  SHOAL_LOG_INFO("admin: listening on {}", bound.ToString());
  return Status::Ok();
}

void AdminServer::Stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->stopped = true;
  Impl* impl = impl_.get();
  // Close the listener and every connection on the I/O thread; with nothing left to wait for,
  // its run() returns.
  asio::post(impl->io, [impl] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_retry.cancel();
    for (Session* s : impl->sessions) s->Close();
  });
  if (impl->io_thread.joinable()) impl->io_thread.join();
  // Replies of handlers still running are posted to a stopped context and dropped with it.
  impl->pool.Stop();
}

AdminServer::Stats AdminServer::stats() const {
  Stats s;
  s.requests = impl_->requests.load(kRelaxed);
  s.unauthorized = impl_->unauthorized.load(kRelaxed);
  s.server_errors = impl_->server_errors.load(kRelaxed);
  s.connections = impl_->connections.load(kRelaxed);
  s.accepted = impl_->accepted.load(kRelaxed);
  s.rejected_connections = impl_->rejected.load(kRelaxed);
  s.timed_out = impl_->timed_out.load(kRelaxed);
  return s;
}

}  // namespace shoal::admin
