// The sharding protocol's messages between nodes, and their msgpack encoding.
//
// Every request is one msgpack array whose first element is the Kind; the response to it is the
// Kind's response type (or an RPC error). Requests from the coordinator: Poll (-> Report), Map,
// Adopt, Drop, Migrate. Between the two ends of a migration: Transfer (one per chunk, the first
// carrying the bucket list), Commit, Abort, Query. Decoding is bounds-checked: anything that does
// not decode is an Error (Errc::kMalformed), never an exception out of this module.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sharding/bucket_map.h"

namespace shoal::sharding {

enum class Kind : uint8_t {
  kPoll = 1,
  kReport,
  kMap,
  kAdopt,
  kDrop,
  kMigrate,
  kTransfer,
  kCommit,
  kAbort,
  kQuery,
  kAck,
};

struct PollMsg {
  membership::MemberId coordinator;
};

struct ReportMsg {
  Epoch epoch;  // the highest map epoch the node has
  bool leaving = false;
  BucketSet active;                                                // ACTIVE or SENDING here
  std::vector<std::pair<uint16_t, membership::MemberId>> sending;  // bucket, to
  std::vector<uint16_t> receiving;
  std::vector<std::pair<uint16_t, membership::MemberId>> garbage;  // bucket, handed to
  uint32_t send_batches = 0;                                       // outgoing migrations in flight
  uint32_t recv_batches = 0;                                       // incoming migrations in flight
  uint64_t keys = 0;
};

struct MapMsg {
  BucketMap map;
};

struct AdoptMsg {
  membership::MemberId coordinator;
  std::vector<uint16_t> buckets;
};

struct DropMsg {
  membership::MemberId coordinator;
  std::vector<uint16_t> buckets;
};

struct MigrateMsg {
  membership::MemberId coordinator;
  membership::MemberId to;
  Endpoint to_cluster;
  std::vector<uint16_t> buckets;
};

struct TransferMsg {
  uint64_t migration = 0;         // unique per source: (source id, migration)
  std::vector<uint16_t> buckets;  // on the first chunk only
  bool first = false;
  // `chunk` is either a whole chunk (total == 0) or the piece of one at `offset`, of a chunk of
  // `total` bytes too large for one message (a key bigger than the RPC frame): the target
  // assembles the pieces, in order, and applies the chunk only when the last one arrived.
  std::string chunk;  // opaque: the store's serialisation
  uint64_t total = 0;
  uint64_t offset = 0;
};

struct CommitMsg {
  uint64_t migration = 0;
};
struct AbortMsg {
  uint64_t migration = 0;
};
struct QueryMsg {
  uint64_t migration = 0;
};

// The generic answer: `ok`, or a refusal with a reason; for Migrate, the buckets accepted; for
// Query, the migration's state at the target ("committed", "receiving" or "unknown").
struct AckMsg {
  bool ok = true;
  std::string detail;
  std::vector<uint16_t> buckets;
};

using Message = std::variant<PollMsg, ReportMsg, MapMsg, AdoptMsg, DropMsg, MigrateMsg, TransferMsg,
                             CommitMsg, AbortMsg, QueryMsg, AckMsg>;

std::string Encode(const Message& m);
Result<Message> Decode(std::string_view bytes);

}  // namespace shoal::sharding
