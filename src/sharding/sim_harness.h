// ShardSim: N ShardingCores, one per simulated node, driven in one thread on the deterministic
// simulator (sim/) with membership views from real SWIM cores (membership::SimCluster), for the
// scenario tests in sharding/sim_test.cc.
//
// What the harness models, per node:
//   * Views: after every SWIM member event (at the same instant, outside the Swim call) and at
//     every tick, the node's Swim Snapshot() is handed to its core's OnView when it changed;
//     Tick(now) runs every `tick_interval` (each node at its own phase). A node's sharding core
//     starts when the node joins and dies with it; a restarted node gets a fresh one (memory and
//     store lost).
//   * Internal RPC (CoreIo::Call): sharding/peer_rpc.h's CallPeer and ServeRequest, the node's own
//     framing, over sim::RpcNet (sim/rpc.h) on the SWIM network's links: one in-order stream per
//     peer that link faults slow, a partition breaks (its calls time out) and a restarted peer
//     resets; a node without a core answers with an error. Callbacks never run inside Call, nor
//     for a core that died.
//   * The store: std::map<bucket, std::map<key, value>> per node. Store operations take effect
//     when called (as on a worker that runs them in order) and complete (callbacks) after a small
//     delay. ReadBuckets snapshots at the call (writes to SENDING buckets are held, so the copy is
//     consistent); chunks are a few entries each, length-prefixed.
//   * The data plane: SetStates records each node's bucket states (checked against the core's);
//     PublishMap records maps (epochs must increase).
//   * Clients: `clients` clients each write key -> unique value to a random node, one write at a
//     time. A node serves a write for bucket b if it has b ACTIVE (that is the acknowledgement:
//     the write is logged with node and time); holds it while b is SENDING and re-evaluates it
//     when b leaves SENDING; redirects it (one hop per delivery) to the GARBAGE peer, or, when b
//     is NONE/RECEIVING, to the owner its map names; otherwise the client retries later (at a
//     random node), and gives up on a write after `client_timeout`. A share of the operations
//     are reads, served where b is ACTIVE or SENDING (redirected like writes otherwise).
//
// Checks:
//   * At every state change: the number of nodes holding each bucket ACTIVE. Two at once is a
//     violation unless a fault that allows it is in effect or ended less than `fault_grace` ago
//     (a partition, a link-delay fault, a live member declared dead): the check holds before,
//     between and after faults for the whole run, and the duplicates a fault excuses are
//     counted (`excused_duplicates()`).
//   * CheckWrites: for every key, its last acknowledged value must be in the store of the node
//     holding its bucket ACTIVE — unless the bucket was exposed to loss at or after that write
//     (its ACTIVE or SENDING holder crashed, or two nodes held it ACTIVE at once: cache
//     semantics), which is counted as excused.
//   * Every read returns the key's last acknowledged value, unless the bucket is ACTIVE twice
//     or was exposed to loss since that write. A SENDING node S may answer without a write only
//     in the commit window: the write was acknowledged by S's migration target T (T committed
//     and took it before S heard of the commit); any other stale read from S is a violation.
//     Those answers are counted (`stale_sending_reads()`).
//   * Store and map discipline: chunks land only in RECEIVING buckets, ReadBuckets reads only
//     SENDING ones, DropBuckets never drops an ACTIVE or SENDING bucket, each node's published
//     epochs increase.
//   * Converged: bucket states, maps and epochs agree across the given nodes, after a quiet
//     period with no request unanswered.
//
// Single-threaded, like the simulator.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "membership/sim_cluster.h"
#include "sharding/core.h"
#include "sim/network.h"
#include "sim/rpc.h"
#include "sim/simulator.h"

namespace shoal::sharding {

struct ShardSimOptions {
  membership::SimClusterOptions cluster = DefaultCluster();
  CoreOptions core;
  // Each initial node joins (and starts its sharding core) at a random instant in this window.
  int64_t join_spread = 1 * sim::kSecond;
  int64_t tick_interval = 10 * sim::kMillisecond;
  // Converged() also wants this long without any bucket state change or map publication: longer
  // than a coordinator's poll round that waits out one request's timeout (a poll lost on a stream
  // a partition broke: CoreOptions::rpc_timeout_us) plus an idle poll, so that it has had a round
  // that asked for nothing.
  int64_t quiet = 7 * sim::kSecond;
  // After a partition heals, links are restored, or a live member is declared dead, two ACTIVE
  // holders of a bucket are excused for this long (views and maps converge meanwhile).
  int64_t fault_grace = 10 * sim::kSecond;
  // Prints every bucket state change and map publication (debugging a seed); with
  // `verbose_bucket` >= 0, only the changes of that bucket and the writes to it.
  bool verbose = false;
  int verbose_bucket = -1;
  // Store operations complete after a delay uniform in [0, store_delay].
  int64_t store_delay = 2 * sim::kMillisecond;
  size_t chunk_entries = 8;
  // Requests (CoreIo::Call bodies) larger than this fail at once, as over net/rpc.h's frame
  // limit; 0 = no limit.
  size_t max_request_bytes = 0;
  // Clients.
  int clients = 4;
  int keys = 4000;
  double read_ratio = 0.3;  // the share of client operations that are reads
  int64_t think_min = 2 * sim::kMillisecond;
  int64_t think_max = 10 * sim::kMillisecond;
  int64_t client_delay_min = 1 * sim::kMillisecond;  // client <-> node, each way
  int64_t client_delay_max = 5 * sim::kMillisecond;
  int64_t retry_delay = 20 * sim::kMillisecond;
  int64_t client_timeout = 3 * sim::kSecond;

