#include "admin/http_client.h"

#include <strings.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

#include "common/transport.h"

namespace shoal::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxResponseBytes = 64 << 20;

// The system error as a std::error_code (the errno for socket errors), timed_out for the deadline.
std::error_code ToStd(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return std::make_error_code(std::errc::timed_out);
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return std::error_code(ec.value(), std::generic_category());
  }
  return std::make_error_code(std::errc::protocol_error);
}

std::string Reason(const beast::error_code& ec, int timeout_ms) {
  if (ec == beast::error::timeout) return "timed out after " + std::to_string(timeout_ms) + " ms";
  return ec.message();
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return "";
}

Result<HttpResponse> HttpCall(const std::string& address, std::string_view method,
                              const std::string& path, const std::string& body,
                              const HttpClientOptions& options) {
  auto ep = Endpoint::Parse(address);
  if (!ep) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "'" + address + "' is not host:port");
  }
  asio::io_context io{1};
  beast::error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(ep->host, std::to_string(ep->port), ec);
  if (ec) return Error(ToStd(ec), "cannot resolve " + ep->host + ": " + ec.message());

  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(path);
  req.version(11);
  req.set(http::field::host, address);
  req.set(http::field::user_agent, "shoal-cli");
  if (!options.token.empty()) req.set(http::field::authorization, "Bearer " + options.token);
  for (const auto& [k, v] : options.headers) req.set(k, v);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();

  // One deadline for the whole exchange: a tcp_stream's expiry covers every operation started
  // until it is set again.
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::milliseconds(options.timeout_ms));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  std::optional<Error> failed;
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      failed = Error(ToStd(e), "cannot reach " + address + ": " + Reason(e, options.timeout_ms));
      return;
    }
    http::async_write(stream, req, [&](beast::error_code e2, size_t) {
      if (e2) {
        failed = Error(ToStd(e2), "sending to " + address + ": " + Reason(e2, options.timeout_ms));
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code e3, size_t) {
        if (e3) {
          failed =
              Error(ToStd(e3), "no answer from " + address + ": " + Reason(e3, options.timeout_ms));
        }
      });
    });
  });
  io.run();
  if (failed) return *failed;
  http::response<http::string_body> res = parser.release();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace shoal::admin
