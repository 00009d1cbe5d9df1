// EventLoop: one thread's reactor (epoll, level-triggered, as Redis's ae), its timers, and the
// inbox through which other threads hand it work.
//
// Thread-per-core: every worker thread runs exactly one EventLoop and owns everything registered
// with it. Cross-thread work is a message: Post() from any thread enqueues a task that runs on the
// loop's thread, in FIFO order per producer. A producer wakes the loop (an eventfd write) only when
// the loop is about to sleep, so a busy loop takes batches of messages without syscalls.
//
// Thread-safety: Post() and Stop() may be called from any thread; everything else only on the
// loop's own thread (the one inside Run()).
#pragma once

#include <absl/functional/any_invocable.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace shoal::net {

using Task = absl::AnyInvocable<void()>;

// Receives readiness events for one file descriptor.
class IoWatcher {
 public:
  virtual ~IoWatcher() = default;
  // `events` is a mask of EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP.
  virtual void OnIoEvents(uint32_t events) = 0;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until Stop() is called. REQUIRES: called once, on the thread that will own the loop.
  void Run();
  // Makes Run() return after the current iteration. Any thread.
  void Stop();
  bool InLoopThread() const;

  // Runs `task` on this loop's thread. Any thread. Tasks posted after Stop() may never run.
  void Post(Task task);

  // File descriptors. `events` is EPOLLIN and/or EPOLLOUT. The watcher must outlive its
  // registration; remove it before destroying it, and destroy it via DeleteLater() if it may
  // still have an event pending in the current iteration.
  void Watch(int fd, uint32_t events, IoWatcher* watcher);
  void Modify(int fd, uint32_t events, IoWatcher* watcher);
  void Unwatch(int fd);

  // Timers, in milliseconds of monotonic time. A repeating timer runs until cancelled.
  using TimerId = uint64_t;
  TimerId RunAfter(int64_t delay_ms, Task task);
  TimerId RunEvery(int64_t period_ms, absl::AnyInvocable<void()> task);
  void Cancel(TimerId id);

  // Runs at the end of every iteration, before the loop sleeps: where outboxes are flushed.
  void AddBeforeSleep(absl::AnyInvocable<void()> hook);

  // Destroys `obj` at the end of the current iteration (after all events of this round).
  template <typename T>
  void DeleteLater(T* obj) {
    graveyard_.push_back(Task([obj] { delete obj; }));
  }

  int64_t NowMs() const { return now_ms_; }
  uint64_t iterations() const { return iterations_; }

 private:
  struct Timer {
    int64_t period_ms;  // 0: one-shot
    absl::AnyInvocable<void()> task;
  };
  void RunInbox();
  void RunTimers();
  int NextTimeoutMs() const;
  void UpdateNow();

  int epfd_ = -1;
  int wakefd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> woken_{false};
  std::atomic<uint64_t> thread_id_{0};

  std::mutex inbox_mu_;
  std::vector<Task> inbox_;  // guarded by inbox_mu_
  std::vector<Task> running_;

  std::map<std::pair<int64_t, TimerId>, Timer> timers_;
  std::unordered_map<TimerId, int64_t> timer_due_;
  TimerId next_timer_id_ = 1;

  std::vector<absl::AnyInvocable<void()>> before_sleep_;
  std::vector<Task> graveyard_;
  int64_t now_ms_ = 0;
  uint64_t iterations_ = 0;
};

}  // namespace shoal::net