  static membership::SimClusterOptions DefaultCluster() {
    membership::SimClusterOptions o;
    o.join_on_start = false;  // ShardSim joins the nodes itself, starting their cores
    return o;
  }
};

struct AckedWrite {
  std::string key;
  uint64_t value = 0;
  int node = 0;
  int64_t at = 0;
};

class ShardSim {
 public:
  ShardSim(uint64_t seed, ShardSimOptions options);
  ~ShardSim();
  ShardSim(const ShardSim&) = delete;
  ShardSim& operator=(const ShardSim&) = delete;

  membership::SimCluster& cluster() { return cluster_; }
  sim::Simulator& sim() { return cluster_.sim(); }
  int64_t Now() const { return cluster_.Now(); }
  int size() const { return static_cast<int>(nodes_.size()); }
  membership::MemberId id(int i) const { return cluster_.id(i); }
  bool up(int i) const { return cluster_.up(i); }
  // The node's sharding core; null until it joined and while it is crashed.
  ShardingCore* core(int i);
  std::vector<int> UpNodes() const;

  // Faults and membership changes.
  int AddNode();  // joins through the lowest up node and starts its core
  void Crash(int i);
  void Restart(int i);  // a fresh core and store; joins through the lowest other up node
  void Partition(const std::vector<int>& a, const std::vector<int>& b);
  void HealAll();
  // Replaces every link's delay (SWIM datagrams and the RPC). Marks the run non-strict.
  void SetLinkDelay(const sim::DelayDistribution& delay);
  void RestoreLinks();
  // Graceful leave: the leaving label on the node's SWIM record, and SetLeaving on its core.
  void SetLeaving(int i);

  // Clients.
  void StartWrites();
  void StopWrites();
  // No write outstanding: none held, on the wire, or awaited by a client.
  bool WritesIdle() const;

  // Stores key -> value on node i directly (not through the clients, not checked by CheckWrites)
  // if it holds the key's bucket ACTIVE; returns whether it did. For large values.
  bool Put(int i, const std::string& key, std::string value);
  // The value node i stores for `key`, or null.
  const std::string* Get(int i, const std::string& key) const;
  // Requests refused as larger than max_request_bytes.
  uint64_t oversized_requests() const { return rpc_.counters().too_large; }

  // Per bucket, the up node holding it ACTIVE: -1 none, -2 more than one.
  std::vector<int> Holders() const;
  // Whether nothing changed for `quiet` and no request is unanswered, `holders` hold every bucket
  // exactly once between them (ACTIVE, no SENDING, RECEIVING or GARBAGE anywhere, no migration in
  // flight), every node of `viewers` (and of `holders`) has the same map epoch and a map naming
  // exactly those holders, and the data plane agrees with the cores. `why` gets the first reason it
  // does not.
  bool Converged(const std::vector<int>& holders, const std::vector<int>& viewers,
                 std::string* why) const;
  // Buckets held ACTIVE per node.
  std::vector<uint32_t> ActiveCounts() const;

  struct WriteCheck {
    uint64_t keys = 0;     // keys with an acknowledged write
    uint64_t checked = 0;  // ... whose last value must be there
    uint64_t excused = 0;  // ... whose bucket was exposed to loss since (crash or split brain)
  };
  // Compares the stores with the acknowledged writes; appends failures. Also checks that no node
  // stores keys of a bucket it does not hold ACTIVE.
  WriteCheck CheckWrites(std::vector<std::string>& failures) const;

