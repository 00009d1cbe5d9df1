#include "net/event_loop.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace shoal::net {
namespace {
int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}
uint64_t ThisThread() { return static_cast<uint64_t>(pthread_self()); }

class WakeWatcher final : public IoWatcher {
 public:
  void OnIoEvents(uint32_t) override {}
};
WakeWatcher wake_watcher;
}  // namespace

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) throw std::runtime_error(std::string("epoll: ") + strerror(errno));
  Watch(wakefd_, EPOLLIN, &wake_watcher);
  UpdateNow();
}

EventLoop::~EventLoop() {
  for (auto& t : graveyard_) t();
  close(wakefd_);
  close(epfd_);
}

bool EventLoop::InLoopThread() const { return thread_id_.load() == ThisThread(); }

void EventLoop::Stop() {
  stop_.store(true);
  Post([] {});
}

void EventLoop::Post(Task task) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.push_back(std::move(task));
  }
  // Pairs with Run(): sleeping_ is set before the inbox is checked one last time.
  if (sleeping_.load(std::memory_order_seq_cst) && !woken_.exchange(true)) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wakefd_, &one, sizeof one);
  }
}

void EventLoop::Watch(int fd, uint32_t events, IoWatcher* watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = watcher;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::Modify(int fd, uint32_t events, IoWatcher* watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = watcher;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Unwatch(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

EventLoop::TimerId EventLoop::RunAfter(int64_t delay_ms, Task task) {
  const TimerId id = next_timer_id_++;
  const int64_t due = MonotonicMs() + delay_ms;
  timers_.emplace(std::make_pair(due, id), Timer{0, std::move(task)});
  timer_due_[id] = due;
  return id;
}

EventLoop::TimerId EventLoop::RunEvery(int64_t period_ms, absl::AnyInvocable<void()> task) {
  const TimerId id = next_timer_id_++;
  const int64_t due = MonotonicMs() + period_ms;
  timers_.emplace(std::make_pair(due, id), Timer{period_ms, std::move(task)});
  timer_due_[id] = due;
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return;
  timers_.erase({it->second, id});
  timer_due_.erase(it);
}

void EventLoop::AddBeforeSleep(absl::AnyInvocable<void()> hook) {
  before_sleep_.push_back(std::move(hook));
}

void EventLoop::UpdateNow() { now_ms_ = MonotonicMs(); }

int EventLoop::NextTimeoutMs() const {
  if (timers_.empty()) return -1;
  const int64_t wait = timers_.begin()->first.first - MonotonicMs();
  return wait <= 0 ? 0 : static_cast<int>(std::min<int64_t>(wait, 60'000));
}

void EventLoop::RunInbox() {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    running_.swap(inbox_);
  }
  for (auto& t : running_) t();
  running_.clear();
}

void EventLoop::RunTimers() {
  const int64_t now = MonotonicMs();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    const TimerId id = node.key().second;
    Timer& timer = node.mapped();
    if (timer.period_ms > 0) {
      timer.task();
      // The task may have cancelled its own timer.
      auto due = timer_due_.find(id);
      if (due != timer_due_.end()) {
        const int64_t next = now + timer.period_ms;
        due->second = next;
        node.key() = {next, id};
        timers_.insert(std::move(node));
      }
    } else {
      timer_due_.erase(id);
      timer.task();
    }
  }
}

void EventLoop::Run() {
  thread_id_.store(ThisThread());
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_.load(std::memory_order_relaxed)) {
    RunInbox();
    for (auto& hook : before_sleep_) hook();
    for (auto& t : graveyard_) t();
    graveyard_.clear();

    // woken_ is cleared here, after the previous iteration's eventfd read, never between
    // epoll_wait and that read: a producer's write consumed by that read would otherwise leave
    // woken_ set with no wake pending, and the next Post would skip its write while we sleep.
    woken_.store(false, std::memory_order_seq_cst);
    sleeping_.store(true, std::memory_order_seq_cst);
    bool inbox_empty;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      inbox_empty = inbox_.empty();
    }
    const int timeout = inbox_empty ? NextTimeoutMs() : 0;
    const int n = epoll_wait(epfd_, events, kMaxEvents, timeout);
    sleeping_.store(false, std::memory_order_relaxed);
    UpdateNow();
    ++iterations_;
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<IoWatcher*>(events[i].data.ptr);
      if (w == &wake_watcher) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = read(wakefd_, &v, sizeof v);
      } else {
        w->OnIoEvents(events[i].events);
      }
    }
    if (!timers_.empty()) RunTimers();
  }
  RunInbox();
  for (auto& t : graveyard_) t();
  graveyard_.clear();
}

}  // namespace shoal::net
