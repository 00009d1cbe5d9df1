// The bus's cluster-wide registry of exchanges and handlers, and the leader of each exchange.
//
// Design note. `Registry` is a sans-I/O core, one per node: inputs are the membership view
// (OnView), messages from peers (OnMessage), timer ticks (Tick) and the local API (Create,
// Register, Unregister); outputs go through `RegistryIo` (Send to a member, Emit an event). Every
// `now` is the node's wall clock in microseconds (it feeds the hybrid logical clock).
//
//   * Ownership. Each node owns its handlers: only it adds or removes them. It publishes them, with
//     every exchange it knows, as one versioned `NodeState`; the version grows by one per change
//     and starts at the node's boot time (HLC wall part), so a restarted node (same id, memory
//     lost) supersedes its previous life.
//   * Exchanges are a grow-only map name -> spec, merged by "the least (created_at, creator)
//     wins". Two creations with the same pattern and strategy are the same exchange; with another
//     pattern or strategy they conflict: locally the second Create is refused (kConflict), across
//     nodes the later one loses everywhere and `kExchangeConflict` is emitted once per loser.
//     Exchanges outlive their creator (every state carries every exchange its node knows).
//   * Convergence: push on change (the node's own state to every live peer) plus anti-entropy:
//     every `anti_entropy_interval` a digest {node -> version} goes to the next live peer in turn;
//     the receiver pulls what is newer there and sends back what is newer here. States of dead
//     nodes are kept (their versions still order later news) but their handlers do not count,
//     until the membership reaps the node; then the state is dropped and its version remembered.
//   * Liveness comes from the membership view only: a handler counts while its node is alive or
//     suspect in this node's view (the node itself always counts). Dead or left nodes' handlers
//     drop out everywhere as each view learns it, with no message needed.
//   * Leader: per exchange, the live handler with the least (registered_at, node, handler id);
//     registered_at is the HLC time of Register. No vote: every node that has the same states and
//     the same view appoints the same leader.
//   * Events (for the node's local dispatcher, which hands them to its handlers of `exchange`):
//     after any change of an exchange's live handlers, kMemberDown for each handler gone, kMemberUp
//     for each new one, then kLeader (the leader, or none, and all live handlers in leader order).
//
// Wire (msgpack, see common/wire.h): [1, type, sender, hlc, body]; Digest, Pull and States.
// Decoding is bounded (sizes, counts, nesting) and returns kMalformed, never throws.
//
// Single-threaded: the owner calls it from one thread.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "common/hlc.h"
#include "common/result.h"
#include "membership/types.h"

namespace shoal::bus {

enum class Errc {
  kInvalidArgument = 1,  // empty or oversized name, unknown pattern...
  kConflict,             // an exchange of that name exists with another pattern or strategy
  kNotFound,             // no such exchange or handler
  kMalformed,            // bytes that do not decode
  kBadVersion,           // a wire version this build does not speak
};
SHOAL_ERROR_CATEGORY_DECL(Errc)

}  // namespace shoal::bus

template <>
struct std::is_error_code_enum<shoal::bus::Errc> : std::true_type {};

namespace shoal::bus {

using membership::MemberId;

enum class Pattern : uint8_t { kRequestResponse = 0, kPublishSubscribe = 1 };
std::string_view ToString(Pattern pattern);

struct ExchangeSpec {
  std::string name;
  Pattern pattern = Pattern::kRequestResponse;
  std::string strategy;  // "round_robin", "leader", ... (interpreted by strategy.h)
  HlcTime created_at;
  MemberId creator;

  bool operator==(const ExchangeSpec&) const = default;
  // Same pattern and strategy: re-creating it is not a conflict.
  bool SameKind(const ExchangeSpec& o) const {
    return pattern == o.pattern && strategy == o.strategy;
  }
  // The winner of a conflict (or the canonical copy of one exchange) has the least key.
  std::pair<HlcTime, MemberId> Key() const { return {created_at, creator}; }
};

struct Handler {
  std::string exchange;
  MemberId node;           // the node it lives on (which owns it)
  uint64_t id = 0;         // unique on its node
  std::string group;       // service tag
  std::string connection;  // connection tag
  HlcTime registered_at;

  bool operator==(const Handler&) const = default;
  // Leader order: the least is the leader.
  std::tuple<HlcTime, MemberId, uint64_t> LeaderKey() const { return {registered_at, node, id}; }
};

// Everything one node publishes.
struct NodeState {
  MemberId node;
  uint64_t version = 0;
  std::vector<ExchangeSpec> exchanges;  // every exchange the node knows, by name
  std::vector<Handler> handlers;        // its own handlers, by id
  // Its publish-subscribe interest, sorted and unique: opaque entries the dispatcher defines
  // (channels, patterns, subjects), so a publisher sends one message only to the nodes that have
  // matching subscribers.
  std::vector<std::string> interest;

