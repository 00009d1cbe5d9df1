// A small blocking HTTP client for the CLI (`shoal status`, `shoal join`) and tests.
#pragma once

#include <string>

#include "common/result.h"

namespace shoal::admin {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// `address` is "host:port". Errors: the connection failed or timed out.
Result<HttpResponse> HttpGet(const std::string& address, const std::string& path,
                             int timeout_ms = 5000);
Result<HttpResponse> HttpPost(const std::string& address, const std::string& path,
                              const std::string& json_body, int timeout_ms = 5000);

}  // namespace shoal::admin
