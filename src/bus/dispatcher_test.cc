// The dispatcher over an in-process network of nodes: request-response through every strategy,
// errors (no exchange, no handler, overflow, timeout, handler errors, a dead node), tags, events,
// publish-subscribe fan-out through one proxy per node (counted messages), interest sync, and
// garbage from peers.
#include "bus/dispatcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace shoal::bus {
namespace {

using membership::Member;
using membership::MemberState;
using membership::MemberTable;

class Net;

class Node : public DispatcherIo {
 public:
  Node(Net* net, MemberId id, DispatcherOptions opts = {});
  int64_t Now() override;
  void Call(const MemberId& to, std::string body, int64_t timeout_ms, CallDone done) override;
  void Defer(std::function<void()> fn) override;

  Net* net;
  MemberId id;
  std::unique_ptr<Dispatcher> d;
  uint64_t calls_sent = 0;
};

// Runs every node's deferred work and delivers calls, in FIFO order, until quiet. A node marked
// down neither receives nor answers (its callers see an error).
class Net {
 public:
  explicit Net(int n, DispatcherOptions opts = {}) {
    for (int i = 0; i < n; ++i) {
      nodes.push_back(
          std::make_unique<Node>(this, MemberId(0, static_cast<uint64_t>(i + 1)), opts));
    }
    Views();
    Run();
  }
  Node& operator[](size_t i) { return *nodes[i]; }
  Dispatcher& d(size_t i) { return *nodes[i]->d; }

  void Views() {
    for (auto& self : nodes) {
      std::vector<Member> ms;
      for (auto& n : nodes) {
        Member m;
        m.record.id = n->id;
        m.state = down.contains(n->id) ? MemberState::kDead : MemberState::kAlive;
        ms.push_back(m);
      }
      std::sort(ms.begin(), ms.end(),
                [](const Member& a, const Member& b) { return a.record.id < b.record.id; });
      if (down.contains(self->id)) continue;
      self->d->OnView(std::make_shared<MemberTable>(++view_version, self->id, std::move(ms)));
    }
  }
  Node* Find(const MemberId& id) {
    for (auto& n : nodes) {
      if (n->id == id) return n.get();
    }
    return nullptr;
  }
  void Run() {
    for (int guard = 0; guard < 10'000'000 && !tasks.empty(); ++guard) {
      auto t = std::move(tasks.front());
      tasks.pop_front();
      t();
    }
  }
  // Advances the clock by `ms` and ticks every live node.
  void Advance(int64_t ms) {
    now += ms * 1000;
    for (auto& n : nodes) {
      if (!down.contains(n->id)) n->d->Tick();
    }
    Run();
  }

