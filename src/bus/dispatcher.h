// The bus's dispatcher: one per node, sans-I/O. It owns the node's Registry and carries
// requests, replies and publications between callers, handlers and subscribers of the cluster.
//
// Design note.
//   * Transport. Everything between nodes is a call with an answer (DispatcherIo::Call, the
//     internal RPC in a node): registry messages (answer ignored, but awaited when a caller asked
//     for SyncInterest), request deliveries (the answer is the handler's reply) and publications
//     (the answer is the number of local deliveries). Bodies are msgpack, decoded with bounds;
//     OnCall answers garbage with an error and changes nothing.
//   * Requests are routed on the caller's node: the exchange's strategy (strategy.h) picks live
//     handlers from this node's registry view; each is delivered to locally or with one call to
//     its node, which hands it to the handler and answers with its reply. A fun router may
//     redirect (at most kMaxRedirects times). A request that reaches a node whose handler has gone
//     since (the views differed) is answered "gone" without reaching any handler, and the caller
//     routes it once more; apart from that a request is never resent: delivery is at most once.
//   * Errors come back at once and never silently: no exchange, no handler (like NATS
//     no-responders), a full handler queue (overflow, counted), the caller's own limit of
//     requests in flight (counted), a timeout (the caller's deadline; the handler's node also
//     drops the request from its queue at that deadline), the handler's own error, a lost node.
//   * Bounded queues. Each local handler holds at most `handler_queue` requests it has not
//     answered; more are refused with kOverflow and counted (Counters::overflow), never dropped.
//   * Publish-subscribe goes through one proxy per node (this object). Each node advertises its
//     local interest (the distinct channels, patterns and subjects its subscribers use) in its
//     registry state. A publisher sends one message to each live node whose interest matches
//     (itself included, locally); that node fans out to its local subscribers and answers with
//     the count. So n subscribers on k nodes cost k messages, not n. A node with more than
//     `max_interest` distinct entries advertises "everything" instead.
//   * Subscriptions take effect cluster-wide once SyncInterest's callback runs: the new interest
//     has then been merged by every live peer (or the call to it failed), so every publication
//     started anywhere after that reaches the subscriber while the membership is stable.
//   * Interest entries: "c" + channel (Redis SUBSCRIBE), "p" + glob (PSUBSCRIBE), "s" + channel
//     (SSUBSCRIBE), "x" + exchange + '\0' + NATS pattern (bus subscriptions), "r" + map name
//     (replicated maps' change batches; no RESP command reaches this space), "*" = everything.
//
// Callbacks (handlers, subscribers, responses) never run inside the call that caused them: they
// go through DispatcherIo::Defer. Single-threaded: the owner calls everything from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bus/registry.h"
#include "bus/strategy.h"
#include "bus/subject.h"
#include "common/result.h"

namespace shoal::bus {

enum class DispatchErrc {
  kNoExchange = 1,  // no exchange of that name (yet) in this node's view
  kWrongPattern,    // a request to a publish-subscribe exchange, or the reverse
  kOverflow,        // the handler's queue or the caller's limit of requests in flight is full
  kTimeout,         // no reply before the deadline
  kHandlerError,    // the handler answered with an error (its text is the message)
  kUnreachable,     // the handler's node could not be reached or went away
  kUnknownRequest,  // a reply to a request this handler does not hold (late, or never sent)
  kMalformed,       // bytes from a peer that do not decode
};
SHOAL_ERROR_CATEGORY_DECL(DispatchErrc)

}  // namespace shoal::bus

template <>
struct std::is_error_code_enum<shoal::bus::DispatchErrc> : std::true_type {};

