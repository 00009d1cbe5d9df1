// Bus: the node's messaging bus — the bus::Dispatcher on the control thread with real
// I/O, the embedded C++ API, and the glue that lets RESP connections on the worker threads serve
// exchanges, call them, publish and subscribe.
//
// Threads. The dispatcher lives on the control thread (ClusterNode's loop) and is touched only
// there. Every public method may be called from any thread: it runs at once when called on the
// control thread and is posted there otherwise. Callbacks given to this API (handlers, event and
// message callbacks, response callbacks) run on the control thread: keep them short, or hand the
// work to a thread of your own and answer later through the Replier, which may be called from
// any thread.
//
// Transport: the internal RPC method "bus" on the cluster port (cookie-authenticated), framed by
// bus/peer_rpc.h: the sender's member id (16 bytes) followed by the dispatcher's message.
//
// Worker glue. A worker keeps its clients' subscriptions itself (WorkerPubSub,
// commands/pubsub_family.cc) and subscribes here once per distinct channel, pattern or subject (so
// a publication costs one message to a worker however many of its clients subscribe); a publication
// is posted to that worker, which pushes it to its clients and posts the count back. RESP handlers
// (BUS.SERVE) are dispatcher handlers whose requests are posted to the connection's worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bus/dispatcher.h"
#include "common/clock.h"
#include "membership/types.h"
#include "net/event_loop.h"
#include "net/rpc.h"
#include "node/service.h"

namespace shoal::engine {
class Engine;
}  // namespace shoal::engine

namespace shoal::node {

inline constexpr std::string_view kPubSubMethod = "pubsub";

class Bus final : private bus::DispatcherIo, public Service {
 public:
  explicit Bus(const ServiceContext& ctx, bus::DispatcherOptions options = {});
  ~Bus() override;

  // Service (control thread). Start registers the "bus" and "pubsub" methods.
  Status Start(net::RpcServer* server) override;
  void OnView(std::shared_ptr<const membership::MemberTable> view) override;
  void Tick(int64_t now_us) override;

  // ---- Embedded API (any thread; callbacks on the control thread) ----

  std::future<Result<bus::ExchangeSpec>> Create(std::string name, bus::Pattern pattern,
                                                std::string strategy);
  // The application's hash (sticky_fun) or router (fun) for `exchange` on this node.
  void SetStrategyConfig(std::string exchange, bus::StrategyConfig config);

  // Answers one request; callable once, from any thread.
  class Replier {
   public:
    Replier(Bus* bus, uint64_t handler, uint64_t request)
        : bus_(bus), handler_(handler), request_(request) {}
    void operator()(Result<std::string> reply) const;
    void Ok(std::string payload) const { (*this)(std::move(payload)); }
    void Fail(std::string message) const {
      (*this)(Error(bus::DispatchErrc::kHandlerError, std::move(message)));
    }

   private:
    Bus* bus_;
    uint64_t handler_, request_;
  };
  using RequestFn = std::function<void(const bus::IncomingRequest& request, Replier reply)>;
  using EventFn = std::function<void(const bus::Handler& self, const bus::Event& event)>;
  struct ServeOptions {
    std::string group;           // service tag
    std::string connection_tag;  // reported in the handler's registration and events
  };
  std::future<Result<bus::Handler>> Serve(std::string exchange, ServeOptions options,
                                          RequestFn on_request, EventFn on_event = {});
  std::future<Status> Unserve(uint64_t handler_id);

  void Request(std::string exchange, std::string routing_key, std::string payload,
               bus::RequestOptions options, bus::ResponseCallback done);
  std::future<Result<bus::Response>> Request(std::string exchange, std::string routing_key,
                                             std::string payload, bus::RequestOptions options = {});

  using MessageFn = std::function<void(const bus::Publication& message)>;
  // Resolves once the subscription is in effect cluster-wide (see Dispatcher::SyncInterest).
  std::future<Result<uint64_t>> Subscribe(std::string exchange, std::string pattern, MessageFn fn);
  std::future<Status> Unsubscribe(uint64_t subscription_id);
  void Publish(std::string exchange, std::string subject, std::string payload,
               std::function<void(Result<uint64_t>)> done);
  std::future<Result<uint64_t>> Publish(std::string exchange, std::string subject,
                                        std::string payload);

  // Snapshots for INFO and tests (refreshed every tick). Any thread.
  bus::Counters counters() const;
  struct Snapshot {
    size_t exchanges = 0;
    size_t local_handlers = 0;
    size_t held_requests = 0;
    size_t pending_requests = 0;
    size_t interest_entries = 0;
  };
  Snapshot snapshot() const;

  // Runs `fn` on the control thread with the dispatcher (now if already there).
  void Run(std::function<void(bus::Dispatcher&)> fn);

  // ---- Worker glue (any thread) ----

  // Worker `worker` gained (`added`) or lost (`removed`) its last client on interest entries (see
  // bus/dispatcher.h for the entry format); `synced` runs on that worker once the additions are in
  // effect cluster-wide.
  void WorkerInterest(unsigned worker, std::vector<std::string> added,
                      std::vector<std::string> removed, std::function<void()> synced);
  // PUBSUB across the cluster: every live node's per-entry client counts for the entries that
  // start with one of `spaces` ("c", "p", "s"), summed. `done` runs on the control thread.
  void PubSubCounts(std::string spaces, std::function<void(std::map<std::string, uint64_t>)> done);

 private:
  // DispatcherIo (control thread).
  int64_t Now() override;
  void Call(const membership::MemberId& to, std::string body, int64_t timeout_ms,
            CallDone done) override;
  void Defer(std::function<void()> fn) override;

  // This node's counts: asks every worker. Control thread; `done` on the control thread.
  void LocalCounts(std::string spaces, std::function<void(std::map<std::string, uint64_t>)> done);

  engine::Engine* engine_;
  net::EventLoop* loop_;
  net::RpcClient* client_;         // the pub-sub counts
  net::RpcClientChannel channel_;  // the dispatcher's messages
  membership::MemberId self_;
  const Clock* clock_;
  std::unique_ptr<bus::Dispatcher> dispatcher_;
  std::shared_ptr<const membership::MemberTable> view_;
  // Worker subscriptions: (worker, entry) -> dispatcher subscription id.
  std::map<std::pair<unsigned, std::string>, uint64_t> worker_subs_;

  mutable std::mutex mu_;
  bus::Counters counters_;  // guarded by mu_
  Snapshot snapshot_;       // guarded by mu_
};

}  // namespace shoal::node
