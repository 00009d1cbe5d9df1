#include "net/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "net/errc.h"

namespace shoal::net {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string_view StripBrackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

void SetPort(SocketAddress* addr, uint16_t port) {
  if (addr->family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&addr->storage)->sin_port = htons(port);
  } else if (addr->family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&addr->storage)->sin6_port = htons(port);
  }
}

SocketAddress FromV4(const in_addr& a, uint16_t port) {
  SocketAddress out;
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  sin->sin_family = AF_INET;
  sin->sin_addr = a;
  sin->sin_port = htons(port);
  out.len = sizeof(sockaddr_in);
  return out;
}

SocketAddress FromV6(const in6_addr& a, uint16_t port) {
  SocketAddress out;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_addr = a;
  sin6->sin6_port = htons(port);
  out.len = sizeof(sockaddr_in6);
  return out;
}

// Looks `host` up; IPv4 preferred when it has both (see the header).
Result<SocketAddress> Lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;  // one entry per address, not one per socket type
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return Error(Errc::kResolve, "cannot resolve '" + host + "': " + gai_strerror(rc));
  }
  std::optional<SocketAddress> v4, v6;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && !v4) v4 = SocketAddress::From(ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET6 && !v6) v6 = SocketAddress::From(ai->ai_addr, ai->ai_addrlen);
  }
  freeaddrinfo(res);
  if (v4) return *v4;
  if (v6) return *v6;
  return Error(Errc::kResolve, "cannot resolve '" + host + "': no IPv4 or IPv6 address");
}

}  // namespace

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

Endpoint SocketAddress::ToEndpoint() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    }
  }
  return Endpoint{buf, port()};
}

SocketAddress SocketAddress::From(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (len > sizeof(out.storage)) len = sizeof(out.storage);
  std::memcpy(&out.storage, sa, len);
  out.len = len;
  return out;
}

std::optional<SocketAddress> ParseNumericAddress(std::string_view host, uint16_t port) {
  const std::string h(StripBrackets(host));
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return FromV4(a4, port);
  in6_addr a6{};
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) return FromV6(a6, port);
  return std::nullopt;
}

Result<SocketAddress> AdaptToFamily(const SocketAddress& addr, int socket_family) {
  if (socket_family == AF_UNSPEC || addr.family() == socket_family) return addr;
  if (socket_family == AF_INET6 && addr.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr.storage);
    in6_addr mapped{};
    mapped.s6_addr[10] = 0xff;
    mapped.s6_addr[11] = 0xff;
    std::memcpy(&mapped.s6_addr[12], &sin->sin_addr, 4);
    return FromV6(mapped, addr.port());
  }
  if (socket_family == AF_INET && addr.family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr.storage);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      in_addr a4{};
      std::memcpy(&a4, &sin6->sin6_addr.s6_addr[12], 4);
      return FromV4(a4, addr.port());
    }
  }
  return Error(Errc::kResolve, "address " + addr.ToEndpoint().ToString() +
                                   " is not reachable from an " +
                                   (socket_family == AF_INET ? "IPv4" : "IPv6") + " socket");
}

Result<SocketAddress> ResolveBindAddress(const std::string& host, uint16_t port) {
  if (host.empty() || host == "*") return FromV4(in_addr{htonl(INADDR_ANY)}, port);
  if (auto numeric = ParseNumericAddress(host, port)) return *numeric;
  auto looked_up = Lookup(host);
  if (!looked_up.ok()) return looked_up.error();
  SetPort(&*looked_up, port);
  return looked_up;
}

Result<int> OpenBoundSocket(const SocketAddress& addr, int type) {
  const auto sys_error = [&](const std::string& what) {
    return Error(std::error_code(errno, std::system_category()), what + ": " + strerror(errno));
  };
  const int fd = socket(addr.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket");
  int one = 1;
  int zero = 0;
  if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(fd, addr.get(), addr.len) != 0) {
    Error e = sys_error("bind " + addr.ToEndpoint().ToString());
    close(fd);
    return e;
  }
  return fd;
}

Result<SocketAddress> LocalSocketAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Error(std::error_code(errno, std::system_category()),
                 std::string("getsockname: ") + strerror(errno));
  }
  return SocketAddress::From(reinterpret_cast<sockaddr*>(&ss), len);
}

Result<SocketAddress> AddressResolver::Resolve(const Endpoint& endpoint, int socket_family) {
  if (auto numeric = ParseNumericAddress(endpoint.host, endpoint.port)) {
    return AdaptToFamily(*numeric, socket_family);
  }
  const int64_t now = SteadyMs();
  auto it = cache_.find(endpoint.host);
  if (it == cache_.end() || it->second.expires_ms <= now) {
    if (it == cache_.end() && cache_.size() >= options_.max_entries) cache_.clear();
    ++lookups_;
    Entry entry;
    auto looked_up = Lookup(endpoint.host);
    if (looked_up.ok()) {
      entry.address = *looked_up;
      entry.expires_ms = now + options_.ttl_ms;
    } else {
      entry.error = looked_up.error().message();
      entry.expires_ms = now + options_.negative_ttl_ms;
    }
    it = cache_.insert_or_assign(endpoint.host, std::move(entry)).first;
  }
  if (!it->second.address) return Error(Errc::kResolve, it->second.error);
  SocketAddress addr = *it->second.address;
  SetPort(&addr, endpoint.port);
  return AdaptToFamily(addr, socket_family);
}

}  // namespace shoal::net
