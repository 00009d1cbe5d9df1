#include "admin/http_client.h"

#include <httplib.h>

namespace shoal::admin {
namespace {

Result<std::pair<std::string, int>> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "'" + address + "' is not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (...) {
    port = 0;
  }
  if (port <= 0 || port > 65535) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "'" + address + "' has no valid port");
  }
  return std::make_pair(host, port);
}

template <typename Call>
Result<HttpResponse> Do(const std::string& address, int timeout_ms, Call call) {
  auto hp = SplitAddress(address);
  if (!hp.ok()) return hp.error();
  httplib::Client client(hp->first, hp->second);
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
