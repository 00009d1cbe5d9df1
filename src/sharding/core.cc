#include "sharding/core.h"

#include <algorithm>

#include "common/log.h"
#include "sharding/assignment.h"

namespace shoal::sharding {

using membership::Member;
using membership::MemberId;
using membership::MemberState;

struct ShardingCore::Outgoing {
  enum class Phase { kReading, kStreaming, kCommitting, kUncertain };
  uint64_t id = 0;
  MemberId to;
  Endpoint to_cluster;
  std::vector<uint16_t> buckets;
  std::vector<std::string> chunks;
  size_t sent = 0;      // chunks acknowledged whole
  uint64_t offset = 0;  // of chunks[sent] sent in pieces: the bytes acknowledged so far
  Phase phase = Phase::kReading;
  int64_t next_query_at = 0;
};

struct ShardingCore::Incoming {
  std::vector<uint16_t> buckets;
  int64_t last_activity = 0;
  bool committed = false;
  // A chunk arriving in pieces: the bytes so far, of `partial_total`. Never applied until whole.
  std::string partial;
  uint64_t partial_total = 0;
};

namespace {

std::string_view PhaseName(int p) {
  static constexpr std::string_view kNames[] = {"reading", "streaming", "committing", "uncertain"};
  return kNames[p];
}

AckMsg Refuse(std::string why) { return AckMsg{false, std::move(why), {}}; }

Result<AckMsg> AsAck(Result<std::string> r) {
  if (!r.ok()) return r.error();
  auto m = Decode(*r);
  if (!m.ok()) return m.error();
  if (auto* a = std::get_if<AckMsg>(&*m)) return std::move(*a);
  return Error(Errc::kMalformed, "expected an ack");
}

}  // namespace

ShardingCore::ShardingCore(MemberId self, CoreOptions options, CoreIo* io)
    : self_(self),
      options_(options),
      io_(io),
      map_(std::make_shared<BucketMap>()),
      states_(kNumBuckets, BucketState::kNone),
      peers_(kNumBuckets),
      retry_at_(kNumBuckets, 0) {}

ShardingCore::~ShardingCore() = default;

// ---------------------------------------------------------------------------------------------
// Inputs

void ShardingCore::OnView(std::shared_ptr<const membership::MemberTable> view, int64_t now_us) {
  now_ = now_us;
  view_ = std::move(view);
  UpdateCoordinator();
  // A migration whose other end died ends here: S takes its buckets back (T's state died with
  // it), T drops what it was receiving.
  std::vector<uint64_t> dead_out;
  for (auto& [id, o] : outgoing_) {
    if (Live(o->to) == nullptr) dead_out.push_back(id);
  }
  for (uint64_t id : dead_out) FinishOutgoing(id, false);
  for (auto it = incoming_.begin(); it != incoming_.end();) {
    if (!it->second->committed && Live(it->first.first) == nullptr) {
      std::vector<uint16_t> drop;
      for (uint16_t b : it->second->buckets) {
        if (states_[b] == BucketState::kReceiving) drop.push_back(b);
      }
      SetStates(drop, BucketState::kNone, MemberId());
      io_->DropBuckets(drop);
      ++counters_.aborted_batches;
      it = incoming_.erase(it);
    } else {
      ++it;
    }
  }
}

void ShardingCore::Tick(int64_t now_us) {
  now_ = now_us;
  for (auto it = incoming_.begin(); it != incoming_.end();) {
    Incoming& in = *it->second;
    const int64_t idle = now_ - in.last_activity;
    if (!in.committed && idle > options_.receive_idle_timeout_us) {
      std::vector<uint16_t> drop;
      for (uint16_t b : in.buckets) {
        if (states_[b] == BucketState::kReceiving) drop.push_back(b);
      }
      SetStates(drop, BucketState::kNone, MemberId());
      io_->DropBuckets(drop);
      ++counters_.aborted_batches;
      it = incoming_.erase(it);
    } else if (in.committed && idle > 60'000'000) {
      it = incoming_.erase(it);  // kept a while only to answer a Query
    } else {
      ++it;
    }
  }
  std::vector<uint64_t> query;
  for (auto& [id, o] : outgoing_) {
    if (o->phase == Outgoing::Phase::kUncertain && now_ >= o->next_query_at) query.push_back(id);
  }
  for (uint64_t id : query) SendQuery(id);
  if (coordinating_ && !round_open_ && now_ >= next_round_at_ &&
      now_ - coordinating_since_ >= options_.settle_us) {
    StartRound();
  }
}

void ShardingCore::SetLeaving() {
  leaving_ = true;
  UpdateCoordinator();
}

bool ShardingCore::Drained() const {
  if (!outgoing_.empty()) return false;
  for (BucketState s : states_) {
    if (s == BucketState::kActive || s == BucketState::kSending || s == BucketState::kReceiving) {
      return false;
    }
  }
  return true;
}

uint32_t ShardingCore::CountIn(BucketState s) const {
  return static_cast<uint32_t>(std::count(states_.begin(), states_.end(), s));
}

std::vector<uint16_t> ShardingCore::HeldBuckets() const {
  std::vector<uint16_t> out;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    const BucketState s = states_[b];
    if (s == BucketState::kActive || s == BucketState::kSending || s == BucketState::kReceiving) {
      out.push_back(static_cast<uint16_t>(b));
    }
  }
  return out;
}

