#include "bus/peer_rpc.h"

#include <system_error>
#include <utility>

namespace shoal::bus {

void CallPeer(RpcChannel& rpc, const MemberId& self, const Endpoint& address, std::string body,
              int64_t timeout_ms, DispatcherIo::CallDone done) {
  std::string request = self.ToBytes();
  request += body;
  rpc.Call(address, kBusMethod, std::move(request), timeout_ms * 1000,
           [done = std::move(done)](Result<std::string> r) {
             if (!r.ok() && r.error().code() == std::errc::timed_out) {
               return done(Error(DispatchErrc::kTimeout, r.error().message()));
             }
             done(std::move(r));
           });
}

void ServeCall(Dispatcher& dispatcher, std::string_view request,
               std::function<void(Result<std::string>)> answer) {
  auto from = request.size() >= 16 ? MemberId::FromBytes(request.substr(0, 16)) : std::nullopt;
  if (!from) {
    answer(Error(DispatchErrc::kMalformed, "bus: message too short"));
    return;
  }
  dispatcher.OnCall(*from, request.substr(16), std::move(answer));
}

}  // namespace shoal::bus
