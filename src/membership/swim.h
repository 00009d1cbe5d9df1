// Swim: the membership protocol core — SWIM failure detection with Lifeguard, piggybacked
// dissemination, push-pull anti-entropy, join and graceful leave. Sans-I/O.
//
// Design note
// ===========
// What it does. Every node keeps a table of members (id, record, state, incarnation). Once per
// protocol period it probes one member, taken from a shuffled round-robin order (every member is
// probed once per round, in an order that changes every round: SWIM §4.3's bound on detection
// time). A probe is a direct ping; with no ack within the probe timeout, k other members are asked
// to ping the target for us (indirect probe) and to answer with a nack if they too hear nothing.
// With no ack by the end of the period the target becomes *suspect*; a suspect that does not
// refute before its suspicion timeout becomes *dead*. A member refutes by raising its own
// incarnation and announcing itself alive; at equal incarnation left > dead > suspect > alive, a
// higher incarnation beats any state. Every change is queued for dissemination and piggybacked on
// every packet (pings, acks, and gossip packets sent to `gossip_nodes` random members each gossip
// interval), each update retransmitted up to retransmit_mult·⌈log10(N+1)⌉ times, least-sent first.
// Every push-pull interval the node exchanges its whole table with a random member (anti-entropy:
// repairs whatever gossip lost). Dead and left members are kept for `dead_reclaim_time`, then
// forgotten. Joining is a push-pull with each seed, retried while the node knows nobody.
//
// Lifeguard (Dadgar et al., 2018), all three parts, switchable as one (`lifeguard`) for comparison:
//   * Local health awareness: a score in [0, awareness_max_multiplier-1] that goes up when this
//     node's own probes fail without the nacks that healthy relays would have sent, or when it has
//     to refute a suspicion of itself, and down after every successful probe. The probe interval
//     and probe timeout are multiplied by (score+1): a node that is itself slow (CPU stall, GC,
//     overloaded NIC) judges others more slowly instead of accusing them.
//   * Suspicion timeouts that shrink with independent confirmations: a suspicion starts at
//     `max` and falls towards `min` as other members independently suspect the same member,
//     timeout = max(min, max − log(c+1)/log(k+1)·(max−min)) for c confirmations of k wanted
//     (memberlist's formula). A real failure gathers confirmations quickly and is declared at
//     `min`; a false suspicion (one slow or lossy path) gathers none and has `max` to be refuted.
//   * Buddy system: the suspect is told directly, by the member that suspects it (at once) and by
//     every member that probes it while it is suspect, rather than waiting for gossip to reach it.
//     Its refutation goes straight back to whoever told it, as well as out through gossip.
// With `lifeguard` off: no awareness (multiplier 1), no nacks, no buddy messages, and the
// suspicion timeout is fixed at `min` (SWIM/memberlist before Lifeguard).
//
// Departures from the papers and from memberlist.
//   * Suspicion `min` is suspicion_mult·max(1, log10 N)·suspicion_unit with suspicion_unit = the
//     probe timeout (500 ms), where memberlist uses the probe interval (1 s). With the buddy
//     system the suspect hears of the suspicion within one round trip and its refutation comes
//     straight back, so the window no longer has to cover a gossip round trip measured in probe
//     periods. Halving it brings detection in a 100-node cluster to ~5.5 s median (memberlist's
//     8 s minimum alone exceeds that). False suspicions are not hurried: they gather no
//     confirmations and keep the full `max` = 6·min to be refuted.
//   * The probe period itself is scaled by the health multiplier (the Lifeguard paper), not only
//     the wait inside a probe (memberlist's ticker stays fixed and skips ticks).
//   * No TCP fallback ping (memberlist's): the indirect probe via k members covers a lossy direct
//     path, and it would need a stream per probe from the driver.
//   * Gossip is sent at most once per gossip interval, but at once when news arrives after a quiet
//     interval (memberlist waits for its next tick): isolated news crosses the cluster in a few
//     network round trips, sustained news is still paced at one round per interval.
//   * SWIM's dissemination misses a member now and then (each update reaches each member only
//     with high probability). Where a miss costs a false death or a stale view, the core repairs
//     it directly:
//       - a refutation (an alive that clears a suspect or dead state) is retransmitted twice the
//         usual limit, since a member that got the suspicion but misses the refutation declares a
//         live member dead (measured: ~100 false deaths a day at 10% loss before, none after);
//       - an accusation about ourselves that is already refuted (older incarnation) is answered
//         with our current alive, straight to whoever passed it on;
//       - pings carry the pinger's id and incarnation: a member that does not know the pinger,
//         or knows an older incarnation of it, asks for a push-pull; one that holds the pinger
//         suspect, dead or left puts that accusation in its ack, so the pinger refutes;
//       - a leaving node tells every live member directly, as well as by gossip.
//   * Remote state merged from a push-pull treats `dead` as `suspect` (as memberlist does), so one
//     stale table cannot kill members; it makes the accused refute, which is also how two halves
//     of a healed partition re-learn each other. Members new to us in a merged table are not
//     re-gossiped unless the entry is the peer itself (a joiner seen by its seed): memberlist
//     re-gossips all of them, which makes every join cost N updates times λ·log N transmissions.
//   * Reconnect (Serf's idea, done with a UDP ping): every reconnect interval the node pings one
//     random dead member, carrying the accusation. If that member is alive after all (a healed
//     partition) it refutes, and the first member to see a dead member come back alive starts a
//     push-pull with it, which carries the rest of both halves' news across. Such repair
//     push-pulls are limited to one per probe interval.
//   * Leave is its own message (memberlist sends `dead` from the node about itself). The leaving
//     node stops probing, keeps gossiping until its leave update has been sent
//     retransmit-limit times (or `leave_timeout`), then goes quiet.
//   * Packets are authenticated (HMAC-SHA256 keyed by the cluster cookie, truncated to 128 bits;
//     see codec.h); memberlist offers encryption instead. There is no replay protection beyond
//     incarnation ordering: a replayed update is at worst stale, and stale updates are ignored.
//
// Why each constant (SwimConfig) has its value — memberlist's LAN profile unless said otherwise:
//   probe_interval 1 s: detection time and probe load both scale with it; 1 s keeps probe traffic
//     at one ping per node per second whatever N.
//   probe_timeout 500 ms: a LAN round trip is < 1 ms, so this tolerates a 500x slow answer (a
//     loaded or briefly stalled peer) and still leaves half the period for the indirect probe.
//   indirect_checks 3: the probability that a live target is missed falls geometrically with k;
//     with 10% loss per hop three relays already make a false failure ~100x rarer than a direct
//     ping alone, and more relays only add load.
//   suspicion_mult 4, suspicion_max_timeout_mult 6: min = 4·log10(N) units, max = 6·min; k =
//     suspicion_mult−2 = 2 confirmations bring a suspicion down to min. For N = 100: 4 s and 24 s.
//     Four units leave room for the buddy notice or the refutation to be lost once or twice and
//     to go round by gossip instead; six times that is what an unconfirmed suspicion gets.
//   suspicion_unit 500 ms: see the departures above.
//   retransmit_mult 4: λ in λ·log(N+1); with fanout 3 an update reaches all N members whp in
//     ~log4(N) gossip rounds, and 4·⌈log10(N+1)⌉ transmissions leave room for loss.
//   gossip_interval 200 ms, gossip_nodes 3: spreads an update to 100 members in about a second,
//     15 small packets per node per second only while there is news.
//   gossip_to_the_dead_time 30 s: keep gossiping to a member recently declared dead so that, if
//     it is alive after all, it hears the accusation and refutes.
//   push_pull_interval 30 s (scaled up by log2(N/32) above 32 members, as memberlist): full-table
//     exchange is O(N) bytes, so it is infrequent and is only a backstop for gossip.
//   awareness_max_multiplier 8: a sick node slows its probing to at most once per 8 s.
//   reconnect_interval 10 s: one ping to a dead address per node per 10 s; in a healed 50/50
//     partition the first cross-partition ping still happens within ~0.2 s of healing.
//   join_retry_interval 2 s: a node that starts before its seeds finds them within 2 s.
//   dead_reclaim_time 5 min: long past the time every member has declared the death and the push-
//     pulls that could resurrect a stale alive copy have run, short enough to bound the table.
//   max_packet_size 1400: one Ethernet MTU minus IP/UDP headers and slack; no fragmentation.
//
// Interface. Inputs: OnPacket (a datagram from the network), Tick (timers; the driver calls it
// when NextWakeupMicros() is due), Join, Leave, UpdateSelf, and the push-pull pair EncodeState /
// MergeRemoteState. Outputs go through SwimOutput, synchronously, from inside those calls. Time is
// read from the injected Clock (monotonic), randomness from the injected Rng: with a fake clock and
// a seeded Rng a run is a pure function of its inputs.
//
// Push-pull over a stream: when the core calls RequestPushPull(peer), the driver connects to the
// peer (after the cookie challenge-response), sends EncodeState() and calls MergeRemoteState with
// the peer's reply. The peer's driver, on accepting, calls MergeRemoteState on what it received and
// only if that succeeds replies with its own EncodeState() (so a stranger learns nothing).
//
// Threading: not thread-safe. One thread (the control thread) owns a Swim and makes every call;
// Snapshot() hands out immutable tables that any thread may read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/rng.h"
#include "common/transport.h"
#include "membership/broadcast_queue.h"
#include "membership/codec.h"
#include "membership/types.h"

