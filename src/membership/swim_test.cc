// The Swim core driven by hand, one input at a time, with a fake clock: the timeout formulas,
// SWIM's precedence and refutation rules, the probe sequence, Lifeguard's health score, packet
// authentication, push-pull, update and leave.
#include "membership/swim.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/rng.h"

namespace shoal::membership {
namespace {

constexpr std::string_view kCookie = "test-cookie";

TEST(SuspicionTimeout, FollowsMemberlistsFormula) {
  SwimConfig c;
  c.suspicion_unit = 1 * kSec;  // memberlist's choice, to compare with its numbers
  const SuspicionTimeouts t = ComputeSuspicionTimeouts(c, 100);
  EXPECT_EQ(t.min, 8 * kSec);  // 4 * log10(100) * 1 s
  EXPECT_EQ(t.max, 48 * kSec);
  EXPECT_EQ(t.k, 2);
  EXPECT_EQ(SuspicionTimeout(t, 0), 48 * kSec);
  // One confirmation: 48 - log(2)/log(3) * 40 = 22.76 s.
  EXPECT_NEAR(static_cast<double>(SuspicionTimeout(t, 1)), 22.76 * kSec, 0.01 * kSec);
  EXPECT_EQ(SuspicionTimeout(t, 2), 8 * kSec);
  EXPECT_EQ(SuspicionTimeout(t, 5), 8 * kSec);  // never below min
  // Small clusters: log10 floored at 1, and no confirmations awaited when too few could come.
  const SuspicionTimeouts small = ComputeSuspicionTimeouts(c, 3);
  EXPECT_EQ(small.min, 4 * kSec);
  EXPECT_EQ(small.k, 0);
  EXPECT_EQ(SuspicionTimeout(small, 0), 4 * kSec);
  EXPECT_EQ(ComputeSuspicionTimeouts(c, 4).k, 2);
  // Lifeguard off: a fixed timeout at min.
  c.lifeguard = false;
  const SuspicionTimeouts off = ComputeSuspicionTimeouts(c, 100);
  EXPECT_EQ(SuspicionTimeout(off, 0), 8 * kSec);
}

TEST(SuspicionTimeout, DefaultsUseTheProbeTimeoutAsUnit) {
  const SuspicionTimeouts t = ComputeSuspicionTimeouts(SwimConfig{}, 100);
  EXPECT_EQ(t.min, 4 * kSec);
  EXPECT_EQ(t.max, 24 * kSec);
}

TEST(RetransmitLimit, IsLambdaTimesLogN) {
  EXPECT_EQ(RetransmitLimit(4, 1), 4);     // ceil(log10 2) = 1
  EXPECT_EQ(RetransmitLimit(4, 9), 4);     // ceil(log10 10) = 1
  EXPECT_EQ(RetransmitLimit(4, 10), 8);    // ceil(log10 11) = 2
  EXPECT_EQ(RetransmitLimit(4, 100), 12);  // ceil(log10 101) = 3
}

// Records everything the core asks of its driver.
struct Capture : SwimOutput {
  struct Sent {
    Endpoint to;
    std::vector<Message> msgs;
  };
  std::vector<Sent> sent;
  std::vector<Endpoint> push_pulls;
  std::vector<MemberEvent> events;

  void SendPacket(const Endpoint& to, std::string packet) override {
    Result<std::vector<Message>> msgs = OpenPacket(kCookie, packet);
    ASSERT_TRUE(msgs.ok()) << msgs.error().ToString();
    sent.push_back({to, std::move(*msgs)});
  }
  void RequestPushPull(const Endpoint& peer) override { push_pulls.push_back(peer); }
  void OnMemberEvent(const MemberEvent& event) override { events.push_back(event); }

  template <typename T>
  std::vector<std::pair<Endpoint, T>> All() const {
    std::vector<std::pair<Endpoint, T>> out;
    for (const Sent& s : sent) {
      for (const Message& m : s.msgs) {
        if (const T* t = std::get_if<T>(&m)) out.emplace_back(s.to, *t);
      }
    }
    return out;
  }
  std::vector<MemberEventKind> Kinds() const {
    std::vector<MemberEventKind> out;
    for (const MemberEvent& e : events) out.push_back(e.kind);
    return out;
  }
  void Clear() {
    sent.clear();
    push_pulls.clear();
    events.clear();
  }
};

MemberRecord Record(uint64_t n) {
  MemberRecord r;
  r.id = MemberId(n, n);
  r.address = {"10.0.0." + std::to_string(n), 7946};
  r.roles = {"storage"};
  return r;
}

std::string Packet(const std::vector<Message>& msgs, std::string_view cookie = kCookie) {
  std::vector<std::string> framed;
  for (const Message& m : msgs) framed.push_back(EncodeMessage(m));
  return SealPacket(cookie, std::vector<std::string_view>(framed.begin(), framed.end()));
}

class SwimTest : public ::testing::Test {
 protected:
  SwimTest() { Make(SwimConfig{}); }

