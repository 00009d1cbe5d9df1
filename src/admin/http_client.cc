#include "admin/http_client.h"

#include <httplib.h>

#include "common/transport.h"

namespace shoal::admin {
namespace {

template <typename Call>
Result<HttpResponse> Do(const std::string& address, int timeout_ms, Call call) {
  auto ep = Endpoint::Parse(address);
  if (!ep) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "'" + address + "' is not host:port");
  }
  httplib::Client client(ep->host, ep->port);
  const time_t sec = timeout_ms / 1000;
  const time_t usec = (timeout_ms % 1000) * 1000;
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  httplib::Result res = call(client);
  if (!res) {
    return Error(std::make_error_code(std::errc::connection_refused),
                 "cannot reach " + address + ": " + httplib::to_string(res.error()));
  }
  return HttpResponse{res->status, res->body};
}

}  // namespace

Result<HttpResponse> HttpGet(const std::string& address, const std::string& path, int timeout_ms) {
  return Do(address, timeout_ms, [&](httplib::Client& c) { return c.Get(path); });
}

Result<HttpResponse> HttpPost(const std::string& address, const std::string& path,
                              const std::string& json_body, int timeout_ms) {
  return Do(address, timeout_ms,
            [&](httplib::Client& c) { return c.Post(path, json_body, "application/json"); });
}

}  // namespace shoal::admin