namespace shoal::membership {

inline constexpr int64_t kMs = 1000;  // microseconds
inline constexpr int64_t kSec = 1'000'000;

struct SwimConfig {
  // The cluster's shared secret: keys the MAC on every packet and state blob.
  std::string cookie;

  int64_t probe_interval = 1 * kSec;
  int64_t probe_timeout = 500 * kMs;
  int indirect_checks = 3;
  int suspicion_mult = 4;
  int suspicion_max_timeout_mult = 6;
  int64_t suspicion_unit = 500 * kMs;  // see the design note: memberlist uses probe_interval
  int retransmit_mult = 4;
  int64_t gossip_interval = 200 * kMs;
  int gossip_nodes = 3;
  int64_t gossip_to_the_dead_time = 30 * kSec;
  int64_t push_pull_interval = 30 * kSec;
  int awareness_max_multiplier = 8;
  int64_t reconnect_interval = 10 * kSec;
  int64_t join_retry_interval = 2 * kSec;
  int64_t dead_reclaim_time = 300 * kSec;
  int64_t leave_timeout = 5 * kSec;
  size_t max_packet_size = 1400;
  // Lifeguard's three mechanisms, on or off together (off only to measure what they buy).
  bool lifeguard = true;
};

// Suspicion timeouts for a cluster of `n` live members (see the design note).
struct SuspicionTimeouts {
  int64_t min = 0;
  int64_t max = 0;
  int k = 0;  // confirmations that bring the timeout down to min
};
SuspicionTimeouts ComputeSuspicionTimeouts(const SwimConfig& config, size_t n);
// The timeout of a suspicion with `confirmations` independent confirmations.
int64_t SuspicionTimeout(const SuspicionTimeouts& t, int confirmations);
// How many times each update is sent in a cluster of `n` live members.
int RetransmitLimit(int retransmit_mult, size_t n);

// Counters, only ever increasing. Read by the owning thread (copy them out to publish).
struct SwimCounters {
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t pings_sent = 0;  // direct probes and reconnect pings
  uint64_t pings_received = 0;
  uint64_t acks_sent = 0;
  uint64_t acks_received = 0;
  uint64_t nacks_sent = 0;
  uint64_t nacks_received = 0;
  uint64_t indirect_probes_sent = 0;     // indirect ping requests we sent
  uint64_t indirect_probes_relayed = 0;  // indirect ping requests we carried out for others
  uint64_t probes_failed = 0;
  uint64_t suspicions_raised = 0;  // suspicions this node started from its own failed probes
  uint64_t deaths_declared = 0;    // suspicions of this node that timed out
  uint64_t refutations = 0;
  uint64_t bad_auth = 0;   // packets and state blobs failing the MAC
  uint64_t malformed = 0;  // authenticated or not, bytes that do not decode
  uint64_t push_pulls_requested = 0;
  uint64_t push_pulls_merged = 0;
  uint64_t push_pulls_rejected = 0;  // failed auth or decoding
  uint64_t reconnect_pings = 0;
};

// What the core asks of its driver. Called synchronously from inside Swim's methods; an
// implementation must not call back into the same Swim from these.
class SwimOutput {
 public:
  virtual ~SwimOutput() = default;
  // Send one datagram (already sealed). Fire and forget.
  virtual void SendPacket(const Endpoint& to, std::string packet) = 0;
  // Open a stream to `peer` and exchange state (see "Push-pull over a stream" above).
  virtual void RequestPushPull(const Endpoint& peer) = 0;
  // A remote member changed state or record. In a stable order.
  virtual void OnMemberEvent(const MemberEvent& event) = 0;
};

class Swim {
 public:
  enum class Phase : uint8_t { kRunning, kLeaving, kLeft };

