// Publish-subscribe (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH, SPUBLISH,
// PUBSUB) and the bus commands (BUS.*), cluster-wide through node/bus.h.
//
// A worker keeps its clients' subscriptions (WorkerPubSub: entry -> client ids) and tells the
// bus only when an entry gains its first or loses its last client of that worker. A SUBSCRIBE is
// answered once its entries are in effect cluster-wide (Dispatcher::SyncInterest), so a PUBLISH
// sent anywhere after the answer reaches the subscriber.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bus/subject.h"
#include "commands/families.h"
#include "common/ascii.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/pubsub.h"
#include "engine/resp_error.h"
#include "engine/shard.h"
#include "node/bus.h"
#include "node/cluster.h"

namespace shoal::commands {

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
using node::Bus;
using node::ClusterNode;

using resp::DispatchResult;

// Worker side of the bus handlers a client serves (defined at the end of this file).
bool DeliverBusRequest(Shard& shard, uint64_t client_id, uint64_t handler_id,
                       const bus::IncomingRequest& r);
void DeliverBusEvent(Shard& shard, uint64_t client_id, const bus::Event& ev);

namespace {

constexpr auto kDone = DispatchResult::kDone;
constexpr auto kAsync = DispatchResult::kAsync;

ClientInfo* Info(resp::Connection* c) { return static_cast<ClientInfo*>(c->state()); }

// What this family keeps per connection (ClientInfo::pubsub): the interest entries the client
// subscribes to, and how many of them are channels (and bus subjects), patterns and shard
// channels; the bus handlers it serves (BUS.SERVE) and the requests pushed to it that it has not
// answered: request id -> (handler id, deadline in unix microseconds).
struct Subscriber : engine::FamilyClientState {
  std::set<std::string> subs;
  size_t sub_counts[3] = {0, 0, 0};
  std::set<uint64_t> bus_handlers;
  std::unordered_map<uint64_t, std::pair<uint64_t, int64_t>> bus_requests;
};

// The client's Subscriber, created on first use.
Subscriber* Sub(resp::Connection* c) {
  ClientInfo* info = Info(c);
  if (info->pubsub == nullptr) info->pubsub = std::make_unique<Subscriber>();
  return static_cast<Subscriber*>(info->pubsub.get());
}

// Keeps the engine's subscribed flag (RESP2's subscribed mode) in step with the entries.
void SyncSubscribed(resp::Connection* c, const Subscriber* sub) {
  Info(c)->subscribed = !sub->subs.empty();
}

Bus* BusOf(Engine& e) {
  ClusterNode* cluster = node::ClusterOf(e);
  return cluster == nullptr ? nullptr : cluster->bus();
}

DispatchResult NoBus(resp::ReplyBuilder* out) {
  out->Error("ERR the bus is not running on this node yet");
  return kDone;
}

// Completes a reserved reply on the client's worker (if the client is still there).
void CompleteOn(Shard* shard, uint64_t client_id, resp::Connection::ReplyToken token,
                std::string bytes) {
  shard->loop()->Post([shard, client_id, token, bytes = std::move(bytes)] {
    if (resp::Connection* c = shard->FindClient(client_id)) {
      c->CompleteReply(token, bytes);
      c->FlushOutput();
    }
  });
}

// Subscription counts as Redis reports them: channels + patterns, or shard channels.
size_t CountFor(const Subscriber* info, char space) {
  return space == 's' ? info->sub_counts[2] : info->sub_counts[0] + info->sub_counts[1];
}
size_t& Counter(Subscriber* info, char space) {
  return info->sub_counts[space == 'c' ? 0 : (space == 'p' ? 1 : 2)];
}

std::string_view KindName(char space, bool subscribe) {
  switch (space) {
    case 'c':
      return subscribe ? "subscribe" : "unsubscribe";
    case 'p':
      return subscribe ? "psubscribe" : "punsubscribe";
    case 's':
      return subscribe ? "ssubscribe" : "sunsubscribe";
    default:
      return subscribe ? "bus.subscribe" : "bus.unsubscribe";
  }
}

// The entry of one subscription: space byte + channel/pattern, or for bus subjects
// "x" + exchange + '\0' + pattern.
std::string Entry(char space, std::string_view exchange, std::string_view name) {
  std::string e(1, space);
  if (space == 'x') {
    e.append(exchange);
    e.push_back('\0');
  }
  e.append(name);
  return e;
}

// The channel or pattern an entry names (for replies).
std::string_view NameOf(std::string_view entry) {
  if (entry.empty()) return entry;
  if (entry[0] == 'x') {
    const size_t z = entry.find('\0');
    return z == std::string_view::npos ? entry.substr(1) : entry.substr(z + 1);
  }
  return entry.substr(1);
}

// Adds the client to `names` of `space` (on its worker) and completes reply slot `token` with
// the (P|S)SUBSCRIBE confirmations once the new entries are in effect cluster-wide.
void SubscribeInto(Bus* bus, Shard* shard, resp::Connection* c, char space,
                   std::string_view exchange, const std::vector<std::string_view>& names,
                   resp::Connection::ReplyToken token) {
  Subscriber* info = Sub(c);
  const char count_space = space == 'x' ? 'c' : space;
  std::vector<std::string> added;
  std::string reply;
  resp::ReplyBuilder rb(&reply, c->protocol());
  for (std::string_view name : names) {
    const std::string entry = Entry(space, exchange, name);
    if (info->subs.insert(entry).second) {
      ++Counter(info, count_space);
      auto& set = shard->pubsub().clients[entry];
      if (set.empty()) added.push_back(entry);
      set.insert(c->id());
    }
    rb.PushHeader(3);
    rb.Bulk(KindName(space, true));
    rb.Bulk(name);
    rb.Integer(static_cast<int64_t>(CountFor(info, count_space)));
  }
  SyncSubscribed(c, info);
  bus->WorkerInterest(shard->index(), std::move(added), {},
                      [shard, id = c->id(), token, reply = std::move(reply)] {
                        if (resp::Connection* conn = shard->FindClient(id)) {
                          conn->CompleteReply(token, reply);
                          conn->FlushOutput();
                        }
                      });
}

DispatchResult DoSubscribe(Engine& e, resp::Connection* c, char space, Args names,
                           resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  const resp::Connection::ReplyToken token = c->ReserveReply();
  SubscribeInto(bus, e.CurrentShard(), c, space, "", {names.begin(), names.end()}, token);
  return kAsync;
}

// Removes the client from `entry`; returns whether the worker lost its last client on it.
bool DropEntry(Shard* shard, Subscriber* info, uint64_t client_id, const std::string& entry) {
  if (info->subs.erase(entry) == 0) return false;
  --Counter(info, entry[0] == 'x' ? 'c' : entry[0]);
  auto it = shard->pubsub().clients.find(entry);
  if (it == shard->pubsub().clients.end()) return false;
  it->second.erase(client_id);
  if (!it->second.empty()) return false;
  shard->pubsub().clients.erase(it);
  return true;
}

DispatchResult DoUnsubscribe(Engine& e, resp::Connection* c, char space, std::string_view exchange,
                             Args names, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  Shard* shard = e.CurrentShard();
  Subscriber* info = Sub(c);
  std::vector<std::string> targets;
  if (names.empty()) {
    for (const std::string& entry : info->subs) {
      if (entry[0] != space) continue;
      if (space == 'x' && !exchange.empty() &&
          std::string_view(entry).substr(1, exchange.size() + 1) !=
              std::string(exchange) + std::string(1, '\0')) {
        continue;
      }
      targets.push_back(entry);
    }
  } else {
    for (std::string_view n : names) targets.push_back(Entry(space, exchange, n));
  }
  std::vector<std::string> removed;
  const char count_space = space == 'x' ? 'c' : space;
  if (targets.empty()) {
    out->PushHeader(3);
    out->Bulk(KindName(space, false));
    out->NullBulk();
    out->Integer(static_cast<int64_t>(CountFor(info, count_space)));
  }
  for (const std::string& entry : targets) {
    if (DropEntry(shard, info, c->id(), entry)) removed.push_back(entry);
    out->PushHeader(3);
    out->Bulk(KindName(space, false));
    out->Bulk(NameOf(entry));
    out->Integer(static_cast<int64_t>(CountFor(info, count_space)));
  }
  SyncSubscribed(c, info);
  if (!removed.empty()) bus->WorkerInterest(shard->index(), {}, std::move(removed), nullptr);
  return kDone;
}

DispatchResult Subscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoSubscribe(e, c, 'c', a.subspan(1), out);
}
DispatchResult PSubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoSubscribe(e, c, 'p', a.subspan(1), out);
}
DispatchResult SSubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoSubscribe(e, c, 's', a.subspan(1), out);
}
DispatchResult Unsubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoUnsubscribe(e, c, 'c', "", a.subspan(1), out);
}
DispatchResult PUnsubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoUnsubscribe(e, c, 'p', "", a.subspan(1), out);
}
DispatchResult SUnsubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoUnsubscribe(e, c, 's', "", a.subspan(1), out);
}

