#include "bus/strategy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace shoal::bus {
namespace {

Handler H(uint64_t node, uint64_t id, uint64_t wall, std::string group = "") {
  Handler h;
  h.exchange = "svc";
  h.node = MemberId(0, node);
  h.id = id;
  h.group = std::move(group);
  h.registered_at = HlcTime{wall, 0};
  return h;
}

// Handlers on `dead_nodes` count as dead.
std::function<bool(const Handler&)> AliveExcept(std::set<uint64_t> dead_nodes) {
  return [dead = std::move(dead_nodes)](const Handler& h) { return !dead.contains(h.node.lo()); };
}

std::vector<Handler> Five() {
  return {H(1, 1, 50), H(2, 1, 10), H(3, 7, 30), H(1, 2, 20), H(2, 2, 40)};
}

TEST(Strategy, Names) {
  for (Strategy s :
       {Strategy::kBroadcast, Strategy::kRoundRobin, Strategy::kLeader, Strategy::kLeaderRoundRobin,
        Strategy::kSticky, Strategy::kStickyFun, Strategy::kFun}) {
    EXPECT_EQ(*ParseStrategy(StrategyName(s)), s);
  }
  const Result<Strategy> bad = ParseStrategy("random");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("unknown strategy 'random'"), std::string::npos);
}

TEST(Strategy, BroadcastIsEveryLiveHandlerInLeaderOrder) {
  const std::vector<Handler> hs = Five();
  auto all = Broadcast(hs);
  ASSERT_TRUE(all.ok());
  std::vector<uint64_t> walls;
  for (const Handler* h : *all) walls.push_back(h->registered_at.wall);
  EXPECT_EQ(walls, (std::vector<uint64_t>{10, 20, 30, 40, 50}));
  auto some = Broadcast(hs, Filter{"", AliveExcept({2})});
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->size(), 3u);
}

TEST(Strategy, NoHandlerIsAnErrorAtOnce) {
  const std::vector<Handler> none;
  for (Strategy s :
       {Strategy::kBroadcast, Strategy::kRoundRobin, Strategy::kLeader, Strategy::kLeaderRoundRobin,
        Strategy::kSticky, Strategy::kStickyFun, Strategy::kFun}) {
    StrategyConfig config{s, [](std::string_view, const Handler&) { return uint64_t{1}; },
                          [](const Request&, std::span<const Handler* const> c) {
                            return RouterDecision(Pick{c[0]});
                          }};
    RoundRobinCursor cursor;
    auto r = RouteRequest(config, none, Request{"k", "p", ""}, cursor);
    ASSERT_FALSE(r.ok()) << StrategyName(s);
    EXPECT_EQ(r.error().code(), RoutingErrc::kNoHandler);
    // All dead, or an empty group.
    const std::vector<Handler> hs = Five();
    auto dead = RouteRequest(config, hs, Request{"k", "p", ""}, cursor, AliveExcept({1, 2, 3}));
    ASSERT_FALSE(dead.ok());
    EXPECT_EQ(dead.error().code(), RoutingErrc::kNoHandler);
    auto group = RouteRequest(config, hs, Request{"k", "p", "billing"}, cursor);
    ASSERT_FALSE(group.ok());
    EXPECT_EQ(group.error().message(), "no live handler in group 'billing'");
  }
}

TEST(Strategy, LeaderIsTheOldestAndIndependentOfOrder) {
  std::vector<Handler> hs = Five();
  const Handler want = H(2, 1, 10);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(hs.begin(), hs.end(), rng);
    EXPECT_EQ(**Leader(hs), want);
  }
  // Ties on time go to the smaller node, then the smaller id.
  const std::vector<Handler> tied = {H(9, 1, 5), H(3, 4, 5), H(3, 2, 5), H(4, 1, 5)};
  EXPECT_EQ(**Leader(tied), H(3, 2, 5));
  // The leader's node dies: the next oldest.
  EXPECT_EQ(**Leader(hs, Filter{"", AliveExcept({2})}), H(1, 2, 20));
  // It agrees with the registry's order.
  auto all = Broadcast(hs);
  EXPECT_EQ((*all)[0], *Leader(hs));
}

TEST(Strategy, RoundRobinIsFairAndSkipsDeadOnes) {
  const std::vector<Handler> hs = Five();
  RoundRobinCursor cursor;
  std::map<uint64_t, int> hits;  // by registration time (unique here)
  std::vector<uint64_t> first_round;
  for (int i = 0; i < 1000; ++i) {
    const Handler* h = *cursor.Next(hs);
    ++hits[h->registered_at.wall];
    if (i < 5) first_round.push_back(h->registered_at.wall);
  }
  EXPECT_EQ(first_round, (std::vector<uint64_t>{10, 20, 30, 40, 50}));
  for (const auto& [wall, n] : hits) EXPECT_EQ(n, 200) << wall;

  // Node 1 (walls 20 and 50) is dead: never picked, the other three share equally.
  hits.clear();
  const Filter f{"", AliveExcept({1})};
  for (int i = 0; i < 999; ++i) ++hits[(*cursor.Next(hs, f))->registered_at.wall];
  EXPECT_EQ(hits, (std::map<uint64_t, int>{{10, 333}, {30, 333}, {40, 333}}));
}