std::vector<MemberId> ShardingCore::Takers() const {
  if (view_ == nullptr) return {};
  return LeaveTakers(*view_, self_);
}

std::string_view ToString(LeaveStep s) {
  switch (s) {
    case LeaveStep::kWait:
      return "wait";
    case LeaveStep::kDrained:
      return "drained";
    case LeaveStep::kForced:
      return "forced";
    case LeaveStep::kNoTaker:
      return "no-taker";
  }
  return "?";
}

LeaveStep NextLeaveStep(bool drained, bool forced, size_t takers, size_t outgoing) {
  if (drained) return LeaveStep::kDrained;
  if (forced) return LeaveStep::kForced;
  if (takers == 0 && outgoing == 0) return LeaveStep::kNoTaker;
  return LeaveStep::kWait;
}

std::vector<MemberId> LeaveTakers(const membership::MemberTable& view, const MemberId& self) {
  std::vector<MemberId> out;
  for (const Member& m : view.members()) {
    if (m.record.id == self) continue;
    if (m.state != MemberState::kAlive && m.state != MemberState::kSuspect) continue;
    auto it = m.record.labels.find(std::string(kLeavingLabel));
    if (it != m.record.labels.end() && it->second == "1") continue;
    out.push_back(m.record.id);
  }
  return out;
}

std::string FormatBuckets(const std::vector<uint16_t>& buckets, size_t max_ranges) {
  std::string out;
  size_t ranges = 0;
  for (size_t i = 0; i < buckets.size();) {
    size_t j = i;
    while (j + 1 < buckets.size() && buckets[j + 1] == buckets[j] + 1) ++j;
    if (ranges == max_ranges) {
      out += fmt::format(",... ({} more)", buckets.size() - i);
      break;
    }
    if (!out.empty()) out += ',';
    out += i == j ? fmt::format("{}", buckets[i]) : fmt::format("{}-{}", buckets[i], buckets[j]);
    ++ranges;
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

std::vector<ShardingCore::Flight> ShardingCore::InFlight() const {
  std::vector<Flight> out;
  for (const auto& [id, o] : outgoing_) {
    out.push_back(Flight{true, o->to, static_cast<uint32_t>(o->buckets.size()),
                         std::string(PhaseName(static_cast<int>(o->phase)))});
  }
  for (const auto& [key, in] : incoming_) {
    if (in->committed) continue;
    out.push_back(Flight{false, key.first, static_cast<uint32_t>(in->buckets.size()), "receiving"});
  }
  return out;
}

void ShardingCore::OnRequest(const MemberId& from, std::string_view body, CoreIo::ReplyFn reply) {
  auto decoded = Decode(body);
  if (!decoded.ok()) {
    reply(decoded.error());
    return;
  }
  Message& m = *decoded;
  if (auto* poll = std::get_if<PollMsg>(&m)) {
    (void)poll;
    reply(Encode(MakeReport()));
  } else if (auto* map = std::get_if<MapMsg>(&m)) {
    // Remember who other coordinators' maps name, even in a map too old to take: a member named
    // there that our view does not show means our view is behind (see Decide).
    for (const SetInfo& set : map->map.sets()) named_[set.leader] = now_;
    HandleMap(std::move(map->map));
    reply(Encode(AckMsg{}));
  } else if (auto* adopt = std::get_if<AdoptMsg>(&m)) {
    reply(Encode(HandleAdopt(*adopt)));
  } else if (auto* drop = std::get_if<DropMsg>(&m)) {
    reply(Encode(HandleDrop(*drop)));
  } else if (auto* migrate = std::get_if<MigrateMsg>(&m)) {
    reply(Encode(HandleMigrate(*migrate)));
  } else if (auto* transfer = std::get_if<TransferMsg>(&m)) {
    HandleTransfer(from, std::move(*transfer), std::move(reply));
  } else if (auto* commit = std::get_if<CommitMsg>(&m)) {
    reply(Encode(HandleCommit(from, *commit)));
  } else if (auto* abort = std::get_if<AbortMsg>(&m)) {
    reply(Encode(HandleAbort(from, *abort)));
  } else if (auto* query = std::get_if<QueryMsg>(&m)) {
    reply(Encode(HandleQuery(from, *query)));
  } else {
    reply(Error(Errc::kMalformed, "not a request"));
  }
}

// ---------------------------------------------------------------------------------------------
// Node side

void ShardingCore::SetStates(const std::vector<uint16_t>& buckets, BucketState s,
                             const MemberId& peer) {
  if (buckets.empty()) return;
  for (uint16_t b : buckets) {
    states_[b] = s;
    peers_[b] = peer;
  }
  io_->SetStates(buckets, s, peer);
}

ReportMsg ShardingCore::MakeReport() {
  ReportMsg r;
  r.epoch = map_->epoch();
  r.leaving = leaving_;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    switch (states_[b]) {
      case BucketState::kActive:
        r.active.set(b);
        break;
      case BucketState::kSending:
        r.sending.emplace_back(static_cast<uint16_t>(b), peers_[b]);
        break;
      case BucketState::kReceiving:
        r.receiving.push_back(static_cast<uint16_t>(b));
        break;
      case BucketState::kGarbage:
        r.garbage.emplace_back(static_cast<uint16_t>(b), peers_[b]);
        break;
      default:
        break;
    }
  }
  r.send_batches = send_batches();
  r.recv_batches = 0;
  for (const auto& [k, in] : incoming_) r.recv_batches += in->committed ? 0 : 1;
  r.keys = io_->KeyCount();
  return r;
}

void ShardingCore::HandleMap(BucketMap map) {
  if (map.epoch() <= map_->epoch()) return;
  auto next = std::make_shared<const BucketMap>(std::move(map));
  // A bucket handed over stops redirecting by itself once the map names its new owner.
  const ReplicaSetId mine = AutoSetId(self_);
  std::vector<uint16_t> settled;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (states_[b] != BucketState::kGarbage) continue;
    const SetInfo* o = next->OwnerOf(BucketId(static_cast<uint16_t>(b)));
    if (o != nullptr && o->id != mine) settled.push_back(static_cast<uint16_t>(b));
  }
  map_ = next;
  SetStates(settled, BucketState::kNone, MemberId());
  io_->PublishMap(map_);
}