  bool operator==(const NodeState&) const = default;
};

enum class EventKind : uint8_t { kLeader, kMemberUp, kMemberDown, kExchangeConflict };
std::string_view ToString(EventKind kind);

struct Event {
  EventKind kind = EventKind::kLeader;
  std::string exchange;
  // kMemberUp / kMemberDown: the handler.
  std::optional<Handler> handler;
  // kLeader: the leader (none when the exchange has no live handler) and all live handlers in
  // leader order.
  std::optional<Handler> leader;
  std::vector<Handler> handlers;
  // kExchangeConflict: the spec that won and the one that lost.
  std::optional<ExchangeSpec> winner;
  std::optional<ExchangeSpec> loser;
};

class RegistryIo {
 public:
  virtual ~RegistryIo() = default;
  // Best effort (a datagram or a message on a stream that may break): loss is repaired by
  // anti-entropy.
  virtual void Send(const MemberId& to, std::string bytes) = 0;
  virtual void Emit(const Event& event) = 0;
};

struct RegistryOptions {
  int64_t anti_entropy_interval = 500'000;  // microseconds
  // Limits (checked on local calls and on decoding).
  size_t max_name = 255;  // exchange names, strategies, groups and connection tags
  size_t max_handlers_per_node = 1 << 16;
  size_t max_exchanges = 1 << 16;
  size_t max_interest = 1 << 13;     // interest entries per node
  size_t max_interest_entry = 4096;  // bytes per interest entry
  size_t max_dropped = 4096;         // versions of reaped nodes remembered
};

// The wire messages (exposed for tests).
enum class MessageType : uint8_t { kDigest = 1, kPull = 2, kStates = 3 };
struct Message {
  MessageType type = MessageType::kDigest;
  MemberId sender;
  HlcTime hlc;
  std::map<MemberId, uint64_t> digest;  // kDigest
  std::vector<MemberId> pull;           // kPull
  std::vector<NodeState> states;        // kStates
};
std::string Encode(const Message& m);
Result<Message> Decode(std::string_view bytes, const RegistryOptions& limits = {});

class Registry {
 public:
  Registry(MemberId self, int64_t now, RegistryIo* io, RegistryOptions options = {});

  // Local API. Create returns the exchange (the existing one if it was already created with the
  // same pattern and strategy).
  Result<ExchangeSpec> Create(std::string_view name, Pattern pattern, std::string_view strategy,
                              int64_t now);
  Result<Handler> Register(std::string_view exchange, std::string_view group,
                           std::string_view connection, int64_t now);
  Status Unregister(uint64_t handler_id, int64_t now);
  // Replaces this node's publish-subscribe interest (sorted, unique; within the limits) and, if it
  // changed, publishes it. Returns the peers the new state was pushed to (empty if unchanged).
  std::vector<MemberId> SetInterest(std::vector<std::string> interest, int64_t now);

  // Inputs.
  void OnView(std::shared_ptr<const membership::MemberTable> view, int64_t now);
  Status OnMessage(const MemberId& from, std::string_view bytes, int64_t now);
  void Tick(int64_t now);

  // Queries (this node's view).
  MemberId self() const { return self_; }
  uint64_t version() const { return states_.at(self_).version; }
  const ExchangeSpec* FindExchange(std::string_view name) const;
  const std::map<std::string, ExchangeSpec, std::less<>>& exchanges() const { return exchanges_; }
  // Live handlers of `exchange` in leader order (empty if none or unknown).
  std::vector<Handler> Handlers(std::string_view exchange) const;
  std::optional<Handler> Leader(std::string_view exchange) const;
  std::map<MemberId, uint64_t> Digest() const;
  const std::map<MemberId, NodeState>& states() const { return states_; }
  // Whether `node`'s handlers and interest count (alive or suspect in the view, or self).
  bool Live(const MemberId& node) const;
  // Grows whenever a node's state or liveness may have changed (cache key for derived indexes).
  uint64_t generation() const { return generation_; }
  // The states of nodes that are live in this view (self included).
  std::vector<const NodeState*> LiveStates() const;

 private:
  struct View {
    std::vector<Handler> handlers;  // live, leader order
  };

  std::vector<MemberId> LivePeers() const;
  // Merges one spec into exchanges_; returns whether exchanges_ changed.
  bool MergeExchange(const ExchangeSpec& spec);
  // Rebuilds the node's own state with a new version and pushes it to every live peer.
  std::vector<MemberId> Publish(int64_t now);
  void Recompute();
  void SendMessage(const MemberId& to, Message m, int64_t now);

  MemberId self_;
  RegistryIo* io_;
  RegistryOptions options_;
  HybridClock hlc_;
  uint64_t next_handler_ = 1;
  std::map<uint64_t, Handler> own_;  // this node's handlers by id
  std::map<std::string, ExchangeSpec, std::less<>> exchanges_;
  std::set<std::pair<std::string, std::pair<HlcTime, MemberId>>> reported_losers_;
  std::map<MemberId, NodeState> states_;  // includes self
  std::shared_ptr<const membership::MemberTable> view_;
  std::map<std::string, View, std::less<>> views_;
  int64_t next_anti_entropy_ = 0;
  size_t peer_cursor_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::string> interest_;     // this node's
  std::map<MemberId, uint64_t> dropped_;  // reaped nodes -> the version their state had
};

}  // namespace shoal::bus