  int64_t now = 1'000'000'000;
  uint64_t view_version = 0;
  std::set<MemberId> down;
  std::deque<std::function<void()>> tasks;
  std::vector<std::unique_ptr<Node>> nodes;
};

Node::Node(Net* n, MemberId i, DispatcherOptions opts) : net(n), id(i) {
  d = std::make_unique<Dispatcher>(id, this, opts);
}
int64_t Node::Now() { return net->now; }
void Node::Defer(std::function<void()> fn) { net->tasks.push_back(std::move(fn)); }
void Node::Call(const MemberId& to, std::string body, int64_t, CallDone done) {
  ++calls_sent;
  net->tasks.push_back([this, to, body = std::move(body), done = std::move(done)]() mutable {
    Node* peer = net->Find(to);
    if (peer == nullptr || net->down.contains(to)) {
      done(Error(std::make_error_code(std::errc::connection_refused), "peer down"));
      return;
    }
    peer->d->OnCall(id, body, [net = net, done = std::move(done)](Result<std::string> r) mutable {
      net->tasks.push_back([done = std::move(done), r = std::move(r)]() mutable { done(r); });
    });
  });
}

// A handler that answers "<name>:<payload>" at once.
HandlerCallbacks Echo(Dispatcher* d, std::string name, int* count = nullptr) {
  HandlerCallbacks cb;
  cb.on_request = [d, name, count](const Handler& self, const IncomingRequest& r) {
    if (count != nullptr) ++*count;
    ASSERT_TRUE(d->Reply(self.id, r.id, name + ":" + r.payload).ok());
  };
  return cb;
}

// Sends a request from node `from` and runs the network until it is answered.
Result<Response> Call(Net& net, size_t from, std::string_view exchange, std::string_view key,
                      std::string payload, RequestOptions opts = {}) {
  std::optional<Result<Response>> out;
  net.d(from).Request(exchange, key, std::move(payload), std::move(opts),
                      [&out](Result<Response> r) { out = std::move(r); });
  net.Run();
  for (int i = 0; i < 1000 && !out.has_value(); ++i) net.Advance(10);
  EXPECT_TRUE(out.has_value());
  if (!out) return Error(DispatchErrc::kTimeout, "test: no answer");
  return std::move(*out);
}

std::string One(const Result<Response>& r) {
  if (!r.ok()) return "error: " + r.error().message();
  EXPECT_EQ(r->replies.size(), 1u);
  return r->replies.empty() ? "" : r->replies[0].payload;
}

TEST(Dispatcher, RequestToLocalAndRemoteHandlers) {
  Net net(3);
  ASSERT_TRUE(net.d(0).Create("svc", Pattern::kRequestResponse, "round_robin").ok());
  net.Run();
  // Every node learned the exchange.
  for (int i = 0; i < 3; ++i) ASSERT_NE(net.d(i).registry().FindExchange("svc"), nullptr);
  ASSERT_TRUE(net.d(1).Serve("svc", "", "h1", Echo(&net.d(1), "n1")).ok());
  net.Run();
  EXPECT_EQ(One(Call(net, 0, "svc", "k", "ping")), "n1:ping");  // remote
  EXPECT_EQ(One(Call(net, 1, "svc", "k", "ping")), "n1:ping");  // local
  EXPECT_EQ(net.d(1).counters().delivered, 2u);
  EXPECT_EQ(net.d(1).held_requests(), 0u);
}

TEST(Dispatcher, RoundRobinSpreadsAndTagComesBack) {
  Net net(3);
  ASSERT_TRUE(net.d(0).Create("svc", Pattern::kRequestResponse, "round_robin").ok());
  net.Run();
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(net.d(i).Serve("svc", "", "", Echo(&net.d(i), "n", &counts[i])).ok());
  }
  net.Run();
  for (int i = 0; i < 30; ++i) {
    RequestOptions o;
    o.tag = "t" + std::to_string(i);
    Result<Response> r = Call(net, 0, "svc", "", "x", o);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->tag, o.tag);
  }
  EXPECT_EQ(counts[0], 10);
  EXPECT_EQ(counts[1], 10);
  EXPECT_EQ(counts[2], 10);
}

TEST(Dispatcher, BroadcastGathersEveryReplyInLeaderOrder) {
  Net net(3);
  ASSERT_TRUE(net.d(0).Create("all", Pattern::kRequestResponse, "broadcast").ok());
  net.Run();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(net.d(i).Serve("all", "", "", Echo(&net.d(i), "n" + std::to_string(i))).ok());
    net.Advance(1);  // distinct registration times
  }
  Result<Response> r = Call(net, 2, "all", "", "hi");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->replies.size(), 3u);
  EXPECT_EQ(r->replies[0].payload, "n0:hi");
  EXPECT_EQ(r->replies[1].payload, "n1:hi");
  EXPECT_EQ(r->replies[2].payload, "n2:hi");
}

TEST(Dispatcher, LeaderStrategyAndEvents) {
  Net net(3);
  ASSERT_TRUE(net.d(0).Create("lead", Pattern::kRequestResponse, "leader").ok());
  net.Run();
  std::vector<std::optional<Handler>> last_leader(3);
  for (int i = 0; i < 3; ++i) {
    HandlerCallbacks cb = Echo(&net.d(i), "n" + std::to_string(i));
    cb.on_event = [&last_leader, i](const Handler&, const Event& e) {
      if (e.kind == EventKind::kLeader) last_leader[i] = e.leader;
    };
    ASSERT_TRUE(net.d(i).Serve("lead", "", "conn" + std::to_string(i), std::move(cb)).ok());
    net.Advance(1);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(last_leader[i].has_value());
    EXPECT_EQ(last_leader[i]->node, net[0].id) << i;
    EXPECT_EQ(last_leader[i]->connection, "conn0");
  }
  EXPECT_EQ(One(Call(net, 2, "lead", "", "a")), "n0:a");
  // The leader's node dies: the next oldest takes over, and requests follow.
  net.down.insert(net[0].id);
  net.Views();
  net.Run();
  EXPECT_EQ(last_leader[1]->node, net[1].id);
  EXPECT_EQ(last_leader[2]->node, net[1].id);
  EXPECT_EQ(One(Call(net, 2, "lead", "", "b")), "n1:b");
}

