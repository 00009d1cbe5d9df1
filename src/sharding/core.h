// ShardingCore: one node's part in sharding — its buckets' states, both ends of bucket
// migration, and (on the node that is coordinator) the rebalancer. Sans-I/O: it is driven by
// inputs (a membership view, requests and responses from other nodes, the store's completions,
// ticks) and acts through the CoreIo interface; node/ drives it on the control thread with the
// internal RPC, the simulator drives many in one thread (sharding/sim_test.cc).
//
// Design note
// -----------
// Truth lives with the data. Which node serves a bucket is decided by the nodes' own bucket
// states (ACTIVE on exactly one node), not by a map someone wrote: the map is derived from them.
// The coordinator polls every live node for what it holds (a 2 KiB bitmap plus its migrations in
// flight), builds the map from the answers, publishes it with epoch = highest epoch seen + 1 when
// it changed, and asks for the changes that bring the holdings to the target assignment
// (sharding/assignment.h): Adopt for buckets nobody live holds (a fresh cluster, or the buckets of
// a node that died: their data is lost, cache semantics), Migrate for a bucket that should move,
// Drop for a duplicate. A new coordinator therefore needs no handover: its first poll round tells
// it everything, and it starts its epochs above every epoch reported.
//
// Who coordinates: the alive member with the lowest id that is not leaving, in each node's own
// SWIM view — no vote (like the bus's leader appointment). While views disagree two nodes may
// both act; every request carries the sender's id and a node obeys only the coordinator of its
// own view, and the migration protocol below is safe whoever asks for it. A node that becomes
// coordinator waits `settle_us` (and for a complete poll round) before acting, so a cluster that
// is still forming does not shuffle buckets to and fro.
//
// Migration of a batch of buckets from S to T (vshard's states):
//   1. S marks them SENDING: reads are still served there; writes to them are held (not refused)
//      by the data plane. S reads the buckets' contents (a consistent copy: no write runs after
//      the read started) and streams it to T in chunks; the first chunk names the buckets and T
//      marks them RECEIVING (not served). Each chunk is applied before it is acknowledged.
//   2. S sends Commit: T marks them ACTIVE and answers. Only then does S mark them GARBAGE
//      (pointing at T): its held writes and any request that still reaches it are redirected to
//      T (forwarded, or ASK for cluster clients), its copy is dropped, and the next map names T.
//   At every instant at most one node has the bucket ACTIVE; writes are never applied on both
//   sides; a write acknowledged by S before step 1 is in the copy, one held during it runs on T.
//   Failures: a chunk that fails aborts the batch (S: ACTIVE again, held writes run locally;
//   T: told to Abort, and drops RECEIVING buckets by itself when S goes quiet or dies). A Commit
//   whose answer is lost leaves S uncertain: it keeps holding writes and asks T (Query) until T
//   answers or is declared dead — it never reactivates while T might be serving.
// Concurrency is bounded: at most `max_send_batches` outgoing and `max_recv_batches` incoming
// batches per node, and the coordinator sends no more than that.
//
// Large keys: the store's chunks hold whole keys (ReadBuckets batches small ones into chunks of
// about 1 MiB), so a key larger than an RPC frame makes a chunk larger than one Transfer may be.
// S sends such a chunk as pieces of at most `max_transfer_bytes`, in order, each acknowledged
// before the next; T buffers them (refusing a chunk larger than `max_assembly_bytes` up front,
// from the size the first piece announces) and applies the chunk only once the last piece
// arrived, so no half-built key is ever stored. An incomplete chunk dies with its batch (abort,
// idle timeout, S's death), so T holds at most `max_recv_batches` of them.
//
// A node leaving gracefully (SetLeaving) reports it; the coordinator stops counting it as an
// owner and migrates its buckets away; Drained() tells the node when it holds nothing more.
// A failed batch is asked for again by the coordinator's next rounds, so a leave keeps retrying
// for as long as a member that is not leaving is there to take the buckets; LeaveStatus() and
// NextLeaveStep() tell the node's shutdown path when to stop waiting (see there).
//
// Thread-safety: single-threaded (the caller's). CoreIo callbacks must not be invoked from inside
// the CoreIo call that received them (invoke them later, from the driver's loop).
#pragma once

#include <absl/functional/any_invocable.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "membership/types.h"
#include "sharding/bucket_map.h"
#include "sharding/messages.h"

