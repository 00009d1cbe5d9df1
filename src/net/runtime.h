// Runtime: N worker threads, each running its own EventLoop (thread-per-core, shared-nothing).
//
// Workers are numbered 0..N-1; the number is the ShardId that owns the buckets b with
// b % N == id. Code on one worker reaches another only through Post().
// Thread-safety: Start/Stop from the owning (main) thread; loop(i)->Post() from any thread.
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "net/event_loop.h"

namespace shoal::net {

class Runtime {
 public:
  explicit Runtime(unsigned threads);
  ~Runtime();

  unsigned size() const { return static_cast<unsigned>(loops_.size()); }
  EventLoop* loop(unsigned i) { return loops_[i].get(); }
  // Index of the worker the caller runs on, or -1 outside the workers.
  static int CurrentIndex();

  // Starts the threads; `init(i)` runs first on worker i, inside its thread.
  void Start(const std::function<void(unsigned)>& init);
  // Stops every loop and joins the threads.
  void Stop();

 private:
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace shoal::net