TEST(Dispatcher, StickyKeepsKeysOnTheirHandler) {
  Net net(4);
  ASSERT_TRUE(net.d(0).Create("st", Pattern::kRequestResponse, "sticky").ok());
  net.Run();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(net.d(i).Serve("st", "", "", Echo(&net.d(i), "n" + std::to_string(i))).ok());
  }
  net.Run();
  std::map<std::string, std::string> owner;
  for (int k = 0; k < 200; ++k) {
    const std::string key = "user" + std::to_string(k);
    owner[key] = One(Call(net, k % 4, "st", key, ""));
    EXPECT_EQ(One(Call(net, (k + 1) % 4, "st", key, "")), owner[key]) << "same from any node";
  }
  net.down.insert(net[3].id);
  net.Views();
  net.Run();
  int moved = 0;
  for (auto& [key, who] : owner) {
    const std::string now = One(Call(net, 0, "st", key, ""));
    if (now != who) {
      ++moved;
      EXPECT_EQ(who, "n3:") << "only the dead handler's keys move";
    }
  }
  EXPECT_GT(moved, 20);
  EXPECT_LT(moved, 90);
}

TEST(Dispatcher, FunRouterRedirectsRejectsAndTransforms) {
  Net net(2);
  ASSERT_TRUE(net.d(0).Create("front", Pattern::kRequestResponse, "fun").ok());
  ASSERT_TRUE(net.d(0).Create("back", Pattern::kRequestResponse, "round_robin").ok());
  net.Run();
  ASSERT_TRUE(net.d(1).Serve("front", "", "", Echo(&net.d(1), "front")).ok());
  ASSERT_TRUE(net.d(1).Serve("back", "", "", Echo(&net.d(1), "back")).ok());
  net.Run();
  // Without a router on the calling node: a clear error.
  Result<Response> none = Call(net, 0, "front", "x", "p");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), RoutingErrc::kInvalidRoute);
  StrategyConfig cfg;
  cfg.router = [](const bus::Request& r, std::span<const Handler* const> c) -> RouterDecision {
    if (r.routing_key == "old") return Redirect{"back"};
    if (r.routing_key == "bad") return Reject{"forbidden key"};
    return Transform{"[" + std::string(r.payload) + "]", c[0]};
  };
  net.d(0).SetStrategyConfig("front", cfg);
  EXPECT_EQ(One(Call(net, 0, "front", "old", "p")), "back:p");
  EXPECT_EQ(One(Call(net, 0, "front", "new", "p")), "front:[p]");
  Result<Response> bad = Call(net, 0, "front", "bad", "p");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), RoutingErrc::kRejected);
  EXPECT_NE(bad.error().message().find("forbidden key"), std::string::npos);
}