DispatchResult DoPublish(Engine& e, resp::Connection* c, bus::Space space,
                         std::string_view exchange, std::string_view subject,
                         std::string_view payload, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  Shard* shard = e.CurrentShard();
  const resp::Connection::ReplyToken token = c->ReserveReply();
  const int protocol = c->protocol();
  bus->Run([shard, id = c->id(), token, protocol, space, exchange = std::string(exchange),
            subject = std::string(subject),
            payload = std::string(payload)](bus::Dispatcher& d) mutable {
    d.Publish(space, exchange, subject, std::move(payload),
              [shard, id, token, protocol](Result<uint64_t> r) {
                std::string bytes;
                resp::ReplyBuilder rb(&bytes, protocol);
                if (r.ok()) {
                  rb.Integer(static_cast<int64_t>(*r));
                } else {
                  ReplyError(&rb, r.error());
                }
                CompleteOn(shard, id, token, std::move(bytes));
              });
  });
  return kAsync;
}

DispatchResult Publish(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoPublish(e, c, bus::Space::kChannel, "", a[1], a[2], out);
}
DispatchResult SPublish(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoPublish(e, c, bus::Space::kShard, "", a[1], a[2], out);
}

// PUBSUB CHANNELS [pattern] | NUMSUB [channel...] | NUMPAT | SHARDCHANNELS [pattern] |
// SHARDNUMSUB [channel...] — over the whole cluster.
DispatchResult PubSub(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  const std::string sub = AsciiLower(a[1]);
  char space = 0;
  enum { kList, kNum, kNumPat } kind = kList;
  if (sub == "channels") {
    space = 'c';
  } else if (sub == "shardchannels") {
    space = 's';
  } else if (sub == "numsub") {
    space = 'c';
    kind = kNum;
  } else if (sub == "shardnumsub") {
    space = 's';
    kind = kNum;
  } else if (sub == "numpat") {
    space = 'p';
    kind = kNumPat;
  } else if (sub == "help") {
    out->ArrayHeader(5);
    out->SimpleString("PUBSUB CHANNELS [<pattern>] | NUMSUB [<channel> ...] | NUMPAT");
    out->SimpleString("PUBSUB SHARDCHANNELS [<pattern>] | SHARDNUMSUB [<shardchannel> ...]");
    out->SimpleString("Counts cover every node of the cluster.");
    out->SimpleString("CHANNELS lists channels with at least one subscriber.");
    out->SimpleString("NUMPAT counts distinct patterns.");
    return kDone;
  } else {
    out->Error(fmt::format("ERR unknown subcommand '{}'. Try PUBSUB HELP.", a[1].substr(0, 128)));
    return kDone;
  }
  if ((kind == kList && a.size() > 3) || (kind == kNumPat && a.size() != 2)) {
    out->Error(fmt::format("ERR wrong number of arguments for 'pubsub|{}' command", sub));
    return kDone;
  }
  std::vector<std::string> args;
  for (size_t i = 2; i < a.size(); ++i) args.emplace_back(a[i]);
  Shard* shard = e.CurrentShard();
  const resp::Connection::ReplyToken token = c->ReserveReply();
  const int protocol = c->protocol();
  bus->PubSubCounts(std::string(1, space), [shard, id = c->id(), token, protocol, kind, args,
                                            space](std::map<std::string, uint64_t> counts) {
    std::string bytes;
    resp::ReplyBuilder rb(&bytes, protocol);
    if (kind == kNumPat) {
      rb.Integer(static_cast<int64_t>(counts.size()));
    } else if (kind == kNum) {
      rb.ArrayHeader(args.size() * 2);
      for (const std::string& ch : args) {
        auto it = counts.find(std::string(1, space) + ch);
        rb.Bulk(ch);
        rb.Integer(it == counts.end() ? 0 : static_cast<int64_t>(it->second));
      }
    } else {
      std::vector<std::string_view> names;
      for (const auto& [entry, n] : counts) {
        std::string_view name = std::string_view(entry).substr(1);
        if (n > 0 && (args.empty() || GlobMatch(args[0], name))) names.push_back(name);
      }
      rb.ArrayHeader(names.size());
      for (std::string_view n : names) rb.Bulk(n);
    }
    CompleteOn(shard, id, token, std::move(bytes));
  });
  return kAsync;
}