  const std::vector<AckedWrite>& acks() const { return acks_; }
  const std::vector<std::string>& violations() const { return violations_; }
  // Buckets that became ACTIVE at `to` by a migration from `from`, per (from, to).
  const std::map<std::pair<int, int>, uint64_t>& moves() const { return moves_; }
  uint64_t moved_buckets() const;
  uint64_t keys_moved() const { return keys_moved_; }  // entries applied from chunks
  uint64_t adopted() const { return adopted_; }        // buckets adopted (NONE/GARBAGE->ACTIVE)
  uint64_t reads() const { return reads_; }            // reads served
  // Reads served by a SENDING node that missed a write the target had already acknowledged
  // (between the target's commit and the source hearing of it; see CheckRead). Reads that miss
  // an acknowledged write anywhere else are violations.
  uint64_t stale_sending_reads() const { return stale_sending_reads_; }
  // No partition, link fault or false death so far in the run.
  bool strict() const { return !faults_; }
  // Whether two ACTIVE holders are excused now: a fault is in effect or ended within
  // `fault_grace`.
  bool Lenient() const;
  // Times a bucket became ACTIVE on a second node while Lenient() (never otherwise: a violation).
  uint64_t excused_duplicates() const { return excused_duplicates_; }
  // A hash of the run's events (bucket state changes, map publications, acknowledged writes and
  // reads, with their times): the same seed and options give the same hash.
  uint64_t trace_hash() const { return trace_hash_; }
  uint64_t false_deaths() const { return false_deaths_; }
  // One line per node: states, epoch, coordinator, flights (for failure messages).
  std::string Describe() const;

 private:
  class Io;
  struct Node;
  struct Write;
  struct Client;

  Node& node(int i) { return *nodes_[i]; }
  const Node& node(int i) const { return *nodes_[i]; }
  int IndexOf(const membership::MemberId& id) const;
  // Whether node i is up in incarnation `gen` with a core.
  bool Alive(int i, uint64_t gen) const;
  uint64_t Generation(int i);
  int64_t LocalNow(int i);
  int64_t LinkDelay(int from, int to);
  bool Blocked(int from, int to);
  int LowestUp(int except) const;

  void StartCore(int i);
  void ScheduleTick(int i, uint64_t gen, int64_t delay);
  void RefreshView(int i);
  void OnMemberEvent(int i, const membership::MemberEvent& e);
  void Violation(std::string what);

  // CoreIo, per node.
  void DoCall(int from, const membership::MemberId& to, const Endpoint& cluster, std::string body,
              int64_t timeout_us, CoreIo::ReplyFn done);
  void TraceRequest(int from, int to, std::string_view body);
  void DoSetStates(int i, const std::vector<uint16_t>& buckets, BucketState state,
                   const membership::MemberId& peer);
  void DoPublishMap(int i, std::shared_ptr<const BucketMap> map);
  void DoReadBuckets(int i, const std::vector<uint16_t>& buckets, CoreIo::ChunksFn done);
  void DoApplyChunk(int i, std::string chunk, CoreIo::DoneFn done);
  void DoDropBuckets(int i, const std::vector<uint16_t>& buckets);
  uint64_t DoKeyCount(int i) const;
  int64_t StoreDelay();
  void SetActive(int i, uint16_t b, bool active);
  void Trace(std::initializer_list<uint64_t> words);
  void EndFault();

  // Clients.
  void Issue(int c);
  void SendWrite(const Write& w, int n);
  void Evaluate(int n, const Write& w, bool may_redirect);
  void Forward(int from, int to, const Write& w);
  void CheckRead(int n, const Write& r);
  void Reply(const Write& w, bool ok);
  void ReleaseHeld(int i, uint64_t gen, uint16_t b);

  ShardSimOptions options_;
  membership::SimCluster cluster_;
  SeededRng rng_;    // the harness's own stream (delays, clients)
  sim::RpcNet rpc_;  // CoreIo::Call, as net/rpc.h in the node
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<membership::MemberId, int> index_;

  // Invariants.
  std::vector<uint8_t> active_count_;  // per bucket, up nodes holding it ACTIVE
  std::vector<int64_t> exposed_at_;    // per bucket, last time its data was exposed to loss
  bool faults_ = false;
  bool partitioned_ = false;
  bool slow_links_ = false;
  int64_t lenient_until_ = -1;  // end of the grace after the last fault
  uint64_t excused_duplicates_ = 0;
  uint64_t trace_hash_ = 14695981039346656037ull;
  int64_t last_change_ = 0;  // the last bucket state change or map publication anywhere
  uint64_t false_deaths_ = 0;
  std::vector<std::string> violations_;

  // Observations.
  std::map<std::pair<int, int>, uint64_t> moves_;
  uint64_t keys_moved_ = 0;
  uint64_t adopted_ = 0;

  // Clients.
  bool writing_ = false;
  std::vector<Client> clients_;
  uint64_t next_write_ = 1;
  uint64_t next_value_ = 1;
  uint64_t in_flight_ = 0;  // client deliveries, forwards, replies and retries pending
  uint64_t held_ = 0;       // writes held for SENDING buckets
  std::vector<AckedWrite> acks_;
  std::map<std::string, size_t> last_acked_;  // key -> its last acknowledged write in acks_
  uint64_t reads_ = 0;
  uint64_t stale_sending_reads_ = 0;
};

}  // namespace shoal::sharding