namespace shoal::sharding {

struct CoreOptions {
  int64_t poll_interval_us = 1'000'000;          // coordinator's poll round when nothing moves
  int64_t busy_poll_interval_us = 50'000;        // ... while buckets move or are unowned
  int64_t settle_us = 500'000;                   // a new coordinator waits this long
  int64_t rpc_timeout_us = 5'000'000;            // any one request
  int64_t receive_idle_timeout_us = 15'000'000;  // T drops a batch S stopped feeding
  int64_t query_interval_us = 500'000;           // S asks an uncertain Commit this often
  uint32_t max_send_batches = 2;
  uint32_t max_recv_batches = 2;
  uint32_t batch_buckets = 256;  // buckets per migration batch
  // The largest chunk sent in one Transfer; a larger one goes in pieces of this size. Keep it
  // well below the RPC frame limit (the message adds a few dozen bytes).
  uint64_t max_transfer_bytes = 8 << 20;
  // T refuses a chunk that comes in pieces and is larger than this (the memory one incomplete
  // key may hold, per incoming batch).
  uint64_t max_assembly_bytes = uint64_t{2} << 30;
  // After a batch failed while streaming, S refuses to migrate its buckets again for this long,
  // so a batch that keeps failing (a key the target refuses) is retried, not copied in a loop.
  int64_t retry_backoff_us = 1'000'000;
  // A node started with seeds adopts unowned buckets only once its view has another member, or
  // after being alone this long (its seeds may all be gone for good).
  bool join_before_adopting = false;
  int64_t alone_adopt_after_us = 10'000'000;
};

struct CoreCounters {
  uint64_t maps_published = 0;
  uint64_t adopted = 0;           // buckets taken over empty (new cluster or dead owner)
  uint64_t lost = 0;              // coordinator: buckets adopted after their owner died
  uint64_t dropped = 0;           // duplicate buckets dropped
  uint64_t sent_buckets = 0;      // buckets migrated away
  uint64_t received_buckets = 0;  // buckets migrated in
  uint64_t sent_batches = 0;
  uint64_t aborted_batches = 0;
  uint64_t chunks_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t pieces_sent = 0;       // Transfers that carried a piece of a large chunk
  uint64_t chunks_assembled = 0;  // large chunks received in pieces and applied
};

// Graceful leave, for the node's shutdown path.
enum class LeaveStep {
  kWait,     // buckets remain and a member could take them: keep handing over (and retrying)
  kDrained,  // nothing held any more
  kForced,   // the operator forced the exit: stop with what is held
  kNoTaker,  // buckets remain but no member that is not leaving is there to take them
};
std::string_view ToString(LeaveStep s);
// `takers`: members alive or suspect, other than this node, not leaving. A node with no taker
// still waits for its outgoing migrations to end (each ends by commit, abort or the peer's
// death), so what can be handed over is.
LeaveStep NextLeaveStep(bool drained, bool forced, size_t takers, size_t outgoing);

// Members of `view` that could take a leaving node's buckets: alive or suspect (a suspect may
// still answer, and is declared dead within a bounded time if not), not `self`, and not leaving
// (the leaving label on its record).
std::vector<membership::MemberId> LeaveTakers(const membership::MemberTable& view,
                                              const membership::MemberId& self);
// "0-255,300,512-767" for ascending bucket ids; after `max_ranges` ranges, "... (N more)".
std::string FormatBuckets(const std::vector<uint16_t>& buckets, size_t max_ranges = 16);

// What the core asks of its driver.
class CoreIo {
 public:
  virtual ~CoreIo() = default;
  using ReplyFn = absl::AnyInvocable<void(Result<std::string>)>;
  // Sends a request to a member; `done` gets the response body or an error (timeout, lost peer).
  virtual void Call(const membership::MemberId& to, const Endpoint& cluster, std::string body,
                    int64_t timeout_us, ReplyFn done) = 0;
  // The data plane's view of these buckets changed (`peer`: SENDING's or GARBAGE's other end).
  virtual void SetStates(const std::vector<uint16_t>& buckets, BucketState state,
                         const membership::MemberId& peer) = 0;
  virtual void PublishMap(std::shared_ptr<const BucketMap> map) = 0;
  // The store. ReadBuckets: a consistent copy of the buckets' contents, as chunks of bounded size
  // (possibly none); ApplyChunk: store one chunk of a copy; DropBuckets: delete their contents.
  using ChunksFn = absl::AnyInvocable<void(std::vector<std::string> chunks)>;
  virtual void ReadBuckets(const std::vector<uint16_t>& buckets, ChunksFn done) = 0;
  using DoneFn = absl::AnyInvocable<void(Status)>;
  virtual void ApplyChunk(std::string chunk, DoneFn done) = 0;
  virtual void DropBuckets(const std::vector<uint16_t>& buckets) = 0;
  // Keys held (for reports).
  virtual uint64_t KeyCount() = 0;
};

class ShardingCore {
 public:
  ShardingCore(membership::MemberId self, CoreOptions options, CoreIo* io);
  ~ShardingCore();

  // Inputs.
  void OnView(std::shared_ptr<const membership::MemberTable> view, int64_t now_us);
  void Tick(int64_t now_us);
  // A request from `from`; `reply` gets the response body (or an error).
  void OnRequest(const membership::MemberId& from, std::string_view body, CoreIo::ReplyFn reply);
  void SetLeaving();