  // `self` is this node's record (its id must be non-zero); it starts alive at `incarnation` (0
  // for a fresh node; a restarted node with the same id also starts low and refutes its way up).
  // `clock`, `rng` and `out` must outlive the Swim.
  Swim(SwimConfig config, MemberRecord self, const Clock& clock, Rng& rng, SwimOutput& out,
       Incarnation incarnation = Incarnation(0));
  Swim(const Swim&) = delete;
  Swim& operator=(const Swim&) = delete;

  // Starts joining through `seeds` (our own address is skipped): a push-pull with each now, and
  // again every join_retry_interval while this node knows no other live member.
  void Join(std::vector<Endpoint> seeds);
  // Announces that this node leaves. It stops probing, spreads the news, then goes quiet
  // (phase() == kLeft): from then on every input is ignored. Idempotent.
  void Leave();
  // Replaces this node's record (same id, else kInvalidArgument; an Alive carrying it must fit in
  // one packet, else kInvalidArgument) and spreads it with a higher incarnation.
  [[nodiscard]] Status UpdateSelf(MemberRecord record);

  // A datagram arrived. Bad packets are counted and dropped; nothing here can fail visibly.
  void OnPacket(const Endpoint& from, std::string_view bytes);
  // Runs every timer that is due. Cheap when nothing is.
  void Tick();
  // When Tick next has work, on the Clock's monotonic scale (may be in the past: call Tick now).
  // INT64_MAX when never (after leaving).
  int64_t NextWakeupMicros() const;

