#include "net/udp_socket.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace shoal::net {
namespace {
// Larger than any UDP payload (65507 over IPv4, 65527 over IPv6), so nothing is truncated.
constexpr size_t kReceiveBufferSize = 64 * 1024;
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

Result<std::unique_ptr<UdpSocket>> UdpSocket::Open(EventLoop* loop, const std::string& host,
                                                   uint16_t port, ReceiveFn on_receive,
                                                   Options options) {
  auto addr = ResolveBindAddress(host, port);
  if (!addr.ok()) return addr.error();
  auto fd = OpenBoundSocket(*addr, SOCK_DGRAM);
  if (!fd.ok()) return fd.error();
  if (options.receive_buffer_bytes > 0) {
    setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer_bytes,
               sizeof options.receive_buffer_bytes);
  }
  if (options.send_buffer_bytes > 0) {
    setsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &options.send_buffer_bytes,
               sizeof options.send_buffer_bytes);
  }
  auto local = LocalSocketAddress(*fd);
  if (!local.ok()) {
    close(*fd);
    return local.error();
  }
  std::unique_ptr<UdpSocket> sock(new UdpSocket(loop, *fd, addr->family(), local->ToEndpoint(),
                                                std::move(on_receive), options));
  loop->Watch(sock->fd_, EPOLLIN, sock.get());
  return sock;
}

UdpSocket::UdpSocket(EventLoop* loop, int fd, int family, Endpoint local, ReceiveFn on_receive,
                     const Options& options)
    : loop_(loop),
      fd_(fd),
      family_(family),
      local_(std::move(local)),
      on_receive_(std::move(on_receive)),
      options_(options),
      resolver_(options.resolver),
      buffer_(new char[kReceiveBufferSize]) {
  if (options_.max_datagrams_per_event < 1) options_.max_datagrams_per_event = 1;
}

UdpSocket::~UdpSocket() {
  loop_->Unwatch(fd_);
  close(fd_);
}

void UdpSocket::Send(const Endpoint& to, std::string payload) { SendTo(to, payload); }

void UdpSocket::CountSendError(std::atomic<uint64_t>* reason) {
  send_errors_.fetch_add(1, kRelaxed);
  if (reason != nullptr) reason->fetch_add(1, kRelaxed);
}

void UdpSocket::SendTo(const Endpoint& to, std::string_view payload) {
  if (payload.size() > kMaxDatagramPayload) {
    CountSendError(&send_oversize_);
    return;
  }
  auto addr = resolver_.Resolve(to, family_);
  if (!addr.ok()) {
    CountSendError(&send_unresolved_);
    return;
  }
  for (;;) {
    const ssize_t n =
        sendto(fd_, payload.data(), payload.size(), MSG_DONTWAIT, addr->get(), addr->len);
    if (n >= 0) {
      sent_.fetch_add(1, kRelaxed);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      CountSendError(&send_would_block_);
    } else {
      SHOAL_LOG_DEBUG("udp {}: sendto {} failed: {}", local_.ToString(), to.ToString(),
                      strerror(errno));
      CountSendError(nullptr);
    }
    return;
  }
}

void UdpSocket::OnIoEvents(uint32_t events) {
  for (int i = 0; i < options_.max_datagrams_per_event; ++i) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = recvfrom(fd_, buffer_.get(), kReceiveBufferSize, MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // E.g. a queued ICMP error; the next datagram is still readable.
        receive_errors_.fetch_add(1, kRelaxed);
        continue;
      }
      return;
    }
    received_.fetch_add(1, kRelaxed);
    const Endpoint sender =
        SocketAddress::From(reinterpret_cast<sockaddr*>(&from), from_len).ToEndpoint();
    on_receive_(sender, std::string_view(buffer_.get(), static_cast<size_t>(n)));
  }
}

UdpSocket::Stats UdpSocket::stats() const {
  Stats s;
  s.sent = sent_.load(kRelaxed);
  s.received = received_.load(kRelaxed);
  s.send_errors = send_errors_.load(kRelaxed);
  s.send_would_block = send_would_block_.load(kRelaxed);
  s.send_oversize = send_oversize_.load(kRelaxed);
  s.send_unresolved = send_unresolved_.load(kRelaxed);
  s.receive_errors = receive_errors_.load(kRelaxed);
  return s;
}

}  // namespace shoal::net