namespace shoal::bus {

inline constexpr int kMaxRedirects = 4;

class DispatcherIo {
 public:
  virtual ~DispatcherIo() = default;
  // Wall clock, microseconds.
  virtual int64_t Now() = 0;
  // Sends `body` to the peer's Dispatcher::OnCall and calls `done` once with its answer or an
  // error (DispatchErrc::kTimeout when `timeout_ms` passed, anything else for a lost or refused
  // connection). Never calls `done` from inside Call.
  using CallDone = std::function<void(Result<std::string>)>;
  virtual void Call(const MemberId& to, std::string body, int64_t timeout_ms, CallDone done) = 0;
  // Runs `fn` later on the dispatcher's thread (soon, not from inside the current call).
  virtual void Defer(std::function<void()> fn) = 0;
};

struct DispatcherOptions {
  RegistryOptions registry;
  size_t handler_queue = 1024;   // unanswered requests per local handler
  size_t max_pending = 100'000;  // requests in flight that this node's callers started
  int64_t default_timeout_ms = 5'000;
  int64_t registry_call_timeout_ms = 2'000;
  size_t max_payload = 64 << 20;  // bytes of payload in one request, reply or publication
};

struct Counters {
  uint64_t requests = 0;          // started by this node's callers
  uint64_t replies_ok = 0;        // requests answered by a handler
  uint64_t handler_errors = 0;    // answered with the handler's error
  uint64_t no_handler = 0;        // refused at once: no live handler
  uint64_t timeouts = 0;          // callers' requests that timed out
  uint64_t overflow = 0;          // refused: a local handler's queue was full
  uint64_t caller_overflow = 0;   // refused: this node's limit of requests in flight
  uint64_t unreachable = 0;       // the handler's node could not be reached
  uint64_t delivered = 0;         // requests handed to this node's handlers
  uint64_t expired = 0;           // requests dropped from a local handler's queue at their deadline
  uint64_t late_replies = 0;      // replies to requests no longer held
  uint64_t retried_gone = 0;      // requests routed again because their handler had just gone
  uint64_t publishes = 0;         // publications started on this node
  uint64_t publish_messages = 0;  // inter-node publication messages sent
  uint64_t publish_received = 0;  // publication messages received from peers
  uint64_t publish_deliveries = 0;  // deliveries to this node's subscribers
  uint64_t malformed = 0;           // undecodable messages from peers
};

// A request as a handler sees it.
struct IncomingRequest {
  uint64_t id = 0;  // unique per handler's node; BUS.REPLY / Dispatcher::Reply names it
  std::string exchange;
  std::string routing_key;
  std::string payload;
  std::string tag;    // the caller's request tag, echoed with the reply
  std::string group;  // the service tag the request targeted ("" = any)
  MemberId caller;    // the node of the caller
  int64_t deadline = 0;
};

struct HandlerCallbacks {
  // The handler must answer with Dispatcher::Reply (once); it may do so later.
  std::function<void(const Handler& self, const IncomingRequest& request)> on_request;
  // Registry events for the handler's exchange (kLeader, kMemberUp, kMemberDown).
  std::function<void(const Handler& self, const Event& event)> on_event;
};

struct RequestOptions {
  std::string group;       // service tag: only handlers of this group
  std::string tag;         // request tag: returned in the Response
  int64_t timeout_ms = 0;  // 0: the default
};

struct ReplyPart {
  MemberId node;
  uint64_t handler = 0;
  bool ok = true;
  std::string payload;  // the reply, or the handler's error text when !ok
};

struct Response {
  std::string tag;
  std::vector<ReplyPart> replies;  // one, or one per handler for broadcast (leader order)
  bool broadcast = false;          // the exchange's strategy is broadcast
};
using ResponseCallback = std::function<void(Result<Response>)>;

// Publish-subscribe.
enum class Space : char {
  kChannel = 'c',     // Redis SUBSCRIBE / PUBLISH
  kPattern = 'p',     // Redis PSUBSCRIBE (glob), matched against channels
  kShard = 's',       // Redis SSUBSCRIBE / SPUBLISH
  kSubject = 'x',     // bus exchanges, NATS patterns
  kReplicated = 'r',  // replicated maps' changes (engine/replicated_maps.h): exact names, internal
};

struct Publication {
  Space space = Space::kChannel;  // kChannel, kShard or kSubject
  std::string exchange;           // kSubject
  std::string subject;            // channel or subject
  std::string payload;
  MemberId origin;
};

// A local subscriber: delivers `p` (which matched `pattern`) and calls `done` with the number of
// deliveries it made (an aggregate subscriber, e.g. a worker thread's clients, may make many),
// possibly later.
using SubscriberFn = std::function<void(const Publication& p, const std::string& pattern,
                                        std::function<void(uint64_t)> done)>;

class Dispatcher : private RegistryIo {
 public:
  Dispatcher(MemberId self, DispatcherIo* io, DispatcherOptions options = {});
  ~Dispatcher() override;

  Registry& registry() { return registry_; }
  const Registry& registry() const { return registry_; }
  const Counters& counters() const { return counters_; }
  const DispatcherOptions& options() const { return options_; }

  // Inputs.
  void OnView(std::shared_ptr<const membership::MemberTable> view);
  // A call from a peer's Dispatcher (DispatcherIo::Call); `answer` gets the reply body or error.
  void OnCall(const MemberId& from, std::string_view body,
              std::function<void(Result<std::string>)> answer);
  // Timers: anti-entropy and deadlines. Call every few milliseconds.
  void Tick();

  // Exchanges.
  Result<ExchangeSpec> Create(std::string_view name, Pattern pattern, std::string_view strategy);
  // The application's hash (sticky_fun) or router (fun) for an exchange, on this node (they are
  // code: install them on every node that sends requests through the exchange).
  void SetStrategyConfig(std::string_view exchange, StrategyConfig config);

  // Handlers.
  Result<Handler> Serve(std::string_view exchange, std::string_view group,
                        std::string_view connection_tag, HandlerCallbacks callbacks);
  // Removes a handler; the requests it still holds are answered kUnreachable.
  Status Unserve(uint64_t handler_id);
  // Answers request `request_id` held by handler `handler_id`: a payload, or an error whose
  // message the caller gets (kHandlerError). kUnknownRequest if it is not held (late or unknown).
  Status Reply(uint64_t handler_id, uint64_t request_id, Result<std::string> reply);