  void Make(SwimConfig config) {
    config.cookie = std::string(kCookie);
    swim_.reset();
    swim_ = std::make_unique<Swim>(config, Record(1), clock_, rng_, out_);
  }
  // Makes `n` known and alive at incarnation `inc`.
  void Know(uint64_t n, uint64_t inc = 1) { Receive(n, {AliveMsg{Incarnation(inc), Record(n)}}); }
  void Receive(uint64_t from, const std::vector<Message>& msgs) {
    swim_->OnPacket(Record(from).address, Packet(msgs));
  }
  std::optional<MemberState> StateOf(uint64_t n) {
    const Member* m = swim_->Snapshot()->Find(MemberId(n, n));
    return m ? std::optional(m->state) : std::nullopt;
  }
  Incarnation IncOf(uint64_t n) { return swim_->Snapshot()->Find(MemberId(n, n))->incarnation; }
  // Advances the clock to the core's next wakeup and ticks once; then answers the pings sent to
  // members not in `silent_`, as live members would. Returns the packets the tick sent.
  std::vector<Capture::Sent> Step() {
    const int64_t wake = swim_->NextWakeupMicros();
    if (wake > clock_.MonotonicMicros()) clock_.AdvanceMicros(wake - clock_.MonotonicMicros());
    const size_t before = out_.sent.size();
    swim_->Tick();
    std::vector<Capture::Sent> sent(out_.sent.begin() + static_cast<ptrdiff_t>(before),
                                    out_.sent.end());
    for (const Capture::Sent& s : sent) {
      const uint64_t n = static_cast<uint64_t>(s.to.host.back() - '0') +
                         (s.to.host.size() > 9 ? 10 * (s.to.host[8] - '0') : 0);
      if (silent_.count(n) != 0) continue;
      for (const Message& m : s.msgs) {
        if (const auto* p = std::get_if<PingMsg>(&m)) Receive(n, {AckMsg{p->seq}});
      }
    }
    return sent;
  }
  void RunFor(int64_t duration) {
    const int64_t end = clock_.MonotonicMicros() + duration;
    while (swim_->NextWakeupMicros() <= end) Step();
    clock_.AdvanceMicros(end - clock_.MonotonicMicros());
  }
  // Steps until a tick sends a message of type T; returns that tick's packets.
  template <typename T>
  std::vector<Capture::Sent> StepUntilSent() {
    for (int i = 0; i < 1000; ++i) {
      std::vector<Capture::Sent> sent = Step();
      for (const Capture::Sent& s : sent) {
        for (const Message& m : s.msgs) {
          if (std::holds_alternative<T>(m)) return sent;
        }
      }
    }
    ADD_FAILURE() << "never sent";
    return {};
  }
  std::set<uint64_t> silent_;
  const MemberId self_ = MemberId(1, 1);

