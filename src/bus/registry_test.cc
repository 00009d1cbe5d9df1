// Unit tests of the registry's local logic: the API, conflicts, leader choice, events and the wire
// format. Convergence under churn and loss is in registry_sim_test.cc.
#include "bus/registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace shoal::bus {
namespace {

using membership::Member;
using membership::MemberState;
using membership::MemberTable;

const MemberId kA(0, 1);
const MemberId kB(0, 2);
const MemberId kC(0, 3);

class FakeIo : public RegistryIo {
 public:
  void Send(const MemberId& to, std::string bytes) override {
    sent.emplace_back(to, std::move(bytes));
  }
  void Emit(const Event& event) override { events.push_back(event); }

  std::vector<Event> Take(EventKind kind) {
    std::vector<Event> out;
    for (const Event& e : events) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

  std::vector<std::pair<MemberId, std::string>> sent;
  std::vector<Event> events;
};

std::shared_ptr<const MemberTable> View(MemberId self,
                                        std::vector<std::pair<MemberId, MemberState>> ms,
                                        uint64_t version = 1) {
  std::vector<Member> members;
  for (auto& [id, st] : ms) {
    Member m;
    m.record.id = id;
    m.state = st;
    members.push_back(m);
  }
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.record.id < b.record.id; });
  return std::make_shared<MemberTable>(version, self, std::move(members));
}

// Delivers every pending message between the registries until none is left.
void Pump(std::vector<std::pair<Registry*, FakeIo*>> nodes, int64_t now) {
  for (bool any = true; any;) {
    any = false;
    for (auto& [reg, io] : nodes) {
      auto sent = std::move(io->sent);
      io->sent.clear();
      for (auto& [to, bytes] : sent) {
        for (auto& [r2, io2] : nodes) {
          if (r2->self() == to) {
            ASSERT_TRUE(r2->OnMessage(reg->self(), bytes, now).ok());
            any = true;
          }
        }
      }
    }
  }
}

TEST(Registry, CreateRegisterUnregister) {
  FakeIo io;
  Registry r(kA, 1000, &io);
  EXPECT_EQ(r.Register("ex", "", "", 1001).error().code(), Errc::kNotFound);
  auto e = r.Create("ex", Pattern::kRequestResponse, "round_robin", 1002);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->creator, kA);
  // The same creation again is the same exchange.
  auto again = r.Create("ex", Pattern::kRequestResponse, "round_robin", 1003);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *e);
  // Another pattern or strategy is a conflict.
  auto c1 = r.Create("ex", Pattern::kPublishSubscribe, "round_robin", 1004);
  ASSERT_FALSE(c1.ok());
  EXPECT_EQ(c1.error().code(), Errc::kConflict);
  EXPECT_NE(c1.error().message().find("request_response/round_robin"), std::string::npos);
  EXPECT_EQ(r.Create("ex", Pattern::kRequestResponse, "leader", 1005).error().code(),
            Errc::kConflict);
  EXPECT_EQ(r.Create("", Pattern::kRequestResponse, "leader", 1005).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(
      r.Create(std::string(300, 'x'), Pattern::kRequestResponse, "leader", 1005).error().code(),
      Errc::kInvalidArgument);

  const uint64_t v0 = r.version();
  auto h1 = r.Register("ex", "svc", "conn1", 1010);
  ASSERT_TRUE(h1.ok());
  EXPECT_EQ(r.version(), v0 + 1);
  auto h2 = r.Register("ex", "svc", "conn2", 1010);
  ASSERT_TRUE(h2.ok());
  EXPECT_NE(h1->id, h2->id);
  EXPECT_LT(h1->registered_at, h2->registered_at);
  ASSERT_EQ(r.Handlers("ex").size(), 2u);
  EXPECT_EQ(r.Leader("ex")->id, h1->id);

  ASSERT_TRUE(r.Unregister(h1->id, 1020).ok());
  EXPECT_EQ(r.Leader("ex")->id, h2->id);
  EXPECT_EQ(r.Unregister(h1->id, 1021).error().code(), Errc::kNotFound);
  ASSERT_TRUE(r.Unregister(h2->id, 1022).ok());
  EXPECT_FALSE(r.Leader("ex").has_value());
  EXPECT_TRUE(r.Handlers("ex").empty());
}

