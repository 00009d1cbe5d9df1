// Error codes of the network layer (UDP transport, internal RPC). Each becomes an Error with a
// message naming the peer and the cause; callers branch on the code, humans read the message.
#pragma once

#include <system_error>

#include "common/result.h"

namespace shoal::net {

enum class Errc {
  kInvalidArgument = 1,  // a bad address, an over-long method name, a body over the frame limit
  kResolve,              // a host name that does not resolve (to the family the socket needs)
  kConnectFailed,        // the TCP connection could not be established
  kHandshakeFailed,      // the peer failed the cookie challenge, or we failed its (wrong cookie)
  kHandshakeTimeout,     // connect + handshake did not finish in time
  kDisconnected,         // the connection was lost with the call in flight
  kTimeout,              // the call's deadline passed before its response arrived
  kProtocol,             // the peer sent bytes that are not a valid frame
  kRemote,               // the peer's handler answered with an error (message is the peer's text)
  kShutdown,             // the client or server was stopped
};
SHOAL_ERROR_CATEGORY_DECL(Errc)

}  // namespace shoal::net

template <>
struct std::is_error_code_enum<shoal::net::Errc> : std::true_type {};