  FakeClock clock_;
  SeededRng rng_{42};
  Capture out_;
  std::unique_ptr<Swim> swim_;
};

TEST_F(SwimTest, AliveJoinsAndHigherIncarnationsWin) {
  Know(2, 1);
  EXPECT_EQ(StateOf(2), MemberState::kAlive);
  Know(2, 1);  // a repeat changes nothing
  EXPECT_EQ(out_.Kinds(), std::vector{MemberEventKind::kJoined});

  Receive(3, {SuspectMsg{Incarnation(1), MemberId(2, 2), MemberId(3, 3)}});
  EXPECT_EQ(StateOf(2), MemberState::kSuspect);
  Know(2, 1);  // alive at the same incarnation does not clear a suspicion
  EXPECT_EQ(StateOf(2), MemberState::kSuspect);
  Know(2, 2);  // a refutation does
  EXPECT_EQ(StateOf(2), MemberState::kAlive);

  Receive(3, {DeadMsg{Incarnation(1), MemberId(2, 2), MemberId(3, 3)}});  // stale
  EXPECT_EQ(StateOf(2), MemberState::kAlive);
  Receive(3, {DeadMsg{Incarnation(2), MemberId(2, 2), MemberId(3, 3)}});
  EXPECT_EQ(StateOf(2), MemberState::kDead);
  Receive(3, {SuspectMsg{Incarnation(2), MemberId(2, 2), MemberId(3, 3)}});  // dead stays dead
  EXPECT_EQ(StateOf(2), MemberState::kDead);
  Know(2, 2);
  EXPECT_EQ(StateOf(2), MemberState::kDead);

  out_.push_pulls.clear();
  Know(2, 3);  // back from the dead with a higher incarnation
  EXPECT_EQ(StateOf(2), MemberState::kAlive);
  EXPECT_EQ(out_.push_pulls, std::vector{Record(2).address});  // anti-entropy with the returnee

  MemberRecord updated = Record(2);
  updated.labels["zone"] = "b";
  Receive(2, {AliveMsg{Incarnation(4), updated}});
  EXPECT_EQ(swim_->Snapshot()->Find(MemberId(2, 2))->record, updated);

  Receive(2, {LeaveMsg{Incarnation(4), MemberId(2, 2)}});
  EXPECT_EQ(StateOf(2), MemberState::kLeft);
  EXPECT_EQ(out_.Kinds(),
            (std::vector{MemberEventKind::kJoined, MemberEventKind::kSuspect,
                         MemberEventKind::kAlive, MemberEventKind::kDead, MemberEventKind::kAlive,
                         MemberEventKind::kUpdated, MemberEventKind::kLeft}));
  EXPECT_EQ(IncOf(2), Incarnation(4));
}

TEST_F(SwimTest, NewsAboutUnknownMembersIsIgnoredExceptAlive) {
  Receive(3, {SuspectMsg{Incarnation(9), MemberId(2, 2), MemberId(3, 3)}});
  Receive(3, {DeadMsg{Incarnation(9), MemberId(2, 2), MemberId(3, 3)}});
  Receive(3, {LeaveMsg{Incarnation(9), MemberId(2, 2)}});
  EXPECT_EQ(StateOf(2), std::nullopt);
  EXPECT_TRUE(out_.events.empty());
}

TEST_F(SwimTest, RefutesSuspicionDeathAndImpostorsWithAHigherIncarnation) {
  Know(2);
  out_.Clear();
  Receive(2, {SuspectMsg{Incarnation(0), self_, MemberId(2, 2)}});
  EXPECT_EQ(swim_->incarnation(), Incarnation(1));
  EXPECT_EQ(swim_->counters().refutations, 1u);
  EXPECT_EQ(swim_->health_score(), 1);  // Lifeguard: being suspected raises our own score
  // The refutation goes straight back to the accuser (buddy system).
  auto alive = out_.All<AliveMsg>();
  ASSERT_FALSE(alive.empty());
  EXPECT_EQ(alive[0].first, Record(2).address);
  EXPECT_EQ(alive[0].second.incarnation, Incarnation(1));
  EXPECT_EQ(alive[0].second.record, Record(1));

  Receive(2, {SuspectMsg{Incarnation(0), self_, MemberId(2, 2)}});  // stale: nothing to refute
  EXPECT_EQ(swim_->incarnation(), Incarnation(1));

  Receive(2, {DeadMsg{Incarnation(5), self_, MemberId(2, 2)}});
  EXPECT_EQ(swim_->incarnation(), Incarnation(6));

  MemberRecord impostor = Record(1);
  impostor.address = {"6.6.6.6", 1};
  Receive(2, {AliveMsg{Incarnation(6), impostor}});  // same incarnation, different record
  EXPECT_EQ(swim_->incarnation(), Incarnation(7));
  EXPECT_EQ(swim_->self().address, Record(1).address);
  EXPECT_EQ(StateOf(1), MemberState::kAlive);  // we never see ourselves otherwise
  EXPECT_TRUE(out_.events.empty());            // and no events about ourselves
}

TEST_F(SwimTest, AnswersPingsForItselfOnly) {
  Receive(2, {PingMsg{17, self_, MemberId(2, 2), Incarnation(1)}});
  Receive(2, {PingMsg{18, MemberId(), MemberId(2, 2), Incarnation(1)}});  // "whoever you are"
  Receive(2, {PingMsg{19, MemberId(9, 9), MemberId(2, 2),
                      Incarnation(1)}});  // meant for a previous occupant of our address
  auto acks = out_.All<AckMsg>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].second.seq, 17u);
  EXPECT_EQ(acks[1].second.seq, 18u);
  EXPECT_EQ(acks[0].first, Record(2).address);
}