TEST(Registry, EventsOnLocalChanges) {
  FakeIo io;
  Registry r(kA, 1000, &io);
  ASSERT_TRUE(r.Create("ex", Pattern::kRequestResponse, "leader", 1001).ok());
  io.events.clear();
  auto h1 = r.Register("ex", "g", "c", 1002);
  ASSERT_EQ(io.events.size(), 2u);
  EXPECT_EQ(io.events[0].kind, EventKind::kMemberUp);
  EXPECT_EQ(*io.events[0].handler, *h1);
  EXPECT_EQ(io.events[1].kind, EventKind::kLeader);
  EXPECT_EQ(*io.events[1].leader, *h1);
  EXPECT_EQ(io.events[1].handlers.size(), 1u);
  io.events.clear();
  auto h2 = r.Register("ex", "g", "c2", 1003);
  ASSERT_EQ(io.events.size(), 2u);
  EXPECT_EQ(*io.events[1].leader, *h1);  // the oldest stays leader
  EXPECT_EQ(io.events[1].handlers.size(), 2u);
  io.events.clear();
  ASSERT_TRUE(r.Unregister(h1->id, 1004).ok());
  ASSERT_EQ(io.events.size(), 2u);
  EXPECT_EQ(io.events[0].kind, EventKind::kMemberDown);
  EXPECT_EQ(*io.events[0].handler, *h1);
  EXPECT_EQ(*io.events[1].leader, *h2);
}

TEST(Registry, ConvergesAndAppointsTheOldestLeader) {
  FakeIo ia, ib, ic;
  Registry a(kA, 1000, &ia), b(kB, 1000, &ib), c(kC, 1000, &ic);
  auto all = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive),
              std::make_pair(kC, MemberState::kAlive)};
  a.OnView(View(kA, all), 1000);
  b.OnView(View(kB, all), 1000);
  c.OnView(View(kC, all), 1000);
  std::vector<std::pair<Registry*, FakeIo*>> nodes = {{&a, &ia}, {&b, &ib}, {&c, &ic}};

  ASSERT_TRUE(a.Create("ex", Pattern::kRequestResponse, "leader", 2000).ok());
  Pump(nodes, 2001);
  ASSERT_NE(b.FindExchange("ex"), nullptr);
  auto hb = b.Register("ex", "", "", 3000);
  auto hc = c.Register("ex", "", "", 3001);
  auto ha = a.Register("ex", "", "", 3002);
  ASSERT_TRUE(ha.ok() && hb.ok() && hc.ok());
  Pump(nodes, 3003);
  for (Registry* r : {&a, &b, &c}) {
    ASSERT_EQ(r->Handlers("ex").size(), 3u);
    EXPECT_EQ(*r->Leader("ex"), *hb);
    EXPECT_EQ(r->Digest(), a.Digest());
  }
  // c's last leader event names hb.
  auto leaders = ic.Take(EventKind::kLeader);
  ASSERT_FALSE(leaders.empty());
  EXPECT_EQ(*leaders.back().leader, *hb);

  // b dies in a's and c's views: its handler drops out and the next oldest leads.
  auto without_b = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kDead),
                    std::make_pair(kC, MemberState::kAlive)};
  ic.events.clear();
  a.OnView(View(kA, without_b, 2), 4000);
  c.OnView(View(kC, without_b, 2), 4000);
  EXPECT_EQ(*a.Leader("ex"), *hc);
  EXPECT_EQ(*c.Leader("ex"), *hc);
  ASSERT_EQ(ic.events.size(), 2u);
  EXPECT_EQ(ic.events[0].kind, EventKind::kMemberDown);
  EXPECT_EQ(*ic.events[0].handler, *hb);
  EXPECT_EQ(*ic.events[1].leader, *hc);
}

