// The bus's seven balancing strategies as pure functions over a list of handlers,
// sans-I/O: the registry supplies its view (Registry::Handlers), these functions say who gets a
// request. They take the registry's own `Handler` so that "leader" here is exactly the leader the
// registry appoints (the least Handler::LeaderKey() = (registered_at, node, id)).
//
// Candidates: the handlers that are alive and, when the request targets a service tag (group),
// belong to that group. Registry::Handlers lists live handlers only; `Filter::alive` lets the
// dispatcher drop more (e.g. a handler whose connection just closed). No candidate gives
// RoutingErrc::kNoHandler at once (like NATS no-responders).
//
// A handler's identity is (node, id): ids are unique per node only.
//   broadcast           every candidate, in leader order.
//   round_robin         the next candidate in leader order after the one picked last (per group),
//                       wrapping; dead or departed handlers are skipped, newcomers join the
//                       rotation at their place. Over n picks with a stable set of k candidates
//                       each gets n/k (±1). State: a RoundRobinCursor (it stores a key, not a
//                       pointer or an index, so it survives any change of the list).
//   leader              the least LeaderKey among the candidates: the oldest registration.
//   leader_round_robin  routes like round_robin; the leader (Leader()) is only reported.
//   sticky              rendezvous (highest random weight) hashing: each candidate scores
//                       StickyScore(key, node, id) = xxh3(node, id) seeded with xxh3(key), and the
//                       highest wins (ties: the greater (node, id)). A key keeps its handler while
//                       it lives; when one leaves only its keys move, and a newcomer takes only
//                       the keys it now wins (about 1/(k+1) of them). O(k) per request.
//   sticky_fun          the same with the application's score function.
//   fun                 the application's Router returns Pick, Redirect, Reject or Transform.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "bus/registry.h"
#include "bus/subject.h"
#include "common/result.h"

namespace shoal::bus {

enum class Strategy {
  kBroadcast,
  kRoundRobin,
  kLeader,
  kLeaderRoundRobin,
  kSticky,
  kStickyFun,
  kFun,
};

// "broadcast", "round_robin", "leader", "leader_round_robin", "sticky", "sticky_fun", "fun" (the
// strings ExchangeSpec::strategy holds).
std::string_view StrategyName(Strategy s);
Result<Strategy> ParseStrategy(std::string_view name);  // kInvalidRoute on an unknown name

// Which handlers may take a request.
struct Filter {
  std::string_view group;                          // service tag; empty = any
  std::function<bool(const Handler&)> alive = {};  // empty = all the given handlers are alive
};

// The candidates in input order. Pointers are into `handlers`.
std::vector<const Handler*> Candidates(std::span<const Handler> handlers, const Filter& filter);

// kNoHandler, naming the group if any.
Error NoHandler(std::string_view group);

// broadcast: every candidate, in leader order.
Result<std::vector<const Handler*>> Broadcast(std::span<const Handler> handlers,
                                              const Filter& filter = {});

// leader: the candidate with the least LeaderKey().
Result<const Handler*> Leader(std::span<const Handler> handlers, const Filter& filter = {});

// round_robin and leader_round_robin; one cursor per exchange (it keeps one position per group).
class RoundRobinCursor {
 public:
  Result<const Handler*> Next(std::span<const Handler> handlers, const Filter& filter = {});

 private:
  using Key = std::tuple<HlcTime, MemberId, uint64_t>;
  std::map<std::string, Key, std::less<>> last_;  // by group
};

// sticky.
uint64_t StickyScore(std::string_view key, const MemberId& node, uint64_t handler_id);
Result<const Handler*> Sticky(std::span<const Handler> handlers, std::string_view key,
                              const Filter& filter = {});

// sticky_fun: the highest application score wins (ties: the greater (node, id)).
using StickyHash = std::function<uint64_t(std::string_view key, const Handler& handler)>;
Result<const Handler*> StickyFun(std::span<const Handler> handlers, std::string_view key,
                                 const StickyHash& hash, const Filter& filter = {});

// fun: the application's router sees the request and the candidates and decides.
struct Request {
  std::string_view routing_key;
  std::string_view payload;
  std::string_view group;  // service tag; empty = any
};
struct Pick {
  const Handler* handler;  // one of the candidates
};
struct Redirect {
  std::string exchange;  // route the request through this exchange instead
};
struct Reject {
  std::string error;
};
struct Transform {
  std::string payload;     // the new request payload ...
  const Handler* handler;  // ... delivered to this candidate
};
using RouterDecision = std::variant<Pick, Redirect, Reject, Transform>;
using Router = std::function<RouterDecision(const Request& request,
                                            std::span<const Handler* const> candidates)>;

// The outcome of routing one request.
struct Deliver {
  std::vector<const Handler*> handlers;  // one, or all for broadcast
  std::optional<std::string> payload;    // set when a router transformed the request
};
using Route = std::variant<Deliver, Redirect>;

// fun: runs the router over the candidates. kNoHandler when there are none (the router is not
// called), kRejected with the router's text on Reject, kInvalidRoute when there is no router, it
// picks a handler that is not a candidate, or it redirects to an empty name.
Result<Route> RouteFun(std::span<const Handler> handlers, const Request& request,
                       const Router& router, const std::function<bool(const Handler&)>& alive = {});

// One entry point for the dispatcher: an exchange's strategy plus what it needs.
struct StrategyConfig {
  Strategy strategy = Strategy::kRoundRobin;
  StickyHash sticky_hash = {};  // kStickyFun
  Router router = {};           // kFun
};
Result<Route> RouteRequest(const StrategyConfig& config, std::span<const Handler> handlers,
                           const Request& request, RoundRobinCursor& cursor,
                           const std::function<bool(const Handler&)>& alive = {});

}  // namespace shoal::bus