TEST(Strategy, RoundRobinSurvivesListChanges) {
  std::vector<Handler> hs = {H(1, 1, 10), H(1, 2, 20), H(1, 3, 30)};
  RoundRobinCursor cursor;
  EXPECT_EQ((*cursor.Next(hs))->id, 1u);
  EXPECT_EQ((*cursor.Next(hs))->id, 2u);
  // The last picked leaves and a newcomer joins: the rotation goes on from where it was.
  hs = {H(1, 1, 10), H(1, 3, 30), H(1, 4, 25)};
  EXPECT_EQ((*cursor.Next(hs))->id, 4u);
  EXPECT_EQ((*cursor.Next(hs))->id, 3u);
  EXPECT_EQ((*cursor.Next(hs))->id, 1u);
}

TEST(Strategy, GroupFilter) {
  const std::vector<Handler> hs = {H(1, 1, 10, "eu"), H(1, 2, 20, "us"), H(2, 1, 30, "eu"),
                                   H(2, 2, 40, "us"), H(3, 1, 50, "")};
  EXPECT_EQ((*Leader(hs, Filter{"us"}))->registered_at.wall, 20u);
  EXPECT_EQ((*Broadcast(hs, Filter{"eu"})).size(), 2u);
  RoundRobinCursor cursor;
  // Positions are kept per group: interleaving groups stays fair within each.
  std::map<uint64_t, int> hits;
  for (int i = 0; i < 100; ++i) {
    ++hits[(*cursor.Next(hs, Filter{"eu"}))->registered_at.wall];
    ++hits[(*cursor.Next(hs, Filter{"us"}))->registered_at.wall];
  }
  EXPECT_EQ(hits, (std::map<uint64_t, int>{{10, 50}, {20, 50}, {30, 50}, {40, 50}}));
  for (int i = 0; i < 100; ++i) {
    const Handler* h = *Sticky(hs, "key" + std::to_string(i), Filter{"eu"});
    EXPECT_EQ(h->group, "eu");
  }
  auto r = RouteRequest({Strategy::kBroadcast}, hs, Request{"", "", "us"}, cursor);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<Deliver>(*r).handlers.size(), 2u);
}

TEST(Strategy, LeaderRoundRobinSpreadsButHasALeader) {
  const std::vector<Handler> hs = Five();
  RoundRobinCursor cursor;
  std::set<uint64_t> seen;
  for (int i = 0; i < 5; ++i) {
    auto r = RouteRequest({Strategy::kLeaderRoundRobin}, hs, Request{}, cursor);
    seen.insert(std::get<Deliver>(*r).handlers[0]->registered_at.wall);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ((*Leader(hs))->registered_at.wall, 10u);
  auto r = RouteRequest({Strategy::kLeader}, hs, Request{}, cursor);
  EXPECT_EQ(std::get<Deliver>(*r).handlers[0]->registered_at.wall, 10u);
}

std::vector<Handler> Ten() {
  std::vector<Handler> hs;
  for (uint64_t i = 0; i < 10; ++i) hs.push_back(H(1 + i % 4, 100 + i, 10 * i));
  return hs;
}

std::string Key(int i) { return "user:" + std::to_string(i); }

// Owner of each key as (node, id).
std::vector<std::pair<uint64_t, uint64_t>> Owners(const std::vector<Handler>& hs, int keys) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  out.reserve(keys);
  for (int k = 0; k < keys; ++k) {
    const Handler* h = *Sticky(hs, Key(k));
    out.emplace_back(h->node.lo(), h->id);
  }
  return out;
}

TEST(Strategy, StickyKeepsKeysAndMovesOnlyTheLeaversKeys) {
  constexpr int kKeys = 100'000;
  std::vector<Handler> hs = Ten();
  const auto before = Owners(hs, kKeys);
  // Deterministic, independent of order, spread about evenly.
  std::vector<Handler> shuffled = hs;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(3));
  EXPECT_EQ(Owners(shuffled, 1000), Owners(hs, 1000));
  std::map<std::pair<uint64_t, uint64_t>, int> load;
  for (const auto& o : before) ++load[o];
  ASSERT_EQ(load.size(), 10u);
  for (const auto& [o, n] : load) EXPECT_NEAR(n, kKeys / 10, kKeys / 100) << o.second;

  // One leaves (by liveness): only its keys move.
  const Handler gone = hs[3];
  {
    const Filter f{"", [&](const Handler& h) { return h.id != gone.id; }};
    int moved = 0;
    for (int k = 0; k < kKeys; ++k) {
      const Handler* h = *Sticky(hs, Key(k), f);
      const std::pair<uint64_t, uint64_t> now{h->node.lo(), h->id};
      if (now != before[k]) {
        ++moved;
        ASSERT_EQ(before[k].second, gone.id) << "a key moved between surviving handlers";
      } else {
        ASSERT_NE(before[k].second, gone.id);
      }
    }
    EXPECT_NEAR(static_cast<double>(moved) / kKeys, 0.1, 0.01);
  }

  // One joins: about 1/11 of the keys move, all of them to the newcomer.
  hs.push_back(H(5, 999, 1000));
  const auto after = Owners(hs, kKeys);
  int moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (after[k] != before[k]) {
      ++moved;
      ASSERT_EQ(after[k], std::make_pair(uint64_t{5}, uint64_t{999}));
    }
  }
  EXPECT_NEAR(static_cast<double>(moved) / kKeys, 1.0 / 11, 0.01);
}

