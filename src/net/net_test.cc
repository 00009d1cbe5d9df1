#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "net/event_loop.h"
#include "net/runtime.h"

namespace shoal::net {
namespace {

// Polls `pred` until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(EventLoop, PostedTasksRunInOrderOnTheLoopThread) {
  EventLoop loop;
  std::thread t([&] { loop.Run(); });
  std::vector<int> seen;
  std::atomic<bool> done{false};
  std::atomic<bool> wrong_thread{false};
  for (int i = 0; i < 1000; ++i) {
    loop.Post([&, i] {
      if (!loop.InLoopThread()) wrong_thread = true;
      seen.push_back(i);
      if (i == 999) done = true;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  loop.Stop();
  t.join();
  EXPECT_FALSE(wrong_thread);
  ASSERT_EQ(seen.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(seen[i], i);
}

// Two producers each post a task and wait for it to run, many times over, so the loop keeps
// going to sleep and being woken while the other producer's write may still be in flight. A lost
// wake-up leaves a task unrun while the loop sleeps; only the slow keep-alive timer (there so a
// failure ends the test rather than hanging it) would then run it.
TEST(EventLoop, NoWakeUpIsLostUnderRacingProducers) {
  EventLoop loop;
  loop.Post([&] { loop.RunEvery(3000, [] {}); });
  std::thread t([&] { loop.Run(); });
  constexpr int kRounds = 100000;
  std::atomic<int> lost{0};
  auto producer = [&] {
    for (int i = 0; i < kRounds && lost.load() == 0; ++i) {
      auto ran = std::make_shared<std::atomic<bool>>(false);
      // The second Post reads `sleeping_` while the first one's write is waking the loop.
      loop.Post([] {});
      loop.Post([ran] { ran->store(true); });
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (!ran->load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          ++lost;
          break;
        }
        std::this_thread::yield();
      }
    }
  };
  std::thread a(producer), b(producer);
  a.join();
  b.join();
  loop.Stop();
  t.join();
  EXPECT_EQ(lost.load(), 0);
}

TEST(EventLoop, TimersFireAndCancel) {
  EventLoop loop;
  std::atomic<int> once{0}, every{0}, cancelled{0};
  std::thread t([&] { loop.Run(); });
  loop.Post([&] {
    loop.RunAfter(5, [&] { ++once; });
    auto id = loop.RunAfter(5, [&] { ++cancelled; });
    loop.Cancel(id);
    loop.RunEvery(2, [&] { ++every; });
  });
  ASSERT_TRUE(WaitFor([&] { return once.load() == 1 && every.load() >= 5; }));
  loop.Stop();
  t.join();
  EXPECT_EQ(cancelled.load(), 0);
  EXPECT_EQ(once.load(), 1);
}

TEST(Runtime, WorkersPingPongAcrossThreads) {
  Runtime rt(2);
  std::atomic<int> hops{0};
  rt.Start([](unsigned) {});
  std::function<void(int)> bounce = [&](int n) {
    ++hops;
    if (n == 0) return;
    unsigned next = static_cast<unsigned>(Runtime::CurrentIndex() == 0 ? 1 : 0);
    rt.loop(next)->Post([&bounce, n] { bounce(n - 1); });
  };
  rt.loop(0)->Post([&] { bounce(10000); });
  ASSERT_TRUE(WaitFor([&] { return hops.load() == 10001; }));
  rt.Stop();
}

}  // namespace
}  // namespace shoal::net