AckMsg ShardingCore::HandleAdopt(const AdoptMsg& m) {
  if (m.coordinator != coordinator_) return Refuse("not my coordinator");
  std::vector<uint16_t> take;
  for (uint16_t b : m.buckets) {
    if (states_[b] == BucketState::kNone || states_[b] == BucketState::kGarbage) take.push_back(b);
  }
  SetStates(take, BucketState::kActive, MemberId());
  counters_.adopted += take.size();
  return AckMsg{true, "", take};
}

AckMsg ShardingCore::HandleDrop(const DropMsg& m) {
  if (m.coordinator != coordinator_) return Refuse("not my coordinator");
  std::vector<uint16_t> drop;
  for (uint16_t b : m.buckets) {
    if (states_[b] == BucketState::kActive) drop.push_back(b);
  }
  SetStates(drop, BucketState::kNone, MemberId());
  io_->DropBuckets(drop);
  counters_.dropped += drop.size();
  return AckMsg{true, "", drop};
}

AckMsg ShardingCore::HandleMigrate(const MigrateMsg& m) {
  if (m.coordinator != coordinator_) return Refuse("not my coordinator");
  if (m.to == self_) return Refuse("cannot migrate to self");
  if (outgoing_.size() >= options_.max_send_batches) return Refuse("busy");
  std::vector<uint16_t> take;
  bool backing_off = false;
  for (uint16_t b : m.buckets) {
    if (states_[b] != BucketState::kActive) continue;
    if (now_ < retry_at_[b]) {
      backing_off = true;
      continue;
    }
    take.push_back(b);
  }
  if (take.empty()) {
    return Refuse(backing_off ? "these buckets failed to migrate a moment ago"
                              : "none of these buckets is active here");
  }
  const uint64_t id = next_migration_++;
  auto o = std::make_unique<Outgoing>();
  o->id = id;
  o->to = m.to;
  o->to_cluster = m.to_cluster;
  o->buckets = take;
  outgoing_.emplace(id, std::move(o));
  ++counters_.sent_batches;
  SetStates(take, BucketState::kSending, m.to);
  io_->ReadBuckets(take, [this, id](std::vector<std::string> chunks) {
    auto it = outgoing_.find(id);
    if (it == outgoing_.end() || it->second->phase != Outgoing::Phase::kReading) return;
    it->second->chunks = std::move(chunks);
    it->second->phase = Outgoing::Phase::kStreaming;
    SendNextChunk(id);
  });
  return AckMsg{true, "", take};
}

