// Small POSIX socket helpers for the event loops. Errors are values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shoal::net {

// A non-blocking TCP listening socket on host:port. With `reuse_port`, several threads may each
// bind their own socket to the same port and the kernel spreads connections among them
// (SO_REUSEPORT), which is how every worker thread accepts its own clients.
enum class ReusePort { kNo, kYes };  // SO_REUSEPORT: one listening socket per worker
Result<int> ListenTcp(const std::string& host, uint16_t port, ReusePort reuse, int backlog = 511);

// Fails if another socket (of this process or another) is bound to host:port. SO_REUSEPORT lets
// any process of the same user join a port, so a node checks this before binding its workers'
// sockets, or a second node started on the same port would silently share its clients.
Status CheckPortFree(const std::string& host, uint16_t port);

// Accepts one pending connection, non-blocking, with TCP_NODELAY. Returns -1 when none is
// pending (EAGAIN) or on a transient error; `peer` gets "ip:port".
int AcceptTcp(int listen_fd, std::string* peer);

// The local "ip:port" of a socket.
std::string LocalAddress(int fd);

}  // namespace shoal::net
