// A small blocking HTTP/1.1 client for the CLI (`shoal status`, `shoal join`, `shoal leave`) and
// tests. One connection per call (Connection: close), one deadline for the whole exchange.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace shoal::admin {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of header `name` (case-insensitive), or "" if absent.
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  // Sent as "Authorization: Bearer <token>" when non-empty (the node's admin-token).
  std::string token;
  // For the whole exchange: connect, send, receive.
  int timeout_ms = 5000;
  // More request headers.
  std::vector<std::pair<std::string, std::string>> headers;
};

// `address` is "host:port"; `method` "GET", "POST"... A non-empty `body` is sent as
// application/json. Errors carry the system's reason in full: "cannot reach 127.0.0.1:9999:
// Connection refused" (connect failed; the errno's code), "... timed out after 5000 ms"
// (std::errc::timed_out), or an error reading or parsing the answer.
Result<HttpResponse> HttpCall(const std::string& address, std::string_view method,
                              const std::string& path, const std::string& body = "",
                              const HttpClientOptions& options = {});

inline Result<HttpResponse> HttpGet(const std::string& address, const std::string& path,
                                    const HttpClientOptions& options = {}) {
  return HttpCall(address, "GET", path, "", options);
}
inline Result<HttpResponse> HttpPost(const std::string& address, const std::string& path,
                                     const std::string& json_body,
                                     const HttpClientOptions& options = {}) {
  return HttpCall(address, "POST", path, json_body, options);
}

// The same with only a timeout.
inline Result<HttpResponse> HttpGet(const std::string& address, const std::string& path,
                                    int timeout_ms) {
  HttpClientOptions options;
  options.timeout_ms = timeout_ms;
  return HttpCall(address, "GET", path, "", options);
}
inline Result<HttpResponse> HttpPost(const std::string& address, const std::string& path,
                                     const std::string& json_body, int timeout_ms) {
  HttpClientOptions options;
  options.timeout_ms = timeout_ms;
  return HttpCall(address, "POST", path, json_body, options);
}

}  // namespace shoal::admin
