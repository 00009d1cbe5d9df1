#include "bus/dispatcher.h"

#include <algorithm>
#include <utility>

#include "common/glob.h"
#include "common/wire.h"

namespace shoal::bus {

namespace {

std::string_view DescribeDispatchErrc(DispatchErrc e) {
  switch (e) {
    case DispatchErrc::kNoExchange:
      return "no such exchange";
    case DispatchErrc::kWrongPattern:
      return "wrong exchange pattern";
    case DispatchErrc::kOverflow:
      return "queue full";
    case DispatchErrc::kTimeout:
      return "timeout";
    case DispatchErrc::kHandlerError:
      return "handler error";
    case DispatchErrc::kUnreachable:
      return "handler unreachable";
    case DispatchErrc::kUnknownRequest:
      return "unknown request";
    case DispatchErrc::kMalformed:
      return "malformed message";
  }
  return "";
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(DispatchErrc, "bus", DescribeDispatchErrc)

namespace {

constexpr uint64_t kWireVersion = 1;
enum CallType : uint64_t { kRegistryCall = 1, kRequestCall = 2, kPublishCall = 3 };
// The status of a request's answer.
enum AnswerStatus : uint64_t {
  kAnsOk = 0,
  kAnsHandlerError = 1,
  kAnsGone = 2,  // the handler is not on this node (any more): nothing was delivered
  kAnsOverflow = 3,
  kAnsTimeout = 4,
  kAnsUnreachable = 5,
};

std::string EncodeAnswer(AnswerStatus status, std::string_view payload) {
  wire::Writer w;
  w.Array(2);
  w.U64(status);
  w.Bin(payload);
  return w.Take();
}

// A local answer (Result) as the wire status.
// The wire status of a local error (the same mapping for local and remote answers).
AnswerStatus StatusOf(const Error& e) {
  const std::error_code& c = e.code();
  if (c == DispatchErrc::kHandlerError) return kAnsHandlerError;
  if (c == DispatchErrc::kOverflow) return kAnsOverflow;
  if (c == DispatchErrc::kTimeout) return kAnsTimeout;
  if (c == DispatchErrc::kUnknownRequest) return kAnsGone;
  return kAnsUnreachable;
}

// A local answer (Result) as the wire answer.
std::string AnswerOf(const Result<std::string>& r) {
  if (r.ok()) return EncodeAnswer(kAnsOk, *r);
  return EncodeAnswer(StatusOf(r.error()), r.error().message());
}

std::string InterestEntry(Space space, std::string_view exchange, std::string_view pattern) {
  std::string e(1, static_cast<char>(space));
  if (space == Space::kSubject) {
    e.append(exchange);
    e.push_back('\0');
  }
  e.append(pattern);
  return e;
}

}  // namespace

Dispatcher::Dispatcher(MemberId self, DispatcherIo* io, DispatcherOptions options)
    : self_(self),
      io_(io),
      options_(std::move(options)),
      registry_(self, io->Now(), this, options_.registry) {}

Dispatcher::~Dispatcher() = default;

// ---------------------------------------------------------------------------------------------
// Registry plumbing

void Dispatcher::Send(const MemberId& to, std::string bytes) {
  wire::Writer w;
  w.Array(3);
  w.U64(kWireVersion);
  w.U64(kRegistryCall);
  w.Bin(bytes);
  std::shared_ptr<SyncRound> round = round_;
  if (round != nullptr) ++round->outstanding;
  io_->Call(to, w.Take(), options_.registry_call_timeout_ms, [round](Result<std::string>) {
    if (round == nullptr || --round->outstanding != 0) return;
    for (auto& fn : round->waiters) fn();
    round->waiters.clear();
  });
}

void Dispatcher::Emit(const Event& event) {
  for (auto& [id, lh] : handlers_) {
    if (lh.handler.exchange != event.exchange || !lh.callbacks.on_event) continue;
    io_->Defer([this, id = id, event] {
      auto it = handlers_.find(id);
      if (it != handlers_.end()) it->second.callbacks.on_event(it->second.handler, event);
    });
  }
}

void Dispatcher::OnView(std::shared_ptr<const membership::MemberTable> view) {
  registry_.OnView(std::move(view), io_->Now());
}

void Dispatcher::Tick() {
  const int64_t now = io_->Now();
  registry_.Tick(now);
  // Requests held by local handlers past their deadline: the caller has given up.
  for (auto& [hid, lh] : handlers_) {
    for (auto it = lh.held.begin(); it != lh.held.end();) {
      if (it->second.first > now) {
        ++it;
        continue;
      }
      auto answer = std::move(it->second.second);
      it = lh.held.erase(it);
      ++counters_.expired;
      answer(Error(DispatchErrc::kTimeout, "request expired in the handler's queue"));
    }
  }
  // Callers' requests past their deadline.
  std::vector<uint64_t> expired;
  for (const auto& [id, p] : pending_) {
    if (p.deadline <= now) expired.push_back(id);
  }
  for (uint64_t id : expired) {
    auto it = pending_.find(id);
    Finish(id, Error(DispatchErrc::kTimeout,
                     "no reply from exchange '" + it->second.exchange + "' within " +
                         std::to_string(it->second.options.timeout_ms) + " ms"));
  }
}

void Dispatcher::OnCall(const MemberId& from, std::string_view body,
                        std::function<void(Result<std::string>)> answer) {
  uint64_t type = 0;
  try {
    auto handle = wire::Unpack(body);
    wire::Reader r(handle.get());
    if (r.Array() < 2 || r.At(0).U64() != kWireVersion) throw wire::WireError("bad header");
    type = r.At(1).U64();
    if (type == kRegistryCall) {
      if (r.Array() != 3) throw wire::WireError("bad registry call");
      Status st = registry_.OnMessage(from, r.At(2).Bin(), io_->Now());
      if (!st.ok()) {
        ++counters_.malformed;
        answer(st.error());
        return;
      }
      answer(std::string());
      return;
    }
  } catch (const wire::WireError& e) {
    ++counters_.malformed;
    answer(Error(DispatchErrc::kMalformed, e.what()));
    return;
  }
  if (type == kRequestCall) return OnRequestCall(from, body, std::move(answer));
  if (type == kPublishCall) return OnPublishCall(from, body, std::move(answer));
  ++counters_.malformed;
  answer(Error(DispatchErrc::kMalformed, "unknown bus call " + std::to_string(type)));
}

// ---------------------------------------------------------------------------------------------
// Exchanges and handlers

Result<ExchangeSpec> Dispatcher::Create(std::string_view name, Pattern pattern,
                                        std::string_view strategy) {
  if (pattern == Pattern::kRequestResponse) {
    if (Result<Strategy> s = ParseStrategy(strategy); !s) return s.error();
  } else if (strategy != "broadcast") {
    return Error(RoutingErrc::kInvalidRoute,
                 "a publish-subscribe exchange delivers to every matching subscription: its "
                 "strategy is 'broadcast'");
  }
  return registry_.Create(name, pattern, strategy, io_->Now());
}

void Dispatcher::SetStrategyConfig(std::string_view exchange, StrategyConfig config) {
  configs_[std::string(exchange)] = std::move(config);
}

Result<Handler> Dispatcher::Serve(std::string_view exchange, std::string_view group,
                                  std::string_view connection_tag, HandlerCallbacks callbacks) {
  const ExchangeSpec* spec = registry_.FindExchange(exchange);
  if (spec == nullptr) {
    return Error(DispatchErrc::kNoExchange, "no exchange '" + std::string(exchange) + "'");
  }
  if (spec->pattern != Pattern::kRequestResponse) {
    return Error(DispatchErrc::kWrongPattern,
                 "exchange '" + std::string(exchange) + "' is publish-subscribe: subscribe to it");
  }
  Result<Handler> h = registry_.Register(exchange, group, connection_tag, io_->Now());
  if (!h) return h.error();
  LocalHandler lh;
  lh.handler = *h;
  lh.callbacks = std::move(callbacks);
  handlers_.emplace(h->id, std::move(lh));
  // The current leader, at once (later changes come as events).
  if (handlers_[h->id].callbacks.on_event) {
    Event ev;
    ev.kind = EventKind::kLeader;
    ev.exchange = std::string(exchange);
    ev.handlers = registry_.Handlers(exchange);
    if (!ev.handlers.empty()) ev.leader = ev.handlers.front();
    io_->Defer([this, id = h->id, ev] {
      auto it = handlers_.find(id);
      if (it != handlers_.end()) it->second.callbacks.on_event(it->second.handler, ev);
    });
  }
  return h;
}

Status Dispatcher::Unserve(uint64_t handler_id) {
  auto it = handlers_.find(handler_id);
  if (it == handlers_.end()) {
    return Error(DispatchErrc::kUnknownRequest, "no handler " + std::to_string(handler_id));
  }
  auto held = std::move(it->second.held);
  handlers_.erase(it);
  Status st = registry_.Unregister(handler_id, io_->Now());
  for (auto& [rid, entry] : held) {
    entry.second(Error(DispatchErrc::kUnreachable, "the handler left before answering"));
  }
  return st;
}

size_t Dispatcher::held_requests() const {
  size_t n = 0;
  for (const auto& [id, lh] : handlers_) n += lh.held.size();
  return n;
}

void Dispatcher::Hold(IncomingRequest req, uint64_t handler_id,
                      std::function<void(Result<std::string>)> answer) {
  auto it = handlers_.find(handler_id);
  if (it == handlers_.end()) {
    answer(Error(DispatchErrc::kUnknownRequest, "the handler is gone"));
    return;
  }
  LocalHandler& lh = it->second;
  if (lh.held.size() >= options_.handler_queue) {
    ++counters_.overflow;
    answer(Error(DispatchErrc::kOverflow,
                 "handler queue full (" + std::to_string(options_.handler_queue) +
                     " requests unanswered) on exchange '" + req.exchange + "'"));
    return;
  }
  req.id = next_request_++;
  lh.held.emplace(req.id, std::make_pair(req.deadline, std::move(answer)));
  ++counters_.delivered;
  io_->Defer([this, handler_id, req = std::move(req)] {
    auto it = handlers_.find(handler_id);
    if (it == handlers_.end() || !it->second.held.contains(req.id)) return;
    it->second.callbacks.on_request(it->second.handler, req);
  });
}

Status Dispatcher::Reply(uint64_t handler_id, uint64_t request_id, Result<std::string> reply) {
  auto it = handlers_.find(handler_id);
  if (it == handlers_.end()) {
    ++counters_.late_replies;
    return Error(DispatchErrc::kUnknownRequest, "no handler " + std::to_string(handler_id));
  }
  auto rit = it->second.held.find(request_id);
  if (rit == it->second.held.end()) {
    ++counters_.late_replies;
    return Error(DispatchErrc::kUnknownRequest,
                 "request " + std::to_string(request_id) + " is not held (timed out or answered)");
  }
  auto answer = std::move(rit->second.second);
  it->second.held.erase(rit);
  if (reply.ok() && reply->size() > options_.max_payload) {
    reply = Error(DispatchErrc::kHandlerError, "reply larger than the payload limit");
  } else if (!reply.ok() && reply.error().code() != DispatchErrc::kHandlerError) {
    reply = Error(DispatchErrc::kHandlerError, reply.error().message());
  }
  answer(std::move(reply));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Requests

void Dispatcher::Request(std::string_view exchange, std::string_view routing_key,
                         std::string payload, RequestOptions options, ResponseCallback done) {
  ++counters_.requests;
  auto fail_later = [this, &done](Error e) {
    io_->Defer([done = std::move(done), e = std::move(e)] { done(e); });
  };
  if (pending_.size() >= options_.max_pending) {
    ++counters_.caller_overflow;
    return fail_later(Error(
        DispatchErrc::kOverflow,
        "too many requests in flight on this node (" + std::to_string(options_.max_pending) + ")"));
  }
  if (payload.size() > options_.max_payload) {
    return fail_later(Error(DispatchErrc::kOverflow, "payload larger than the limit"));
  }
  if (options.timeout_ms <= 0) options.timeout_ms = options_.default_timeout_ms;
  const uint64_t id = next_pending_++;
  Pending& p = pending_[id];
  p.exchange = std::string(exchange);
  p.routing_key = std::string(routing_key);
  p.payload = std::move(payload);
  p.deadline = io_->Now() + options.timeout_ms * 1000;
  p.options = std::move(options);
  p.done = std::move(done);
  RoutePending(id);
}

void Dispatcher::RoutePending(uint64_t pending_id) {
  Pending& p = pending_.at(pending_id);
  const ExchangeSpec* spec = registry_.FindExchange(p.exchange);
  if (spec == nullptr) {
    return Finish(pending_id, Error(DispatchErrc::kNoExchange, "no exchange '" + p.exchange + "'"));
  }
  if (spec->pattern != Pattern::kRequestResponse) {
    return Finish(pending_id, Error(DispatchErrc::kWrongPattern,
                                    "exchange '" + p.exchange + "' is publish-subscribe"));
  }
  StrategyConfig config;
  if (auto it = configs_.find(p.exchange); it != configs_.end()) config = it->second;
  Result<Strategy> strategy = ParseStrategy(spec->strategy);
  if (!strategy) return Finish(pending_id, strategy.error());
  config.strategy = *strategy;
  p.broadcast = config.strategy == Strategy::kBroadcast;
  if (config.strategy == Strategy::kStickyFun && !config.sticky_hash) {
    return Finish(pending_id, Error(RoutingErrc::kInvalidRoute,
                                    "exchange '" + p.exchange +
                                        "' is sticky_fun: this node has no hash function for it"));
  }
  const std::vector<Handler> handlers = registry_.Handlers(p.exchange);
  bus::Request req{p.routing_key, p.payload, p.options.group};
  Result<Route> route = RouteRequest(config, handlers, req, cursors_[p.exchange]);
  if (!route) {
    if (route.error().code() == RoutingErrc::kNoHandler) ++counters_.no_handler;
    std::string msg = route.error().message();
    if (route.error().code() == RoutingErrc::kNoHandler) {
      msg = "no handler for exchange '" + p.exchange + "'" +
            (p.options.group.empty() ? "" : " in group '" + p.options.group + "'");
    }
    return Finish(pending_id, Error(route.error().code(), msg));
  }
  if (auto* redirect = std::get_if<Redirect>(&*route)) {
    if (++p.redirects > kMaxRedirects) {
      return Finish(pending_id, Error(RoutingErrc::kInvalidRoute,
                                      "more than " + std::to_string(kMaxRedirects) +
                                          " redirects from exchange '" + p.exchange + "'"));
    }
    p.exchange = redirect->exchange;
    return RoutePending(pending_id);
  }
  Deliver& d = std::get<Deliver>(*route);
  p.parts.assign(d.handlers.size(), std::nullopt);
  p.outstanding = d.handlers.size();
  std::string payload = d.payload ? *d.payload : p.payload;
  std::vector<Handler> targets;
  for (const Handler* h : d.handlers) targets.push_back(*h);
  for (size_t i = 0; i < targets.size(); ++i) {
    DeliverTo(pending_id, i, targets[i], payload);
  }
}

void Dispatcher::DeliverTo(uint64_t pending_id, size_t part, const Handler& handler,
                           std::string payload) {
  Pending& p = pending_.at(pending_id);
  const int64_t now = io_->Now();
  const int64_t remaining_ms = std::max<int64_t>(1, (p.deadline - now) / 1000);
  auto on_answer = [this, pending_id, part, node = handler.node, hid = handler.id](
                       AnswerStatus status, std::string text) {
    ReplyPart rp{node, hid, status == kAnsOk, std::move(text)};
    switch (status) {
      case kAnsOk:
      case kAnsHandlerError:
        return CompletePart(pending_id, part, std::move(rp));
      case kAnsGone: {
        // Nothing was delivered: route once more on the view we have now.
        auto it = pending_.find(pending_id);
        if (it != pending_.end() && !it->second.retried && it->second.parts.size() == 1) {
          it->second.retried = true;
          ++counters_.retried_gone;
          return RoutePending(pending_id);
        }
        return CompletePart(pending_id, part,
                            Error(DispatchErrc::kUnreachable, "the handler has gone"));
      }
      case kAnsOverflow:
        return CompletePart(pending_id, part, Error(DispatchErrc::kOverflow, rp.payload));
      case kAnsTimeout:
        return CompletePart(pending_id, part, Error(DispatchErrc::kTimeout, rp.payload));
      default:
        return CompletePart(pending_id, part, Error(DispatchErrc::kUnreachable, rp.payload));
    }
  };
  if (handler.node == self_) {
    IncomingRequest req;
    req.exchange = handler.exchange;
    req.routing_key = p.routing_key;
    req.payload = std::move(payload);
    req.tag = p.options.tag;
    req.group = p.options.group;
    req.caller = self_;
    req.deadline = p.deadline;
    Hold(std::move(req), handler.id, [on_answer](Result<std::string> r) {
      if (r.ok()) return on_answer(kAnsOk, std::move(*r));
      on_answer(StatusOf(r.error()), r.error().message());
    });
    return;
  }
  wire::Writer w;
  w.Array(9);
  w.U64(kWireVersion);
  w.U64(kRequestCall);
  w.U64(handler.id);
  w.Bin(handler.exchange);
  w.Bin(p.routing_key);
  w.Bin(payload);
  w.Bin(p.options.tag);
  w.Bin(p.options.group);
  w.U64(static_cast<uint64_t>(remaining_ms));
  io_->Call(handler.node, w.Take(), remaining_ms,
            [this, on_answer, exchange = handler.exchange, remaining_ms](Result<std::string> r) {
              if (!r.ok()) {
                if (r.error().code() == DispatchErrc::kTimeout) {
                  return on_answer(kAnsTimeout, "no reply from exchange '" + exchange +
                                                    "' within " + std::to_string(remaining_ms) +
                                                    " ms");
                }
                ++counters_.unreachable;
                return on_answer(kAnsUnreachable, r.error().message());
              }
              try {
                auto handle = wire::Unpack(*r);
                wire::Reader rd(handle.get());
                if (rd.Array() != 2) throw wire::WireError("bad answer");
                on_answer(static_cast<AnswerStatus>(rd.At(0).U64Max(kAnsUnreachable)),
                          std::string(rd.At(1).Bin()));
              } catch (const wire::WireError& e) {
                ++counters_.malformed;
                on_answer(kAnsUnreachable, std::string("malformed answer: ") + e.what());
              }
            });
}

void Dispatcher::OnRequestCall(const MemberId& from, std::string_view body,
                               std::function<void(Result<std::string>)> answer) {
  IncomingRequest req;
  uint64_t handler_id = 0;
  try {
    auto handle = wire::Unpack(body);
    wire::Reader r(handle.get());
    if (r.Array() != 9) throw wire::WireError("bad request");
    handler_id = r.At(2).U64();
    req.exchange = std::string(r.At(3).Bin());
    req.routing_key = std::string(r.At(4).Bin());
    req.payload = std::string(r.At(5).Bin());
    req.tag = std::string(r.At(6).Bin());
    req.group = std::string(r.At(7).Bin());
    const uint64_t remaining = r.At(8).U64Max(uint64_t{1} << 40);
    req.deadline = io_->Now() + static_cast<int64_t>(remaining) * 1000;
  } catch (const wire::WireError& e) {
    ++counters_.malformed;
    answer(Error(DispatchErrc::kMalformed, e.what()));
    return;
  }
  req.caller = from;
  auto it = handlers_.find(handler_id);
  if (it == handlers_.end() || it->second.handler.exchange != req.exchange) {
    answer(EncodeAnswer(kAnsGone, "the handler is gone"));
    return;
  }
  Hold(std::move(req), handler_id,
       [answer = std::move(answer)](Result<std::string> r) { answer(AnswerOf(r)); });
}

void Dispatcher::CompletePart(uint64_t pending_id, size_t part, Result<ReplyPart> r) {
  auto it = pending_.find(pending_id);
  if (it == pending_.end()) return;  // finished already (timeout)
  Pending& p = it->second;
  if (!r.ok()) {
    if (p.parts.size() == 1 && !p.broadcast) return Finish(pending_id, r.error());
    // Broadcast: a failed handler shows up as an error part.
    r = ReplyPart{MemberId(), 0, false, r.error().message()};
  }
  if (p.parts[part].has_value()) return;
  p.parts[part] = std::move(*r);
  if (--p.outstanding > 0) return;
  Response resp;
  resp.tag = p.options.tag;
  resp.broadcast = p.broadcast;
  for (auto& rp : p.parts) resp.replies.push_back(std::move(*rp));
  if (!resp.broadcast && resp.replies.size() == 1 && !resp.replies[0].ok) {
    ++counters_.handler_errors;
    return Finish(pending_id, Error(DispatchErrc::kHandlerError, resp.replies[0].payload));
  }
  ++counters_.replies_ok;
  Finish(pending_id, std::move(resp));
}

void Dispatcher::Finish(uint64_t pending_id, Result<Response> r) {
  auto it = pending_.find(pending_id);
  if (it == pending_.end()) return;
  ResponseCallback done = std::move(it->second.done);
  pending_.erase(it);
  // Counted here, where every caller's answer passes: a timeout is as often the handler's node
  // giving up on a request still queued there (its answer arrives before this node's deadline)
  // as this node's own deadline passing.
  if (!r.ok() && r.error().code() == DispatchErrc::kTimeout) ++counters_.timeouts;
  io_->Defer([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

// ---------------------------------------------------------------------------------------------
// Publish-subscribe

Result<uint64_t> Dispatcher::Subscribe(Space space, std::string_view exchange,
                                       std::string_view pattern, SubscriberFn fn) {
  if (pattern.size() > options_.registry.max_interest_entry - 1 - exchange.size()) {
    return Error(DispatchErrc::kOverflow, "pattern longer than the limit");
  }
  if (space == Space::kSubject) {
    const ExchangeSpec* spec = registry_.FindExchange(exchange);
    if (spec == nullptr) {
      return Error(DispatchErrc::kNoExchange, "no exchange '" + std::string(exchange) + "'");
    }
    if (spec->pattern != Pattern::kPublishSubscribe) {
      return Error(DispatchErrc::kWrongPattern,
                   "exchange '" + std::string(exchange) + "' is request-response: serve it");
    }
    if (Status st = ValidatePattern(pattern); !st.ok()) return st.error();
  }
  const uint64_t id = next_subscription_++;
  Subscription sub{space, std::string(exchange), std::string(pattern), std::move(fn)};
  switch (space) {
    case Space::kChannel:
    case Space::kShard:
    case Space::kReplicated:
      exact_subs_[InterestEntry(space, "", pattern)].push_back(id);
      break;
    case Space::kPattern:
      glob_subs_[std::string(pattern)].push_back(id);
      break;
    case Space::kSubject:
      (void)subject_subs_[sub.exchange].Insert(pattern, id);
      break;
  }
  const std::string entry = InterestEntry(space, exchange, pattern);
  if (interest_count_[entry]++ == 0) InterestChanged();
  subscriptions_.emplace(id, std::move(sub));
  return id;
}

Status Dispatcher::Unsubscribe(uint64_t subscription_id) {
  auto it = subscriptions_.find(subscription_id);
  if (it == subscriptions_.end()) {
    return Error(DispatchErrc::kUnknownRequest,
                 "no subscription " + std::to_string(subscription_id));
  }
  const Subscription& sub = it->second;
  auto erase_from = [subscription_id](std::vector<uint64_t>& v) {
    v.erase(std::remove(v.begin(), v.end(), subscription_id), v.end());
    return v.empty();
  };
  switch (sub.space) {
    case Space::kChannel:
    case Space::kShard:
    case Space::kReplicated: {
      auto e = exact_subs_.find(InterestEntry(sub.space, "", sub.pattern));
      if (e != exact_subs_.end() && erase_from(e->second)) exact_subs_.erase(e);
      break;
    }
    case Space::kPattern: {
      auto g = glob_subs_.find(sub.pattern);
      if (g != glob_subs_.end() && erase_from(g->second)) glob_subs_.erase(g);
      break;
    }
    case Space::kSubject: {
      auto s = subject_subs_.find(sub.exchange);
      if (s != subject_subs_.end()) {
        s->second.Erase(sub.pattern, subscription_id);
        if (s->second.Empty()) subject_subs_.erase(s);
      }
      break;
    }
  }
  const std::string entry = InterestEntry(sub.space, sub.exchange, sub.pattern);
  auto c = interest_count_.find(entry);
  if (c != interest_count_.end() && --c->second == 0) {
    interest_count_.erase(c);
    InterestChanged();
  }
  subscriptions_.erase(it);
  return Status::Ok();
}

std::vector<std::string> Dispatcher::LocalInterest() const {
  std::vector<std::string> out;
  if (interest_count_.size() > options_.registry.max_interest) return {"*"};
  out.reserve(interest_count_.size());
  for (const auto& [entry, n] : interest_count_) out.push_back(entry);
  return out;  // sorted: std::map order
}

void Dispatcher::InterestChanged() {
  interest_dirty_ = true;
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  io_->Defer([this] { FlushInterest(); });
}

void Dispatcher::SyncInterest(std::function<void()> done) {
  sync_waiters_.push_back(std::move(done));
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  io_->Defer([this] { FlushInterest(); });
}

void Dispatcher::FlushInterest() {
  flush_scheduled_ = false;
  auto round = std::make_shared<SyncRound>();
  round->waiters = std::move(sync_waiters_);
  sync_waiters_.clear();
  round->outstanding = 1;  // held until the sends are made
  if (interest_dirty_) {
    interest_dirty_ = false;
    round_ = round;
    registry_.SetInterest(LocalInterest(), io_->Now());
    round_ = nullptr;
  } else if (std::shared_ptr<SyncRound> last = last_round_.lock();
             last != nullptr && last->outstanding > 0) {
    // Nothing new to send, but an earlier push may still be on its way: wait for it too.
    for (auto& fn : round->waiters) last->waiters.push_back(std::move(fn));
    return;
  }
  if (round->outstanding > 1) last_round_ = round;
  if (--round->outstanding == 0) {
    for (auto& fn : round->waiters) fn();
    round->waiters.clear();
  }
}

void Dispatcher::RefreshInterestIndex() {
  if (interest_generation_ == registry_.generation()) return;
  interest_generation_ = registry_.generation();
  cluster_interest_.clear();
  for (const NodeState* s : registry_.LiveStates()) {
    if (s->node == self_) continue;  // local delivery uses the local index
    NodeInterest ni;
    for (const std::string& e : s->interest) {
      if (e.empty()) continue;
      switch (e[0]) {
        case '*':
          ni.all = true;
          break;
        case 'c':
        case 's':
        case 'r':
          ni.exact.insert(e);
          break;
        case 'p':
          ni.globs.push_back(e.substr(1));
          break;
        case 'x': {
          const size_t z = e.find('\0');
          if (z == std::string::npos) break;
          (void)ni.subjects[e.substr(1, z - 1)].Insert(std::string_view(e).substr(z + 1), 1);
          break;
        }
        default:
          break;  // an entry a newer version defines: ignored
      }
    }
    if (ni.all || !ni.exact.empty() || !ni.globs.empty() || !ni.subjects.empty()) {
      cluster_interest_.emplace_back(s->node, std::move(ni));
    }
  }
}

bool Dispatcher::NodeMatches(const NodeInterest& ni, const Publication& p) const {
  if (ni.all) return true;
  switch (p.space) {
    case Space::kChannel: {
      if (ni.exact.contains(InterestEntry(Space::kChannel, "", p.subject))) return true;
      for (const std::string& g : ni.globs) {
        if (GlobMatch(g, p.subject)) return true;
      }
      return false;
    }
    case Space::kShard:
    case Space::kReplicated:
      return ni.exact.contains(InterestEntry(p.space, "", p.subject));
    case Space::kSubject: {
      auto it = ni.subjects.find(p.exchange);
      if (it == ni.subjects.end()) return false;
      bool any = false;
      it->second.ForEachMatch(p.subject, [&any](int) { any = true; });
      return any;
    }
    case Space::kPattern:
      return false;
  }
  return false;
}

void Dispatcher::Publish(Space space, std::string_view exchange, std::string_view subject,
                         std::string payload, std::function<void(Result<uint64_t>)> done) {
  auto fail_later = [this, &done](Error e) {
    io_->Defer([done = std::move(done), e = std::move(e)] { done(e); });
  };
  if (space == Space::kPattern) {
    return fail_later(Error(DispatchErrc::kWrongPattern, "publish to a channel, not a pattern"));
  }
  if (payload.size() > options_.max_payload) {
    return fail_later(Error(DispatchErrc::kOverflow, "payload larger than the limit"));
  }
  if (space == Space::kSubject) {
    const ExchangeSpec* spec = registry_.FindExchange(exchange);
    if (spec == nullptr) {
      return fail_later(
          Error(DispatchErrc::kNoExchange, "no exchange '" + std::string(exchange) + "'"));
    }
    if (spec->pattern != Pattern::kPublishSubscribe) {
      return fail_later(Error(DispatchErrc::kWrongPattern,
                              "exchange '" + std::string(exchange) + "' is request-response"));
    }
    if (Status st = ValidateSubject(subject); !st.ok()) return fail_later(st.error());
  }
  ++counters_.publishes;
  RefreshInterestIndex();
  auto pub = std::make_shared<Publication>();
  pub->space = space;
  pub->exchange = std::string(exchange);
  pub->subject = std::string(subject);
  pub->payload = std::move(payload);
  pub->origin = self_;

  struct Gather {
    size_t outstanding = 1;  // the local part
    uint64_t total = 0;
    std::function<void(Result<uint64_t>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->done = std::move(done);
  auto add = [this, g](uint64_t n) {
    g->total += n;
    if (--g->outstanding == 0) {
      io_->Defer([g] { g->done(g->total); });
    }
  };
  std::string body;
  for (const auto& [node, ni] : cluster_interest_) {
    if (!NodeMatches(ni, *pub)) continue;
    if (body.empty()) {
      wire::Writer w;
      w.Array(6);
      w.U64(kWireVersion);
      w.U64(kPublishCall);
      w.U64(static_cast<uint64_t>(static_cast<char>(space)));
      w.Bin(pub->exchange);
      w.Bin(pub->subject);
      w.Bin(pub->payload);
      body = w.Take();
    }
    ++g->outstanding;
    ++counters_.publish_messages;
    io_->Call(node, body, options_.default_timeout_ms, [this, add](Result<std::string> r) {
      uint64_t n = 0;
      if (r.ok()) {
        try {
          auto handle = wire::Unpack(*r);
          n = wire::Reader(handle.get()).U64();
        } catch (const wire::WireError&) {
          ++counters_.malformed;
        }
      }
      add(n);
    });
  }
  DeliverLocal(*pub, add);
}

void Dispatcher::OnPublishCall(const MemberId& from, std::string_view body,
                               std::function<void(Result<std::string>)> answer) {
  Publication p;
  try {
    auto handle = wire::Unpack(body);
    wire::Reader r(handle.get());
    if (r.Array() != 6) throw wire::WireError("bad publication");
    const uint64_t space = r.At(2).U64Max(255);
    if (space != 'c' && space != 's' && space != 'x' && space != 'r')
      throw wire::WireError("bad space");
    p.space = static_cast<Space>(static_cast<char>(space));
    p.exchange = std::string(r.At(3).Bin());
    p.subject = std::string(r.At(4).Bin());
    p.payload = std::string(r.At(5).Bin());
  } catch (const wire::WireError& e) {
    ++counters_.malformed;
    answer(Error(DispatchErrc::kMalformed, e.what()));
    return;
  }
  p.origin = from;
  ++counters_.publish_received;
  DeliverLocal(p, [answer = std::move(answer)](uint64_t n) {
    wire::Writer w;
    w.U64(n);
    answer(w.Take());
  });
}

void Dispatcher::DeliverLocal(const Publication& p, std::function<void(uint64_t)> done) {
  std::vector<std::pair<uint64_t, std::string>> targets;  // subscription, matched pattern
  switch (p.space) {
    case Space::kChannel:
    case Space::kShard:
    case Space::kReplicated: {
      auto it = exact_subs_.find(InterestEntry(p.space, "", p.subject));
      if (it != exact_subs_.end()) {
        for (uint64_t id : it->second) targets.emplace_back(id, p.subject);
      }
      if (p.space == Space::kChannel) {
        for (const auto& [glob, ids] : glob_subs_) {
          if (!GlobMatch(glob, p.subject)) continue;
          for (uint64_t id : ids) targets.emplace_back(id, glob);
        }
      }
      break;
    }
    case Space::kSubject: {
      auto it = subject_subs_.find(p.exchange);
      if (it != subject_subs_.end()) {
        for (uint64_t id : it->second.Match(p.subject)) {
          targets.emplace_back(id, subscriptions_.at(id).pattern);
        }
      }
      break;
    }
    case Space::kPattern:
      break;
  }
  if (targets.empty()) {
    io_->Defer([done = std::move(done)] { done(0); });
    return;
  }
  struct Gather {
    size_t outstanding;
    uint64_t total = 0;
    std::function<void(uint64_t)> done;
  };
  auto g = std::make_shared<Gather>();
  g->outstanding = targets.size();
  g->done = std::move(done);
  auto shared = std::make_shared<Publication>(p);
  io_->Defer([this, g, shared, targets = std::move(targets)] {
    for (const auto& [id, pattern] : targets) {
      auto it = subscriptions_.find(id);
      auto count = [this, g](uint64_t n) {
        counters_.publish_deliveries += n;
        g->total += n;
        if (--g->outstanding == 0) g->done(g->total);
      };
      if (it == subscriptions_.end()) {
        count(0);
        continue;
      }
      it->second.fn(*shared, pattern, count);
    }
  });
}

}  // namespace shoal::bus
