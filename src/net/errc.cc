#include "net/errc.h"

namespace shoal::net {
namespace {

std::string_view DescribeErrc(Errc e) {
  switch (e) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kResolve:
      return "cannot resolve address";
    case Errc::kConnectFailed:
      return "connect failed";
    case Errc::kHandshakeFailed:
      return "handshake failed";
    case Errc::kHandshakeTimeout:
      return "handshake timed out";
    case Errc::kDisconnected:
      return "disconnected";
    case Errc::kTimeout:
      return "timed out";
    case Errc::kProtocol:
      return "protocol error";
    case Errc::kRemote:
      return "remote error";
    case Errc::kShutdown:
      return "shut down";
  }
  return "";
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(Errc, "net", DescribeErrc)

}  // namespace shoal::net