TEST_F(SwimTest, BadPacketsAreCountedAndChangeNothing) {
  Know(2);
  const uint64_t version = swim_->Snapshot()->version();
  swim_->OnPacket(Record(3).address, Packet({AliveMsg{Incarnation(1), Record(3)}}, "wrong"));
  EXPECT_EQ(swim_->counters().bad_auth, 1u);
  const std::string good = Packet({AliveMsg{Incarnation(1), Record(3)}});
  for (size_t n = 0; n < good.size(); ++n) swim_->OnPacket(Record(3).address, good.substr(0, n));
  EXPECT_EQ(swim_->counters().bad_auth + swim_->counters().malformed, 1 + good.size());
  // Authentic but undecodable: counted as malformed.
  std::string body{
      kPacketMagic, static_cast<char>(kWireVersion), 1, static_cast<char>(MessageType::kAck), 1,
      '\x80'};
  const Sha256Digest mac = HmacSha256(kCookie, body);
  body.append(reinterpret_cast<const char*>(mac.data()), kPacketMacSize);
  const uint64_t malformed = swim_->counters().malformed;
  swim_->OnPacket(Record(3).address, body);
  EXPECT_EQ(swim_->counters().malformed, malformed + 1);
  EXPECT_EQ(StateOf(3), std::nullopt);
  EXPECT_EQ(swim_->Snapshot()->version(), version);
}

TEST_F(SwimTest, FailedProbeGoesIndirectThenSuspectsAndTellsTheSuspect) {
  for (uint64_t n = 2; n <= 4; ++n) Know(n);
  silent_ = {2, 3, 4};
  out_.Clear();
  StepUntilSent<PingMsg>();
  auto pings = out_.All<PingMsg>();
  ASSERT_EQ(pings.size(), 1u);
  const Endpoint target = pings[0].first;
  const MemberId target_id = pings[0].second.target;
  EXPECT_EQ(swim_->counters().pings_sent, 1u);

  RunFor(500 * kMs);  // no ack within the probe timeout: the two others are asked
  auto reqs = out_.All<IndirectPingMsg>();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& [to, req] : reqs) {
    EXPECT_NE(to, target);
    EXPECT_EQ(req.target, target_id);
    EXPECT_EQ(req.address, target);
    EXPECT_TRUE(req.want_nack);
  }
  // One relay nacks, the other stays silent: the silent one counts against our health.
  Receive(reqs[0].first.host.back() - '0', {NackMsg{reqs[0].second.seq}});
  const std::vector<Capture::Sent> last = StepUntilSent<SuspectMsg>();
  EXPECT_EQ(swim_->Snapshot()->Find(target_id)->state, MemberState::kSuspect);
  EXPECT_EQ(swim_->counters().suspicions_raised, 1u);
  EXPECT_EQ(swim_->health_score(), 1);
  // The suspect was told directly, at once.
  bool told = false;
  for (const Capture::Sent& s : last) {
    for (const Message& m : s.msgs) {
      told |= s.to == target && std::holds_alternative<SuspectMsg>(m);
    }
  }
  EXPECT_TRUE(told);
  ASSERT_FALSE(out_.events.empty());
  EXPECT_EQ(out_.events.back().kind, MemberEventKind::kSuspect);
}

TEST_F(SwimTest, AckedProbeLowersTheHealthScore) {
  for (uint64_t n = 2; n <= 4; ++n) Know(n);
  Receive(2, {SuspectMsg{Incarnation(0), self_, MemberId(2, 2)}});  // score 1
  ASSERT_EQ(swim_->health_score(), 1);
  out_.Clear();
  StepUntilSent<PingMsg>();  // and Step answers it
  EXPECT_EQ(swim_->health_score(), 0);
  RunFor(3 * kSec);
  EXPECT_EQ(swim_->counters().probes_failed, 0u);
}

