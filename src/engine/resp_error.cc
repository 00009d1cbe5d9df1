#include "engine/resp_error.h"

#include "bus/dispatcher.h"
#include "bus/subject.h"

namespace shoal::engine {

std::string RespErrorText(const Error& e) {
  const std::error_code& c = e.code();
  std::string prefix = "ERR";
  if (c == bus::RoutingErrc::kNoHandler) prefix = "NOHANDLER";
  if (c == bus::RoutingErrc::kRejected) prefix = "REJECTED";
  if (c == bus::DispatchErrc::kTimeout) prefix = "TIMEOUT";
  if (c == bus::DispatchErrc::kOverflow) prefix = "BUSY";
  if (c == bus::DispatchErrc::kHandlerError) prefix = "HANDLERERR";
  if (c == bus::DispatchErrc::kUnreachable) prefix = "UNREACHABLE";
  return prefix + " " + e.message();
}

}  // namespace shoal::engine