  // State.
  bool is_coordinator() const { return coordinating_; }
  bool leaving() const { return leaving_; }
  // Leaving and nothing held any more (no ACTIVE, SENDING or RECEIVING bucket).
  bool Drained() const;
  BucketState state(uint16_t b) const { return states_[b]; }
  const std::shared_ptr<const BucketMap>& map() const { return map_; }
  const CoreCounters& counters() const { return counters_; }
  uint32_t CountIn(BucketState s) const;
  uint32_t send_batches() const { return static_cast<uint32_t>(outgoing_.size()); }
  uint32_t recv_batches() const { return static_cast<uint32_t>(incoming_.size()); }
  // Migrations in flight (for INFO and the admin API).
  struct Flight {
    bool outgoing;
    membership::MemberId peer;
    uint32_t buckets;
    std::string phase;
  };
  std::vector<Flight> InFlight() const;
  // The member this node considers coordinator (empty if none).
  membership::MemberId coordinator() const { return coordinator_; }
  // The reason the last outgoing migration failed (empty if none has), for the leave's log.
  const std::string& last_failure() const { return last_failure_; }
  // Buckets held here (ACTIVE, SENDING or RECEIVING), ascending.
  std::vector<uint16_t> HeldBuckets() const;
  // Members that could take this node's buckets (LeaveTakers over the current view).
  std::vector<membership::MemberId> Takers() const;

 private:
  struct Outgoing;
  struct Incoming;
  struct Report {
    ReportMsg msg;
    uint64_t round = 0;
  };

  // Node side.
  ReportMsg MakeReport();
  void HandleMap(BucketMap map);
  AckMsg HandleAdopt(const AdoptMsg& m);
  AckMsg HandleDrop(const DropMsg& m);
  AckMsg HandleMigrate(const MigrateMsg& m);
  void HandleTransfer(const membership::MemberId& from, TransferMsg m, CoreIo::ReplyFn reply);
  AckMsg HandleCommit(const membership::MemberId& from, const CommitMsg& m);
  AckMsg HandleAbort(const membership::MemberId& from, const AbortMsg& m);
  AckMsg HandleQuery(const membership::MemberId& from, const QueryMsg& m);
  void SetStates(const std::vector<uint16_t>& buckets, BucketState s,
                 const membership::MemberId& peer);

  // Source side of a migration.
  void SendNextChunk(uint64_t id);
  void SendCommit(uint64_t id);
  void SendQuery(uint64_t id);
  void FinishOutgoing(uint64_t id, bool committed);
  // Records `why` as the last failure; logs it unless `reason` was logged in the last 10 s.
  void NoteFailure(std::string why, std::string_view reason);

  // Coordinator side.
  void UpdateCoordinator();
  void StartRound();
  void OnRoundReply(uint64_t round, const membership::MemberId& member, Result<std::string> r);
  void Decide();
  // Sends a coordinator request to a member; to itself, carries it out directly (Adopt, Drop and
  // Migrate only: their callers ignore the answer, and `done` is not called).
  void SendToMember(const membership::MemberId& to, const Message& m,
                    absl::AnyInvocable<void(Result<std::string>)> done);
  const membership::Member* Live(const membership::MemberId& id) const;
  bool IsLeavingMember(const membership::Member& m) const;

  const membership::MemberId self_;
  const CoreOptions options_;
  CoreIo* const io_;
  int64_t now_ = 0;
  std::shared_ptr<const membership::MemberTable> view_;
  std::shared_ptr<const BucketMap> map_;
  bool leaving_ = false;
  CoreCounters counters_;

  std::vector<BucketState> states_;
  std::vector<membership::MemberId> peers_;  // SENDING/RECEIVING/GARBAGE's other end
  std::vector<int64_t> retry_at_;            // per bucket: no Migrate before (after a failed batch)
  uint64_t next_migration_ = 1;
  std::map<uint64_t, std::unique_ptr<Outgoing>> outgoing_;  // by migration id
  std::map<std::pair<membership::MemberId, uint64_t>, std::unique_ptr<Incoming>> incoming_;

  // Coordinator state.
  membership::MemberId coordinator_;
  bool coordinating_ = false;
  int64_t coordinating_since_ = 0;
  uint64_t round_ = 0;
  bool round_open_ = false;
  size_t round_pending_ = 0;
  int64_t next_round_at_ = 0;
  bool busy_ = false;
  std::map<membership::MemberId, Report> reports_;
  // Adopts and migrations asked for and not yet seen in reports: bucket -> round asked, and who
  // held the bucket then (none for an adopt).
  struct Asked {
    uint64_t round = 0;
    membership::MemberId holder;
  };
  std::map<uint16_t, Asked> asked_;
  std::shared_ptr<const BucketMap> published_;
  // Members named as owners by maps other nodes sent us, and when: adoption waits while one of
  // them is missing from our view (kept for kNamedMemoryUs after the last map naming it).
  static constexpr int64_t kNamedMemoryUs = 30'000'000;
  std::map<membership::MemberId, int64_t> named_;
  uint64_t lost_buckets_ = 0;  // counted by the coordinator: buckets whose owner died
  std::string last_failure_;
  std::string last_failure_reason_;
  int64_t last_failure_logged_ = 0;
};

// The member-record label a leaving node sets (value "1").
inline constexpr std::string_view kLeavingLabel = "leaving";

}  // namespace shoal::sharding
