// Services of the control thread, their lifecycle, and the node's boot order.
//
// A Service is one piece of the control plane (sharding, the bus, the replicated maps; next the
// WAL, replication, failover and the clusterwide config) that ClusterNode runs for its whole
// life. Every service goes through the same steps, driven by the ServiceRegistry:
//
//   Load()    boot stage kLoad: reads what it keeps on disk, before the node joins. Main thread,
//             before the control thread runs. A failure stops the boot.
//   Start()   boot stage kJoin: registers its RPC methods (through ServeMethod, behind its gate)
//   and
//             begins its work; it sees its first view right after. Main thread, before the
//             control thread runs.
//   OnView()  a new membership view. Control thread.
//   Tick()    every 10 ms, given the monotonic time in microseconds. Control thread.
//   Stop()    its gate is closed first: requests that reach a method it serves get an error
//             ("<name> is stopping"), while requests already in flight keep running (views and
//             ticks go on, so their timeouts still fire) until they are answered or the
//             registry's drain deadline passes. Then Stop releases what it holds, and the
//             service sees no more views or ticks. Control thread.
//
// Services are started in the order they were added and stopped in the reverse order, so a
// service may use the ones added before it (ServiceRegistry::Find) for its whole life.
//
// Gate is Seastar's gate: a count of work in flight that can be closed to new work. It may be
// entered and left from any thread (a request answered by a worker leaves it there).
//
// Boot: Server::Start declares its steps with a stage each (kLoad: read from disk → kJoin: bind
// the cluster port and join → kServe: accept clients) and Boot runs them in stage order, stopping
// at the first failure with the step's name in the error.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "config/server_config.h"
#include "membership/types.h"
#include "net/event_loop.h"
#include "net/rpc.h"

namespace shoal::engine {
class Engine;
}  // namespace shoal::engine

namespace shoal::node {
class ServiceRegistry;

class Gate {
 public:
  // One unit of work in flight; leaves the gate when destroyed. Move-only.
  class Holder {
   public:
    Holder(Holder&&) noexcept = default;
    Holder& operator=(Holder&&) = delete;
    ~Holder() {
      if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_acq_rel);
    }

    // Hands the unit to whoever will count it out (net::Responder::Track); this holder then
    // holds nothing.
    std::shared_ptr<std::atomic<int64_t>> Release() { return std::move(count_); }

   private:
    friend class Gate;
    explicit Holder(std::shared_ptr<std::atomic<int64_t>> count) : count_(std::move(count)) {}
    std::shared_ptr<std::atomic<int64_t>> count_;
  };

  // A holder, or nothing once the gate is closed.
  std::optional<Holder> TryEnter();
  // Refuses new work from now on. Idempotent.
  void Close() { closed_.store(true, std::memory_order_release); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // Work in flight (holders alive).
  int64_t in_flight() const { return count_->load(std::memory_order_acquire); }

 private:
  std::shared_ptr<std::atomic<int64_t>> count_ = std::make_shared<std::atomic<int64_t>>(0);
  std::atomic<bool> closed_{false};
};

// What a service is built with. Pointers outlive every service.
struct ServiceContext {
  const config::ServerConfig* cfg = nullptr;
  engine::Engine* engine = nullptr;  // null for a control plane without an engine (tests)
  net::EventLoop* loop = nullptr;    // the control thread's
  net::RpcClient* rpc_client = nullptr;
  membership::MemberId self;
  const Clock* clock = nullptr;
  ServiceRegistry* services = nullptr;  // the services added before this one
};

class Service {
 public:
  explicit Service(std::string name) : name_(std::move(name)) {}
  virtual ~Service() = default;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const std::string& name() const { return name_; }
  Gate& gate() { return gate_; }

  virtual Status Load() { return Status::Ok(); }
  virtual Status Start(net::RpcServer* server) = 0;
  virtual void OnView(std::shared_ptr<const membership::MemberTable> view) = 0;
  virtual void Tick(int64_t now_us) = 0;
  virtual void Stop() {}

 protected:
  // Registers `method` on `server` behind this service's gate: once the gate is closed a request
  // is refused at once, and a request admitted holds the gate until it is answered.
  void ServeMethod(net::RpcServer* server, std::string_view method,
                   net::RpcServer::Handler handler);

 private:
  std::string name_;
  Gate gate_;
};

class ServiceRegistry {
 public:
  ServiceRegistry() = default;
  ~ServiceRegistry();
  ServiceRegistry(const ServiceRegistry&) = delete;
  ServiceRegistry& operator=(const ServiceRegistry&) = delete;

  // Adds a service (the order is its start order); returns it. Before LoadAll.
  template <typename T>
  T* Add(std::unique_ptr<T> service) {
    T* raw = service.get();
    services_.push_back(std::move(service));
    return raw;
  }
  // The first service of type T, or null.
  template <typename T>
  T* Find() const {
    for (const auto& s : services_) {
      if (auto* t = dynamic_cast<T*>(s.get())) return t;
    }
    return nullptr;
  }
  const std::vector<std::unique_ptr<Service>>& services() const { return services_; }

  // Each in order; the first failure stops and is returned, prefixed with the service's name.
  Status LoadAll();
  Status StartAll(net::RpcServer* server);
  // To every service, until StopAll has stopped them.
  void OnView(const std::shared_ptr<const membership::MemberTable>& view);
  void Tick(int64_t now_us);
  // Closes every gate, waits on `loop` (polling every 10 ms) until no work is in flight or
  // `drain_ms` passed, calls Stop on each in reverse order, then `done`. Control thread; the loop
  // must keep running until `done` is called. Once: a later call only runs its `done`, at once,
  // if the services have already stopped (ClusterNode::Stop calls it once).
  void StopAll(net::EventLoop* loop, int64_t drain_ms, std::function<void()> done);

 private:
  std::vector<std::unique_ptr<Service>> services_;
  bool stopping_ = false;
  bool stopped_ = false;
};

enum class BootStage { kLoad, kJoin, kServe };
std::string_view ToString(BootStage stage);

class Boot {
 public:
  using Step = std::function<Status()>;
  void Add(BootStage stage, std::string name, Step step);
  // Runs the steps in stage order (in the order added within a stage) and logs each; stops at
  // the first failure, returned as "<stage> <name>: <error>".
  Status Run();

 private:
  struct Entry {
    BootStage stage;
    std::string name;
    Step step;
  };
  std::vector<Entry> steps_;
};

}  // namespace shoal::node