TEST(Registry, AntiEntropyRepairsLostPushes) {
  FakeIo ia, ib;
  Registry a(kA, 1000, &ia), b(kB, 1000, &ib);
  auto all = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive)};
  a.OnView(View(kA, all), 1000);
  b.OnView(View(kB, all), 1000);
  ASSERT_TRUE(a.Create("ex", Pattern::kPublishSubscribe, "broadcast", 1001).ok());
  ASSERT_TRUE(a.Register("ex", "", "", 1002).ok());
  ia.sent.clear();  // the pushes are lost
  EXPECT_EQ(b.FindExchange("ex"), nullptr);
  b.Tick(1'000'000);  // b's digest goes to a, which answers with its newer state
  Pump({{&a, &ia}, {&b, &ib}}, 1'000'001);
  ASSERT_NE(b.FindExchange("ex"), nullptr);
  EXPECT_EQ(b.Handlers("ex").size(), 1u);
  EXPECT_EQ(a.Digest(), b.Digest());
}

TEST(Registry, ConcurrentConflictingCreationsResolveDeterministically) {
  FakeIo ia, ib;
  Registry a(kA, 1000, &ia), b(kB, 1000, &ib);
  auto all = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive)};
  a.OnView(View(kA, all), 1000);
  b.OnView(View(kB, all), 1000);
  // Same instant: the least node id (a) wins.
  auto ea = a.Create("ex", Pattern::kRequestResponse, "leader", 5000);
  auto eb = b.Create("ex", Pattern::kPublishSubscribe, "broadcast", 5000);
  ASSERT_TRUE(ea.ok() && eb.ok());
  Pump({{&a, &ia}, {&b, &ib}}, 5001);
  EXPECT_EQ(*a.FindExchange("ex"), *ea);
  EXPECT_EQ(*b.FindExchange("ex"), *ea);
  for (FakeIo* io : {&ia, &ib}) {
    auto conflicts = io->Take(EventKind::kExchangeConflict);
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(*conflicts[0].winner, *ea);
    EXPECT_EQ(*conflicts[0].loser, *eb);
  }
  // b's later Create of its own loser kind is now refused locally.
  EXPECT_EQ(b.Create("ex", Pattern::kPublishSubscribe, "broadcast", 6000).error().code(),
            Errc::kConflict);
}

TEST(Registry, RestartSupersedesThePreviousLife) {
  FakeIo ia, ib;
  auto all = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive)};
  Registry a(kA, 1000, &ia);
  a.OnView(View(kA, all), 1000);
  auto b1 = std::make_unique<Registry>(kB, 1000, &ib);
  b1->OnView(View(kB, all), 1000);
  ASSERT_TRUE(b1->Create("ex", Pattern::kRequestResponse, "leader", 1001).ok());
  ASSERT_TRUE(b1->Register("ex", "", "", 1002).ok());
  Pump({{&a, &ia}, {b1.get(), &ib}}, 1003);
  ASSERT_EQ(a.Handlers("ex").size(), 1u);
  b1.reset();
  ib.sent.clear();
  // b restarts (memory lost) a little later: its empty state replaces the old one.
  Registry b2(kB, 2000, &ib);
  b2.OnView(View(kB, all), 2000);
  b2.Tick(2000);
  a.Tick(2000);
  Pump({{&a, &ia}, {&b2, &ib}}, 2001);
  EXPECT_TRUE(a.Handlers("ex").empty());
  ASSERT_NE(b2.FindExchange("ex"), nullptr);  // the exchange outlives its creator's memory
  EXPECT_EQ(a.Digest(), b2.Digest());
}