TEST(Dispatcher, ErrorsComeBackAtOnce) {
  Net net(2);
  Result<Response> r = Call(net, 0, "nope", "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), DispatchErrc::kNoExchange);
  ASSERT_TRUE(net.d(0).Create("svc", Pattern::kRequestResponse, "round_robin").ok());
  ASSERT_TRUE(net.d(0).Create("ev", Pattern::kPublishSubscribe, "broadcast").ok());
  net.Run();
  r = Call(net, 1, "svc", "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), RoutingErrc::kNoHandler);
  EXPECT_EQ(net.d(1).counters().no_handler, 1u);
  r = Call(net, 1, "ev", "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), DispatchErrc::kWrongPattern);
  // A group nobody serves.
  ASSERT_TRUE(net.d(0).Serve("svc", "g1", "", Echo(&net.d(0), "g1")).ok());
  net.Run();
  RequestOptions o;
  o.group = "g2";
  r = Call(net, 1, "svc", "", "", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("group 'g2'"), std::string::npos);
  o.group = "g1";
  EXPECT_EQ(One(Call(net, 1, "svc", "", "z", o)), "g1:z");
  // Conflicting re-creation.
  EXPECT_FALSE(net.d(1).Create("svc", Pattern::kRequestResponse, "leader").ok());
  EXPECT_FALSE(net.d(1).Create("x", Pattern::kRequestResponse, "no_such_strategy").ok());
}

TEST(Dispatcher, HandlerErrorAndLateReply) {
  Net net(2);
  ASSERT_TRUE(net.d(0).Create("svc", Pattern::kRequestResponse, "round_robin").ok());
  net.Run();
  HandlerCallbacks cb;
  cb.on_request = [&net](const Handler& self, const IncomingRequest& r) {
    ASSERT_TRUE(net.d(1).Reply(self.id, r.id, Error(DispatchErrc::kHandlerError, "boom")).ok());
    EXPECT_FALSE(net.d(1).Reply(self.id, r.id, std::string("twice")).ok());
  };
  ASSERT_TRUE(net.d(1).Serve("svc", "", "", cb).ok());
  net.Run();
  Result<Response> r = Call(net, 0, "svc", "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), DispatchErrc::kHandlerError);
  EXPECT_EQ(r.error().message(), "boom");
  EXPECT_EQ(net.d(1).counters().late_replies, 1u);
}

TEST(Dispatcher, TimeoutAndBoundedQueueOverflowIsCounted) {
  DispatcherOptions opts;
  opts.handler_queue = 3;
  Net net(2, opts);
  ASSERT_TRUE(net.d(0).Create("slow", Pattern::kRequestResponse, "round_robin").ok());
  net.Run();
  std::vector<uint64_t> held;
  uint64_t hid = 0;
  HandlerCallbacks cb;
  cb.on_request = [&held](const Handler&, const IncomingRequest& r) { held.push_back(r.id); };
  Result<Handler> h = net.d(1).Serve("slow", "", "", cb);
  ASSERT_TRUE(h.ok());
  hid = h->id;
  net.Run();
  std::vector<std::optional<Result<Response>>> out(5);
  for (int i = 0; i < 5; ++i) {
    RequestOptions o;
    o.timeout_ms = 100;
    net.d(0).Request("slow", "", "x", o, [&out, i](Result<Response> r) { out[i] = std::move(r); });
  }
  net.Run();
  // Three are held, two refused at once with a counted overflow.
  EXPECT_EQ(held.size(), 3u);
  int overflow = 0;
  for (auto& o : out) {
    if (o.has_value()) {
      ASSERT_FALSE(o->ok());
      EXPECT_EQ(o->error().code(), DispatchErrc::kOverflow);
      ++overflow;
    }
  }
  EXPECT_EQ(overflow, 2);
  EXPECT_EQ(net.d(1).counters().overflow, 2u);
  // One answered in time; the other two time out at the caller and leave the handler's queue.
  ASSERT_TRUE(net.d(1).Reply(hid, held[0], std::string("ok")).ok());
  net.Run();
  for (int i = 0; i < 20; ++i) net.Advance(10);
  int timeouts = 0, oks = 0;
  for (auto& o : out) {
    ASSERT_TRUE(o.has_value());
    if (o->ok()) ++oks;
    if (!o->ok() && o->error().code() == DispatchErrc::kTimeout) ++timeouts;
  }
  EXPECT_EQ(oks, 1);
  EXPECT_EQ(timeouts, 2);
  // The caller counts both, whether its own deadline fired or the handler's node expired them.
  EXPECT_EQ(net.d(0).counters().timeouts, 2u);
  EXPECT_EQ(net.d(1).held_requests(), 0u);
  EXPECT_EQ(net.d(0).pending_requests(), 0u);
  // A reply after the deadline is refused and counted, not delivered.
  EXPECT_FALSE(net.d(1).Reply(hid, held[1], std::string("late")).ok());
  EXPECT_EQ(net.d(1).counters().late_replies, 1u);
}

TEST(Dispatcher, DeadNodeGivesAnErrorNotASilence) {
  Net net(2);
  ASSERT_TRUE(net.d(0).Create("svc", Pattern::kRequestResponse, "round_robin").ok());
  net.Run();
  HandlerCallbacks never;
  never.on_request = [](const Handler&, const IncomingRequest&) {};
  ASSERT_TRUE(net.d(1).Serve("svc", "", "", never).ok());
  net.Run();
  std::optional<Result<Response>> out;
  net.d(0).Request("svc", "", "x", {}, [&out](Result<Response> r) { out = std::move(r); });
  // The node goes down after taking the request: the caller's deadline answers.
  net.down.insert(net[1].id);
  for (int i = 0; i < 600 && !out; ++i) net.Advance(10);
  ASSERT_TRUE(out.has_value());
  ASSERT_FALSE(out->ok());
  // Once the view knows, there is no handler at all.
  net.Views();
  net.Run();
  Result<Response> r = Call(net, 0, "svc", "", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), RoutingErrc::kNoHandler);
}

TEST(Dispatcher, GoneHandlerIsRoutedAgainOnce) {
  Net net(3);
  ASSERT_TRUE(net.d(0).Create("svc", Pattern::kRequestResponse, "leader").ok());
  net.Run();
  Result<Handler> h1 = net.d(1).Serve("svc", "", "", Echo(&net.d(1), "n1"));
  net.Advance(1);
  ASSERT_TRUE(net.d(2).Serve("svc", "", "", Echo(&net.d(2), "n2")).ok());
  net.Run();
  // Node 1 drops its handler; node 0 has not heard yet when its request arrives.
  std::optional<Result<Response>> out;
  net.d(0).Request("svc", "", "x", {}, [&out](Result<Response> r) { out = std::move(r); });
  ASSERT_TRUE(net.d(1).Unserve(h1->id).ok());
  net.Run();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(One(*out), "n2:x");
}

// The fan-out test: 5 nodes with 10,000 local subscribers each; one publish from a sixth
// node costs exactly 5 inter-node messages and makes 50,000 deliveries.
TEST(Dispatcher, PublishFansOutThroughOneMessagePerNode) {
  Net net(6);
  ASSERT_TRUE(net.d(5).Create("events", Pattern::kPublishSubscribe, "broadcast").ok());
  net.Run();
  uint64_t delivered = 0;
  for (int n = 0; n < 5; ++n) {
    for (int s = 0; s < 10'000; ++s) {
      const char* pattern = s % 3 == 0 ? "orders.*" : (s % 3 == 1 ? "orders.>" : "orders.eu");
      ASSERT_TRUE(net.d(n)
                      .Subscribe(Space::kSubject, "events", pattern,
                                 [&delivered](const Publication& p, const std::string&,
                                              std::function<void(uint64_t)> done) {
                                   EXPECT_EQ(p.payload, "hello");
                                   ++delivered;
                                   done(1);
                                 })
                      .ok());
    }
  }
  bool synced = false;
  for (int n = 0; n < 5; ++n) net.d(n).SyncInterest([&synced] { synced = true; });
  net.Run();
  ASSERT_TRUE(synced);
  std::vector<uint64_t> before;
  for (int n = 0; n < 6; ++n) before.push_back(net[n].calls_sent);
  std::optional<Result<uint64_t>> count;
  net.d(5).Publish(Space::kSubject, "events", "orders.eu", "hello",
                   [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  ASSERT_TRUE(count.has_value() && count->ok());
  EXPECT_EQ(**count, 50'000u);
  EXPECT_EQ(delivered, 50'000u);
  EXPECT_EQ(net[5].calls_sent - before[5], 5u);
  EXPECT_EQ(net.d(5).counters().publish_messages, 5u);
  for (int n = 0; n < 5; ++n) EXPECT_EQ(net[n].calls_sent, before[n]) << "no relaying";
  // A subject nobody matches costs no message at all.
  net.d(5).Publish(Space::kSubject, "events", "payments.eu", "hello",
                   [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 0u);
  EXPECT_EQ(net.d(5).counters().publish_messages, 5u);
  // Published from one of the five: four messages, its own subscribers locally.
  delivered = 0;
  net.d(0).Publish(Space::kSubject, "events", "orders.us", "hello",
                   [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 5u * 6667u);  // "orders.*" and "orders.>" match, "orders.eu" does not
  EXPECT_EQ(net.d(0).counters().publish_messages, 4u);
}

TEST(Dispatcher, RedisChannelsPatternsAndShardChannels) {
  Net net(3);
  std::vector<std::string> got;
  auto sub = [&got](std::string who) {
    return [&got, who](const Publication& p, const std::string& pattern,
                       std::function<void(uint64_t)> done) {
      got.push_back(who + " " + pattern + " " + p.subject + " " + p.payload);
      done(1);
    };
  };
  ASSERT_TRUE(net.d(1).Subscribe(Space::kChannel, "", "news", sub("a")).ok());
  ASSERT_TRUE(net.d(2).Subscribe(Space::kPattern, "", "n*", sub("b")).ok());
  ASSERT_TRUE(net.d(2).Subscribe(Space::kShard, "", "news", sub("c")).ok());
  net.Run();
  std::optional<Result<uint64_t>> count;
  net.d(0).Publish(Space::kChannel, "", "news", "1", [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 2u);
  net.d(0).Publish(Space::kShard, "", "news", "2", [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 1u);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"a news news 1", "b n* news 1", "c news news 2"}));
  // Unsubscribing withdraws the interest: no more messages to that node.
  const uint64_t sent = net.d(0).counters().publish_messages;
  Result<uint64_t> id = net.d(1).Subscribe(Space::kChannel, "", "other", sub("d"));
  net.Run();
  net.d(0).Publish(Space::kChannel, "", "other", "3", [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 1u);
  ASSERT_TRUE(net.d(1).Unsubscribe(*id).ok());
  net.Run();
  net.d(0).Publish(Space::kChannel, "", "other", "4", [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 0u);
  EXPECT_EQ(net.d(0).counters().publish_messages, sent + 1);
}

// A subscription is in effect cluster-wide when SyncInterest's callback runs, also when the
// entry was already advertised by a push that is still on its way.
TEST(Dispatcher, SyncInterestWaitsForThePushInFlight) {
  Net net(3);
  auto peers_know = [&net]() {
    for (int n = 1; n < 3; ++n) {
      const auto& states = net.d(n).registry().states();
      auto it = states.find(net[0].id);
      if (it == states.end()) return false;
      const auto& in = it->second.interest;
      if (std::find(in.begin(), in.end(), std::string("cnews")) == in.end()) return false;
    }
    return true;
  };
  auto noop = [](const Publication&, const std::string&, std::function<void(uint64_t)> done) {
    done(1);
  };
  ASSERT_TRUE(net.d(0).Subscribe(Space::kChannel, "", "news", noop).ok());
  std::vector<bool> known_at_sync;
  net.d(0).SyncInterest([&] { known_at_sync.push_back(peers_know()); });
  // Run only the flush (the first task): its pushes are now queued, not delivered.
  auto t = std::move(net.tasks.front());
  net.tasks.pop_front();
  t();
  ASSERT_FALSE(peers_know());
  ASSERT_TRUE(net.d(0).Subscribe(Space::kChannel, "", "news", noop).ok());  // not new
  net.d(0).SyncInterest([&] { known_at_sync.push_back(peers_know()); });
  // Its flush runs before the first pushes arrive.
  auto flush = std::move(net.tasks.back());
  net.tasks.pop_back();
  flush();
  net.Run();
  EXPECT_EQ(known_at_sync, (std::vector<bool>{true, true}));
}

TEST(Dispatcher, InterestOverTheLimitBecomesEverything) {
  DispatcherOptions opts;
  opts.registry.max_interest = 10;
  Net net(2, opts);
  for (int i = 0; i < 11; ++i) {
    ASSERT_TRUE(net.d(1)
                    .Subscribe(Space::kChannel, "", "ch" + std::to_string(i),
                               [](const Publication&, const std::string&,
                                  std::function<void(uint64_t)> done) { done(1); })
                    .ok());
  }
  net.Run();
  EXPECT_EQ(net.d(1).LocalInterest(), std::vector<std::string>{"*"});
  std::optional<Result<uint64_t>> count;
  net.d(0).Publish(Space::kChannel, "", "ch7", "x", [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 1u);
  net.d(0).Publish(Space::kChannel, "", "zzz", "x", [&count](Result<uint64_t> r) { count = r; });
  net.Run();
  EXPECT_EQ(**count, 0u);  // sent (everything), delivered to nobody
  EXPECT_EQ(net.d(0).counters().publish_messages, 2u);
}

TEST(Dispatcher, GarbageFromPeersIsAnErrorAndChangesNothing) {
  Net net(2);
  const std::vector<std::string> inputs = {"", "\x01", std::string("\x93\x01\x02\x01", 4),
                                           std::string("\x96\x01\x03\xcc\x63\xc4\x00\xc4\x00", 9),
                                           std::string(1000, '\xff')};
  for (const std::string& in : inputs) {
    std::optional<Result<std::string>> a;
    net.d(0).OnCall(net[1].id, in, [&a](Result<std::string> r) { a = std::move(r); });
    net.Run();
    ASSERT_TRUE(a.has_value());
    EXPECT_FALSE(a->ok());
  }
  EXPECT_GE(net.d(0).counters().malformed, inputs.size());
}

}  // namespace
}  // namespace shoal::bus
