// UdpSocket: a non-blocking UDP socket on an EventLoop, the real DatagramTransport under SWIM.
//
// Receiving: on readiness the socket reads pending datagrams, at most `max_datagrams_per_event`
// per event so that a flood on the cluster port cannot starve the loop's other connections (the
// loop is level-triggered: what is left is read on the next iteration), and hands each one to the
// receive callback as (sender, payload).
//
// Sending: sendto() straight from the caller, no queue. A datagram the kernel cannot take now
// (EAGAIN: the socket buffer is full) is dropped and counted, as the network would drop it; a
// payload over kMaxDatagramPayload is rejected and counted; neither is reported to the caller,
// per DatagramTransport's contract (protocols detect loss by timeouts). Counters are readable
// from any thread, e.g. by the admin API.
//
// Threading: created, used and destroyed on its loop's thread (Send included); the receive
// callback runs there too. The loop must outlive the socket. To destroy it from inside a callback
// of the same loop, use EventLoop::DeleteLater (an event for it may be pending in this iteration).
#pragma once

#include <absl/functional/any_invocable.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/transport.h"
#include "net/address.h"
#include "net/event_loop.h"

namespace shoal::net {

class UdpSocket final : public DatagramTransport, private IoWatcher {
 public:
  // `payload` is valid only during the call. REQUIRES: the callback does not destroy the socket.
  using ReceiveFn = absl::AnyInvocable<void(const Endpoint& from, std::string_view payload)>;

  struct Options {
    // Datagrams read per readiness event before yielding to the loop's other work.
    int max_datagrams_per_event = 64;
    // SO_RCVBUF / SO_SNDBUF; 0 keeps the system default. A larger receive buffer absorbs bursts
    // (a gossip round reaching many nodes at once) without loss.
    int receive_buffer_bytes = 0;
    int send_buffer_bytes = 0;
    AddressResolver::Options resolver;
  };

  struct Stats {
    uint64_t sent = 0;
    uint64_t received = 0;
    // Every datagram Send() did not hand to the kernel, whatever the reason; the three counters
    // below break some of them down.
    uint64_t send_errors = 0;
    uint64_t send_would_block = 0;  // EAGAIN: the socket's send buffer was full
    uint64_t send_oversize = 0;     // payload over kMaxDatagramPayload
    uint64_t send_unresolved = 0;   // the destination host did not resolve (or wrong family)
    uint64_t receive_errors = 0;
  };

  // Binds host:port ("" or "*": every IPv4 interface; "::": IPv6 and IPv4; "localhost"; numeric
  // IPv4/IPv6; port 0 picks a free port, see port()) and starts receiving on `loop`.
  // Errors: kResolve for a bad host, a system error (e.g. EADDRINUSE) if the bind fails.
  // REQUIRES: on `loop`'s thread, or before the loop runs.
  static Result<std::unique_ptr<UdpSocket>> Open(EventLoop* loop, const std::string& host,
                                                 uint16_t port, ReceiveFn on_receive,
                                                 Options options);
  static Result<std::unique_ptr<UdpSocket>> Open(EventLoop* loop, const std::string& host,
                                                 uint16_t port, ReceiveFn on_receive) {
    return Open(loop, host, port, std::move(on_receive), Options{});
  }

  ~UdpSocket() override;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // DatagramTransport. Resolves `to` with the socket's AddressResolver (names may block the
  // first time, see net/address.h).
  void Send(const Endpoint& to, std::string payload) override;
  // The same, without taking ownership of the payload.
  void SendTo(const Endpoint& to, std::string_view payload);

  // The bound address, with the real port when bound to port 0.
  const Endpoint& local_endpoint() const { return local_; }
  uint16_t port() const { return local_.port; }
  int fd() const { return fd_; }

  // Any thread.
  Stats stats() const;

 private:
  UdpSocket(EventLoop* loop, int fd, int family, Endpoint local, ReceiveFn on_receive,
            const Options& options);
  void OnIoEvents(uint32_t events) override;
  void CountSendError(std::atomic<uint64_t>* reason);

  EventLoop* loop_;
  int fd_;
  int family_;
  Endpoint local_;
  ReceiveFn on_receive_;
  Options options_;
  AddressResolver resolver_;
  std::unique_ptr<char[]> buffer_;

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> send_errors_{0};
  std::atomic<uint64_t> send_would_block_{0};
  std::atomic<uint64_t> send_oversize_{0};
  std::atomic<uint64_t> send_unresolved_{0};
  std::atomic<uint64_t> receive_errors_{0};
};

}  // namespace shoal::net
