#include "bus/registry.h"

#include <algorithm>
#include <utility>

#include "common/wire.h"

namespace shoal::bus {
namespace {

std::string_view DescribeErrc(Errc e) {
  switch (e) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kConflict:
      return "conflicting exchange";
    case Errc::kNotFound:
      return "not found";
    case Errc::kMalformed:
      return "malformed message";
    case Errc::kBadVersion:
      return "unsupported wire version";
  }
  return "";
}

constexpr uint64_t kWireVersion = 1;

void PutHlc(wire::Writer& w, HlcTime t) {
  w.Array(2);
  w.U64(t.wall);
  w.U64(t.logical);
}

HlcTime GetHlc(const wire::Reader& r) {
  if (r.Array() != 2) throw wire::WireError("bad hlc");
  return {r.At(0).U64(), static_cast<uint32_t>(r.At(1).U64Max(UINT32_MAX))};
}

std::string GetName(const wire::Reader& r, size_t max, bool allow_empty = false) {
  std::string_view s = r.Bin();
  if ((s.empty() && !allow_empty) || s.size() > max) throw wire::WireError("bad name length");
  return std::string(s);
}

Status CheckName(std::string_view what, std::string_view s, size_t max, bool allow_empty) {
  if ((s.empty() && !allow_empty) || s.size() > max) {
    return Error(Errc::kInvalidArgument,
                 std::string(what) + " must be 1.." + std::to_string(max) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(Errc, "bus", DescribeErrc)

std::string_view ToString(Pattern pattern) {
  switch (pattern) {
    case Pattern::kRequestResponse:
      return "request_response";
    case Pattern::kPublishSubscribe:
      return "publish_subscribe";
  }
  return "?";
}

std::string_view ToString(EventKind kind) {
  switch (kind) {
    case EventKind::kLeader:
      return "leader";
    case EventKind::kMemberUp:
      return "member_up";
    case EventKind::kMemberDown:
      return "member_down";
    case EventKind::kExchangeConflict:
      return "exchange_conflict";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Wire

std::string Encode(const Message& m) {
  wire::Writer w;
  w.Array(5);
  w.U64(kWireVersion);
  w.U64(static_cast<uint64_t>(m.type));
  w.Id(m.sender);
  PutHlc(w, m.hlc);
  switch (m.type) {
    case MessageType::kDigest:
      w.Array(static_cast<uint32_t>(m.digest.size()));
      for (const auto& [id, v] : m.digest) {
        w.Array(2);
        w.Id(id);
        w.U64(v);
      }
      break;
    case MessageType::kPull:
      w.Array(static_cast<uint32_t>(m.pull.size()));
      for (const auto& id : m.pull) w.Id(id);
      break;
    case MessageType::kStates:
      w.Array(static_cast<uint32_t>(m.states.size()));
      for (const NodeState& s : m.states) {
        w.Array(5);
        w.Id(s.node);
        w.U64(s.version);
        w.Array(static_cast<uint32_t>(s.exchanges.size()));
        for (const ExchangeSpec& e : s.exchanges) {
          w.Array(5);
          w.Bin(e.name);
          w.U64(static_cast<uint64_t>(e.pattern));
          w.Bin(e.strategy);
          PutHlc(w, e.created_at);
          w.Id(e.creator);
        }
        w.Array(static_cast<uint32_t>(s.handlers.size()));
        for (const Handler& h : s.handlers) {
          w.Array(5);
          w.Bin(h.exchange);
          w.U64(h.id);
          w.Bin(h.group);
          w.Bin(h.connection);
          PutHlc(w, h.registered_at);
        }
        w.Array(static_cast<uint32_t>(s.interest.size()));
        for (const std::string& i : s.interest) w.Bin(i);
      }
      break;
  }
  return w.Take();
}

Result<Message> Decode(std::string_view bytes, const RegistryOptions& limits) {
  try {
    auto handle = wire::Unpack(bytes);
    wire::Reader r(handle.get());
    if (r.Array() != 5) throw wire::WireError("expected 5 fields");
    if (r.At(0).U64() != kWireVersion) {
      return Error(Errc::kBadVersion, "registry wire version " + std::to_string(r.At(0).U64()));
    }
    Message m;
    const uint64_t type = r.At(1).U64();
    if (type < 1 || type > 3) throw wire::WireError("unknown message type");
    m.type = static_cast<MessageType>(type);
    m.sender = r.At(2).Id();
    m.hlc = GetHlc(r.At(3));
    wire::Reader body = r.At(4);
    const uint32_t n = body.Array();
    switch (m.type) {
      case MessageType::kDigest:
        for (uint32_t i = 0; i < n; ++i) {
          wire::Reader e = body.At(i);
          if (e.Array() != 2) throw wire::WireError("bad digest entry");
          m.digest[e.At(0).Id()] = e.At(1).U64();
        }
        break;
      case MessageType::kPull:
        for (uint32_t i = 0; i < n; ++i) m.pull.push_back(body.At(i).Id());
        break;
      case MessageType::kStates:
        for (uint32_t i = 0; i < n; ++i) {
          wire::Reader sr = body.At(i);
          if (sr.Array() != 5) throw wire::WireError("bad state");
          NodeState s;
          s.node = sr.At(0).Id();
          s.version = sr.At(1).U64();
          wire::Reader ex = sr.At(2);
          if (ex.Array() > limits.max_exchanges) throw wire::WireError("too many exchanges");
          for (uint32_t j = 0; j < ex.Array(); ++j) {
            wire::Reader er = ex.At(j);
            if (er.Array() != 5) throw wire::WireError("bad exchange");
            ExchangeSpec e;
            e.name = GetName(er.At(0), limits.max_name);
            e.pattern = static_cast<Pattern>(er.At(1).U64Max(1));
            e.strategy = GetName(er.At(2), limits.max_name);
            e.created_at = GetHlc(er.At(3));
            e.creator = er.At(4).Id();
            s.exchanges.push_back(std::move(e));
          }
          wire::Reader hs = sr.At(3);
          if (hs.Array() > limits.max_handlers_per_node) throw wire::WireError("too many handlers");
          for (uint32_t j = 0; j < hs.Array(); ++j) {
            wire::Reader hr = hs.At(j);
            if (hr.Array() != 5) throw wire::WireError("bad handler");
            Handler h;
            h.exchange = GetName(hr.At(0), limits.max_name);
            h.node = s.node;
            h.id = hr.At(1).U64();
            h.group = GetName(hr.At(2), limits.max_name, /*allow_empty=*/true);
            h.connection = GetName(hr.At(3), limits.max_name, /*allow_empty=*/true);
            h.registered_at = GetHlc(hr.At(4));
            s.handlers.push_back(std::move(h));
          }
          wire::Reader is = sr.At(4);
          if (is.Array() > limits.max_interest) throw wire::WireError("too much interest");
          for (uint32_t j = 0; j < is.Array(); ++j) {
            s.interest.push_back(GetName(is.At(j), limits.max_interest_entry));
          }
          m.states.push_back(std::move(s));
        }
        break;
    }
    return m;
  } catch (const wire::WireError& e) {
    return Error(Errc::kMalformed, e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

Registry::Registry(MemberId self, int64_t now, RegistryIo* io, RegistryOptions options)
    : self_(self), io_(io), options_(std::move(options)) {
  NodeState& s = states_[self_];
  s.node = self_;
  // Starts at the boot time, so that a restart (same id, memory lost) supersedes the old life.
  s.version = hlc_.Now(now).wall;
  next_anti_entropy_ = now;
}

bool Registry::Live(const MemberId& node) const {
  if (node == self_) return true;
  if (view_ == nullptr) return false;
  const membership::Member* m = view_->Find(node);
  return m != nullptr && (m->state == membership::MemberState::kAlive ||
                          m->state == membership::MemberState::kSuspect);
}

std::vector<MemberId> Registry::LivePeers() const {
  std::vector<MemberId> out;
  if (view_ == nullptr) return out;
  for (const membership::Member& m : view_->members()) {
    if (m.record.id != self_ && Live(m.record.id)) out.push_back(m.record.id);
  }
  return out;
}

const ExchangeSpec* Registry::FindExchange(std::string_view name) const {
  auto it = exchanges_.find(name);
  return it == exchanges_.end() ? nullptr : &it->second;
}

std::vector<Handler> Registry::Handlers(std::string_view exchange) const {
  auto it = views_.find(exchange);
  return it == views_.end() ? std::vector<Handler>{} : it->second.handlers;
}

std::optional<Handler> Registry::Leader(std::string_view exchange) const {
  auto it = views_.find(exchange);
  if (it == views_.end() || it->second.handlers.empty()) return std::nullopt;
  return it->second.handlers.front();
}

std::map<MemberId, uint64_t> Registry::Digest() const {
  std::map<MemberId, uint64_t> d;
  for (const auto& [id, s] : states_) d[id] = s.version;
  return d;
}

Result<ExchangeSpec> Registry::Create(std::string_view name, Pattern pattern,
                                      std::string_view strategy, int64_t now) {
  if (Status st = CheckName("exchange name", name, options_.max_name, false); !st)
    return st.error();
  if (Status st = CheckName("strategy", strategy, options_.max_name, false); !st) return st.error();
  if (pattern != Pattern::kRequestResponse && pattern != Pattern::kPublishSubscribe) {
    return Error(Errc::kInvalidArgument, "unknown pattern");
  }
  if (const ExchangeSpec* e = FindExchange(name)) {
    if (e->pattern != pattern || e->strategy != strategy) {
      return Error(Errc::kConflict, "exchange '" + std::string(name) + "' exists as " +
                                        std::string(ToString(e->pattern)) + "/" + e->strategy);
    }
    return *e;
  }
  if (exchanges_.size() >= options_.max_exchanges) {
    return Error(Errc::kInvalidArgument, "too many exchanges");
  }
  ExchangeSpec spec{std::string(name), pattern, std::string(strategy), hlc_.Now(now), self_};
  exchanges_.emplace(spec.name, spec);
  Publish(now);
  Recompute();
  return spec;
}

Result<Handler> Registry::Register(std::string_view exchange, std::string_view group,
                                   std::string_view connection, int64_t now) {
  if (FindExchange(exchange) == nullptr) {
    return Error(Errc::kNotFound, "no exchange '" + std::string(exchange) + "'");
  }
  if (Status st = CheckName("group", group, options_.max_name, true); !st) return st.error();
  if (Status st = CheckName("connection tag", connection, options_.max_name, true); !st) {
    return st.error();
  }
  if (own_.size() >= options_.max_handlers_per_node) {
    return Error(Errc::kInvalidArgument, "too many handlers on this node");
  }
  Handler h{std::string(exchange),   self_,        next_handler_++, std::string(group),
            std::string(connection), hlc_.Now(now)};
  own_.emplace(h.id, h);
  Publish(now);
  Recompute();
  return h;
}

Status Registry::Unregister(uint64_t handler_id, int64_t now) {
  if (own_.erase(handler_id) == 0) {
    return Error(Errc::kNotFound, "no handler " + std::to_string(handler_id) + " on this node");
  }
  Publish(now);
  Recompute();
  return Status::Ok();
}

std::vector<MemberId> Registry::SetInterest(std::vector<std::string> interest, int64_t now) {
  if (interest == interest_) return {};
  interest_ = std::move(interest);
  ++generation_;
  return Publish(now);
}

std::vector<const NodeState*> Registry::LiveStates() const {
  std::vector<const NodeState*> out;
  for (const auto& [id, s] : states_) {
    if (Live(id)) out.push_back(&s);
  }
  return out;
}

std::vector<MemberId> Registry::Publish(int64_t now) {
  NodeState& s = states_[self_];
  ++s.version;
  s.exchanges.clear();
  for (const auto& [name, e] : exchanges_) s.exchanges.push_back(e);
  s.handlers.clear();
  for (const auto& [id, h] : own_) s.handlers.push_back(h);
  s.interest = interest_;
  std::vector<MemberId> peers = LivePeers();
  for (const MemberId& peer : peers) {
    Message m;
    m.type = MessageType::kStates;
    m.states.push_back(s);
    SendMessage(peer, std::move(m), now);
  }
  return peers;
}

void Registry::SendMessage(const MemberId& to, Message m, int64_t now) {
  m.sender = self_;
  m.hlc = hlc_.Now(now);
  io_->Send(to, Encode(m));
}

bool Registry::MergeExchange(const ExchangeSpec& spec) {
  auto it = exchanges_.find(spec.name);
  if (it == exchanges_.end()) {
    exchanges_.emplace(spec.name, spec);
    return true;
  }
  ExchangeSpec& cur = it->second;
  if (spec == cur) return false;
  const bool incoming_wins = spec.Key() < cur.Key();
  if (!spec.SameKind(cur)) {
    const ExchangeSpec& winner = incoming_wins ? spec : cur;
    const ExchangeSpec& loser = incoming_wins ? cur : spec;
    if (reported_losers_.insert({loser.name, loser.Key()}).second) {
      Event ev;
      ev.kind = EventKind::kExchangeConflict;
      ev.exchange = spec.name;
      ev.winner = winner;
      ev.loser = loser;
      io_->Emit(ev);
    }
  }
  if (!incoming_wins) return false;
  cur = spec;
  return true;
}

void Registry::OnView(std::shared_ptr<const membership::MemberTable> view, int64_t now) {
  std::shared_ptr<const membership::MemberTable> previous = std::move(view_);
  view_ = std::move(view);
  // Forget the states of nodes the membership has reaped (dead or left long enough), so churn
  // does not grow the registry forever; remember their versions so that anti-entropy from a
  // peer that has not reaped them yet does not bring them back (a restart publishes higher).
  for (auto it = states_.begin(); it != states_.end();) {
    // Only nodes that were members and are gone now: a state may arrive before its node
    // appears in this view.
    if (it->first != self_ && view_ != nullptr && previous != nullptr &&
        previous->Find(it->first) != nullptr && view_->Find(it->first) == nullptr) {
      dropped_[it->first] = it->second.version;
      it = states_.erase(it);
    } else {
      ++it;
    }
  }
  while (dropped_.size() > options_.max_dropped) dropped_.erase(dropped_.begin());
  Recompute();
}

Status Registry::OnMessage(const MemberId& from, std::string_view bytes, int64_t now) {
  Result<Message> r = Decode(bytes, options_);
  if (!r) return r.error();
  Message& m = *r;
  if (m.sender != from) return Error(Errc::kMalformed, "sender does not match the peer");
  hlc_.Observe(m.hlc, now);
  switch (m.type) {
    case MessageType::kDigest: {
      std::vector<MemberId> want;
      Message reply;
      reply.type = MessageType::kStates;
      for (const auto& [id, v] : m.digest) {
        auto it = states_.find(id);
        if (id != self_ && (it == states_.end() || it->second.version < v)) want.push_back(id);
      }
      for (const auto& [id, s] : states_) {
        auto it = m.digest.find(id);
        if (it == m.digest.end() || it->second < s.version) reply.states.push_back(s);
      }
      if (!want.empty()) {
        Message pull;
        pull.type = MessageType::kPull;
        pull.pull = std::move(want);
        SendMessage(from, std::move(pull), now);
      }
      if (!reply.states.empty()) SendMessage(from, std::move(reply), now);
      return Status::Ok();
    }
    case MessageType::kPull: {
      Message reply;
      reply.type = MessageType::kStates;
      for (const MemberId& id : m.pull) {
        auto it = states_.find(id);
        if (it != states_.end()) reply.states.push_back(it->second);
      }
      if (!reply.states.empty()) SendMessage(from, std::move(reply), now);
      return Status::Ok();
    }
    case MessageType::kStates: {
      bool exchanges_changed = false;
      bool changed = false;
      for (NodeState& s : m.states) {
        for (const ExchangeSpec& e : s.exchanges) exchanges_changed |= MergeExchange(e);
        if (s.node == self_) {
          // Our own state from a previous life (or echoed back): jump past it.
          if (s.version >= states_[self_].version) {
            states_[self_].version = s.version;
            exchanges_changed = true;  // republish above it
          }
          continue;
        }
        auto it = states_.find(s.node);
        if (it != states_.end() && it->second.version >= s.version) continue;
        if (auto d = dropped_.find(s.node); d != dropped_.end()) {
          if (d->second >= s.version) continue;  // a reaped node's old state
          dropped_.erase(d);
        }
        states_[s.node] = std::move(s);
        changed = true;
      }
      if (exchanges_changed) Publish(now);
      if (changed || exchanges_changed) Recompute();
      return Status::Ok();
    }
  }
  return Status::Ok();
}

void Registry::Tick(int64_t now) {
  if (now < next_anti_entropy_) return;
  next_anti_entropy_ = now + options_.anti_entropy_interval;
  const std::vector<MemberId> peers = LivePeers();
  if (peers.empty()) return;
  const MemberId& to = peers[peer_cursor_++ % peers.size()];
  Message m;
  m.type = MessageType::kDigest;
  m.digest = Digest();
  SendMessage(to, std::move(m), now);
}

void Registry::Recompute() {
  ++generation_;
  std::map<std::string, std::vector<Handler>, std::less<>> next;
  for (const auto& [name, e] : exchanges_) next[name];
  for (const auto& [node, s] : states_) {
    if (!Live(node)) continue;
    for (const Handler& h : node == self_ ? std::vector<Handler>() : s.handlers) {
      auto it = next.find(h.exchange);
      if (it != next.end()) it->second.push_back(h);
    }
  }
  for (const auto& [id, h] : own_) {
    auto it = next.find(h.exchange);
    if (it != next.end()) it->second.push_back(h);
  }
  for (auto& [name, hs] : next) {
    std::sort(hs.begin(), hs.end(),
              [](const Handler& a, const Handler& b) { return a.LeaderKey() < b.LeaderKey(); });
    View& v = views_[name];
    if (v.handlers == hs) continue;
    auto key_less = [](const Handler& a, const Handler& b) {
      return a.LeaderKey() < b.LeaderKey();
    };
    std::vector<Handler> gone, added;
    std::set_difference(v.handlers.begin(), v.handlers.end(), hs.begin(), hs.end(),
                        std::back_inserter(gone), key_less);
    std::set_difference(hs.begin(), hs.end(), v.handlers.begin(), v.handlers.end(),
                        std::back_inserter(added), key_less);
    v.handlers = hs;
    for (const Handler& h : gone) {
      Event ev;
      ev.kind = EventKind::kMemberDown;
      ev.exchange = name;
      ev.handler = h;
      io_->Emit(ev);
    }
    for (const Handler& h : added) {
      Event ev;
      ev.kind = EventKind::kMemberUp;
      ev.exchange = name;
      ev.handler = h;
      io_->Emit(ev);
    }
    Event ev;
    ev.kind = EventKind::kLeader;
    ev.exchange = name;
    if (!hs.empty()) ev.leader = hs.front();
    ev.handlers = hs;
    io_->Emit(ev);
  }
}

}  // namespace shoal::bus