TEST_F(SwimTest, RelaysIndirectPingsWithAckOrNack) {
  Know(2);
  Know(3);
  out_.Clear();
  Receive(2, {IndirectPingMsg{77, MemberId(3, 3), Record(3).address, true}});
  auto pings = out_.All<PingMsg>();
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0].first, Record(3).address);
  Receive(3, {AckMsg{pings[0].second.seq}});
  auto acks = out_.All<AckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first, Record(2).address);
  EXPECT_EQ(acks[0].second.seq, 77u);

  out_.Clear();
  Receive(2, {IndirectPingMsg{78, MemberId(3, 3), Record(3).address, true}});
  RunFor(600 * kMs);
  auto nacks = out_.All<NackMsg>();
  ASSERT_EQ(nacks.size(), 1u);
  EXPECT_EQ(nacks[0].first, Record(2).address);
  EXPECT_EQ(nacks[0].second.seq, 78u);
}

TEST_F(SwimTest, SuspicionTimesOutIntoDeathSoonerWithConfirmations) {
  for (uint64_t n = 2; n <= 11; ++n) Know(n);  // N = 11: min 4.16 s, max 25 s, k = 2
  SuspicionTimeouts t = ComputeSuspicionTimeouts(swim_->config(), 11);
  Receive(3, {SuspectMsg{Incarnation(1), MemberId(2, 2), MemberId(3, 3)}});
  RunFor(t.min);
  EXPECT_EQ(StateOf(2), MemberState::kSuspect);  // no confirmations: waits for max
  Receive(4, {SuspectMsg{Incarnation(1), MemberId(2, 2), MemberId(4, 4)}});
  Receive(4, {SuspectMsg{Incarnation(1), MemberId(2, 2), MemberId(4, 4)}});  // same one: no count
  RunFor(1 * kMs);
  EXPECT_EQ(StateOf(2), MemberState::kSuspect);
  Receive(5, {SuspectMsg{Incarnation(1), MemberId(2, 2), MemberId(5, 5)}});
  RunFor(1 * kMs);  // two confirmations: the timeout is min, already passed
  EXPECT_EQ(StateOf(2), MemberState::kDead);
  EXPECT_EQ(swim_->counters().deaths_declared, 1u);

  // Without confirmations, death comes at max (N is 10 now).
  t = ComputeSuspicionTimeouts(swim_->config(), swim_->live_count());
  Receive(3, {SuspectMsg{Incarnation(1), MemberId(6, 6), MemberId(3, 3)}});
  RunFor(t.max - 10 * kMs);
  EXPECT_EQ(StateOf(6), MemberState::kSuspect);
  RunFor(20 * kMs);
  EXPECT_EQ(StateOf(6), MemberState::kDead);
}

TEST_F(SwimTest, DeadMembersAreForgottenAfterTheReclaimTime) {
  Know(2);
  Receive(3, {DeadMsg{Incarnation(1), MemberId(2, 2), MemberId(3, 3)}});
  RunFor(swim_->config().dead_reclaim_time + 2 * kSec);
  EXPECT_EQ(StateOf(2), std::nullopt);
}

TEST_F(SwimTest, UpdateSelfSpreadsWithAHigherIncarnation) {
  Know(2);
  MemberRecord r = Record(1);
  r.labels["zone"] = "eu";
  r.weight = 5;
  ASSERT_TRUE(swim_->UpdateSelf(r).ok());
  EXPECT_EQ(swim_->incarnation(), Incarnation(1));
  EXPECT_EQ(swim_->self(), r);
  EXPECT_TRUE(swim_->UpdateSelf(r).ok());  // unchanged: no new incarnation
  EXPECT_EQ(swim_->incarnation(), Incarnation(1));
  out_.Clear();
  RunFor(1 * kSec);
  bool spread = false;
  for (const auto& [to, a] : out_.All<AliveMsg>()) spread |= a.record == r;
  EXPECT_TRUE(spread);

  MemberRecord other = Record(2);
  EXPECT_EQ(swim_->UpdateSelf(other).error().code(), Errc::kInvalidArgument);
  MemberRecord huge = r;
  huge.labels["blob"] = std::string(1000, 'x');
  huge.labels["blob2"] = std::string(1000, 'x');
  EXPECT_EQ(swim_->UpdateSelf(huge).error().code(), Errc::kInvalidArgument);
}

