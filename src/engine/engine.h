// Engine: the CommandService behind the RESP front end, for one node.
//
// Routing: a keyed command runs on the worker that owns its key's bucket (bucket % workers). If
// that is the client's own worker and nothing is queued there, it runs inline — the common case
// with one worker, and half the time with two; otherwise it travels as a RemoteOp. Replies keep
// request order whatever path each command took (resp::Connection's reply slots).
//
// Ordering within one client: commands to the same worker run in the order sent (one FIFO per
// pair of workers). A command over several workers (RunLocked) is a barrier: it waits until the
// client's earlier commands have replied, and later ones wait until it has.
//
// Thread-safety: Dispatch and the handlers run on the client's worker. Settings are changed with
// UpdateConfig, which takes a mutex and then pushes per-worker copies by message.
#pragma once

#include <absl/functional/any_invocable.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/keyslot.h"
#include "config/server_config.h"
#include "engine/bucket_plane.h"
#include "engine/cluster_link.h"
#include "engine/command.h"
#include "engine/probes.h"
#include "engine/replicated_maps.h"
#include "engine/shard.h"
#include "net/rpc.h"
#include "net/runtime.h"
#include "resp/connection.h"
#include "resp/service.h"

namespace shoal::engine {

// The RPC method of commands forwarded between nodes (Engine::ExecuteForwarded serves it).
inline constexpr std::string_view kForwardMethod = "kv";

// Per-connection state a command family keeps for itself (the subscriptions and bus handlers of
// the pub-sub family); the engine holds it without knowing what is inside.
class FamilyClientState {
 public:
  virtual ~FamilyClientState() = default;
};

// What the engine keeps per client connection.
struct ClientInfo : resp::ClientState {
  bool authenticated = false;
  bool in_barrier = false;      // a multi-worker command of this client is running
  uint32_t inflight_local = 0;  // commands queued for the client's own worker
  bool asking = false;          // ASKING was sent: the next command may use an importing bucket
  bool readonly = false;        // READONLY (replica reads; no replicas yet, so no effect)
  std::vector<uint16_t> tx_buckets;  // buckets a multi-worker write must find served when locked
  // Subscribed to at least one channel, pattern or subject: a RESP2 connection then accepts only
  // the subscription commands. Kept by the pub-sub family.
  bool subscribed = false;
  // The pub-sub family's state of this connection, created on its first subscription or handler.
  std::unique_ptr<FamilyClientState> pubsub;
};

class Engine final : public resp::CommandService {
 public:
  Engine(const config::ServerConfig& cfg, net::Runtime* runtime, const Clock* clock);
  ~Engine() override;

  // Creates the shards; call before the runtime starts. InitWorker runs on worker i's thread.
  void InitWorker(unsigned i);

  unsigned num_shards() const { return static_cast<unsigned>(shards_.size()); }
  Shard* shard(unsigned i) const { return shards_[i].get(); }
  unsigned ShardOf(std::string_view key) const { return ShardOfBucket(KeyBucket(key).value()); }
  unsigned ShardOfBucket(uint16_t bucket) const {
    return num_shards() == 1 ? 0 : bucket % num_shards();
  }
  // The shard of the calling worker thread.
  Shard* CurrentShard() const;
  const Clock* clock() const { return clock_; }

  // resp::CommandService
  void OnConnect(resp::Connection* c) override;
  resp::DispatchResult Dispatch(resp::Connection* c, Args args, resp::ReplyBuilder* out) override;
  void OnDisconnect(resp::Connection* c) override;

  // Runs `fn` on the client's worker while every shard in `shards` is locked (it may use their
  // tables), then sends the reply `fn` wrote. A barrier in the client's pipeline.
  using LockedFn = absl::AnyInvocable<void(resp::ReplyBuilder& out)>;
  resp::DispatchResult RunLocked(resp::Connection* c, std::vector<unsigned> shards, LockedFn fn);
  resp::DispatchResult RunLockedAll(resp::Connection* c, LockedFn fn);
  // RunLockedAll for work too long to do under one lock (KEYS over a large keyspace): `step`
  // runs with every shard locked, again and again while it returns false, and the locks are
  // released between two steps so that every worker serves its other clients meanwhile. The
  // reply is what the step that returned true wrote (the others must write nothing). A client
  // that disconnects ends the steps. A step should do a bounded amount of work (a few ms).
  using StepFn = absl::AnyInvocable<bool(resp::ReplyBuilder& out)>;
  resp::DispatchResult RunLockedAllInSteps(resp::Connection* c, StepFn step);
  // Runs `per_shard` on every worker's thread, then `combine` on the client's worker with the
  // results in shard order.
  using PerShardFn = std::function<std::string(Shard&)>;
  using CombineFn =
      absl::AnyInvocable<void(std::vector<std::string>& parts, resp::ReplyBuilder& out)>;
  resp::DispatchResult FanOut(resp::Connection* c, PerShardFn per_shard, CombineFn combine);