// ---------------------------------------------------------------------------------------------
// BUS.*

// Parses trailing "NAME value" options; false (with an error written) on anything else.
bool ParseOptions(Args a, size_t from, const std::vector<std::string_view>& names,
                  std::map<std::string, std::string>* opts, resp::ReplyBuilder* out) {
  for (size_t i = from; i < a.size(); i += 2) {
    const std::string name = AsciiLower(a[i]);
    if (std::find(names.begin(), names.end(), name) == names.end() || i + 1 >= a.size()) {
      out->Error("ERR syntax error");
      return false;
    }
    (*opts)[name] = std::string(a[i + 1]);
  }
  return true;
}

// BUS.CREATE exchange REQUEST|PUBSUB [strategy]
DispatchResult BusCreate(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  const std::string kind = AsciiLower(a[2]);
  bus::Pattern pattern;
  std::string strategy;
  if (kind == "request") {
    pattern = bus::Pattern::kRequestResponse;
    strategy = a.size() > 3 ? AsciiLower(a[3]) : "round_robin";
  } else if (kind == "pubsub") {
    pattern = bus::Pattern::kPublishSubscribe;
    strategy = a.size() > 3 ? AsciiLower(a[3]) : "broadcast";
  } else {
    out->Error("ERR the pattern is REQUEST or PUBSUB");
    return kDone;
  }
  if (a.size() > 4) {
    out->Error("ERR syntax error");
    return kDone;
  }
  Shard* shard = e.CurrentShard();
  const auto token = c->ReserveReply();
  bus->Run([shard, id = c->id(), token, name = std::string(a[1]), pattern, strategy,
            protocol = c->protocol()](bus::Dispatcher& d) {
    Result<bus::ExchangeSpec> r = d.Create(name, pattern, strategy);
    std::string bytes;
    resp::ReplyBuilder rb(&bytes, protocol);
    if (r.ok()) {
      rb.Ok();
    } else {
      ReplyError(&rb, r.error());
    }
    CompleteOn(shard, id, token, std::move(bytes));
  });
  return kAsync;
}

