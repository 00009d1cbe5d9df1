// Test helpers: an EventLoop on its own thread, and waiting with a deadline. Tests only.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <type_traits>

#include "net/event_loop.h"

namespace shoal::net::testing {

// Polls `pred` until it holds or `timeout` passes; false on timeout.
template <typename F>
bool WaitFor(F pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Waits for a future with a deadline; fails the test (and returns a default value) on timeout.
template <typename T>
T Await(std::future<T>& f, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  if (f.wait_for(timeout) != std::future_status::ready) {
    ADD_FAILURE() << "timed out waiting for a result";
    std::abort();  // the loop may still write into the promise: do not go on
  }
  return f.get();
}

// An EventLoop running on a thread of its own for the lifetime of the object.
class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.Run(); }) {}
  ~LoopThread() {
    loop_.Stop();
    thread_.join();
  }
  EventLoop* loop() { return &loop_; }

  // Runs `f` on the loop thread and returns its result.
  template <typename F>
  auto Sync(F f) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    std::promise<R> done;
    auto result = done.get_future();
    loop_.Post([&] {
      if constexpr (std::is_void_v<R>) {
        f();
        done.set_value();
      } else {
        done.set_value(f());
      }
    });
    return Await(result, std::chrono::seconds(30));
  }

 private:
  EventLoop loop_;
  std::thread thread_;
};

}  // namespace shoal::net::testing