TEST(Registry, ReapedNodesAreForgottenAndStayForgotten) {
  FakeIo ia, ib, ic;
  auto all = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive),
              std::make_pair(kC, MemberState::kAlive)};
  Registry a(kA, 1000, &ia), b(kB, 1000, &ib), c(kC, 1000, &ic);
  a.OnView(View(kA, all, 1), 1000);
  b.OnView(View(kB, all, 1), 1000);
  c.OnView(View(kC, all, 1), 1000);
  ASSERT_TRUE(c.Create("ex", Pattern::kRequestResponse, "leader", 1001).ok());
  ASSERT_TRUE(c.Register("ex", "", "", 1002).ok());
  Pump({{&a, &ia}, {&b, &ib}, {&c, &ic}}, 1003);
  ASSERT_EQ(a.states().count(kC), 1u);
  // c dies, then the membership reaps it on a (b has not reaped it yet).
  auto ab_dead = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive),
                  std::make_pair(kC, MemberState::kDead)};
  auto ab = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive)};
  a.OnView(View(kA, ab_dead, 2), 2000);
  b.OnView(View(kB, ab_dead, 2), 2000);
  a.OnView(View(kA, ab, 3), 3000);
  EXPECT_EQ(a.states().count(kC), 0u);
  // b's anti-entropy offers c's old state again: refused.
  b.Tick(10'000'000);
  Pump({{&a, &ia}, {&b, &ib}}, 10'000'001);
  EXPECT_EQ(a.states().count(kC), 0u);
  EXPECT_NE(a.FindExchange("ex"), nullptr);  // exchanges stay
  // A state that arrives before its node is in the view is kept (not mistaken for reaped).
  const MemberId kD(0, 4);
  FakeIo id;
  Registry d(kD, 20'000'000, &id);
  auto abd = {std::make_pair(kA, MemberState::kAlive), std::make_pair(kB, MemberState::kAlive),
              std::make_pair(kD, MemberState::kAlive)};
  d.OnView(View(kD, abd, 1), 20'000'000);
  ASSERT_TRUE(d.Create("ex2", Pattern::kRequestResponse, "leader", 20'000'001).ok());
  Pump({{&a, &ia}, {&d, &id}}, 20'000'002);
  ASSERT_EQ(a.states().count(kD), 1u);
  a.OnView(View(kA, ab, 4), 20'000'003);  // a's view still lacks d
  EXPECT_EQ(a.states().count(kD), 1u);
}

TEST(Wire, RoundTrip) {
  Message m;
  m.type = MessageType::kStates;
  m.sender = kA;
  m.hlc = {123, 4};
  NodeState s;
  s.node = kB;
  s.version = 77;
  s.exchanges.push_back({"ex", Pattern::kPublishSubscribe, "sticky", {5, 6}, kC});
  s.handlers.push_back({"ex", kB, 9, "grp", "conn", {7, 8}});
  m.states.push_back(s);
  auto d = Decode(Encode(m));
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(d->type, m.type);
  EXPECT_EQ(d->sender, m.sender);
  EXPECT_EQ(d->hlc, m.hlc);
  ASSERT_EQ(d->states.size(), 1u);
  EXPECT_EQ(d->states[0], s);

  Message dg;
  dg.type = MessageType::kDigest;
  dg.sender = kB;
  dg.digest = {{kA, 1}, {kC, 99}};
  auto d2 = Decode(Encode(dg));
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(d2->digest, dg.digest);

  Message p;
  p.type = MessageType::kPull;
  p.sender = kC;
  p.pull = {kA, kB};
  auto d3 = Decode(Encode(p));
  ASSERT_TRUE(d3.ok());
  EXPECT_EQ(d3->pull, p.pull);
}

TEST(Wire, GarbageIsRejected) {
  for (std::string bad : {std::string(), std::string("\xc1"), std::string("hello"),
                          std::string("\x95\x01\x07\x92\x00\x01\x92\x00\x00\x90", 10),
                          std::string("\x95\x02\x01\x92\x00\x01\x92\x00\x00\x90", 10),
                          std::string("\xdd\xff\xff\xff\xff", 5)}) {
    auto d = Decode(bad);
    ASSERT_FALSE(d.ok());
    EXPECT_TRUE(d.error().code() == Errc::kMalformed || d.error().code() == Errc::kBadVersion);
  }
  // Every truncation and every single-byte corruption of a valid message decodes or fails
  // cleanly.
  Message m;
  m.type = MessageType::kStates;
  m.sender = kA;
  NodeState s;
  s.node = kA;
  s.version = 3;
  s.exchanges.push_back({"ex", Pattern::kRequestResponse, "leader", {5, 6}, kA});
  s.handlers.push_back({"ex", kA, 1, "g", "c", {7, 8}});
  m.states.push_back(s);
  const std::string good = Encode(m);
  for (size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(Decode(good.substr(0, n)).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (int v : {0x00, 0x7f, 0xc0, 0xdc, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(v);
      (void)Decode(bad);
    }
  }
  // A message whose sender does not match the peer is refused.
  FakeIo io;
  Registry r(kB, 1000, &io);
  EXPECT_EQ(r.OnMessage(kC, good, 1000).error().code(), Errc::kMalformed);
  EXPECT_FALSE(r.OnMessage(kC, "junk", 1000).ok());
}

}  // namespace
}  // namespace shoal::bus
