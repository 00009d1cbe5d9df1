#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shoal::net {
namespace {
std::string Describe(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}
Error SysError(const std::string& what) {
  return Error(std::error_code(errno, std::system_category()), what + ": " + strerror(errno));
}
}  // namespace

Status CheckPortFree(const std::string& host, uint16_t port) {
  // A socket without SO_REUSEPORT cannot bind a port that any other socket holds, whether that
  // one uses SO_REUSEPORT or not: the probe sees another node (or another program) on the port.
  auto probe = ListenTcp(host, port, ReusePort::kNo);
  if (!probe.ok()) return probe.error();
  close(*probe);
  return Status::Ok();
}

Result<int> ListenTcp(const std::string& host, uint16_t port, ReusePort reuse, int backlog) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_str = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_str.c_str(), &hints, &res);
  if (rc != 0) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "cannot resolve bind address '" + host + "': " + gai_strerror(rc));
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return SysError("socket");
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse == ReusePort::kYes) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    Error e = SysError("bind " + host + ":" + port_str);
    close(fd);
    freeaddrinfo(res);
    return e;
  }
  freeaddrinfo(res);
  if (listen(fd, backlog) != 0) {
    Error e = SysError("listen");
    close(fd);
    return e;
  }
  return fd;
}

int AcceptTcp(int listen_fd, std::string* peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (peer != nullptr) *peer = Describe(ss);
  return fd;
}

std::string LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return Describe(ss);
}

}  // namespace shoal::net
