#include "bus/strategy.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "common/hash.h"

namespace shoal::bus {
namespace {

constexpr std::array<std::pair<Strategy, std::string_view>, 7> kNames = {{
    {Strategy::kBroadcast, "broadcast"},
    {Strategy::kRoundRobin, "round_robin"},
    {Strategy::kLeader, "leader"},
    {Strategy::kLeaderRoundRobin, "leader_round_robin"},
    {Strategy::kSticky, "sticky"},
    {Strategy::kStickyFun, "sticky_fun"},
    {Strategy::kFun, "fun"},
}};

bool Before(const Handler* a, const Handler* b) { return a->LeaderKey() < b->LeaderKey(); }

std::pair<MemberId, uint64_t> Identity(const Handler& h) { return {h.node, h.id}; }

// xxh3 of (node, id) as 24 bytes, seeded with the key's hash: O(1) per handler.
uint64_t ScoreWithSeed(uint64_t key_hash, const MemberId& node, uint64_t id) {
  const uint64_t words[3] = {node.hi(), node.lo(), id};
  char bytes[sizeof words];
  std::memcpy(bytes, words, sizeof bytes);
  return Hash64(std::string_view(bytes, sizeof bytes), key_hash);
}

// The highest score wins; ties go to the greater (node, id), never to list order.
template <typename Score>
Result<const Handler*> Rendezvous(std::span<const Handler> handlers, const Filter& filter,
                                  Score&& score) {
  const Handler* best = nullptr;
  uint64_t best_score = 0;
  for (const Handler* h : Candidates(handlers, filter)) {
    const uint64_t s = score(*h);
    if (best == nullptr || s > best_score || (s == best_score && Identity(*h) > Identity(*best))) {
      best = h;
      best_score = s;
    }
  }
  if (best == nullptr) return NoHandler(filter.group);
  return best;
}

Result<Route> One(Result<const Handler*> r) {
  if (!r.ok()) return r.error();
  return Route(Deliver{{*r}, std::nullopt});
}

}  // namespace

std::string_view StrategyName(Strategy s) {
  for (const auto& [strategy, name] : kNames) {
    if (strategy == s) return name;
  }
  return "unknown";
}

Result<Strategy> ParseStrategy(std::string_view name) {
  for (const auto& [strategy, n] : kNames) {
    if (n == name) return strategy;
  }
  return Error(RoutingErrc::kInvalidRoute,
               "unknown strategy '" + std::string(name) +
                   "' (broadcast, round_robin, leader, leader_round_robin, sticky, sticky_fun, "
                   "fun)");
}

std::vector<const Handler*> Candidates(std::span<const Handler> handlers, const Filter& filter) {
  std::vector<const Handler*> out;
  out.reserve(handlers.size());
  for (const Handler& h : handlers) {
    if (!filter.group.empty() && h.group != filter.group) continue;
    if (filter.alive && !filter.alive(h)) continue;
    out.push_back(&h);
  }
  return out;
}

Error NoHandler(std::string_view group) {
  if (group.empty()) return Error(RoutingErrc::kNoHandler, "no live handler");
  return Error(RoutingErrc::kNoHandler, "no live handler in group '" + std::string(group) + "'");
}

Result<std::vector<const Handler*>> Broadcast(std::span<const Handler> handlers,
                                              const Filter& filter) {
  std::vector<const Handler*> c = Candidates(handlers, filter);
  if (c.empty()) return NoHandler(filter.group);
  std::sort(c.begin(), c.end(), Before);
  return c;
}

Result<const Handler*> Leader(std::span<const Handler> handlers, const Filter& filter) {
  const Handler* best = nullptr;
  for (const Handler* h : Candidates(handlers, filter)) {
    if (best == nullptr || Before(h, best)) best = h;
  }
  if (best == nullptr) return NoHandler(filter.group);
  return best;
}

Result<const Handler*> RoundRobinCursor::Next(std::span<const Handler> handlers,
                                              const Filter& filter) {
  const std::vector<const Handler*> c = Candidates(handlers, filter);
  if (c.empty()) return NoHandler(filter.group);
  auto it = last_.find(filter.group);
  const Handler* first = nullptr;  // the least key: where the rotation wraps to
  const Handler* next = nullptr;   // the least key after the last pick
  for (const Handler* h : c) {
    if (first == nullptr || Before(h, first)) first = h;
    if (it != last_.end() && h->LeaderKey() > it->second && (next == nullptr || Before(h, next))) {
      next = h;
    }
  }
  const Handler* pick = next != nullptr ? next : first;
  if (it != last_.end()) {
    it->second = pick->LeaderKey();
  } else {
    last_.emplace(std::string(filter.group), pick->LeaderKey());
  }
  return pick;
}

uint64_t StickyScore(std::string_view key, const MemberId& node, uint64_t handler_id) {
  return ScoreWithSeed(Hash64(key), node, handler_id);
}

Result<const Handler*> Sticky(std::span<const Handler> handlers, std::string_view key,
                              const Filter& filter) {
  const uint64_t seed = Hash64(key);
  return Rendezvous(handlers, filter,
                    [seed](const Handler& h) { return ScoreWithSeed(seed, h.node, h.id); });
}

Result<const Handler*> StickyFun(std::span<const Handler> handlers, std::string_view key,
                                 const StickyHash& hash, const Filter& filter) {
  if (!hash) {
    return Error(RoutingErrc::kInvalidRoute, "sticky_fun exchange without a hash function");
  }
  return Rendezvous(handlers, filter, [&](const Handler& h) { return hash(key, h); });
}

Result<Route> RouteFun(std::span<const Handler> handlers, const Request& request,
                       const Router& router, const std::function<bool(const Handler&)>& alive) {
  if (!router) return Error(RoutingErrc::kInvalidRoute, "fun exchange without a router");
  const std::vector<const Handler*> c = Candidates(handlers, Filter{request.group, alive});
  if (c.empty()) return NoHandler(request.group);
  const RouterDecision d = router(request, c);
  auto check = [&c](const Handler* h) -> Status {
    if (h != nullptr && std::find(c.begin(), c.end(), h) != c.end()) return Status::Ok();
    return Error(RoutingErrc::kInvalidRoute, "the router picked a handler that is not a candidate");
  };
  if (const auto* p = std::get_if<Pick>(&d)) {
    if (Status s = check(p->handler); !s.ok()) return s.error();
    return Route(Deliver{{p->handler}, std::nullopt});
  }
  if (const auto* t = std::get_if<Transform>(&d)) {
    if (Status s = check(t->handler); !s.ok()) return s.error();
    return Route(Deliver{{t->handler}, t->payload});
  }
  if (const auto* r = std::get_if<Redirect>(&d)) {
    if (r->exchange.empty()) {
      return Error(RoutingErrc::kInvalidRoute, "the router redirected to an empty exchange name");
    }
    return Route(*r);
  }
  return Error(RoutingErrc::kRejected, std::get<Reject>(d).error);
}

Result<Route> RouteRequest(const StrategyConfig& config, std::span<const Handler> handlers,
                           const Request& request, RoundRobinCursor& cursor,
                           const std::function<bool(const Handler&)>& alive) {
  const Filter filter{request.group, alive};
  switch (config.strategy) {
    case Strategy::kBroadcast: {
      auto all = Broadcast(handlers, filter);
      if (!all.ok()) return all.error();
      return Route(Deliver{std::move(*all), std::nullopt});
    }
    case Strategy::kRoundRobin:
    case Strategy::kLeaderRoundRobin:
      return One(cursor.Next(handlers, filter));
    case Strategy::kLeader:
      return One(Leader(handlers, filter));
    case Strategy::kSticky:
      return One(Sticky(handlers, request.routing_key, filter));
    case Strategy::kStickyFun:
      return One(StickyFun(handlers, request.routing_key, config.sticky_hash, filter));
    case Strategy::kFun:
      return RouteFun(handlers, request, config.router, alive);
  }
  return Error(RoutingErrc::kInvalidRoute, "unknown strategy");
}

}  // namespace shoal::bus
