// Replicated-map sync: how two copies find and exchange only what differs, and the
// batch of changes that carries writes between nodes. Sans-I/O: the node sends the bytes.
//
// Design note.
//   * One side (the initiator, a node that joins, returns or runs anti-entropy) drives a session
//     against one peer (the responder, stateless). The initiator sends its digests of the tree
//     nodes in question (lww_map.h), the responder answers which of them differ from its own:
//       round 1: the 256 level-8 digests (2 KiB; an equal map answers "none" and the session ends)
//       round 2: the level-12 children of the level-8 nodes that differ (16 each)
//       round 3: the level-16 children of the level-12 nodes that differ
//       then, in batches of at most kLeavesPerReconcile leaves: the hashes of the initiator's
//       entries in each differing leaf. The responder answers with its entries whose hash the
//       initiator lacks, and the hashes of the initiator's entries it lacks itself; the initiator
//       applies what came and pushes what was asked for. So one session repairs both copies.
//     An empty initiator descends too (~2 KiB against an empty or small peer). Merge is LWW, so an
//     entry sent that the receiver already has newer is simply refused by Apply.
//   * Traffic for a copy that missed a fraction f of a map of n entries: ~2 KiB + 4096·8 B (every
//     level-8 node differs once f·n >> 256) + 16·8 B per differing level-12 node + 8 B per entry
//     of each differing leaf + the entries themselves. For n = 1M, f = 1% that is ~2.5% of the
//     map's bytes (bench/replicated_sync_bench prints the figure).
//   * Message sizes are bounded: the level-16 round carries at most 65536 digests (768 KiB), a
//     reconcile batch kLeavesPerReconcile leaves; a responder that would answer more than
//     kMaxAnswerBytes of entries stops early and the initiator asks again for the rest, and the
//     initiator pushes what the responder lacks in pushes of at most kMaxAnswerBytes of entries
//     each (a single larger entry goes alone).
//   * Decoding is bounds-checked (msgpack with limits); a malformed message is an error, never a
//     crash, and changes nothing. An answer naming a tree node the initiator did not ask about is
//     malformed too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "replicated/lww_map.h"

namespace shoal::replicated {

inline constexpr uint32_t kLeavesPerReconcile = 2048;
inline constexpr size_t kMaxAnswerBytes = 16 << 20;
// The error text of a responder that refuses a session while it takes its own first copy.
inline constexpr std::string_view kFreshResponder = "taking its own first copy";

// ---- Change batches (the bus payload of a map's writes) ----
std::string EncodeChanges(std::string_view map, const std::vector<Change>& changes);
struct ChangeBatch {
  std::string map;
  std::vector<Change> changes;
};
Result<ChangeBatch> DecodeChanges(std::string_view bytes);

// ---- Sync messages ----
enum class SyncKind : uint8_t { kCompare = 1, kReconcile = 2, kPush = 3 };

struct SyncRequest {
  SyncKind kind = SyncKind::kCompare;
  std::string map;
  // kCompare: the level and the nodes with the initiator's digests.
  int bits = 0;
  // kCompare: the initiator holds a fresh copy (none of its sessions has completed yet). A
  // responder that is itself fresh and about to take its own copy may refuse an initiator that
  // is not (kFreshResponder): its own session repairs both copies, and the peer's would move
  // the whole map a second time.
  bool fresh = false;
  std::vector<uint32_t> nodes;
  std::vector<uint64_t> digests;
  // kReconcile: leaves and, per leaf, the initiator's entry hashes.
  std::vector<uint32_t> leaves;
  std::vector<std::vector<uint64_t>> hashes;
  // kPush: entries.
  std::vector<Change> changes;
};
std::string EncodeRequest(const SyncRequest& r);
Result<SyncRequest> DecodeRequest(std::string_view bytes);

// The responder: answers `req` from `map`. A kPush's changes are returned in `*pushed` for the
// caller to apply (it may hold a different lock for writes, and notifies watchers). A request
// that DecodeRequest would refuse (a bad level, a node or leaf out of range) is an error.
Result<std::string> Answer(const LwwMap& map, const SyncRequest& req, std::vector<Change>* pushed);

struct SyncStats {
  uint64_t rounds = 0;
  uint64_t bytes_sent = 0;      // request bytes
  uint64_t bytes_received = 0;  // answer bytes
  uint64_t entries_received = 0;
  uint64_t entries_sent = 0;
  uint64_t leaves_differing = 0;
};

// The initiator's session against one peer.
class SyncSession {
 public:
  explicit SyncSession(std::string map) : map_(std::move(map)) {}
  // The first request; `fresh`: this node's copy has not completed a session yet.
  std::string Start(const LwwMap& m, bool fresh = false);
  struct Step {
    std::optional<std::string> request;  // the next request; nullopt: the session is done
    std::vector<Change> received;        // changes from the peer, for the caller to apply
  };
  // Feeds the answer to the last request. `m` must be the map the session started on (its
  // entries may have changed in between: the session stays correct, at worst it repairs less).
  Result<Step> OnAnswer(const LwwMap& m, std::string_view answer);
  const SyncStats& stats() const { return stats_; }
  bool done() const { return phase_ == Phase::kDone; }

 private:
  enum class Phase { kCompare, kReconcile, kPush, kDone };
  std::string Track(std::string req) {
    ++stats_.rounds;
    stats_.bytes_sent += req.size();
    return req;
  }
  std::string CompareRequest(const LwwMap& m, int bits, std::vector<uint32_t> nodes);
  std::optional<std::string> NextReconcile(const LwwMap& m);
  std::optional<std::string> NextPush();

  std::string map_;
  bool fresh_ = false;
  Phase phase_ = Phase::kCompare;
  int bits_ = 0;
  std::vector<uint32_t> leaves_;  // differing leaves still to reconcile
  size_t next_leaf_ = 0;
  std::vector<uint32_t> batch_;  // leaves of the reconcile in flight
  std::vector<uint32_t> asked_;  // tree nodes of the compare in flight, ascending
  std::vector<Change> push_;     // entries the peer asked for, pushed from push_next_ on
  size_t push_next_ = 0;
  SyncStats stats_;
};

}  // namespace shoal::replicated