void ShardingCore::SendNextChunk(uint64_t id) {
  Outgoing& o = *outgoing_.at(id);
  TransferMsg t;
  t.migration = id;
  t.first = o.sent == 0 && o.offset == 0;
  if (t.first) t.buckets = o.buckets;
  uint64_t piece = 0;  // bytes of a large chunk this Transfer carries (0: a whole chunk)
  if (o.sent < o.chunks.size()) {
    const std::string& chunk = o.chunks[o.sent];
    const uint64_t max = std::max<uint64_t>(1, options_.max_transfer_bytes);
    if (chunk.size() <= max) {
      t.chunk = chunk;
    } else {
      piece = std::min<uint64_t>(max, chunk.size() - o.offset);
      t.chunk = chunk.substr(o.offset, piece);
      t.total = chunk.size();
      t.offset = o.offset;
      ++counters_.pieces_sent;
    }
  }
  ++counters_.chunks_sent;
  counters_.bytes_sent += t.chunk.size();
  io_->Call(o.to, o.to_cluster, Encode(t), options_.rpc_timeout_us,
            [this, id, piece](Result<std::string> r) {
              auto it = outgoing_.find(id);
              if (it == outgoing_.end()) return;
              Outgoing& o = *it->second;
              auto ack = AsAck(std::move(r));
              if (!ack.ok() || !ack->ok) {
                const std::string detail = ack.ok() ? ack->detail : ack.error().message();
                NoteFailure(fmt::format("migration {} of {} bucket(s) to {} failed while "
                                        "streaming: {}",
                                        id, o.buckets.size(), o.to.ShortString(), detail),
                            detail);
                io_->Call(o.to, o.to_cluster, Encode(AbortMsg{id}), options_.rpc_timeout_us,
                          [](Result<std::string>) {});
                for (uint16_t b : o.buckets) retry_at_[b] = now_ + options_.retry_backoff_us;
                FinishOutgoing(id, false);
                return;
              }
              if (piece != 0) {
                o.offset += piece;
                if (o.offset < o.chunks[o.sent].size()) {
                  SendNextChunk(id);
                  return;
                }
                o.offset = 0;
              }
              // A chunk sent is not needed again (a failed batch is read afresh when retried).
              if (o.sent < o.chunks.size()) std::string().swap(o.chunks[o.sent]);
              ++o.sent;
              if (o.sent < std::max<size_t>(1, o.chunks.size())) {
                SendNextChunk(id);
              } else {
                SendCommit(id);
              }
            });
}

void ShardingCore::NoteFailure(std::string why, std::string_view reason) {
  // Retries of a batch that cannot go fail the same way every few rounds: log a repeated reason
  // at most every 10 s (the leave's progress report names the last one too).
  if (reason != last_failure_reason_ || now_ - last_failure_logged_ >= 10'000'000) {
    SHOAL_LOG_WARN("sharding: {}", why);
    last_failure_logged_ = now_;
    last_failure_reason_ = std::string(reason);
  }
  last_failure_ = std::move(why);
}

void ShardingCore::SendCommit(uint64_t id) {
  Outgoing& o = *outgoing_.at(id);
  o.phase = Outgoing::Phase::kCommitting;
  io_->Call(o.to, o.to_cluster, Encode(CommitMsg{id}), options_.rpc_timeout_us,
            [this, id](Result<std::string> r) {
              auto it = outgoing_.find(id);
              if (it == outgoing_.end()) return;
              Outgoing& o = *it->second;
              auto ack = AsAck(std::move(r));
              if (ack.ok()) {
                FinishOutgoing(id, ack->ok);
                return;
              }
              // No answer: T may or may not have committed. Hold on and ask.
              NoteFailure(fmt::format("commit of migration {} to {} unanswered ({}); asking", id,
                                      o.to.ShortString(), ack.error().message()),
                          ack.error().message());
              o.phase = Outgoing::Phase::kUncertain;
              o.next_query_at = now_ + options_.query_interval_us;
            });
}

void ShardingCore::SendQuery(uint64_t id) {
  Outgoing& o = *outgoing_.at(id);
  o.next_query_at = now_ + options_.rpc_timeout_us + options_.query_interval_us;
  io_->Call(o.to, o.to_cluster, Encode(QueryMsg{id}), options_.rpc_timeout_us,
            [this, id](Result<std::string> r) {
              auto it = outgoing_.find(id);
              if (it == outgoing_.end()) return;
              Outgoing& o = *it->second;
              if (o.phase != Outgoing::Phase::kUncertain) return;
              auto ack = AsAck(std::move(r));
              if (!ack.ok()) {
                o.next_query_at = now_ + options_.query_interval_us;
                return;
              }
              if (ack->detail == "committed") {
                FinishOutgoing(id, true);
              } else if (ack->detail == "receiving") {
                SendCommit(id);
              } else {
                FinishOutgoing(id, false);
              }
            });
}

void ShardingCore::FinishOutgoing(uint64_t id, bool committed) {
  auto it = outgoing_.find(id);
  if (it == outgoing_.end()) return;
  std::unique_ptr<Outgoing> o = std::move(it->second);
  outgoing_.erase(it);
  std::vector<uint16_t> mine;
  for (uint16_t b : o->buckets) {
    if (states_[b] == BucketState::kSending && peers_[b] == o->to) mine.push_back(b);
  }
  if (committed) {
    SetStates(mine, BucketState::kGarbage, o->to);
    io_->DropBuckets(mine);
    counters_.sent_buckets += mine.size();
    // The map may already name the new owner (an uncertain commit, settled after the coordinator
    // saw T active and published): no later map need come, so settle those now, as HandleMap
    // would have.
    const ReplicaSetId self_set = AutoSetId(self_);
    std::vector<uint16_t> settled;
    for (uint16_t b : mine) {
      const SetInfo* owner = map_->OwnerOf(BucketId(b));
      if (owner != nullptr && owner->id != self_set) settled.push_back(b);
    }
    SetStates(settled, BucketState::kNone, MemberId());
  } else {
    SetStates(mine, BucketState::kActive, MemberId());
    ++counters_.aborted_batches;
  }
}