// BUS.SERVE exchange [GROUP g] [TAG t]: the connection becomes a handler; replies with its id.
DispatchResult BusServe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  std::map<std::string, std::string> opts;
  if (!ParseOptions(a, 2, {"group", "tag"}, &opts, out)) return kDone;
  Shard* shard = e.CurrentShard();
  const auto token = c->ReserveReply();
  const uint64_t client_id = c->id();
  std::string tag = opts.count("tag") ? opts["tag"] : fmt::format("client:{}", client_id);
  bus->Run([bus, shard, client_id, token, exchange = std::string(a[1]), group = opts["group"], tag,
            protocol = c->protocol()](bus::Dispatcher& d) {
    bus::HandlerCallbacks cb;
    cb.on_request = [bus, shard, client_id](const bus::Handler& self,
                                            const bus::IncomingRequest& r) {
      shard->loop()->Post([bus, shard, client_id, hid = self.id, r] {
        if (!DeliverBusRequest(*shard, client_id, hid, r)) {
          bus->Run([hid, rid = r.id](bus::Dispatcher& d) {
            (void)d.Reply(hid, rid,
                          Error(bus::DispatchErrc::kHandlerError, "handler connection closed"));
          });
        }
      });
    };
    cb.on_event = [shard, client_id](const bus::Handler&, const bus::Event& ev) {
      shard->loop()->Post([shard, client_id, ev] { DeliverBusEvent(*shard, client_id, ev); });
    };
    Result<bus::Handler> h = d.Serve(exchange, group, tag, std::move(cb));
    std::string bytes;
    resp::ReplyBuilder rb(&bytes, protocol);
    if (!h.ok()) {
      ReplyError(&rb, h.error());
      CompleteOn(shard, client_id, token, std::move(bytes));
      return;
    }
    rb.Integer(static_cast<int64_t>(h->id));
    shard->loop()->Post([bus, shard, client_id, token, hid = h->id, bytes = std::move(bytes)] {
      resp::Connection* conn = shard->FindClient(client_id);
      if (conn == nullptr) {  // closed meanwhile: withdraw the handler
        bus->Run([hid](bus::Dispatcher& d) { (void)d.Unserve(hid); });
        return;
      }
      Sub(conn)->bus_handlers.insert(hid);
      conn->CompleteReply(token, bytes);
      conn->FlushOutput();
    });
  });
  return kAsync;
}