  // This node's whole table, authenticated, for a push-pull.
  std::string EncodeState() const;
  // Merges a peer's table. kBadAuth / kMalformed / kBadVersion (counted) leave the view unchanged.
  [[nodiscard]] Status MergeRemoteState(std::string_view blob);

  // The current view, immutable. Cheap when nothing changed since the last call.
  std::shared_ptr<const MemberTable> Snapshot();
  // One row of the current view, or null. Valid until the next call into this Swim.
  const Member* Find(MemberId id) const;

  const MemberRecord& self() const { return self_record(); }
  MemberId id() const { return self_id_; }
  Incarnation incarnation() const;
  Phase phase() const { return phase_; }
  const SwimCounters& counters() const { return counters_; }
  const SwimConfig& config() const { return config_; }
  // Lifeguard's local health score; the timing multiplier is score + 1.
  int health_score() const { return awareness_; }
  // Members currently alive or suspect, this node included (N in the formulas).
  size_t live_count() const { return live_count_; }
  // Members currently alive (this node included unless it is leaving).
  size_t alive_count() const { return live_count_ - suspect_count_; }
  size_t queued_broadcasts() const { return broadcasts_.size(); }

 private:
  struct Entry {
    Member m;
    // While suspect:
    int64_t suspect_start = 0;
    int64_t suspect_deadline = 0;
    MemberId suspect_from;  // the first accuser; later distinct accusers confirm
    std::set<MemberId> confirmations;
    SuspicionTimeouts timeouts;
  };
  struct Probe {
    bool active = false;
    MemberId target;
    Endpoint address;
    Incarnation incarnation;  // the target's incarnation when the probe started
    uint32_t seq = 0;
    int64_t direct_deadline = 0;
    int64_t end = 0;
    bool indirect_sent = false;
    int expected_nacks = 0;
    int nacks = 0;
  };
  struct Relay {
    Endpoint origin;
    uint32_t origin_seq = 0;
    int64_t deadline = 0;
    bool want_nack = false;
  };

