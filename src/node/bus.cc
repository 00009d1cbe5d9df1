#include "node/bus.h"

#include <utility>

#include "bus/peer_rpc.h"
#include "common/log.h"
#include "common/wire.h"
#include "engine/engine.h"
#include "engine/pubsub.h"
#include "net/errc.h"

namespace shoal::node {

using engine::CountSubscriptions;
using engine::DeliverPublication;
using engine::Shard;

namespace {

bus::Space SpaceOf(char c) { return static_cast<bus::Space>(c); }

std::string EncodeCounts(const std::map<std::string, uint64_t>& counts) {
  wire::Writer w;
  w.Array(static_cast<uint32_t>(counts.size()));
  for (const auto& [entry, n] : counts) {
    w.Array(2);
    w.Bin(entry);
    w.U64(n);
  }
  return w.Take();
}

}  // namespace

Bus::Bus(const ServiceContext& ctx, bus::DispatcherOptions options)
    : Service("bus"),
      engine_(ctx.engine),
      loop_(ctx.loop),
      client_(ctx.rpc_client),
      channel_(ctx.rpc_client),
      self_(ctx.self),
      clock_(ctx.clock) {
  dispatcher_ = std::make_unique<bus::Dispatcher>(self_, static_cast<bus::DispatcherIo*>(this),
                                                  std::move(options));
}

Bus::~Bus() = default;

int64_t Bus::Now() { return clock_->NowUnixMicros(); }

void Bus::Defer(std::function<void()> fn) { loop_->Post(std::move(fn)); }

void Bus::Call(const membership::MemberId& to, std::string body, int64_t timeout_ms,
               CallDone done) {
  const membership::Member* m = view_ == nullptr ? nullptr : view_->Find(to);
  if (m == nullptr) {
    loop_->Post([done = std::move(done), to] {
      done(Error(bus::DispatchErrc::kUnreachable, "node " + to.ToString() + " is not known"));
    });
    return;
  }
  bus::CallPeer(channel_, self_, m->record.address, std::move(body), timeout_ms, std::move(done));
}

Status Bus::Start(net::RpcServer* server) {
  ServeMethod(server, bus::kBusMethod, [this](std::string_view body, net::Responder resp) {
    auto responder = std::make_shared<net::Responder>(std::move(resp));
    bus::ServeCall(*dispatcher_, body, [responder](Result<std::string> r) {
      if (r.ok()) {
        responder->Reply(std::move(*r));
      } else {
        responder->Fail(r.error().message());
      }
    });
  });
  ServeMethod(server, kPubSubMethod, [this](std::string_view body, net::Responder resp) {
    auto responder = std::make_shared<net::Responder>(std::move(resp));
    LocalCounts(std::string(body.substr(0, 8)),
                [responder](std::map<std::string, uint64_t> counts) {
                  responder->Reply(EncodeCounts(counts));
                });
  });
  return Status::Ok();
}

void Bus::OnView(std::shared_ptr<const membership::MemberTable> view) {
  view_ = view;
  dispatcher_->OnView(std::move(view));
}

void Bus::Tick(int64_t /*now_us*/) {
  dispatcher_->Tick();
  Snapshot s;
  s.exchanges = dispatcher_->registry().exchanges().size();
  s.local_handlers = dispatcher_->local_handlers();
  s.held_requests = dispatcher_->held_requests();
  s.pending_requests = dispatcher_->pending_requests();
  s.interest_entries = dispatcher_->LocalInterest().size();
  std::lock_guard<std::mutex> lock(mu_);
  counters_ = dispatcher_->counters();
  snapshot_ = s;
}

bus::Counters Bus::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

Bus::Snapshot Bus::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void Bus::Run(std::function<void(bus::Dispatcher&)> fn) {
  if (loop_->InLoopThread()) return fn(*dispatcher_);
  loop_->Post([this, fn = std::move(fn)] { fn(*dispatcher_); });
}

// ---------------------------------------------------------------------------------------------
// Embedded API

std::future<Result<bus::ExchangeSpec>> Bus::Create(std::string name, bus::Pattern pattern,
                                                   std::string strategy) {
  auto p = std::make_shared<std::promise<Result<bus::ExchangeSpec>>>();
  auto f = p->get_future();
  Run([p, name = std::move(name), pattern, strategy = std::move(strategy)](bus::Dispatcher& d) {
    p->set_value(d.Create(name, pattern, strategy));
  });
  return f;
}

void Bus::SetStrategyConfig(std::string exchange, bus::StrategyConfig config) {
  Run([exchange = std::move(exchange), config = std::move(config)](bus::Dispatcher& d) {
    d.SetStrategyConfig(exchange, config);
  });
}

void Bus::Replier::operator()(Result<std::string> reply) const {
  Bus* bus = bus_;
  const uint64_t h = handler_, r = request_;
  bus->Run([h, r, reply = std::move(reply)](bus::Dispatcher& d) mutable {
    (void)d.Reply(h, r, std::move(reply));
  });
}

std::future<Result<bus::Handler>> Bus::Serve(std::string exchange, ServeOptions options,
                                             RequestFn on_request, EventFn on_event) {
  auto p = std::make_shared<std::promise<Result<bus::Handler>>>();
  auto f = p->get_future();
  Run([this, p, exchange = std::move(exchange), options = std::move(options),
       on_request = std::move(on_request), on_event = std::move(on_event)](bus::Dispatcher& d) {
    bus::HandlerCallbacks cb;
    cb.on_request = [this, on_request](const bus::Handler& self, const bus::IncomingRequest& r) {
      on_request(r, Replier(this, self.id, r.id));
    };
    if (on_event) cb.on_event = on_event;
    p->set_value(d.Serve(exchange, options.group, options.connection_tag, std::move(cb)));
  });
  return f;
}

std::future<Status> Bus::Unserve(uint64_t handler_id) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  Run([p, handler_id](bus::Dispatcher& d) { p->set_value(d.Unserve(handler_id)); });
  return f;
}