// BUS.UNSERVE handler-id
DispatchResult BusUnserve(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  int64_t hid = 0;
  if (!ParseInt64(a[1], &hid) || Sub(c)->bus_handlers.erase(static_cast<uint64_t>(hid)) == 0) {
    out->Error("ERR no such handler on this connection");
    return kDone;
  }
  bus->Run([hid](bus::Dispatcher& d) { (void)d.Unserve(static_cast<uint64_t>(hid)); });
  out->Ok();
  return kDone;
}

// BUS.REPLY request-id payload | BUS.REPLY request-id ERROR message
DispatchResult BusReply(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  int64_t rid = 0;
  Subscriber* info = Sub(c);
  if (!ParseInt64(a[1], &rid)) {
    out->Error("ERR the request id is not an integer");
    return kDone;
  }
  auto it = info->bus_requests.find(static_cast<uint64_t>(rid));
  if (it == info->bus_requests.end()) {
    out->Error(
        fmt::format("ERR request {} was not delivered to this connection or was answered", rid));
    return kDone;
  }
  Result<std::string> reply = std::string();
  if (a.size() == 3) {
    reply = std::string(a[2]);
  } else if (a.size() == 4 && AsciiLower(a[2]) == "error") {
    reply = Error(bus::DispatchErrc::kHandlerError, std::string(a[3]));
  } else {
    out->Error("ERR syntax error");
    return kDone;
  }
  const uint64_t hid = it->second.first;
  info->bus_requests.erase(it);
  Shard* shard = e.CurrentShard();
  const auto token = c->ReserveReply();
  bus->Run([shard, id = c->id(), token, hid, rid, reply = std::move(reply),
            protocol = c->protocol()](bus::Dispatcher& d) mutable {
    Status st = d.Reply(hid, static_cast<uint64_t>(rid), std::move(reply));
    std::string bytes;
    resp::ReplyBuilder rb(&bytes, protocol);
    // A reply to a request that expired meanwhile (its caller already got TIMEOUT), or whose
    // handler was withdrawn, is acknowledged all the same: the handler did its part, and an
    // error here would break handler loops over a race they cannot avoid. The dispatcher counts
    // it (bus_late_replies).
    if (st.ok() || st.error().code() == bus::DispatchErrc::kUnknownRequest) {
      rb.Ok();
    } else {
      ReplyError(&rb, st.error());
    }
    CompleteOn(shard, id, token, std::move(bytes));
  });
  return kAsync;
}