void ShardingCore::HandleTransfer(const MemberId& from, TransferMsg m, CoreIo::ReplyFn reply) {
  const auto key = std::make_pair(from, m.migration);
  auto it = incoming_.find(key);
  if (m.first) {
    if (it != incoming_.end()) {
      reply(Encode(Refuse("duplicate migration")));
      return;
    }
    uint32_t receiving = 0;
    for (const auto& [k, in] : incoming_) receiving += in->committed ? 0 : 1;
    if (receiving >= options_.max_recv_batches) {
      reply(Encode(Refuse("busy")));
      return;
    }
    for (uint16_t b : m.buckets) {
      if (states_[b] != BucketState::kNone && states_[b] != BucketState::kGarbage) {
        reply(Encode(Refuse(fmt::format("bucket {} is {} here", b, ToString(states_[b])))));
        return;
      }
    }
    auto in = std::make_unique<Incoming>();
    in->buckets = m.buckets;
    in->last_activity = now_;
    SetStates(m.buckets, BucketState::kReceiving, from);
    it = incoming_.emplace(key, std::move(in)).first;
  } else if (it == incoming_.end() || it->second->committed) {
    reply(Encode(Refuse("unknown migration")));
    return;
  }
  Incoming& in = *it->second;
  in.last_activity = now_;
  if (m.total != 0) {
    // A piece of a large chunk: kept until the chunk is whole, in order. Anything else than the
    // next piece (a restarted chunk, a gap) refuses, and S aborts the batch.
    if (m.offset == 0) {
      if (m.total > options_.max_assembly_bytes) {
        reply(Encode(Refuse(fmt::format(
            "a chunk of {} bytes (one large key) exceeds this node's limit of {} bytes for an "
            "incoming key",
            m.total, options_.max_assembly_bytes))));
        return;
      }
      if (in.partial_total != 0) {
        reply(Encode(Refuse("a large chunk restarted before the last one was complete")));
        return;
      }
      in.partial.clear();
      in.partial.reserve(m.total);
      in.partial_total = m.total;
    } else if (m.total != in.partial_total || m.offset != in.partial.size()) {
      reply(Encode(Refuse(fmt::format("piece at {} of {} out of order (have {} of {})", m.offset,
                                      m.total, in.partial.size(), in.partial_total))));
      return;
    }
    in.partial.append(m.chunk);
    if (in.partial.size() < in.partial_total) {
      reply(Encode(AckMsg{}));
      return;
    }
    m.chunk = std::move(in.partial);
    in.partial = std::string();
    in.partial_total = 0;
    ++counters_.chunks_assembled;
  } else if (in.partial_total != 0) {
    reply(Encode(Refuse("a whole chunk arrived before a large one was complete")));
    return;
  }
  if (m.chunk.empty()) {
    reply(Encode(AckMsg{}));
    return;
  }
  io_->ApplyChunk(std::move(m.chunk), [reply = std::move(reply)](Status st) mutable {
    reply(Encode(st.ok() ? AckMsg{} : Refuse(st.error().message())));
  });
}

AckMsg ShardingCore::HandleCommit(const MemberId& from, const CommitMsg& m) {
  auto it = incoming_.find(std::make_pair(from, m.migration));
  if (it == incoming_.end()) return Refuse("unknown migration");
  Incoming& in = *it->second;
  in.last_activity = now_;
  if (in.committed) return AckMsg{};
  std::vector<uint16_t> take;
  for (uint16_t b : in.buckets) {
    if (states_[b] == BucketState::kReceiving && peers_[b] == from) take.push_back(b);
  }
  if (take.size() != in.buckets.size()) return Refuse("buckets no longer receiving");
  if (in.partial_total != 0) return Refuse("a large chunk is incomplete");
  in.committed = true;
  SetStates(take, BucketState::kActive, MemberId());
  counters_.received_buckets += take.size();
  return AckMsg{};
}

AckMsg ShardingCore::HandleAbort(const MemberId& from, const AbortMsg& m) {
  auto it = incoming_.find(std::make_pair(from, m.migration));
  if (it == incoming_.end() || it->second->committed) return AckMsg{};
  std::vector<uint16_t> drop;
  for (uint16_t b : it->second->buckets) {
    if (states_[b] == BucketState::kReceiving && peers_[b] == from) drop.push_back(b);
  }
  SetStates(drop, BucketState::kNone, MemberId());
  io_->DropBuckets(drop);
  ++counters_.aborted_batches;
  incoming_.erase(it);
  return AckMsg{};
}

AckMsg ShardingCore::HandleQuery(const MemberId& from, const QueryMsg& m) {
  auto it = incoming_.find(std::make_pair(from, m.migration));
  if (it == incoming_.end()) return AckMsg{true, "unknown", {}};
  return AckMsg{true, it->second->committed ? "committed" : "receiving", {}};
}

// ---------------------------------------------------------------------------------------------
// Coordinator side

const Member* ShardingCore::Live(const MemberId& id) const {
  if (view_ == nullptr) return nullptr;
  const Member* m = view_->Find(id);
  if (m == nullptr) return nullptr;
  return (m->state == MemberState::kAlive || m->state == MemberState::kSuspect) ? m : nullptr;
}

