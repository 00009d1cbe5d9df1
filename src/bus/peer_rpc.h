// The dispatcher's messages between nodes, over an RpcChannel (common/rpc_channel.h): method
// kBusMethod, each request the caller's member id (16 bytes) followed by the dispatcher's
// message. The node (node/bus.cc) and the simulator (dispatcher_sim_test.cc) both send and serve
// through these two functions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "bus/dispatcher.h"
#include "common/member_id.h"
#include "common/rpc_channel.h"
#include "common/transport.h"

namespace shoal::bus {

inline constexpr std::string_view kBusMethod = "bus";

// DispatcherIo::Call to the node at `address`: a timeout comes back as DispatchErrc::kTimeout,
// other failures as they are.
void CallPeer(RpcChannel& rpc, const MemberId& self, const Endpoint& address, std::string body,
              int64_t timeout_ms, DispatcherIo::CallDone done);

// Serves a kBusMethod request: strips the caller's id and hands the message to `dispatcher`.
void ServeCall(Dispatcher& dispatcher, std::string_view request,
               std::function<void(Result<std::string>)> answer);

}  // namespace shoal::bus