  // Requests (request-response exchanges).
  void Request(std::string_view exchange, std::string_view routing_key, std::string payload,
               RequestOptions options, ResponseCallback done);

  // Publish-subscribe. `pattern` is a channel (kChannel, kShard), a glob (kPattern) or a NATS
  // pattern (kSubject, on a publish-subscribe exchange this node knows).
  Result<uint64_t> Subscribe(Space space, std::string_view exchange, std::string_view pattern,
                             SubscriberFn fn);
  Status Unsubscribe(uint64_t subscription_id);
  // Runs `done` once every live peer has merged this node's current interest (or failed to).
  void SyncInterest(std::function<void()> done);
  // Delivers to every matching subscription in the cluster; `done` gets the number of deliveries
  // (as PUBLISH's reply). kSubject needs a publish-subscribe exchange.
  void Publish(Space space, std::string_view exchange, std::string_view subject,
               std::string payload, std::function<void(Result<uint64_t>)> done);

  // Introspection.
  size_t pending_requests() const { return pending_.size(); }
  size_t local_handlers() const { return handlers_.size(); }
  size_t held_requests() const;
  std::vector<std::string> LocalInterest() const;

 private:
  struct LocalHandler {
    Handler handler;
    HandlerCallbacks callbacks;
    // Requests handed to it and not answered yet: id -> how to answer.
    std::map<uint64_t, std::pair<int64_t, std::function<void(Result<std::string>)>>> held;
  };
  struct Pending {
    std::string exchange;
    std::string routing_key;
    std::string payload;
    RequestOptions options;
    ResponseCallback done;
    int64_t deadline = 0;
    std::vector<std::optional<ReplyPart>> parts;
    size_t outstanding = 0;
    int redirects = 0;
    bool retried = false;
    bool broadcast = false;
  };
  struct Subscription {
    Space space;
    std::string exchange;
    std::string pattern;
    SubscriberFn fn;
  };
  // Interest of one live node, derived from its registry state.
  struct NodeInterest {
    bool all = false;
    absl::flat_hash_set<std::string> exact;                          // "c..." and "s..." entries
    std::vector<std::string> globs;                                  // patterns of "p..." entries
    std::map<std::string, SubjectIndex<int>, std::less<>> subjects;  // by exchange
  };

  // RegistryIo.
  void Send(const MemberId& to, std::string bytes) override;
  void Emit(const Event& event) override;

  void RoutePending(uint64_t pending_id);
  void DeliverTo(uint64_t pending_id, size_t part, const Handler& handler, std::string payload);
  void CompletePart(uint64_t pending_id, size_t part, Result<ReplyPart> r);
  void Finish(uint64_t pending_id, Result<Response> r);
  // Hands a request to a local handler, or answers an error (gone, overflow).
  void Hold(IncomingRequest req, uint64_t handler_id,
            std::function<void(Result<std::string>)> answer);
  void OnRequestCall(const MemberId& from, std::string_view body,
                     std::function<void(Result<std::string>)> answer);
  void OnPublishCall(const MemberId& from, std::string_view body,
                     std::function<void(Result<std::string>)> answer);
  // Local fan-out: calls done with the number of deliveries.
  void DeliverLocal(const Publication& p, std::function<void(uint64_t)> done);
  bool NodeMatches(const NodeInterest& ni, const Publication& p) const;
  void RefreshInterestIndex();
  void InterestChanged();
  void FlushInterest();

  MemberId self_;
  DispatcherIo* io_;
  DispatcherOptions options_;
  Registry registry_;
  Counters counters_;

  uint64_t next_request_ = 1;  // ids of requests delivered to local handlers
  uint64_t next_pending_ = 1;
  std::map<uint64_t, LocalHandler> handlers_;  // by handler id
  std::unordered_map<uint64_t, Pending> pending_;
  std::map<std::string, RoundRobinCursor, std::less<>> cursors_;
  std::map<std::string, StrategyConfig, std::less<>> configs_;

  uint64_t next_subscription_ = 1;
  std::map<uint64_t, Subscription> subscriptions_;
  absl::flat_hash_map<std::string, std::vector<uint64_t>> exact_subs_;       // "c.."/"s.." entries
  std::map<std::string, std::vector<uint64_t>> glob_subs_;                   // by glob
  std::map<std::string, SubjectIndex<uint64_t>, std::less<>> subject_subs_;  // by exchange
  std::map<std::string, size_t> interest_count_;  // local interest entry -> subscriptions
  bool interest_dirty_ = false;
  bool flush_scheduled_ = false;
  std::vector<std::function<void()>> sync_waiters_;
  uint64_t interest_generation_ = ~uint64_t{0};
  std::vector<std::pair<MemberId, NodeInterest>> cluster_interest_;
  // Registry sends made during a flush: completed when every one is answered.
  struct SyncRound {
    size_t outstanding = 0;
    std::vector<std::function<void()>> waiters;
  };
  std::shared_ptr<SyncRound> round_;     // the round whose sends are being made (during Flush)
  std::weak_ptr<SyncRound> last_round_;  // the latest round with sends, while unanswered
};

}  // namespace shoal::bus