// BUS.REQUEST exchange routing-key payload [TIMEOUT ms] [TAG t] [GROUP g]
DispatchResult BusRequest(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  std::map<std::string, std::string> opts;
  if (!ParseOptions(a, 4, {"timeout", "tag", "group"}, &opts, out)) return kDone;
  bus::RequestOptions ro;
  if (opts.count("timeout")) {
    int64_t ms = 0;
    if (!ParseInt64(opts["timeout"], &ms) || ms <= 0 || ms > 86'400'000) {
      out->Error("ERR TIMEOUT is milliseconds, 1 to 86400000");
      return kDone;
    }
    ro.timeout_ms = ms;
  }
  const bool tagged = opts.count("tag") > 0;
  ro.tag = opts["tag"];
  ro.group = opts["group"];
  Shard* shard = e.CurrentShard();
  const auto token = c->ReserveReply();
  bus->Request(
      std::string(a[1]), std::string(a[2]), std::string(a[3]), std::move(ro),
      [shard, id = c->id(), token, tagged, protocol = c->protocol()](Result<bus::Response> r) {
        std::string bytes;
        resp::ReplyBuilder rb(&bytes, protocol);
        if (!r.ok()) {
          ReplyError(&rb, r.error());
        } else {
          if (tagged) {
            rb.ArrayHeader(2);
            rb.Bulk(r->tag);
          }
          if (r->broadcast) rb.ArrayHeader(r->replies.size());
          for (const bus::ReplyPart& p : r->replies) {
            if (p.ok) {
              rb.Bulk(p.payload);
            } else {
              rb.Error("HANDLERERR " + p.payload);
            }
          }
        }
        CompleteOn(shard, id, token, std::move(bytes));
      });
  return kAsync;
}

// BUS.PUBLISH exchange subject payload
DispatchResult BusPublish(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoPublish(e, c, bus::Space::kSubject, a[1], a[2], a[3], out);
}

// BUS.SUBSCRIBE exchange pattern [pattern ...]
DispatchResult BusSubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  for (size_t i = 2; i < a.size(); ++i) {
    if (Status st = bus::ValidatePattern(a[i]); !st.ok()) {
      ReplyError(out, st.error());
      return kDone;
    }
  }
  // The exchange must exist and be publish-subscribe: checked on the control thread, then the
  // subscription is made on this worker.
  Shard* shard = e.CurrentShard();
  const auto token = c->ReserveReply();
  std::vector<std::string> patterns;
  for (size_t i = 2; i < a.size(); ++i) patterns.emplace_back(a[i]);
  bus->Run([&e, shard, id = c->id(), token, exchange = std::string(a[1]), patterns,
            protocol = c->protocol()](bus::Dispatcher& d) {
    const bus::ExchangeSpec* spec = d.registry().FindExchange(exchange);
    std::string error;
    if (spec == nullptr) error = "ERR no exchange '" + exchange + "'";
    if (spec != nullptr && spec->pattern != bus::Pattern::kPublishSubscribe) {
      error = "ERR exchange '" + exchange + "' is request-response: BUS.SERVE it";
    }
    shard->loop()->Post([&e, shard, id, token, exchange, patterns, protocol, error] {
      resp::Connection* conn = shard->FindClient(id);
      if (conn == nullptr) return;
      if (!error.empty()) {
        std::string bytes;
        resp::ReplyBuilder(&bytes, protocol).Error(error);
        conn->CompleteReply(token, bytes);
        conn->FlushOutput();
        return;
      }
      Bus* b = BusOf(e);
      if (b == nullptr) return;
      SubscribeInto(b, shard, conn, 'x', exchange,
                    std::vector<std::string_view>(patterns.begin(), patterns.end()), token);
    });
  });
  return kAsync;
}

// BUS.UNSUBSCRIBE exchange [pattern ...]
DispatchResult BusUnsubscribe(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  return DoUnsubscribe(e, c, 'x', a[1], a.subspan(2), out);
}

void HandlerReply(resp::ReplyBuilder& rb, const bus::Handler& h, bool leader) {
  rb.MapHeader(6);
  rb.Bulk("node");
  rb.Bulk(h.node.ToString());
  rb.Bulk("id");
  rb.Integer(static_cast<int64_t>(h.id));
  rb.Bulk("group");
  rb.Bulk(h.group);
  rb.Bulk("tag");
  rb.Bulk(h.connection);
  rb.Bulk("registered-us");
  rb.Integer(static_cast<int64_t>(h.registered_at.wall));
  rb.Bulk("leader");
  rb.Integer(leader ? 1 : 0);
}

