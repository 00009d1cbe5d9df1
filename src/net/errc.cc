#include "net/errc.h"

namespace shoal::net {
namespace {

class ErrcCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "net"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
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
    return "unknown error";
  }
};

}  // namespace

const std::error_category& ErrcCategory() {
  static const ErrcCategoryImpl category;
  return category;
}

}  // namespace shoal::net
