// libFuzzer target: the bus's decoders — registry messages (bus::Decode) and every call a peer
// can make to a node's dispatcher (requests, publications, registry pushes). The first byte picks
// which. Each must reject bad input with an error, never crash; what the registry decodes must
// re-encode and decode to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "bus/dispatcher.h"
#include "bus/registry.h"

namespace {

class StubIo : public shoal::bus::DispatcherIo {
 public:
  int64_t Now() override { return 1'000'000; }
  void Call(const shoal::bus::MemberId&, std::string, int64_t, CallDone) override {}
  void Defer(std::function<void()> fn) override { tasks.push_back(std::move(fn)); }
  std::deque<std::function<void()>> tasks;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto m = shoal::bus::Decode(in);
    if (m.ok()) {
      auto again = shoal::bus::Decode(shoal::bus::Encode(*m));
      if (!again.ok() || again->type != m->type || again->states.size() != m->states.size()) {
        std::abort();
      }
    }
    return 0;
  }
  StubIo io;
  shoal::bus::Dispatcher d(shoal::bus::MemberId(0, 1), &io);
  (void)d.Create("svc", shoal::bus::Pattern::kRequestResponse, "round_robin");
  (void)d.Create("ev", shoal::bus::Pattern::kPublishSubscribe, "broadcast");
  shoal::bus::HandlerCallbacks cb;
  cb.on_request = [&d](const shoal::bus::Handler& h, const shoal::bus::IncomingRequest& r) {
    (void)d.Reply(h.id, r.id, std::string(r.payload));
  };
  (void)d.Serve("svc", "", "", cb);
  (void)d.Subscribe(shoal::bus::Space::kChannel, "", "news",
                    [](const shoal::bus::Publication&, const std::string&,
                       std::function<void(uint64_t)> done) { done(1); });
  int answers = 0;
  d.OnCall(shoal::bus::MemberId(0, 2), in, [&answers](shoal::Result<std::string>) { ++answers; });
  for (int i = 0; i < 1000 && !io.tasks.empty(); ++i) {
    auto t = std::move(io.tasks.front());
    io.tasks.pop_front();
    t();
  }
  d.Tick();
  if (answers > 1) std::abort();  // a call is answered at most once
  return 0;
}