// BUS.EXCHANGES: [name, pattern, strategy, live handlers] per exchange.
// BUS.HANDLERS exchange: the live handlers in leader order (the first is the leader).
DispatchResult BusInspect(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  Bus* bus = BusOf(e);
  if (bus == nullptr) return NoBus(out);
  const bool handlers = AsciiLower(a[0]) == "bus.handlers";
  if (handlers && a.size() != 2) {
    out->Error("ERR wrong number of arguments for 'bus.handlers' command");
    return kDone;
  }
  Shard* shard = e.CurrentShard();
  const auto token = c->ReserveReply();
  bus->Run([shard, id = c->id(), token, handlers, exchange = std::string(a.size() > 1 ? a[1] : ""),
            protocol = c->protocol()](bus::Dispatcher& d) {
    std::string bytes;
    resp::ReplyBuilder rb(&bytes, protocol);
    if (handlers) {
      if (d.registry().FindExchange(exchange) == nullptr) {
        rb.Error("ERR no exchange '" + exchange + "'");
      } else {
        const std::vector<bus::Handler> hs = d.registry().Handlers(exchange);
        rb.ArrayHeader(hs.size());
        for (size_t i = 0; i < hs.size(); ++i) HandlerReply(rb, hs[i], i == 0);
      }
    } else {
      const auto& exs = d.registry().exchanges();
      rb.ArrayHeader(exs.size());
      for (const auto& [name, spec] : exs) {
        rb.ArrayHeader(4);
        rb.Bulk(name);
        rb.Bulk(spec.pattern == bus::Pattern::kRequestResponse ? "request" : "pubsub");
        rb.Bulk(spec.strategy);
        rb.Integer(static_cast<int64_t>(d.registry().Handlers(name).size()));
      }
    }
    CompleteOn(shard, id, token, std::move(bytes));
  });
  return kAsync;
}

constexpr uint32_t kC = kCmdConnection;
constexpr uint32_t kPs = kCmdConnection | kCmdFast;

constexpr CommandSpec kPubSubCommands[] = {
    {"bus.create", -3, kC, 0, 0, 0, nullptr, BusCreate, "bus",
     "Creates an exchange: BUS.CREATE name REQUEST|PUBSUB [strategy]."},
    {"bus.exchanges", 1, kC, 0, 0, 0, nullptr, BusInspect, "bus", "Lists the cluster's exchanges."},
    {"bus.handlers", 2, kC, 0, 0, 0, nullptr, BusInspect, "bus",
     "Lists an exchange's live handlers, leader first."},
    {"bus.publish", 4, kPs, 0, 0, 0, nullptr, BusPublish, "bus",
     "Publishes to a publish-subscribe exchange: BUS.PUBLISH exchange subject payload."},
    {"bus.reply", -3, kPs, 0, 0, 0, nullptr, BusReply, "bus",
     "Answers a request pushed to this handler connection."},
    {"bus.request", -4, kPs, 0, 0, 0, nullptr, BusRequest, "bus",
     "Sends a request: BUS.REQUEST exchange routing-key payload [TIMEOUT ms] [TAG t] [GROUP g]."},
    {"bus.serve", -2, kC, 0, 0, 0, nullptr, BusServe, "bus",
     "Makes this connection a handler of an exchange: BUS.SERVE exchange [GROUP g] [TAG t]."},
    {"bus.subscribe", -3, kPs, 0, 0, 0, nullptr, BusSubscribe, "bus",
     "Subscribes to subjects (NATS patterns) of a publish-subscribe exchange."},
    {"bus.unserve", 2, kC, 0, 0, 0, nullptr, BusUnserve, "bus",
     "Withdraws a handler this connection serves."},
    {"bus.unsubscribe", -2, kPs, 0, 0, 0, nullptr, BusUnsubscribe, "bus",
     "Unsubscribes from an exchange's subjects."},
    {"psubscribe", -2, kPs, 0, 0, 0, nullptr, PSubscribe, "pubsub",
     "Listens for messages on channels matching glob patterns."},
    {"publish", 3, kPs, 0, 0, 0, nullptr, Publish, "pubsub",
     "Posts a message to a channel (every node's subscribers)."},
    {"pubsub", -2, kC, 0, 0, 0, nullptr, PubSub, "pubsub",
     "Inspects the cluster's channels and subscriptions."},
    {"punsubscribe", -1, kPs, 0, 0, 0, nullptr, PUnsubscribe, "pubsub",
     "Stops listening on patterns."},
    {"spublish", 3, kPs, 0, 0, 0, nullptr, SPublish, "pubsub",
     "Posts a message to a shard channel."},
    {"ssubscribe", -2, kPs, 0, 0, 0, nullptr, SSubscribe, "pubsub",
     "Listens for messages on shard channels."},
    {"subscribe", -2, kPs, 0, 0, 0, nullptr, Subscribe, "pubsub",
     "Listens for messages on channels."},
    {"sunsubscribe", -1, kPs, 0, 0, 0, nullptr, SUnsubscribe, "pubsub",
     "Stops listening on shard channels."},
    {"unsubscribe", -1, kPs, 0, 0, 0, nullptr, Unsubscribe, "pubsub",
     "Stops listening on channels."},
};

}  // namespace