void Bus::Request(std::string exchange, std::string routing_key, std::string payload,
                  bus::RequestOptions options, bus::ResponseCallback done) {
  if (loop_->InLoopThread()) {
    dispatcher_->Request(exchange, routing_key, std::move(payload), std::move(options),
                         std::move(done));
    return;
  }
  loop_->Post([this, exchange = std::move(exchange), routing_key = std::move(routing_key),
               payload = std::move(payload), options = std::move(options),
               done = std::move(done)]() mutable {
    dispatcher_->Request(exchange, routing_key, std::move(payload), std::move(options),
                         std::move(done));
  });
}

std::future<Result<bus::Response>> Bus::Request(std::string exchange, std::string routing_key,
                                                std::string payload, bus::RequestOptions options) {
  auto p = std::make_shared<std::promise<Result<bus::Response>>>();
  auto f = p->get_future();
  Request(std::move(exchange), std::move(routing_key), std::move(payload), std::move(options),
          [p](Result<bus::Response> r) { p->set_value(std::move(r)); });
  return f;
}

std::future<Result<uint64_t>> Bus::Subscribe(std::string exchange, std::string pattern,
                                             MessageFn fn) {
  auto p = std::make_shared<std::promise<Result<uint64_t>>>();
  auto f = p->get_future();
  Run([p, exchange = std::move(exchange), pattern = std::move(pattern),
       fn = std::move(fn)](bus::Dispatcher& d) {
    Result<uint64_t> id = d.Subscribe(
        bus::Space::kSubject, exchange, pattern,
        [fn](const bus::Publication& pub, const std::string&, std::function<void(uint64_t)> done) {
          fn(pub);
          done(1);
        });
    if (!id.ok()) return p->set_value(id);
    d.SyncInterest([p, id] { p->set_value(id); });
  });
  return f;
}

std::future<Status> Bus::Unsubscribe(uint64_t subscription_id) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  Run([p, subscription_id](bus::Dispatcher& d) { p->set_value(d.Unsubscribe(subscription_id)); });
  return f;
}

void Bus::Publish(std::string exchange, std::string subject, std::string payload,
                  std::function<void(Result<uint64_t>)> done) {
  Run([exchange = std::move(exchange), subject = std::move(subject), payload = std::move(payload),
       done = std::move(done)](bus::Dispatcher& d) mutable {
    d.Publish(bus::Space::kSubject, exchange, subject, std::move(payload), std::move(done));
  });
}

std::future<Result<uint64_t>> Bus::Publish(std::string exchange, std::string subject,
                                           std::string payload) {
  auto p = std::make_shared<std::promise<Result<uint64_t>>>();
  auto f = p->get_future();
  Publish(std::move(exchange), std::move(subject), std::move(payload),
          [p](Result<uint64_t> r) { p->set_value(r); });
  return f;
}

