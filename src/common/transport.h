// Transport as an interface: what sans-I/O protocol cores (SWIM, ...) send through. `net/` backs it
// with a real UDP socket, `sim/` with a simulated network that delays, drops, duplicates, reorders
// and partitions. A core never learns which one it is talking to.
#pragma once

#include <charconv>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "common/hash.h"

namespace shoal {

// A node's network address: a host (name or literal IP) and a port. A value type; ordered so it can
// key a std::map (deterministic iteration), hashable for unordered containers.
struct Endpoint {
  std::string host;
  uint16_t port = 0;

  auto operator<=>(const Endpoint&) const = default;

  // "host:port"; an IPv6 literal host is bracketed: "[::1]:7000".
  std::string ToString() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
  friend std::ostream& operator<<(std::ostream& os, const Endpoint& e) {
    return os << e.ToString();
  }

  // Parses "host:port" or "[v6]:port" (the port 1..65535); nullopt when it is neither.
  static std::optional<Endpoint> Parse(std::string_view text) {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
      return std::nullopt;
    }
    std::string_view host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    unsigned port = 0;
    const std::string_view digits = text.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || port == 0 || port > 65535) {
      return std::nullopt;
    }
    return Endpoint{std::string(host), static_cast<uint16_t>(port)};
  }
};

// The largest UDP payload over IPv4 (65535 - 8 byte UDP header - 20 byte IP header). Transports
// may drop larger datagrams; protocols should stay well below (one MTU) to avoid IP fragmentation.
inline constexpr size_t kMaxDatagramPayload = 65507;

// Unreliable, unordered, connectionless datagrams, with UDP's semantics: a datagram arrives whole
// or not at all, possibly late, possibly twice, possibly before one sent earlier. No error is
// reported for a lost datagram, so Send returns nothing: protocols detect loss by timeouts.
//
// Threading: an implementation states which thread may call it; the protocol core calls it from
// the thread that drives the core. Received datagrams reach the core through whatever callback
// the implementation was built with (the interface is send-only, the core stays passive).
class DatagramTransport {
 public:
  virtual ~DatagramTransport() = default;
  // Hands `payload` to the network, addressed to `to`. Never blocks, never fails visibly.
  virtual void Send(const Endpoint& to, std::string payload) = 0;
};

}  // namespace shoal

template <>
struct std::hash<shoal::Endpoint> {
  size_t operator()(const shoal::Endpoint& e) const {
    return static_cast<size_t>(shoal::Hash64(e.host, e.port));
  }
};