  int64_t Now() const { return clock_.MonotonicMicros(); }
  const MemberRecord& self_record() const;
  Entry& self_entry();
  int64_t Scaled(int64_t t) const { return t * (awareness_ + 1); }
  void AdjustAwareness(int delta);
  int Jitter(int64_t range);

  // Sending.
  void Send(const Endpoint& to, std::vector<std::string> primary);
  void Broadcast(MemberId about, const Message& msg, int weight = 1);

  // Message handlers.
  // Whether news about a member this node did not know is passed on.
  enum class Spread : uint8_t { kYes, kIfKnown };
  void HandleAlive(const AliveMsg& msg, const Endpoint* from, Spread spread = Spread::kYes);
  void HandleSuspect(const SuspectMsg& msg, const Endpoint* from);
  void HandleDead(const DeadMsg& msg, const Endpoint* from);
  void HandleLeave(const LeaveMsg& msg, const Endpoint* from);
  void HandlePing(const PingMsg& msg, const Endpoint& from);
  void HandleIndirectPing(const IndirectPingMsg& msg, const Endpoint& from);
  void HandleAck(const AckMsg& msg);
  void HandleNack(const NackMsg& msg);
  // Someone says we are suspect, dead or gone at `accused`: refute, or correct stale news.
  void AnswerAccusation(Incarnation accused, const Endpoint* from);
  void Refute(Incarnation accused, const Endpoint* from);

  // State changes, each bumping the table version and keeping live_count_ right.
  void SetState(Entry& e, MemberState state);
  void Emit(MemberEventKind kind, const Entry& e);
  void StartSuspicion(Entry& e, MemberId from);
  void ClearSuspicion(Entry& e);
  void Confirm(Entry& e, MemberId from);
  Entry& Insert(const MemberRecord& record, MemberState state, Incarnation inc);
  void Reap();

  // Timers.
  void StartProbe();
  void SendIndirectProbes();
  void FinishProbe();
  void Gossip();
  void PushPullWithRandomMember();
  void Reconnect();
  // A push-pull to repair a view that gossip has shown to be behind (rate-limited).
  void RequestRepairPushPull(const Endpoint& peer);
  // Up to `k` distinct random members other than self and `exclude` for which `pred` holds.
  template <typename Pred>
  std::vector<const Entry*> RandomMembers(size_t k, MemberId exclude, Pred pred);
  int64_t PushPullInterval() const;

  SwimConfig config_;
  const MemberId self_id_;
  const Clock& clock_;
  Rng& rng_;
  SwimOutput& out_;

  Phase phase_ = Phase::kRunning;
  std::map<MemberId, Entry> members_;  // self included
  std::vector<MemberId> ids_;          // keys of members_, for random sampling
  size_t live_count_ = 0;
  size_t suspect_count_ = 0;
  uint64_t version_ = 1;
  std::shared_ptr<const MemberTable> snapshot_;

  BroadcastQueue broadcasts_;
  int awareness_ = 0;
  uint32_t next_seq_ = 1;

  std::vector<MemberId> probe_order_;
  size_t probe_index_ = 0;
  Probe probe_;
  int64_t next_probe_at_;
  std::map<uint32_t, Relay> relays_;
  std::set<std::pair<int64_t, MemberId>> suspicion_timers_;

  int64_t next_gossip_at_;
  int64_t next_push_pull_at_;
  int64_t next_reconnect_at_;
  int64_t last_repair_push_pull_ = INT64_MIN / 2;
  std::vector<Endpoint> seeds_;
  int64_t next_join_retry_at_ = INT64_MAX;
  int64_t leave_deadline_ = INT64_MAX;

  SwimCounters counters_;
};

}  // namespace shoal::membership