// ---------------------------------------------------------------------------------------------
// Worker glue

void Bus::WorkerInterest(unsigned worker, std::vector<std::string> added,
                         std::vector<std::string> removed, std::function<void()> synced) {
  Run([this, worker, added = std::move(added), removed = std::move(removed),
       synced = std::move(synced)](bus::Dispatcher& d) mutable {
    for (const std::string& entry : removed) {
      auto it = worker_subs_.find({worker, entry});
      if (it == worker_subs_.end()) continue;
      (void)d.Unsubscribe(it->second);
      worker_subs_.erase(it);
    }
    for (const std::string& entry : added) {
      if (entry.empty() || worker_subs_.contains({worker, entry})) continue;
      std::string exchange, pattern = entry.substr(1);
      if (entry[0] == 'x') {
        const size_t z = entry.find('\0');
        exchange = entry.substr(1, z - 1);
        pattern = entry.substr(z + 1);
      }
      Result<uint64_t> id = d.Subscribe(
          SpaceOf(entry[0]), exchange, pattern,
          [this, worker, entry](const bus::Publication& pub, const std::string& matched,
                                std::function<void(uint64_t)> done) {
            Shard* shard = engine_->shard(worker);
            shard->loop()->Post([this, shard, entry, pub, matched, done = std::move(done)] {
              const uint64_t n = DeliverPublication(*shard, entry, pub, matched);
              loop_->Post([done, n] { done(n); });
            });
          });
      if (id.ok()) {
        worker_subs_[{worker, entry}] = *id;
      } else {
        SHOAL_LOG_WARN("bus: worker {} could not subscribe: {}", worker, id.error().message());
      }
    }
    d.SyncInterest([this, worker, synced = std::move(synced)] {
      if (synced) engine_->shard(worker)->loop()->Post(synced);
    });
  });
}

void Bus::LocalCounts(std::string spaces,
                      std::function<void(std::map<std::string, uint64_t>)> done) {
  struct Gather {
    unsigned outstanding;
    std::map<std::string, uint64_t> counts;
    std::function<void(std::map<std::string, uint64_t>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->outstanding = engine_->num_shards();
  g->done = std::move(done);
  for (unsigned i = 0; i < engine_->num_shards(); ++i) {
    Shard* shard = engine_->shard(i);
    shard->loop()->Post([this, shard, g, spaces] {
      auto part = CountSubscriptions(*shard, spaces);
      loop_->Post([g, part = std::move(part)] {
        for (const auto& [e, n] : part) g->counts[e] += n;
        if (--g->outstanding == 0) g->done(std::move(g->counts));
      });
    });
  }
}

void Bus::PubSubCounts(std::string spaces,
                       std::function<void(std::map<std::string, uint64_t>)> done) {
  Run([this, spaces = std::move(spaces), done = std::move(done)](bus::Dispatcher& d) mutable {
    struct Gather {
      size_t outstanding = 1;
      std::map<std::string, uint64_t> counts;
      std::function<void(std::map<std::string, uint64_t>)> done;
      void Add(const std::map<std::string, uint64_t>& part) {
        for (const auto& [e, n] : part) counts[e] += n;
        if (--outstanding == 0) done(std::move(counts));
      }
    };
    auto g = std::make_shared<Gather>();
    g->done = std::move(done);
    for (const bus::NodeState* s : d.registry().LiveStates()) {
      if (s->node == self_ || view_ == nullptr) continue;
      const membership::Member* m = view_->Find(s->node);
      if (m == nullptr) continue;
      ++g->outstanding;
      client_->Call(m->record.address, kPubSubMethod, spaces, 2'000, [g](Result<std::string> r) {
        std::map<std::string, uint64_t> part;
        if (r.ok()) {
          try {
            auto handle = wire::Unpack(*r);
            wire::Reader rd(handle.get());
            for (uint32_t i = 0; i < rd.Array(); ++i) {
              part[std::string(rd.At(i).At(0).Bin())] += rd.At(i).At(1).U64();
            }
          } catch (const wire::WireError&) {
          }
        }
        g->Add(part);
      });
    }
    LocalCounts(spaces, [g](std::map<std::string, uint64_t> part) { g->Add(part); });
  });
}

}  // namespace shoal::node