  // Membership: the control plane publishes each new view to every worker.
  void PublishMembers(std::shared_ptr<const membership::MemberTable> table);
  // Sharding: the bucket map, published to every worker (Shard::map()), and this node's bucket
  // states (written by the sharding driver on the control thread).
  void PublishMap(std::shared_ptr<const sharding::BucketMap> map);
  BucketPlane& plane() { return plane_; }
  // The cluster cookie, for the workers' forwarding connections. Set before plane().set_enabled.
  void set_cluster_cookie(std::string c) { cluster_cookie_ = std::move(c); }
  const std::string& cluster_cookie() const { return cluster_cookie_; }
  // Runs a batch of commands forwarded by another node ("kv" RPC) and answers it. Any thread.
  void ExecuteForwarded(std::string_view body, net::Responder responder);
  const BucketPlane& plane() const { return plane_; }
  // Set by the main thread after the workers started; read by them (hence atomic).
  void set_cluster(ClusterLink* cluster) { cluster_.store(cluster, std::memory_order_release); }
  ClusterLink* cluster() const { return cluster_.load(std::memory_order_acquire); }

  // Replicated maps: declared by config or the embedded API; any thread.
  ReplicatedMaps& replicated() { return *replicated_; }
  const ReplicatedMaps& replicated() const { return *replicated_; }

  // Settings.
  // The node's metrics (probes.h): any thread reads; workers write their own cells.
  metrics::Registry& metrics() { return *metrics_; }
  CommandMetrics& command_metrics() { return *command_metrics_; }

  config::ServerConfig Config() const;
  // Validates and applies a CONFIG SET; pushes the result to every worker.
  Status UpdateConfig(std::string_view name, std::string_view value);

  // Counters read by INFO.
  std::atomic<int64_t> connected_clients{0};
  std::atomic<uint64_t> total_connections{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> next_client_id{1};
  const int64_t start_unix_ms;
  std::string listen_address;  // "host:port", set by the server once listening

 private:
  // Dispatch without the command count; sets `*counted` to the command once it passed the
  // arity check.
  resp::DispatchResult DispatchCommand(resp::Connection* c, Args args, resp::ReplyBuilder* out,
                                       const CommandSpec** counted);
  // Runs a ConnHandler on the client's worker, timing it for the command metrics.
  resp::DispatchResult RunConnHandler(Shard* home, const CommandSpec& spec, resp::Connection* c,
                                      Args args, resp::ReplyBuilder* out);
  resp::DispatchResult DispatchLocal(resp::Connection* c, ClientInfo* info, const CommandSpec& spec,
                                     Args args, resp::ReplyBuilder* out, unsigned target);
  resp::DispatchResult DispatchClustered(resp::Connection* c, ClientInfo* info,
                                         const CommandSpec& spec, Args args,
                                         resp::ReplyBuilder* out);
  // A command on replicated-map keys runs on the local copy (replicated_dispatch.cc); nullopt: its
  // keys are not a replicated map's.
  std::optional<resp::DispatchResult> DispatchReplicated(resp::Connection* c,
                                                         const CommandSpec& spec, Args args,
                                                         resp::ReplyBuilder* out);
  bool Config_redirect() const { return redirect_.load(std::memory_order_relaxed); }
  void PushSettings(const config::ServerConfig& cfg);
  void ApplySettings(Shard& s, const config::ServerConfig& cfg);
  static void ApplySettingsTo(Shard& s, const config::ServerConfig& cfg, unsigned shards);
  struct Tx;
  resp::DispatchResult StartTx(resp::Connection* c, std::vector<unsigned> shards, LockedFn fn,
                               StepFn step);
  void AcquireNext(std::shared_ptr<Tx> tx, size_t i);
  void FinishTx(std::shared_ptr<Tx> tx);

  net::Runtime* runtime_;
  const Clock* clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
  mutable std::mutex cfg_mu_;
  config::ServerConfig cfg_;  // guarded by cfg_mu_
  std::atomic<uint64_t> next_tx_{1};
  std::atomic<ClusterLink*> cluster_{nullptr};
  BucketPlane plane_;
  std::string cluster_cookie_;
  std::atomic<bool> redirect_{false};  // cluster-mode redirect
  std::unique_ptr<ReplicatedMaps> replicated_;
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<CommandMetrics> command_metrics_;
};

}  // namespace shoal::engine
