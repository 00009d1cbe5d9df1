// Journal: the ordered record of every change to one worker's Table, for the consumers that
// need them (a write-ahead log, replicas).
//
// A record is {lsn, bucket, operation}. The operation is the change's effect, as a RESP array of
// bulk strings, so that applying it is deterministic whatever the clock or random state of the
// side that applies it (Redis's propagate() rewrites commands the same way):
//   SET key value [PXAT ms]         a string's whole new state (SET, APPEND, INCR*, GETSET, ...)
//   RESTOREHASH key expire_ms f v.. a hash's whole state (created whole: RENAME, migration)
//   HSET key f v ...                fields set to these values (HINCRBYFLOAT: the result)
//   HDEL key f ...                  fields removed (the key goes with its last field)
//   PEXPIREAT key ms / PERSIST key  expiry set (absolute) or removed
//   DEL key                         key removed: by a command, by expiry, by eviction
//   FLUSHALL                        every key of this worker removed (bucket kAllBuckets)
//   DROPBUCKET                      every key of the record's bucket removed (migrated away)
// A call that changes nothing records nothing.
//
// LSNs: each record takes the next LSN of its worker (the first is 1). With no consumer the
// journal only counts: nothing is encoded or kept. With consumers, records go into a bounded ring
// of recent records, so a new consumer can start from any LSN the ring still holds.
//
// Groups: the records of one unit of work (one command on one worker, or a command over several
// workers) that made more than one record share a group id; each worker's part is contiguous and
// its last record has group_end set; group_parts is the number of workers with records in the
// group. A consumer applies a group whole or not at all: it waits until it has every part.
// Records of a unit reach consumers when the unit ends.
//
// Thread-safety: like its Table, a Journal belongs to one worker thread (or to the coordinator of
// a transaction holding that worker's lock). lsn() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/result.h"

namespace shoal::storage {

class Table;

// The bucket of records that concern the whole worker (FLUSHALL).
inline constexpr BucketId kAllBuckets{0xffff};

struct JournalRecord {
  Lsn lsn;
  BucketId bucket;
  uint64_t group = 0;        // 0: not part of a group
  uint32_t group_parts = 0;  // workers with records in the group
  bool group_end = false;    // last record of this worker's part
  std::string op;            // RESP array of bulk strings
};

class JournalConsumer {
 public:
  virtual ~JournalConsumer() = default;
  // Called on the thread that holds the table, in LSN order, without gaps.
  virtual void OnRecord(const JournalRecord& r) = 0;
};

class Journal {
 public:
  // The ring keeps at most this many records and this many bytes of operations.
  explicit Journal(size_t max_records = 65536, size_t max_bytes = 16 << 20);
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // The LSN of the last record (0 before the first).
  Lsn lsn() const { return Lsn(lsn_.load(std::memory_order_relaxed)); }
  bool listening() const { return !consumers_.empty(); }

  // Delivers the held records from `from` on, then every new record. `from` must be held, or the
  // next LSN (lsn() + 1). Errors if it is not.
  Status Subscribe(JournalConsumer* c, Lsn from);
  void Unsubscribe(JournalConsumer* c);
  // The records held, oldest first (tests, diagnostics).
  const std::deque<JournalRecord>& held() const { return ring_; }

  // Takes the next LSN; returns whether a record must be built for it (someone listens).
  bool Next() {
    lsn_.store(lsn_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return !consumers_.empty();
  }
  // Records the operation for the LSN just taken by Next().
  void Append(BucketId b, std::initializer_list<std::string_view> args);
  void Append(BucketId b, const std::vector<std::string_view>& args);

  // A unit of work on this worker alone: its records form a group if there is more than one.
  void BeginUnit() {
    unit_start_ = lsn_.load(std::memory_order_relaxed);
    in_unit_ = true;
  }
  void EndUnit() {
    in_unit_ = false;
    if (!pending_.empty()) FlushUnit(0, 1);
  }
  // A unit over several workers: every involved journal begins it with the same group id;
  // the coordinator counts the parts (journals whose lsn() moved since BeginUnit) and ends each.
  bool MovedInUnit() const { return lsn_.load(std::memory_order_relaxed) != unit_start_; }
  void EndGroup(uint64_t group, uint32_t parts) {
    in_unit_ = false;
    if (!pending_.empty()) FlushUnit(group, parts);
  }
  // A fresh group id (unique in the process).
  static uint64_t NewGroupId();

 private:
  void Push(BucketId b, std::string op);
  void FlushUnit(uint64_t group, uint32_t parts);
  void Deliver(const JournalRecord& r);

  std::atomic<uint64_t> lsn_{0};
  uint64_t unit_start_ = 0;
  bool in_unit_ = false;
  size_t max_records_, max_bytes_;
  size_t ring_bytes_ = 0;
  std::deque<JournalRecord> ring_;
  std::vector<JournalRecord> pending_;  // records of the unit in progress
  std::vector<JournalConsumer*> consumers_;
  std::string buf_;  // reused encoding buffer
};

// Applies a record's operation to `t` (replay: a replica, a log read back). The table should
// have no journal of its own, or the replay is journaled again.
Status ApplyJournalOp(Table& t, BucketId b, std::string_view op);

// Splits a record's operation into its arguments (views into `op`).
Status ParseJournalOp(std::string_view op, std::vector<std::string_view>* args);

}  // namespace shoal::storage
