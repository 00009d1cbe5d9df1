#include "net/udp_socket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "net/address.h"
#include "net/errc.h"
#include "net/rpc.h"
#include "net/test_loop.h"

namespace shoal::net {
namespace {

using testing::LoopThread;
using testing::WaitFor;

// What one socket received, readable from the test thread.
struct Inbox {
  std::mutex mu;
  std::vector<std::pair<Endpoint, std::string>> got;

  UdpSocket::ReceiveFn Fn() {
    return [this](const Endpoint& from, std::string_view payload) {
      std::lock_guard<std::mutex> lock(mu);
      got.emplace_back(from, std::string(payload));
    };
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return got.size();
  }
  std::pair<Endpoint, std::string> at(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    return got.at(i);
  }
};

std::unique_ptr<UdpSocket> OpenOrDie(LoopThread& lt, const std::string& host, uint16_t port,
                                     Inbox* inbox, UdpSocket::Options options = {}) {
  return lt.Sync([&]() -> std::unique_ptr<UdpSocket> {
    auto s = UdpSocket::Open(lt.loop(), host, port, inbox->Fn(), options);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().ToString());
    return s.ok() ? std::move(*s) : nullptr;
  });
}

TEST(Address, ParsesNumericHostsWithoutLookup) {
  auto v4 = ParseNumericAddress("10.1.2.3", 7000);
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->ToEndpoint(), (Endpoint{"10.1.2.3", 7000}));
  auto v6 = ParseNumericAddress("[::1]", 7001);
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->ToEndpoint(), (Endpoint{"::1", 7001}));
  EXPECT_FALSE(ParseNumericAddress("localhost", 1).has_value());
  EXPECT_FALSE(ParseNumericAddress("1.2.3", 1).has_value());
}

TEST(Address, MapsIpv4ForDualStackSocketsAndBack) {
  auto v4 = *ParseNumericAddress("127.0.0.1", 9);
  auto mapped = AdaptToFamily(v4, AF_INET6);
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(mapped->family(), AF_INET6);
  // A dual-stack socket reports an IPv4 peer as ::ffff:127.0.0.1; Endpoints show plain IPv4.
  EXPECT_EQ(mapped->ToEndpoint(), (Endpoint{"127.0.0.1", 9}));
  auto back = AdaptToFamily(*mapped, AF_INET);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->family(), AF_INET);
  auto v6 = AdaptToFamily(*ParseNumericAddress("::1", 9), AF_INET);
  ASSERT_FALSE(v6.ok());
  EXPECT_EQ(v6.error().code(), make_error_code(Errc::kResolve));
}

TEST(Address, ResolverCachesNamesAndPrefersIpv4) {
  AddressResolver resolver;
  for (uint16_t port = 1; port <= 5; ++port) {
    auto addr = resolver.Resolve(Endpoint{"localhost", port});
    ASSERT_TRUE(addr.ok()) << addr.error().ToString();
    EXPECT_EQ(addr->ToEndpoint(), (Endpoint{"127.0.0.1", port}));
  }
  EXPECT_EQ(resolver.lookups(), 1u);
  EXPECT_EQ(resolver.cache_size(), 1u);
  ASSERT_TRUE(resolver.Resolve(Endpoint{"192.168.0.1", 1}).ok());
  EXPECT_EQ(resolver.lookups(), 1u) << "numeric hosts never reach getaddrinfo";
}

TEST(UdpSocket, DeliversDatagramsWithTheSenderAddress) {
  LoopThread lt;
  Inbox a_in, b_in;
  auto a = OpenOrDie(lt, "127.0.0.1", 0, &a_in);
  auto b = OpenOrDie(lt, "127.0.0.1", 0, &b_in);
  ASSERT_TRUE(a && b);
  ASSERT_NE(b->port(), 0);
  lt.Sync([&] {
    for (int i = 0; i < 100; ++i) a->Send(b->local_endpoint(), "ping " + std::to_string(i));
  });
  ASSERT_TRUE(WaitFor([&] { return b_in.size() == 100; }));
  for (int i = 0; i < 100; ++i) {
    auto [from, payload] = b_in.at(i);
    EXPECT_EQ(from, a->local_endpoint());
    EXPECT_EQ(payload, "ping " + std::to_string(i));  // loopback keeps order
  }
  EXPECT_EQ(a->stats().sent, 100u);
  EXPECT_EQ(b->stats().received, 100u);
  EXPECT_EQ(a->stats().send_errors, 0u);
  lt.Sync([&] {
    a.reset();
    b.reset();
  });
}