bool ShardingCore::IsLeavingMember(const Member& m) const {
  if (m.record.id == self_) return leaving_;
  auto it = m.record.labels.find(std::string(kLeavingLabel));
  if (it != m.record.labels.end() && it->second == "1") return true;
  auto r = reports_.find(m.record.id);
  return r != reports_.end() && r->second.msg.leaving;
}

void ShardingCore::UpdateCoordinator() {
  MemberId best;
  if (view_ != nullptr) {
    for (const Member& m : view_->members()) {
      if (m.state != MemberState::kAlive || IsLeavingMember(m)) continue;
      if (best.empty() || m.record.id < best) best = m.record.id;
    }
  }
  if (!leaving_ && (best.empty() || self_ < best) &&
      (view_ == nullptr || view_->Find(self_) == nullptr)) {
    best = self_;  // a view without ourselves in it
  }
  coordinator_ = best;
  const bool now_coordinating = best == self_ && !leaving_;
  if (now_coordinating && !coordinating_) {
    coordinating_since_ = now_;
    round_open_ = false;
    next_round_at_ = now_;
    reports_.clear();
    asked_.clear();
  }
  coordinating_ = now_coordinating;
}

void ShardingCore::SendToMember(const MemberId& to, const Message& m,
                                absl::AnyInvocable<void(Result<std::string>)> done) {
  if (to == self_) {
    // The coordinator's own part: carried out at once (nothing waits for its answer).
    if (const auto* a = std::get_if<AdoptMsg>(&m)) {
      HandleAdopt(*a);
    } else if (const auto* d = std::get_if<DropMsg>(&m)) {
      HandleDrop(*d);
    } else if (const auto* g = std::get_if<MigrateMsg>(&m)) {
      HandleMigrate(*g);
    }
    return;
  }
  const Member* member = Live(to);
  if (member == nullptr) {
    // Never call back from inside the caller: the io layer would; emulate with an error now
    // only through the io (a call to an unknown endpoint fails asynchronously).
    io_->Call(to, Endpoint{}, Encode(m), options_.rpc_timeout_us, std::move(done));
    return;
  }
  io_->Call(to, member->record.address, Encode(m), options_.rpc_timeout_us, std::move(done));
}

void ShardingCore::StartRound() {
  ++round_;
  round_open_ = true;
  std::vector<MemberId> targets;
  if (view_ != nullptr) {
    for (const Member& m : view_->members()) {
      if (m.record.id == self_) continue;
      if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) {
        targets.push_back(m.record.id);
      }
    }
  }
  reports_[self_] = Report{MakeReport(), round_};
  round_pending_ = targets.size();
  if (round_pending_ == 0) {
    Decide();
    return;
  }
  const uint64_t round = round_;
  for (const MemberId& id : targets) {
    SendToMember(id, PollMsg{self_}, [this, round, id](Result<std::string> r) {
      OnRoundReply(round, id, std::move(r));
    });
  }
}

void ShardingCore::OnRoundReply(uint64_t round, const MemberId& member, Result<std::string> r) {
  if (round != round_ || !round_open_) return;
  if (r.ok()) {
    auto m = Decode(*r);
    if (m.ok()) {
      if (auto* rep = std::get_if<ReportMsg>(&*m)) reports_[member] = Report{*rep, round};
    }
  }
  if (--round_pending_ == 0) Decide();
}