TEST_F(SwimTest, LeaveSpreadsThenGoesQuiet) {
  for (uint64_t n = 2; n <= 4; ++n) Know(n);
  RunFor(10 * kSec);  // let the join news drain
  out_.Clear();
  swim_->Leave();
  EXPECT_EQ(swim_->phase(), Swim::Phase::kLeaving);
  RunFor(10 * kSec);
  EXPECT_EQ(swim_->phase(), Swim::Phase::kLeft);
  EXPECT_GE(out_.All<LeaveMsg>().size(), 4u);  // sent retransmit-limit times
  EXPECT_TRUE(out_.All<PingMsg>().empty());    // stopped probing
  EXPECT_EQ(swim_->NextWakeupMicros(), INT64_MAX);
  out_.Clear();
  Receive(2, {PingMsg{1, self_, MemberId(2, 2), Incarnation(1)}});
  EXPECT_TRUE(out_.sent.empty());
}

TEST_F(SwimTest, SnapshotIsVersionedAndShared) {
  auto a = swim_->Snapshot();
  EXPECT_EQ(swim_->Snapshot(), a);  // unchanged: the same object
  Know(2);
  auto b = swim_->Snapshot();
  EXPECT_GT(b->version(), a->version());
  EXPECT_EQ(a->members().size(), 1u);  // the old one is untouched
  EXPECT_EQ(b->members().size(), 2u);
  EXPECT_EQ(b->self(), self_);
}

TEST_F(SwimTest, PushPullMergesAndRejectsStrangers) {
  FakeClock clock2;
  SeededRng rng2(7);
  Capture out2;
  SwimConfig c;
  c.cookie = std::string(kCookie);
  Swim other(c, Record(2), clock2, rng2, out2);
  ASSERT_TRUE(other.MergeRemoteState(swim_->EncodeState()).ok());
  ASSERT_TRUE(swim_->MergeRemoteState(other.EncodeState()).ok());
  EXPECT_EQ(StateOf(2), MemberState::kAlive);
  EXPECT_NE(other.Snapshot()->Find(self_), nullptr);
  EXPECT_EQ(swim_->counters().push_pulls_merged, 1u);

  c.cookie = "stranger";
  Swim stranger(c, Record(3), clock2, rng2, out2);
  Status s = swim_->MergeRemoteState(stranger.EncodeState());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Errc::kBadAuth);
  EXPECT_EQ(swim_->counters().push_pulls_rejected, 1u);
  EXPECT_EQ(StateOf(3), std::nullopt);

  // A remote table that says someone is dead only makes them suspect here.
  Know(4);
  StateBlob rows;
  rows.sender = MemberId(2, 2);
  rows.entries.push_back({MemberState::kDead, Incarnation(1), Record(4)});
  ASSERT_TRUE(swim_->MergeRemoteState(EncodeStateBlob(kCookie, rows)).ok());
  EXPECT_EQ(StateOf(4), MemberState::kSuspect);
}

TEST_F(SwimTest, JoinRetriesSeedsWhileAlone) {
  swim_->Join({Record(1).address, Record(2).address, Record(3).address});
  EXPECT_EQ(out_.push_pulls, (std::vector{Record(2).address, Record(3).address}));  // not self
  RunFor(2 * kSec);
  EXPECT_EQ(out_.push_pulls.size(), 4u);
  Know(2);
  out_.push_pulls.clear();
  RunFor(5 * kSec);  // no longer alone: seeds are left alone (3 is never contacted again)
  for (const Endpoint& e : out_.push_pulls) EXPECT_NE(e, Record(3).address);
}

TEST_F(SwimTest, LifeguardOffMeansNoNacksNoBuddyNoHealth) {
  SwimConfig c;
  c.lifeguard = false;
  c.gossip_nodes = 0;  // so that nothing but a buddy notice could reach the suspect
  Make(c);
  for (uint64_t n = 2; n <= 4; ++n) Know(n);
  silent_ = {2, 3, 4};
  out_.Clear();
  const std::vector<Capture::Sent> last = StepUntilSent<SuspectMsg>();
  for (const auto& [to, req] : out_.All<IndirectPingMsg>()) EXPECT_FALSE(req.want_nack);
  EXPECT_EQ(swim_->counters().suspicions_raised, 1u);
  EXPECT_EQ(swim_->health_score(), 0);
  // The suspicion travels only as gossip: no packet of the tick that raised it goes to the
  // suspect (with Lifeguard, one does: see above).
  const Endpoint target = out_.All<PingMsg>()[0].first;
  for (const Capture::Sent& s : last) {
    EXPECT_NE(s.to, target);
  }
}

}  // namespace
}  // namespace shoal::membership