TEST(UdpSocket, ReadsABoundedNumberPerEventButEventuallyAll) {
  LoopThread lt;
  Inbox a_in, b_in;
  UdpSocket::Options one_per_event;
  one_per_event.max_datagrams_per_event = 1;
  one_per_event.receive_buffer_bytes = 1 << 20;
  auto a = OpenOrDie(lt, "127.0.0.1", 0, &a_in);
  auto b = OpenOrDie(lt, "127.0.0.1", 0, &b_in, one_per_event);
  ASSERT_TRUE(a && b);
  std::atomic<uint64_t> iterations_before{0};
  lt.Sync([&] {
    iterations_before = lt.loop()->iterations();
    for (int i = 0; i < 50; ++i) a->Send(b->local_endpoint(), "x");
  });
  ASSERT_TRUE(WaitFor([&] { return b_in.size() == 50; }));
  // One datagram per readiness event: 50 datagrams take at least 50 loop iterations.
  EXPECT_GE(lt.Sync([&] { return lt.loop()->iterations(); }) - iterations_before.load(), 50u);
  lt.Sync([&] {
    a.reset();
    b.reset();
  });
}

TEST(UdpSocket, Ipv6AndDualStack) {
  LoopThread lt;
  Inbox v6_in, dual_in, v4_in;
  auto v6 = OpenOrDie(lt, "::1", 0, &v6_in);
  auto dual = OpenOrDie(lt, "::", 0, &dual_in);
  auto v4 = OpenOrDie(lt, "127.0.0.1", 0, &v4_in);
  ASSERT_TRUE(v6 && dual && v4);
  lt.Sync([&] {
    v6->Send(Endpoint{"::1", dual->port()}, "over v6");
    v4->Send(Endpoint{"127.0.0.1", dual->port()}, "over v4");
    // A dual-stack socket reaches an IPv4-only one through a mapped address.
    dual->Send(Endpoint{"127.0.0.1", v4->port()}, "from dual");
  });
  ASSERT_TRUE(WaitFor([&] { return dual_in.size() == 2 && v4_in.size() == 1; }));
  std::map<std::string, Endpoint> from;
  for (size_t i = 0; i < 2; ++i) {
    auto [ep, payload] = dual_in.at(i);
    from[payload] = ep;
  }
  EXPECT_EQ(from["over v6"], (Endpoint{"::1", v6->port()}));
  EXPECT_EQ(from["over v4"], (Endpoint{"127.0.0.1", v4->port()}));
  EXPECT_EQ(v4_in.at(0).first.host, "127.0.0.1");
  lt.Sync([&] {
    v6.reset();
    dual.reset();
    v4.reset();
  });
}

TEST(UdpSocket, LocalhostNamesResolveThroughTheCache) {
  LoopThread lt;
  Inbox a_in, b_in;
  auto a = OpenOrDie(lt, "localhost", 0, &a_in);
  auto b = OpenOrDie(lt, "localhost", 0, &b_in);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->local_endpoint().host, "127.0.0.1");
  lt.Sync([&] {
    for (int i = 0; i < 10; ++i) a->Send(Endpoint{"localhost", b->port()}, "hi");
  });
  ASSERT_TRUE(WaitFor([&] { return b_in.size() == 10; }));
  lt.Sync([&] {
    a.reset();
    b.reset();
  });
}

TEST(UdpSocket, OversizeAndUnreachableSendsAreDroppedAndCounted) {
  LoopThread lt;
  Inbox a_in, b_in;
  UdpSocket::Options big_buffer;
  big_buffer.receive_buffer_bytes = 1 << 20;
  auto a = OpenOrDie(lt, "127.0.0.1", 0, &a_in);
  auto b = OpenOrDie(lt, "127.0.0.1", 0, &b_in, big_buffer);
  ASSERT_TRUE(a && b);
  lt.Sync([&] {
    a->Send(b->local_endpoint(), std::string(kMaxDatagramPayload + 1, 'x'));
    a->Send(Endpoint{"::1", b->port()}, "an IPv6 peer from an IPv4 socket");
    a->Send(b->local_endpoint(), std::string(kMaxDatagramPayload, 'y'));
  });
  ASSERT_TRUE(WaitFor([&] { return b_in.size() == 1; }));
  EXPECT_EQ(b_in.at(0).second.size(), kMaxDatagramPayload);
  const UdpSocket::Stats s = a->stats();
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.send_errors, 2u);
  EXPECT_EQ(s.send_oversize, 1u);
  EXPECT_EQ(s.send_unresolved, 1u);
  lt.Sync([&] {
    a.reset();
    b.reset();
  });
}

TEST(UdpSocket, SharesItsPortNumberWithTheRpcServerButNotWithAnotherSocket) {
  LoopThread lt;
  Inbox in, other_in;
  RpcServer server(lt.loop(), "127.0.0.1", 0, "cookie");
  ASSERT_TRUE(lt.Sync([&] { return server.Start().ok(); }));
  auto udp = OpenOrDie(lt, "127.0.0.1", server.port(), &in);
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->port(), server.port());
  auto again = lt.Sync(
      [&] { return UdpSocket::Open(lt.loop(), "127.0.0.1", server.port(), other_in.Fn()); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), std::errc::address_in_use) << again.error().ToString();
  RpcServer second(lt.loop(), "127.0.0.1", server.port(), "cookie");
  const Status st = lt.Sync([&] { return second.Start(); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), std::errc::address_in_use) << st.error().ToString();
  lt.Sync([&] {
    udp.reset();
    server.Stop();
  });
}

}  // namespace
}  // namespace shoal::net