void ShardingCore::Decide() {
  round_open_ = false;
  if (!coordinating_) return;

  // The live members, ascending by id (self included).
  std::vector<const Member*> live;
  Member self_row;
  bool self_in_view = false;
  if (view_ != nullptr) {
    for (const Member& m : view_->members()) {
      if (m.record.id == self_) self_in_view = true;
      if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) live.push_back(&m);
    }
  }
  if (!self_in_view) {
    self_row.record.id = self_;
    live.push_back(&self_row);
    std::sort(live.begin(), live.end(),
              [](const Member* a, const Member* b) { return a->record.id < b->record.id; });
  }
  // Forget reports of members no longer live.
  for (auto it = reports_.begin(); it != reports_.end();) {
    bool is_live = false;
    for (const Member* m : live) is_live |= m->record.id == it->first;
    it = is_live ? std::next(it) : reports_.erase(it);
  }
  bool fresh = true;
  for (const Member* m : live) {
    auto it = reports_.find(m->record.id);
    if (it == reports_.end() || it->second.round != round_) fresh = false;
  }

  // Who holds what. ACTIVE wins over SENDING (the commit window: T active, S not yet told).
  constexpr int kNone = -1;
  std::vector<int> holder(kNumBuckets, kNone);
  bool duplicates = false;  // two ACTIVE copies of some bucket: another coordinator was at work
  std::vector<bool> moving(kNumBuckets, false);  // sending or receiving somewhere
  std::map<MemberId, std::vector<uint16_t>> drops;
  uint32_t in_flight = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    auto it = reports_.find(live[i]->record.id);
    if (it == reports_.end()) continue;
    const ReportMsg& rep = it->second.msg;
    in_flight += rep.send_batches + rep.recv_batches;
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (!rep.active.test(b)) continue;
      if (holder[b] == kNone) {
        holder[b] = static_cast<int>(i);
        continue;
      }
      // Two ACTIVE copies (views that disagreed, a partition): keep the one the last map named,
      // else the lower id; drop the other (its writes since the split are lost). Only in a round
      // every live member answered (`fresh`), and while the keeper is still alive in our view: a
      // round that waited for an answer that never came (up to the RPC timeout) acts on reports
      // that old, and dropping the other copy of a keeper that died meanwhile (or that is known
      // only from an older report) would leave the bucket to nobody.
      // A copy reported with a higher map epoch belongs to the cluster that lived longer (a node
      // that adopted buckets while it was alone loses to the cluster it then joined).
      duplicates = true;
      const int other = holder[b];
      int keep = other;
      const SetInfo* named =
          published_ ? published_->OwnerOf(BucketId(static_cast<uint16_t>(b))) : nullptr;
      const Epoch mine = rep.epoch;
      const Epoch theirs = reports_[live[other]->record.id].msg.epoch;
      if (mine != theirs) {
        if (mine > theirs) keep = static_cast<int>(i);
      } else if (named != nullptr && named->leader == live[i]->record.id) {
        keep = static_cast<int>(i);
      }
      const int lose = keep == other ? static_cast<int>(i) : other;
      holder[b] = keep;
      if (fresh && live[keep]->state == MemberState::kAlive) {
        drops[live[lose]->record.id].push_back(static_cast<uint16_t>(b));
      }
    }
  }
  for (size_t i = 0; i < live.size(); ++i) {
    auto it = reports_.find(live[i]->record.id);
    if (it == reports_.end()) continue;
    for (const auto& [b, to] : it->second.msg.sending) {
      moving[b] = true;
      if (holder[b] == kNone) holder[b] = static_cast<int>(i);
    }
    for (uint16_t b : it->second.msg.receiving) moving[b] = true;
  }
  // A bucket nobody here holds may still have an owner this view does not show (a member that
  // joined a moment ago, known to the node that handed it over or to the map another
  // coordinator published). Adopting it would make a second copy, and the duplicate rule might
  // then drop the real one. So a bucket is an orphan only if every node it was last seen with —
  // the peer of a GARBAGE copy, the owner in the newest map — is in this view (and then
  // answered without it) or known to be dead.
  auto unknown = [&](const MemberId& id) {
    if (id.empty() || id == self_) return false;
    if (view_ == nullptr) return true;
    return view_->Find(id) == nullptr;
  };
  for (size_t i = 0; i < live.size(); ++i) {
    auto it = reports_.find(live[i]->record.id);
    if (it == reports_.end()) continue;
    for (const auto& [b, to] : it->second.msg.garbage) {
      if (holder[b] == kNone && unknown(to)) moving[b] = true;
    }
  }
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (holder[b] != kNone || moving[b]) continue;
    const SetInfo* o = map_->OwnerOf(BucketId(static_cast<uint16_t>(b)));
    if (o != nullptr && unknown(o->leader)) moving[b] = true;
  }
  for (auto& [id, list] : drops) {
    if (list.empty()) continue;
    SendToMember(id, DropMsg{self_, list}, [](Result<std::string>) {});
  }

  // Requests asked in earlier rounds that the reports do not show yet: leave those buckets be
  // for a few rounds. A request the reports show carried out (the bucket held by someone else
  // than when asked, and not moving) no longer holds its bucket back.
  for (auto it = asked_.begin(); it != asked_.end();) {
    const uint16_t b = it->first;
    const MemberId now_holder = holder[b] == kNone ? MemberId() : live[holder[b]]->record.id;
    const bool seen = fresh && !moving[b] && now_holder != it->second.holder;
    it = seen || round_ - it->second.round > 3 ? asked_.erase(it) : std::next(it);
  }

  // The map, from the holdings.
  BucketMap map;
  std::vector<int> set_of(live.size(), -1);
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    const int h = holder[b];
    if (h == kNone) continue;
    if (set_of[h] < 0) {
      const Member& m = *live[h];
      SetInfo info;
      info.id = AutoSetId(m.record.id);
      info.weight = std::max<uint32_t>(1, m.record.weight);
      info.leader = m.record.id;
      info.cluster = m.record.address;
      info.client = Endpoint{m.record.address.host, m.record.client_port};
      auto rit = reports_.find(m.record.id);
      info.keys = rit == reports_.end() ? 0 : rit->second.msg.keys;
      set_of[h] = map.AddSet(info);
    }
    map.Assign(BucketId(static_cast<uint16_t>(b)), static_cast<uint16_t>(set_of[h]));
  }
  Epoch max_epoch = map_->epoch();
  if (published_ && published_->epoch() > max_epoch) max_epoch = published_->epoch();
  for (const auto& [id, rep] : reports_) max_epoch = std::max(max_epoch, rep.msg.epoch);
  // Duplicates mean that another coordinator (a partition's other side, a lone restarted node)
  // published maps of its own, with epochs that may equal ours but a different content: nodes
  // holding one of those would never take ours (same epoch), so publish a new one.
  const bool changed = published_ == nullptr || !published_->SameAssignment(map) ||
                       published_->epoch() < max_epoch || duplicates;
  if (changed) {
    // Buckets that had an owner in the last map and have none now: their owner died.
    if (published_ != nullptr) {
      for (uint32_t b = 0; b < kNumBuckets; ++b) {
        const BucketId bid(static_cast<uint16_t>(b));
        if (published_->OwnerOf(bid) != nullptr && map.OwnerOf(bid) == nullptr && !moving[b]) {
          ++counters_.lost;
        }
      }
    }
    map.set_epoch(Epoch(max_epoch.value() + 1));
    published_ = std::make_shared<const BucketMap>(std::move(map));
    ++counters_.maps_published;
  }
  // Send the map to whoever does not have it (and apply it here).
  HandleMap(*published_);
  for (const Member* m : live) {
    if (m->record.id == self_) continue;
    auto it = reports_.find(m->record.id);
    if (it != reports_.end() && it->second.round == round_ &&
        it->second.msg.epoch >= published_->epoch()) {
      continue;
    }
    SendToMember(m->record.id, MapMsg{*published_}, [](Result<std::string>) {});
  }

  // The target assignment over the members that may own buckets.
  std::vector<SetWeight> sets;
  std::map<ReplicaSetId, const Member*> member_of_set;
  for (const Member* m : live) {
    if (m->state != MemberState::kAlive || IsLeavingMember(*m)) continue;
    if (reports_.find(m->record.id) == reports_.end()) continue;  // not heard from yet
    const ReplicaSetId id = AutoSetId(m->record.id);
    sets.push_back(SetWeight{id, std::max<uint32_t>(1, m->record.weight)});
    member_of_set[id] = m;
  }
  bool busy = in_flight > 0;
  // A node told to join a cluster does not create buckets while it knows no one else: they would
  // duplicate the cluster's (see the duplicate rule above). Unless it stays alone for long.
  bool may_adopt = !options_.join_before_adopting || live.size() > 1 ||
                   now_ - coordinating_since_ >= options_.alone_adopt_after_us;
  // Nor while a map from another coordinator names a member this view lacks: that member may
  // hold buckets that look unowned from here (SWIM has not told us of it yet).
  for (auto it = named_.begin(); it != named_.end();) {
    if (now_ - it->second > kNamedMemoryUs) {
      it = named_.erase(it);
      continue;
    }
    if (unknown(it->first)) may_adopt = false;
    ++it;
  }
  if (!sets.empty()) {
    std::vector<ReplicaSetId> current(kNumBuckets);
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (holder[b] != kNone) current[b] = AutoSetId(live[holder[b]]->record.id);
    }
    const std::vector<ReplicaSetId> target = Assign(current, sets);

    std::map<MemberId, std::vector<uint16_t>> adopts;
    std::map<std::pair<MemberId, MemberId>, std::vector<uint16_t>> moves;
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (moving[b] || asked_.count(static_cast<uint16_t>(b)) > 0) continue;
      if (target[b] == current[b]) continue;
      auto tm = member_of_set.find(target[b]);
      if (tm == member_of_set.end()) continue;
      if (holder[b] == kNone) {
        if (fresh && may_adopt) adopts[tm->second->record.id].push_back(static_cast<uint16_t>(b));
        continue;
      }
      const Member* from = live[holder[b]];
      if (from->state != MemberState::kAlive) continue;  // cannot move from a suspect now
      moves[{from->record.id, tm->second->record.id}].push_back(static_cast<uint16_t>(b));
    }
    for (auto& [to, list] : adopts) {
      busy = true;
      for (uint16_t b : list) asked_[b] = Asked{round_, MemberId()};
      SendToMember(to, AdoptMsg{self_, list}, [](Result<std::string>) {});
    }
    // Migrations, within each node's budget of batches.
    std::map<MemberId, int64_t> send_budget, recv_budget;
    for (const auto& [id, rep] : reports_) {
      send_budget[id] = static_cast<int64_t>(options_.max_send_batches) - rep.msg.send_batches;
      recv_budget[id] = static_cast<int64_t>(options_.max_recv_batches) - rep.msg.recv_batches;
    }
    for (auto& [pair, list] : moves) {
      busy = true;
      const auto& [from, to] = pair;
      for (size_t start = 0; start < list.size(); start += options_.batch_buckets) {
        if (send_budget[from] <= 0 || recv_budget[to] <= 0) break;
        --send_budget[from];
        --recv_budget[to];
        const size_t end = std::min(list.size(), start + options_.batch_buckets);
        std::vector<uint16_t> batch(list.begin() + static_cast<long>(start),
                                    list.begin() + static_cast<long>(end));
        for (uint16_t b : batch) asked_[b] = Asked{round_, from};
        const Member* tm = Live(to);
        SendToMember(from, MigrateMsg{self_, to, tm ? tm->record.address : Endpoint{}, batch},
                     [](Result<std::string>) {});
      }
    }
  }
  if (!fresh) busy = true;
  next_round_at_ = now_ + (busy ? options_.busy_poll_interval_us : options_.poll_interval_us);
}

}  // namespace shoal::sharding