TEST(Strategy, StickyIdentityIsNodeAndId) {
  // Same handler id on two nodes: two different handlers with different scores.
  EXPECT_NE(StickyScore("k", MemberId(0, 1), 7), StickyScore("k", MemberId(0, 2), 7));
  EXPECT_EQ(StickyScore("k", MemberId(0, 1), 7), StickyScore("k", MemberId(0, 1), 7));
}

TEST(Strategy, StickyFunUsesTheApplicationHash) {
  const std::vector<Handler> hs = Five();
  // Route key "n" to the handler whose registration time is n.
  const StickyHash hash = [](std::string_view key, const Handler& h) -> uint64_t {
    return std::to_string(h.registered_at.wall) == key ? 1 : 0;
  };
  for (uint64_t wall : {10, 20, 30, 40, 50}) {
    EXPECT_EQ((*StickyFun(hs, std::to_string(wall), hash))->registered_at.wall, wall);
  }
  // All tie: the greatest (node, id) wins, whatever the order.
  const StickyHash flat = [](std::string_view, const Handler&) { return uint64_t{0}; };
  EXPECT_EQ(**StickyFun(hs, "x", flat), H(3, 7, 30));
  const Result<const Handler*> none = StickyFun(hs, "x", StickyHash());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), RoutingErrc::kInvalidRoute);
  RoundRobinCursor cursor;
  auto r = RouteRequest({Strategy::kStickyFun, hash}, hs, Request{"40", "", ""}, cursor);
  EXPECT_EQ(std::get<Deliver>(*r).handlers[0]->registered_at.wall, 40u);
}

TEST(Strategy, FunRouter) {
  const std::vector<Handler> hs = Five();
  const Handler stranger = H(9, 9, 9);
  StrategyConfig config{Strategy::kFun, {}, [&](const Request& req, auto cands) -> RouterDecision {
                          if (req.routing_key == "pick") return Pick{cands.back()};
                          if (req.routing_key == "redirect") return Redirect{"other"};
                          if (req.routing_key == "reject") return Reject{"quota exceeded"};
                          if (req.routing_key == "transform") {
                            return Transform{"[" + std::string(req.payload) + "]", cands[0]};
                          }
                          if (req.routing_key == "nowhere") return Redirect{""};
                          return Pick{&stranger};
                        }};
  RoundRobinCursor cursor;
  auto pick = RouteRequest(config, hs, Request{"pick", "p", ""}, cursor);
  ASSERT_TRUE(pick.ok());
  EXPECT_EQ(std::get<Deliver>(*pick).handlers, std::vector<const Handler*>{&hs.back()});
  EXPECT_FALSE(std::get<Deliver>(*pick).payload.has_value());

  auto redirect = RouteRequest(config, hs, Request{"redirect", "p", ""}, cursor);
  ASSERT_TRUE(redirect.ok());
  EXPECT_EQ(std::get<Redirect>(*redirect).exchange, "other");

  auto reject = RouteRequest(config, hs, Request{"reject", "p", ""}, cursor);
  ASSERT_FALSE(reject.ok());
  EXPECT_EQ(reject.error().code(), RoutingErrc::kRejected);
  EXPECT_EQ(reject.error().message(), "quota exceeded");

  auto transform = RouteRequest(config, hs, Request{"transform", "p", ""}, cursor);
  ASSERT_TRUE(transform.ok());
  EXPECT_EQ(std::get<Deliver>(*transform).handlers[0], &hs[0]);
  EXPECT_EQ(std::get<Deliver>(*transform).payload, "[p]");

  for (const char* bad : {"stranger", "nowhere"}) {
    auto r = RouteRequest(config, hs, Request{bad, "p", ""}, cursor);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), RoutingErrc::kInvalidRoute);
  }
  // The router only sees candidates: the group's live handlers.
  const std::vector<Handler> grouped = {H(1, 1, 10, "eu"), H(1, 2, 20, "us")};
  auto g = RouteRequest(config, grouped, Request{"pick", "p", "eu"}, cursor);
  EXPECT_EQ(std::get<Deliver>(*g).handlers[0], &grouped[0]);
  auto none = RouteRequest(StrategyConfig{Strategy::kFun}, hs, Request{"pick", "", ""}, cursor);
  EXPECT_EQ(none.error().code(), RoutingErrc::kInvalidRoute);
}

}  // namespace
}  // namespace shoal::bus
