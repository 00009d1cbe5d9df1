// Socket addresses: turning an Endpoint's host into what the kernel wants, and back.
//
// Numeric hosts ("10.0.0.7", "::1", "[::1]") are parsed in place, with no lookup. Names go
// through getaddrinfo, which MAY BLOCK (it can ask a DNS server), so AddressResolver caches what
// it finds, positive and negative, for a while. Cluster addresses are normally numeric or in
// /etc/hosts ("localhost"), where this costs nothing; DNS-based discovery (membership/) resolves
// its names on a thread of its own, off the event loops, and hands numeric endpoints to the
// transports, so a slow DNS server never stalls a loop.
//
// A name with both IPv4 and IPv6 addresses resolves to its IPv4 one, whatever order the system
// resolver returns them in: binding and sending then agree on what "localhost" means (127.0.0.1)
// for every node, and a node bound to 127.0.0.1 is reachable by a peer that names it "localhost".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "common/transport.h"

namespace shoal::net {

// An IPv4 or IPv6 socket address with its port. A value type.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  uint16_t port() const;
  // Numeric host and port; an IPv4-mapped IPv6 address ("::ffff:1.2.3.4", what a dual-stack
  // socket reports for an IPv4 peer) is given as the plain IPv4 address.
  Endpoint ToEndpoint() const;
  // Copies `len` bytes of `sa` (AF_INET or AF_INET6).
  static SocketAddress From(const sockaddr* sa, socklen_t len);
};

// The address of a numeric host ("1.2.3.4", "::1", "[::1]"), or nullopt if `host` is not one.
std::optional<SocketAddress> ParseNumericAddress(std::string_view host, uint16_t port);

// `addr` in the form a socket of `socket_family` can use: an IPv4 address becomes IPv4-mapped
// for an AF_INET6 socket; an IPv6 address cannot be reached from an AF_INET socket (error,
// kResolve). AF_UNSPEC returns `addr` unchanged.
Result<SocketAddress> AdaptToFamily(const SocketAddress& addr, int socket_family);

// The local address to bind "host:port" to. "" and "*" mean every IPv4 interface (0.0.0.0), "::"
// every interface over IPv6 and IPv4 (a dual-stack socket). Names are looked up (may block).
Result<SocketAddress> ResolveBindAddress(const std::string& host, uint16_t port);

// A non-blocking, close-on-exec socket of `type` (SOCK_DGRAM or SOCK_STREAM) bound to `addr`.
// SO_REUSEADDR for streams (a restarted node can rebind while old connections linger in
// TIME_WAIT), never SO_REUSEPORT: a second process binding the same port must fail, not share
// it. A dual-stack "::" socket also accepts IPv4. Errors carry errno and "bind host:port".
Result<int> OpenBoundSocket(const SocketAddress& addr, int type);

// The local address a socket is bound to.
Result<SocketAddress> LocalSocketAddress(int fd);

// Resolves Endpoints to SocketAddresses, caching names. Not thread-safe: one per owner (each
// UdpSocket and RpcClient has its own, used on its loop thread).
class AddressResolver {
 public:
  struct Options {
    int64_t ttl_ms = 30'000;          // how long a resolved name is trusted
    int64_t negative_ttl_ms = 5'000;  // how long a failed lookup is remembered (not retried)
    size_t max_entries = 1024;        // the cache is cleared when it would grow past this
  };
  AddressResolver() : AddressResolver(Options{}) {}
  explicit AddressResolver(Options options) : options_(options) {}

  // The address for `endpoint`, adapted to `socket_family` (AF_INET, AF_INET6 or AF_UNSPEC, see
  // AdaptToFamily). Numeric hosts never touch the cache. Names may call getaddrinfo: MAY BLOCK.
  // Errors: kResolve (unknown name, or no address usable from `socket_family`).
  Result<SocketAddress> Resolve(const Endpoint& endpoint, int socket_family = AF_UNSPEC);

  size_t cache_size() const { return cache_.size(); }
  // getaddrinfo calls made so far (cache misses).
  uint64_t lookups() const { return lookups_; }

 private:
  struct Entry {
    int64_t expires_ms = 0;
    std::optional<SocketAddress> address;  // port 0; nullopt: the lookup failed
    std::string error;                     // why, when it failed
  };
  Options options_;
  std::unordered_map<std::string, Entry> cache_;
  uint64_t lookups_ = 0;
};

}  // namespace shoal::net
