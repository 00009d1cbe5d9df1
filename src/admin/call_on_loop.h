// CallOnLoop: run a function on an event loop's thread and wait for its result, with a timeout.
// The bridge from threads that do not own engine state (HTTP handlers, the CLI) to the loop that
// does: state stays single-threaded, the caller just waits.
//
//   Result<size_t> n = CallOnLoop(control_loop, [members] { return members->size(); }, 500ms);
//
// Result type: a function returning T gives Result<T>; returning Result<T> gives Result<T> (its
// own errors pass through); returning void or Status gives Status. On timeout: an Error with
// std::errc::timed_out.
//
// CAUTION: after a timeout the function may still run later on the loop (it was already posted),
// so it must own what it touches: capture by value or shared_ptr, never references to the
// caller's stack. Called on the loop's own thread, it runs the function inline (waiting for the
// loop from the loop would deadlock). Any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "common/result.h"
#include "net/event_loop.h"

namespace shoal::admin {
namespace call_on_loop_internal {

template <typename R>
struct Wrap {
  using type = Result<R>;
};
template <typename T>
struct Wrap<Result<T>> {
  using type = Result<T>;
};
template <>
struct Wrap<Status> {
  using type = Status;
};
template <>
struct Wrap<void> {
  using type = Status;
};

template <typename R>
struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<typename Wrap<R>::type> result;  // set once, on the loop
};

template <typename R, typename F>
typename Wrap<R>::type Invoke(F& fn) {
  if constexpr (std::is_void_v<R>) {
    fn();
    return Status::Ok();
  } else {
    return fn();
  }
}

}  // namespace call_on_loop_internal

template <typename F>
auto CallOnLoop(net::EventLoop* loop, F fn, std::chrono::milliseconds timeout) ->
    typename call_on_loop_internal::Wrap<std::invoke_result_t<F&>>::type {
  using R = std::invoke_result_t<F&>;
  using Out = typename call_on_loop_internal::Wrap<R>::type;
  if (loop->InLoopThread()) return call_on_loop_internal::Invoke<R>(fn);

  auto state = std::make_shared<call_on_loop_internal::State<R>>();
  loop->Post([state, fn = std::move(fn)]() mutable {
    Out out = call_on_loop_internal::Invoke<R>(fn);
    std::lock_guard<std::mutex> lock(state->mu);
    state->result.emplace(std::move(out));
    state->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(state->mu);
  if (!state->cv.wait_for(lock, timeout, [&] { return state->result.has_value(); })) {
    return Error(std::make_error_code(std::errc::timed_out),
                 "the event loop did not answer within " + std::to_string(timeout.count()) + " ms");
  }
  return std::move(*state->result);
}

}  // namespace shoal::admin
