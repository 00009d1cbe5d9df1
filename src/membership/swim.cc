#include "membership/swim.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

namespace shoal::membership {
namespace {

bool IsLive(MemberState s) { return s == MemberState::kAlive || s == MemberState::kSuspect; }

// Refutations are retransmitted this many times the usual limit (see HandleAlive).
constexpr int kRefutationWeight = 2;

}  // namespace

SuspicionTimeouts ComputeSuspicionTimeouts(const SwimConfig& config, size_t n) {
  SuspicionTimeouts t;
  const double nodes_scale = std::max(1.0, std::log10(static_cast<double>(std::max<size_t>(n, 1))));
  t.min = static_cast<int64_t>(config.suspicion_mult * nodes_scale *
                               static_cast<double>(config.suspicion_unit));
  t.max = config.suspicion_max_timeout_mult * t.min;
  t.k = config.suspicion_mult - 2;
  // Too few members to ever gather k confirmations: don't wait for them.
  if (static_cast<int64_t>(n) - 2 < t.k) t.k = 0;
  if (!config.lifeguard) {
    t.max = t.min;
    t.k = 0;
  }
  return t;
}

int64_t SuspicionTimeout(const SuspicionTimeouts& t, int confirmations) {
  if (t.k < 1) return t.min;
  const double frac = std::log(confirmations + 1.0) / std::log(t.k + 1.0);
  const auto raw =
      static_cast<int64_t>(static_cast<double>(t.max) - frac * static_cast<double>(t.max - t.min));
  return std::max(t.min, raw);
}

int RetransmitLimit(int retransmit_mult, size_t n) {
  return retransmit_mult * static_cast<int>(std::ceil(std::log10(static_cast<double>(n) + 1.0)));
}

Swim::Swim(SwimConfig config, MemberRecord self, const Clock& clock, Rng& rng, SwimOutput& out,
           Incarnation incarnation)
    : config_(std::move(config)), self_id_(self.id), clock_(clock), rng_(rng), out_(out) {
  assert(!self_id_.empty());
  Insert(self, MemberState::kAlive, incarnation);
  const int64_t now = Now();
  // Random phases, so that nodes started together do not probe and gossip in lockstep.
  next_probe_at_ = now + Jitter(config_.probe_interval);
  next_gossip_at_ = now + Jitter(config_.gossip_interval);
  next_push_pull_at_ = now + Jitter(config_.push_pull_interval);
  next_reconnect_at_ = now + config_.reconnect_interval + Jitter(config_.reconnect_interval);
}

int Swim::Jitter(int64_t range) {
  return range <= 0 ? 0 : static_cast<int>(rng_.Uniform(static_cast<uint64_t>(range)));
}

const MemberRecord& Swim::self_record() const { return members_.at(self_id_).m.record; }
Swim::Entry& Swim::self_entry() { return members_.at(self_id_); }
Incarnation Swim::incarnation() const { return members_.at(self_id_).m.incarnation; }

void Swim::AdjustAwareness(int delta) {
  if (!config_.lifeguard) return;
  awareness_ = std::clamp(awareness_ + delta, 0, config_.awareness_max_multiplier - 1);
}

// ---- Inputs ----

void Swim::Join(std::vector<Endpoint> seeds) {
  if (phase_ != Phase::kRunning) return;
  seeds_.clear();
  for (Endpoint& s : seeds) {
    if (s != self_record().address) seeds_.push_back(std::move(s));
  }
  for (const Endpoint& s : seeds_) {
    ++counters_.push_pulls_requested;
    out_.RequestPushPull(s);
  }
  next_join_retry_at_ = seeds_.empty() ? INT64_MAX : Now() + config_.join_retry_interval;
}

void Swim::Leave() {
  if (phase_ != Phase::kRunning) return;
  phase_ = Phase::kLeaving;
  probe_.active = false;
  Entry& self = self_entry();
  SetState(self, MemberState::kLeft);
  const LeaveMsg leave{self.m.incarnation, self_id_};
  Broadcast(self_id_, leave);
  // Gossip alone misses a member now and then (SWIM's dissemination is probabilistic), and a
  // member that missed a leave would probe a silent node and declare it dead. A leave happens
  // once: tell every live member directly, one small datagram each.
  const std::string framed = EncodeMessage(leave);
  for (const auto& [id, e] : members_) {
    if (id != self_id_ && IsLive(e.m.state)) Send(e.m.record.address, {framed});
  }
  leave_deadline_ = Now() + config_.leave_timeout;
  // Nobody to tell, or the direct sends already used up the leave's retransmit budget (4 or
  // more live peers): done now, rather than idling until leave_deadline_.
  if (live_count_ == 0 || broadcasts_.TransmitsOf(self_id_) < 0) {
    phase_ = Phase::kLeft;
    relays_.clear();
    suspicion_timers_.clear();
  }
}

Status Swim::UpdateSelf(MemberRecord record) {
  if (record.id != self_id_) return Error(Errc::kInvalidArgument, "UpdateSelf: not our id");
  Entry& self = self_entry();
  if (record == self.m.record) return Status::Ok();
  const Incarnation next(self.m.incarnation.value() + 1);
  AliveMsg alive{next, std::move(record)};
  if (PacketSize(EncodedAliveSize(alive)) > config_.max_packet_size) {
    return Error(Errc::kInvalidArgument, "member record too large for one packet");
  }
  if (phase_ != Phase::kRunning) return Error(Errc::kInvalidArgument, "node is leaving");
  self.m.record = alive.record;
  self.m.incarnation = next;
  ++version_;
  Broadcast(self_id_, alive);
  return Status::Ok();
}

void Swim::OnPacket(const Endpoint& from, std::string_view bytes) {
  if (phase_ == Phase::kLeft) return;
  ++counters_.packets_received;
  Result<std::vector<Message>> msgs = OpenPacket(config_.cookie, bytes);
  if (!msgs.ok()) {
    if (msgs.error().code() == Errc::kBadAuth) {
      ++counters_.bad_auth;
    } else {
      ++counters_.malformed;
    }
    return;
  }
  // News first, then requests: an ack we send then carries whatever this packet taught us
  // (a refutation provoked by a piggybacked accusation, above all).
  for (const Message& m : *msgs) {
    if (const auto* a = std::get_if<AliveMsg>(&m)) {
      HandleAlive(*a, &from);
    } else if (const auto* s = std::get_if<SuspectMsg>(&m)) {
      HandleSuspect(*s, &from);
    } else if (const auto* d = std::get_if<DeadMsg>(&m)) {
      HandleDead(*d, &from);
    } else if (const auto* l = std::get_if<LeaveMsg>(&m)) {
      HandleLeave(*l, &from);
    } else if (const auto* ack = std::get_if<AckMsg>(&m)) {
      HandleAck(*ack);
    } else if (const auto* nack = std::get_if<NackMsg>(&m)) {
      HandleNack(*nack);
    }
  }
  for (const Message& m : *msgs) {
    if (const auto* p = std::get_if<PingMsg>(&m)) {
      HandlePing(*p, from);
    } else if (const auto* ip = std::get_if<IndirectPingMsg>(&m)) {
      HandleIndirectPing(*ip, from);
    }
  }
}

std::string Swim::EncodeState() const {
  StateBlob state;
  state.sender = self_id_;
  state.entries.reserve(members_.size());
  for (const auto& [id, e] : members_) {
    state.entries.push_back({e.m.state, e.m.incarnation, e.m.record});
  }
  return EncodeStateBlob(config_.cookie, state);
}

Status Swim::MergeRemoteState(std::string_view blob) {
  if (phase_ == Phase::kLeft) return Status::Ok();
  Result<StateBlob> state = DecodeStateBlob(config_.cookie, blob);
  if (!state.ok()) {
    ++counters_.push_pulls_rejected;
    if (state.error().code() == Errc::kBadAuth) {
      ++counters_.bad_auth;
    } else {
      ++counters_.malformed;
    }
    return state.error();
  }
  ++counters_.push_pulls_merged;
  for (const StateEntry& e : state->entries) {
    if (e.record.id.empty()) continue;
    switch (e.state) {
      case MemberState::kAlive:
        // Members new to us are announced only if it is the peer itself (a joiner, as seen by
        // its seed): the rest the peer's side knows already, and a joiner re-announcing the
        // whole table would cost N updates times λ·log N transmissions, for nothing. Changes to
        // members we knew are news (a healed partition) and spread as usual.
        HandleAlive({e.incarnation, e.record}, nullptr,
                    e.record.id == state->sender ? Spread::kYes : Spread::kIfKnown);
        break;
      case MemberState::kSuspect:
      case MemberState::kDead:
        // A stale table must not kill anyone: a remote death only makes us (and through our
        // gossip, the accused) check, as our own suspicion.
        HandleSuspect({e.incarnation, e.record.id, self_id_}, nullptr);
        break;
      case MemberState::kLeft:
        if (members_.find(e.record.id) == members_.end()) {
          // Learn of it (to know it left), without announcing a join.
          Insert(e.record, MemberState::kLeft, e.incarnation);
        } else {
          HandleLeave({e.incarnation, e.record.id}, nullptr);
        }
        break;
    }
  }
  return Status::Ok();
}

const Member* Swim::Find(MemberId id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second.m;
}

std::shared_ptr<const MemberTable> Swim::Snapshot() {
  if (snapshot_ && snapshot_->version() == version_) return snapshot_;
  std::vector<Member> rows;
  rows.reserve(members_.size());
  for (const auto& [id, e] : members_) rows.push_back(e.m);
  snapshot_ = std::make_shared<const MemberTable>(version_, self_id_, std::move(rows));
  return snapshot_;
}

// ---- Sending ----

void Swim::Send(const Endpoint& to, std::vector<std::string> primary) {
  size_t used = 0;
  for (const std::string& p : primary) used += p.size();
  const size_t overhead = PacketSize(used);
  if (overhead < config_.max_packet_size) {
    broadcasts_.Take(config_.max_packet_size - overhead, 255 - primary.size(),
                     RetransmitLimit(config_.retransmit_mult, live_count_), &primary);
  }
  std::vector<std::string_view> views(primary.begin(), primary.end());
  ++counters_.packets_sent;
  out_.SendPacket(to, SealPacket(config_.cookie, views));
}

void Swim::Broadcast(MemberId about, const Message& msg, int weight) {
  broadcasts_.Push(about, EncodeMessage(msg), weight);
}

// ---- State ----

Swim::Entry& Swim::Insert(const MemberRecord& record, MemberState state, Incarnation inc) {
  auto [it, inserted] = members_.try_emplace(record.id);
  assert(inserted);
  Entry& e = it->second;
  e.m.record = record;
  e.m.state = state;
  e.m.incarnation = inc;
  e.m.state_since_micros = Now();
  if (IsLive(state)) ++live_count_;
  if (state == MemberState::kSuspect) ++suspect_count_;
  ids_.insert(std::lower_bound(ids_.begin(), ids_.end(), record.id), record.id);
  if (record.id != self_id_ && IsLive(state)) {
    // Somewhere in the rest of this round, so a newcomer is probed soon.
    const size_t lo = std::min(probe_index_, probe_order_.size());
    const size_t pos = lo + rng_.Uniform(probe_order_.size() - lo + 1);
    probe_order_.insert(probe_order_.begin() + static_cast<ptrdiff_t>(pos), record.id);
  }
  ++version_;
  return e;
}

void Swim::SetState(Entry& e, MemberState state) {
  suspect_count_ -= e.m.state == MemberState::kSuspect ? 1 : 0;
  suspect_count_ += state == MemberState::kSuspect ? 1 : 0;
  if (IsLive(e.m.state) != IsLive(state)) {
    if (IsLive(state)) {
      ++live_count_;
    } else {
      --live_count_;
    }
  }
  if (e.m.state != state) e.m.state_since_micros = Now();
  e.m.state = state;
  ++version_;
}

void Swim::Emit(MemberEventKind kind, const Entry& e) {
  if (e.m.record.id == self_id_) return;
  out_.OnMemberEvent(MemberEvent{kind, e.m});
}

void Swim::StartSuspicion(Entry& e, MemberId from) {
  const int64_t now = Now();
  e.suspect_start = now;
  e.suspect_from = from;
  e.confirmations.clear();
  e.timeouts = ComputeSuspicionTimeouts(config_, live_count_);
  e.suspect_deadline = now + SuspicionTimeout(e.timeouts, 0);
  suspicion_timers_.emplace(e.suspect_deadline, e.m.record.id);
}

void Swim::ClearSuspicion(Entry& e) {
  if (e.suspect_deadline != 0) {
    suspicion_timers_.erase({e.suspect_deadline, e.m.record.id});
    e.suspect_deadline = 0;
  }
  e.confirmations.clear();
}

void Swim::Confirm(Entry& e, MemberId from) {
  if (e.timeouts.k < 1 || from == e.suspect_from ||
      static_cast<int>(e.confirmations.size()) >= e.timeouts.k ||
      !e.confirmations.insert(from).second) {
    return;
  }
  suspicion_timers_.erase({e.suspect_deadline, e.m.record.id});
  e.suspect_deadline =
      e.suspect_start + SuspicionTimeout(e.timeouts, static_cast<int>(e.confirmations.size()));
  suspicion_timers_.emplace(e.suspect_deadline, e.m.record.id);
  // Pass the confirmation on, so others' timers shrink too.
  Broadcast(e.m.record.id, SuspectMsg{e.m.incarnation, e.m.record.id, from});
}

void Swim::Reap() {
  const int64_t now = Now();
  for (auto it = members_.begin(); it != members_.end();) {
    const Member& m = it->second.m;
    if (!IsLive(m.state) && m.record.id != self_id_ &&
        now - m.state_since_micros >= config_.dead_reclaim_time) {
      ids_.erase(std::lower_bound(ids_.begin(), ids_.end(), it->first));
      it = members_.erase(it);
      ++version_;
    } else {
      ++it;
    }
  }
}

// ---- Handlers ----

void Swim::HandleAlive(const AliveMsg& msg, const Endpoint* from, Spread spread) {
  const MemberId id = msg.record.id;
  if (id.empty()) return;
  if (id == self_id_) {
    // Someone spreads a newer or different picture of us: only we speak for ourselves.
    const Entry& self = members_.at(self_id_);
    if (phase_ == Phase::kRunning &&
        (msg.incarnation > self.m.incarnation ||
         (msg.incarnation == self.m.incarnation && msg.record != self.m.record))) {
      Refute(msg.incarnation, nullptr);
    }
    return;
  }
  auto it = members_.find(id);
  if (it == members_.end()) {
    Entry& e = Insert(msg.record, MemberState::kAlive, msg.incarnation);
    if (spread == Spread::kYes) Broadcast(id, msg);
    Emit(MemberEventKind::kJoined, e);
    return;
  }
  Entry& e = it->second;
  // Only a higher incarnation changes anything: at equal incarnation alive loses to every other
  // state, and the record is the owner's to change (with a new incarnation).
  if (msg.incarnation <= e.m.incarnation) return;
  const MemberState prev = e.m.state;
  const bool record_changed = e.m.record != msg.record;
  ClearSuspicion(e);
  e.m.record = msg.record;
  e.m.incarnation = msg.incarnation;
  SetState(e, MemberState::kAlive);
  // A refutation is sent twice as often as other news: a member that got the suspicion but
  // misses the refutation declares a live member dead.
  Broadcast(id, msg, prev == MemberState::kAlive ? 1 : kRefutationWeight);
  switch (prev) {
    case MemberState::kAlive:
      if (record_changed) Emit(MemberEventKind::kUpdated, e);
      break;
    case MemberState::kSuspect:
      Emit(MemberEventKind::kAlive, e);
      break;
    case MemberState::kDead:
      Emit(MemberEventKind::kAlive, e);
      break;
    case MemberState::kLeft:
      Emit(MemberEventKind::kJoined, e);
      break;
  }
  if (prev == MemberState::kDead && phase_ == Phase::kRunning) {
    // Back from the dead: probably a healed partition, whose other side has news of its own.
    RequestRepairPushPull(e.m.record.address);
  }
}

void Swim::RequestRepairPushPull(const Endpoint& peer) {
  // At most one per probe interval, or a healed 50/50 split would start a push-pull per member.
  if (Now() - last_repair_push_pull_ < config_.probe_interval) return;
  last_repair_push_pull_ = Now();
  ++counters_.push_pulls_requested;
  out_.RequestPushPull(peer);
}

void Swim::HandleSuspect(const SuspectMsg& msg, const Endpoint* from) {
  if (msg.member == self_id_) {
    AnswerAccusation(msg.incarnation, from);
    return;
  }
  auto it = members_.find(msg.member);
  if (it == members_.end()) return;
  Entry& e = it->second;
  if (msg.incarnation < e.m.incarnation) return;
  if (e.m.state == MemberState::kSuspect) {
    Confirm(e, msg.from);
    return;
  }
  if (e.m.state != MemberState::kAlive) return;
  e.m.incarnation = msg.incarnation;
  SetState(e, MemberState::kSuspect);
  StartSuspicion(e, msg.from);
  Broadcast(msg.member, msg);
  Emit(MemberEventKind::kSuspect, e);
}

void Swim::HandleDead(const DeadMsg& msg, const Endpoint* from) {
  if (msg.member == self_id_) {
    AnswerAccusation(msg.incarnation, from);
    return;
  }
  auto it = members_.find(msg.member);
  if (it == members_.end()) return;
  Entry& e = it->second;
  if (msg.incarnation < e.m.incarnation || !IsLive(e.m.state)) return;
  ClearSuspicion(e);
  e.m.incarnation = msg.incarnation;
  SetState(e, MemberState::kDead);
  Broadcast(msg.member, msg);
  Emit(MemberEventKind::kDead, e);
}

void Swim::HandleLeave(const LeaveMsg& msg, const Endpoint* from) {
  if (msg.member == self_id_) {
    // A leave of ours from a previous life (we restarted with the same id): we are here.
    AnswerAccusation(msg.incarnation, from);
    return;
  }
  auto it = members_.find(msg.member);
  if (it == members_.end()) return;
  Entry& e = it->second;
  if (msg.incarnation < e.m.incarnation || e.m.state == MemberState::kLeft) return;
  ClearSuspicion(e);
  e.m.incarnation = msg.incarnation;
  SetState(e, MemberState::kLeft);
  Broadcast(msg.member, msg);
  Emit(MemberEventKind::kLeft, e);
}

void Swim::AnswerAccusation(Incarnation accused, const Endpoint* from) {
  if (phase_ != Phase::kRunning) return;
  const Entry& self = members_.at(self_id_);
  if (accused >= self.m.incarnation) {
    Refute(accused, from);
  } else if (from != nullptr) {
    // Stale news about us: already refuted, but the refutation did not reach whoever passed this
    // on. Correct it directly.
    Send(*from, {EncodeMessage(AliveMsg{self.m.incarnation, self.m.record})});
  }
}

void Swim::Refute(Incarnation accused, const Endpoint* from) {
  Entry& self = self_entry();
  self.m.incarnation = Incarnation(std::max(self.m.incarnation, accused).value() + 1);
  ++version_;
  ++counters_.refutations;
  AdjustAwareness(1);  // Lifeguard: being accused hints that we are the slow one
  const AliveMsg alive{self.m.incarnation, self.m.record};
  Broadcast(self_id_, alive, kRefutationWeight);
  if (from != nullptr && config_.lifeguard) {
    // Straight back to whoever told us, ahead of gossip.
    Send(*from, {EncodeMessage(alive)});
  }
}

void Swim::HandlePing(const PingMsg& msg, const Endpoint& from) {
  ++counters_.pings_received;
  // A ping for another id reached a new occupant of an old address: stay silent, so the old
  // member is found dead.
  if (!msg.target.empty() && msg.target != self_id_) return;
  ++counters_.acks_sent;
  std::vector<std::string> reply{EncodeMessage(AckMsg{msg.seq})};
  auto it = members_.find(msg.source);
  if (!msg.source.empty() && it == members_.end()) {
    // Pinged by a member we have never heard of: its news went past us. Ask for its table.
    if (phase_ == Phase::kRunning) RequestRepairPushPull(from);
  } else if (it != members_.end() && msg.source != self_id_) {
    // Pinged by a member we hold suspect, dead or gone: it missed (or never got) the news, and
    // so did we miss its refutation, if any. Tell it, so that it refutes straight back.
    const Member& m = it->second.m;
    switch (m.state) {
      case MemberState::kAlive:
        // It has moved on (a refutation or an update) and the news went past us.
        if (m.incarnation < msg.source_incarnation && phase_ == Phase::kRunning) {
          RequestRepairPushPull(from);
        }
        break;
      case MemberState::kSuspect:
        reply.push_back(EncodeMessage(SuspectMsg{m.incarnation, msg.source, self_id_}));
        break;
      case MemberState::kDead:
        reply.push_back(EncodeMessage(DeadMsg{m.incarnation, msg.source, self_id_}));
        break;
      case MemberState::kLeft:
        reply.push_back(EncodeMessage(LeaveMsg{m.incarnation, msg.source}));
        break;
    }
  }
  Send(from, std::move(reply));
}

void Swim::HandleIndirectPing(const IndirectPingMsg& msg, const Endpoint& from) {
  ++counters_.indirect_probes_relayed;
  const uint32_t seq = next_seq_++;
  relays_[seq] = Relay{from, msg.seq, Now() + config_.probe_timeout, msg.want_nack};
  ++counters_.pings_sent;
  Send(msg.address, {EncodeMessage(PingMsg{seq, msg.target, self_id_, incarnation()})});
}

void Swim::HandleAck(const AckMsg& msg) {
  ++counters_.acks_received;
  if (probe_.active && msg.seq == probe_.seq) {
    probe_.active = false;
    AdjustAwareness(-1);
    return;
  }
  if (auto it = relays_.find(msg.seq); it != relays_.end()) {
    const Relay relay = it->second;
    relays_.erase(it);
    ++counters_.acks_sent;
    Send(relay.origin, {EncodeMessage(AckMsg{relay.origin_seq})});
  }
}

void Swim::HandleNack(const NackMsg& msg) {
  ++counters_.nacks_received;
  if (probe_.active && msg.seq == probe_.seq) ++probe_.nacks;
}

// ---- Timers ----

int64_t Swim::NextWakeupMicros() const {
  if (phase_ == Phase::kLeft) return INT64_MAX;
  int64_t t = INT64_MAX;
  if (probe_.active) {
    t = std::min(t, probe_.indirect_sent ? probe_.end : probe_.direct_deadline);
  } else if (phase_ == Phase::kRunning) {
    t = std::min(t, next_probe_at_);
  }
  for (const auto& [seq, r] : relays_) t = std::min(t, r.deadline);
  if (!suspicion_timers_.empty()) t = std::min(t, suspicion_timers_.begin()->first);
  if (!broadcasts_.empty()) t = std::min(t, next_gossip_at_);
  if (phase_ == Phase::kRunning) {
    t = std::min({t, next_push_pull_at_, next_reconnect_at_, next_join_retry_at_});
  }
  if (phase_ == Phase::kLeaving) t = std::min(t, leave_deadline_);
  return t;
}

void Swim::Tick() {
  if (phase_ == Phase::kLeft) return;
  const int64_t now = Now();

  if (probe_.active && !probe_.indirect_sent && now >= probe_.direct_deadline) {
    SendIndirectProbes();
  }
  if (probe_.active && now >= probe_.end) FinishProbe();
  if (!probe_.active && phase_ == Phase::kRunning && now >= next_probe_at_) StartProbe();

  for (auto it = relays_.begin(); it != relays_.end();) {
    if (now >= it->second.deadline) {
      if (it->second.want_nack) {
        ++counters_.nacks_sent;
        Send(it->second.origin, {EncodeMessage(NackMsg{it->second.origin_seq})});
      }
      it = relays_.erase(it);
    } else {
      ++it;
    }
  }

  while (!suspicion_timers_.empty() && suspicion_timers_.begin()->first <= now) {
    const MemberId id = suspicion_timers_.begin()->second;
    Entry& e = members_.at(id);
    ClearSuspicion(e);
    ++counters_.deaths_declared;
    HandleDead(DeadMsg{e.m.incarnation, id, self_id_}, nullptr);
  }

  if (now >= next_gossip_at_) {
    Gossip();
    const int64_t behind = (now - next_gossip_at_) / config_.gossip_interval + 1;
    next_gossip_at_ += behind * config_.gossip_interval;
  }

  if (phase_ == Phase::kRunning) {
    if (now >= next_push_pull_at_) {
      PushPullWithRandomMember();
      next_push_pull_at_ = now + PushPullInterval();
    }
    if (now >= next_reconnect_at_) {
      Reconnect();
      next_reconnect_at_ = now + config_.reconnect_interval;
    }
    if (now >= next_join_retry_at_) {
      if (live_count_ <= 1) {
        for (const Endpoint& s : seeds_) {
          ++counters_.push_pulls_requested;
          out_.RequestPushPull(s);
        }
      }
      next_join_retry_at_ = now + config_.join_retry_interval;
    }
  }

  if (phase_ == Phase::kLeaving &&
      (broadcasts_.TransmitsOf(self_id_) < 0 || now >= leave_deadline_)) {
    phase_ = Phase::kLeft;
    relays_.clear();
    suspicion_timers_.clear();
  }
}

void Swim::StartProbe() {
  const int64_t now = Now();
  next_probe_at_ = now + Scaled(config_.probe_interval);
  const Entry* target = nullptr;
  for (int pass = 0; pass < 2 && target == nullptr; ++pass) {
    while (probe_index_ < probe_order_.size()) {
      auto it = members_.find(probe_order_[probe_index_++]);
      if (it != members_.end() && it->first != self_id_ && IsLive(it->second.m.state)) {
        target = &it->second;
        break;
      }
    }
    if (target == nullptr) {
      // End of a round: forget the long dead, reshuffle the living.
      Reap();
      probe_order_.clear();
      for (const auto& [id, e] : members_) {
        if (id != self_id_ && IsLive(e.m.state)) probe_order_.push_back(id);
      }
      for (size_t i = probe_order_.size(); i > 1; --i) {
        std::swap(probe_order_[i - 1], probe_order_[rng_.Uniform(i)]);
      }
      probe_index_ = 0;
    }
  }
  if (target == nullptr) return;

  probe_ = Probe{};
  probe_.active = true;
  probe_.target = target->m.record.id;
  probe_.address = target->m.record.address;
  probe_.incarnation = target->m.incarnation;
  probe_.seq = next_seq_++;
  probe_.direct_deadline = now + Scaled(config_.probe_timeout);
  probe_.end = now + Scaled(config_.probe_interval);
  std::vector<std::string> msgs{
      EncodeMessage(PingMsg{probe_.seq, probe_.target, self_id_, incarnation()})};
  if (config_.lifeguard && target->m.state == MemberState::kSuspect) {
    // Buddy system: a suspect we probe learns it is suspected.
    msgs.push_back(EncodeMessage(SuspectMsg{target->m.incarnation, probe_.target, self_id_}));
  }
  ++counters_.pings_sent;
  Send(probe_.address, std::move(msgs));
}

void Swim::SendIndirectProbes() {
  probe_.indirect_sent = true;
  const auto relays =
      RandomMembers(static_cast<size_t>(config_.indirect_checks), probe_.target,
                    [](const Entry& e) { return e.m.state == MemberState::kAlive; });
  for (const Entry* r : relays) {
    ++counters_.indirect_probes_sent;
    Send(r->m.record.address, {EncodeMessage(IndirectPingMsg{probe_.seq, probe_.target,
                                                             probe_.address, config_.lifeguard})});
  }
  if (config_.lifeguard) probe_.expected_nacks = static_cast<int>(relays.size());
}

void Swim::FinishProbe() {
  probe_.active = false;
  ++counters_.probes_failed;
  // Lifeguard: relays that did not even nack point at us (our packets, or our processing, are
  // late); with no relays to ask, any failed probe counts against us.
  if (probe_.expected_nacks > 0) {
    AdjustAwareness(std::max(0, probe_.expected_nacks - probe_.nacks));
  } else {
    AdjustAwareness(1);
  }
  auto it = members_.find(probe_.target);
  if (it == members_.end() || !IsLive(it->second.m.state)) return;
  if (it->second.m.state == MemberState::kAlive) ++counters_.suspicions_raised;
  // Accuse the incarnation we probed, not the current one: a member that restarted (higher
  // incarnation) while this probe of its old process ran must not be suspected for it.
  if (it->second.m.incarnation != probe_.incarnation) return;
  const SuspectMsg suspect{probe_.incarnation, probe_.target, self_id_};
  HandleSuspect(suspect, nullptr);
  if (config_.lifeguard) {
    // Buddy system: tell the suspect now, not when gossip happens to reach it.
    Send(probe_.address, {EncodeMessage(suspect)});
  }
}

void Swim::Gossip() {
  if (broadcasts_.empty()) return;
  const int64_t now = Now();
  const auto targets =
      RandomMembers(static_cast<size_t>(config_.gossip_nodes), MemberId(), [&](const Entry& e) {
        return IsLive(e.m.state) ||
               (e.m.state == MemberState::kDead &&
                now - e.m.state_since_micros < config_.gossip_to_the_dead_time);
      });
  for (const Entry* t : targets) {
    if (broadcasts_.empty()) break;
    Send(t->m.record.address, {});
  }
}

void Swim::PushPullWithRandomMember() {
  const auto peers =
      RandomMembers(1, MemberId(), [](const Entry& e) { return e.m.state == MemberState::kAlive; });
  if (peers.empty()) return;
  ++counters_.push_pulls_requested;
  out_.RequestPushPull(peers[0]->m.record.address);
}

void Swim::Reconnect() {
  if (live_count_ == members_.size()) return;  // nobody dead or gone
  const auto dead =
      RandomMembers(1, MemberId(), [](const Entry& e) { return e.m.state == MemberState::kDead; });
  if (dead.empty()) return;
  const Member& m = dead[0]->m;
  ++counters_.reconnect_pings;
  ++counters_.pings_sent;
  // The ack (if any) is not awaited: what matters is the accusation, which a live member refutes.
  Send(m.record.address, {EncodeMessage(PingMsg{next_seq_++, m.record.id, self_id_, incarnation()}),
                          EncodeMessage(DeadMsg{m.incarnation, m.record.id, self_id_})});
}

int64_t Swim::PushPullInterval() const {
  // memberlist's pushPullScale: above 32 members, back off by log2(N/32)+1 so that the cluster's
  // total push-pull load grows slower than N.
  constexpr size_t kThreshold = 32;
  if (live_count_ <= kThreshold) return config_.push_pull_interval;
  const double mult =
      std::ceil(std::log2(static_cast<double>(live_count_)) - std::log2(double{kThreshold})) + 1.0;
  return static_cast<int64_t>(mult * static_cast<double>(config_.push_pull_interval));
}

template <typename Pred>
std::vector<const Swim::Entry*> Swim::RandomMembers(size_t k, MemberId exclude, Pred pred) {
  std::vector<const Entry*> out;
  if (ids_.size() <= 1 || k == 0) return out;
  // Rejection sampling over all ids, bounded like memberlist's kRandomNodes: cheap for large N,
  // and for small N it tries often enough to find every eligible member whp.
  const size_t attempts = 3 * ids_.size() + 8;
  for (size_t i = 0; i < attempts && out.size() < k; ++i) {
    const MemberId id = ids_[rng_.Uniform(ids_.size())];
    if (id == self_id_ || id == exclude) continue;
    const Entry& e = members_.at(id);
    if (!pred(e)) continue;
    if (std::find(out.begin(), out.end(), &e) != out.end()) continue;
    out.push_back(&e);
  }
  return out;
}

}  // namespace shoal::membership
