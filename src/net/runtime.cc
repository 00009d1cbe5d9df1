#include "net/runtime.h"

#include <pthread.h>

#include <string>

namespace shoal::net {
namespace {
thread_local int current_index = -1;
}

Runtime::Runtime(unsigned threads) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) loops_.push_back(std::make_unique<EventLoop>());
}

Runtime::~Runtime() { Stop(); }

int Runtime::CurrentIndex() { return current_index; }

void Runtime::Start(const std::function<void(unsigned)>& init) {
  for (unsigned i = 0; i < loops_.size(); ++i) {
    threads_.emplace_back([this, i, init] {
      current_index = static_cast<int>(i);
      const std::string name = "shoal-w" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      init(i);
      loops_[i]->Run();
    });
  }
}

void Runtime::Stop() {
  for (auto& l : loops_) l->Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace shoal::net