std::span<const CommandSpec> PubSubCommands() { return kPubSubCommands; }

// ---------------------------------------------------------------------------------------------
// Worker side

bool DeliverBusRequest(Shard& shard, uint64_t client_id, uint64_t handler_id,
                       const bus::IncomingRequest& r) {
  resp::Connection* c = shard.FindClient(client_id);
  if (c == nullptr || c->closing()) return false;
  Subscriber* info = Sub(c);
  // Requests the dispatcher has since expired are forgotten here too, now and then.
  if (info->bus_requests.size() > 4096) {
    const int64_t now = shard.engine()->clock()->NowUnixMicros();
    std::erase_if(info->bus_requests, [now](const auto& kv) { return kv.second.second < now; });
  }
  info->bus_requests[r.id] = {handler_id, r.deadline};
  std::string s;
  resp::ReplyBuilder rb(&s, c->protocol());
  rb.PushHeader(7);
  rb.Bulk("bus.request");
  rb.Bulk(r.exchange);
  rb.Integer(static_cast<int64_t>(r.id));
  rb.Bulk(r.routing_key);
  rb.Bulk(r.payload);
  rb.Bulk(r.tag);
  rb.Bulk(r.group);
  c->Push(s);
  return true;
}

void DeliverBusEvent(Shard& shard, uint64_t client_id, const bus::Event& ev) {
  resp::Connection* c = shard.FindClient(client_id);
  if (c == nullptr || c->closing()) return;
  std::string s;
  resp::ReplyBuilder rb(&s, c->protocol());
  auto describe = [](const bus::Handler& h) {
    return fmt::format("{}@{}#{}", h.connection, h.node.ToString(), h.id);
  };
  rb.PushHeader(5);
  rb.Bulk("bus.event");
  rb.Bulk(ev.exchange);
  rb.Bulk(bus::ToString(ev.kind));
  if (ev.kind == bus::EventKind::kLeader) {
    if (ev.leader) {
      rb.Bulk(describe(*ev.leader));
    } else {
      rb.NullBulk();
    }
    rb.Integer(static_cast<int64_t>(ev.handlers.size()));
  } else {
    if (ev.handler) {
      rb.Bulk(describe(*ev.handler));
    } else {
      rb.NullBulk();
    }
    rb.Integer(0);
  }
  c->Push(s);
}

void ForgetPubSubClient(Engine& engine, resp::Connection* c) {
  if (Info(c)->pubsub == nullptr) return;
  Subscriber* info = Sub(c);
  if (info->subs.empty() && info->bus_handlers.empty()) return;
  Bus* bus = BusOf(engine);
  Shard* shard = engine.CurrentShard();
  std::vector<std::string> removed;
  const std::vector<std::string> entries(info->subs.begin(), info->subs.end());
  for (const std::string& entry : entries) {
    if (DropEntry(shard, info, c->id(), entry)) removed.push_back(entry);
  }
  SyncSubscribed(c, info);
  const std::vector<uint64_t> handlers(info->bus_handlers.begin(), info->bus_handlers.end());
  info->bus_handlers.clear();
  info->bus_requests.clear();
  if (bus == nullptr) return;
  if (!removed.empty()) bus->WorkerInterest(shard->index(), {}, std::move(removed), nullptr);
  if (!handlers.empty()) {
    bus->Run([handlers](bus::Dispatcher& d) {
      for (uint64_t h : handlers) (void)d.Unserve(h);
    });
  }
}

}  // namespace shoal::commands
