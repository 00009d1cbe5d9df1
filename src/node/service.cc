#include "node/service.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/log.h"

namespace shoal::node {

std::optional<Gate::Holder> Gate::TryEnter() {
  count_->fetch_add(1, std::memory_order_acq_rel);
  Holder holder(count_);
  // Closed after the count went up: Close's caller may already have seen the count without
  // this unit, so back out (the holder's destructor leaves).
  if (closed()) return std::nullopt;
  return holder;
}

void Service::ServeMethod(net::RpcServer* server, std::string_view method,
                          net::RpcServer::Handler handler) {
  server->Register(std::string(method),
                   [this, handler = std::move(handler)](std::string_view body,
                                                        net::Responder responder) mutable {
                     std::optional<Gate::Holder> holder = gate_.TryEnter();
                     if (!holder) {
                       responder.Fail(name_ + " is stopping");
                       return;
                     }
                     responder.Track(holder->Release());
                     handler(body, std::move(responder));
                   });
}

ServiceRegistry::~ServiceRegistry() {
  // Destroyed in the reverse order of their start: a service may use the ones before it.
  while (!services_.empty()) services_.pop_back();
}

Status ServiceRegistry::LoadAll() {
  for (const auto& s : services_) {
    if (Status st = s->Load(); !st.ok()) {
      return Error(st.error().code(), s->name() + ": " + st.error().message());
    }
  }
  return Status::Ok();
}

Status ServiceRegistry::StartAll(net::RpcServer* server) {
  for (const auto& s : services_) {
    if (Status st = s->Start(server); !st.ok()) {
      return Error(st.error().code(), s->name() + ": " + st.error().message());
    }
  }
  return Status::Ok();
}

void ServiceRegistry::OnView(const std::shared_ptr<const membership::MemberTable>& view) {
  if (stopped_) return;
  for (const auto& s : services_) s->OnView(view);
}

void ServiceRegistry::Tick(int64_t now_us) {
  if (stopped_) return;
  for (const auto& s : services_) s->Tick(now_us);
}

void ServiceRegistry::StopAll(net::EventLoop* loop, int64_t drain_ms, std::function<void()> done) {
  if (stopping_) {
    if (stopped_) done();
    return;
  }
  stopping_ = true;
  for (const auto& s : services_) s->gate().Close();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
  auto finish = [this, done = std::move(done)] {
    for (auto it = services_.rbegin(); it != services_.rend(); ++it) (*it)->Stop();
    stopped_ = true;
    done();
  };
  auto drained = [this] {
    return std::all_of(services_.begin(), services_.end(),
                       [](const auto& s) { return s->gate().in_flight() == 0; });
  };
  if (drained()) return finish();
  // Poll: work in flight is answered on this loop or on the workers.
  // The pending timer owns the poll; the poll itself only refers to it weakly.
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, loop, deadline, drained, finish, self = std::weak_ptr(poll)]() mutable {
    if (drained()) return finish();
    if (std::chrono::steady_clock::now() >= deadline) {
      for (const auto& s : services_) {
        if (s->gate().in_flight() > 0) {
          SHOAL_LOG_WARN("{}: stopping with {} request(s) still in flight", s->name(),
                         s->gate().in_flight());
        }
      }
      return finish();
    }
    loop->RunAfter(10, [next = self.lock()] { (*next)(); });
  };
  loop->RunAfter(10, [poll] { (*poll)(); });
}

std::string_view ToString(BootStage stage) {
  switch (stage) {
    case BootStage::kLoad:
      return "load";
    case BootStage::kJoin:
      return "join";
    case BootStage::kServe:
      return "serve";
  }
  return "?";
}

void Boot::Add(BootStage stage, std::string name, Step step) {
  steps_.push_back(Entry{stage, std::move(name), std::move(step)});
}

Status Boot::Run() {
  std::stable_sort(steps_.begin(), steps_.end(),
                   [](const Entry& a, const Entry& b) { return a.stage < b.stage; });
  for (Entry& e : steps_) {
    const auto t0 = std::chrono::steady_clock::now();
    Status st = e.step();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (!st.ok()) {
      return Error(st.error().code(),
                   fmt::format("{} {}: {}", ToString(e.stage), e.name, st.error().message()));
    }
    SHOAL_LOG_DEBUG("boot: {} {} done in {} ms", ToString(e.stage), e.name, ms);
  }
  return Status::Ok();
}

}  // namespace shoal::node
