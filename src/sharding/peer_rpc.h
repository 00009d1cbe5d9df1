// The sharding protocol's messages between nodes, over an RpcChannel (common/rpc_channel.h):
// method kShardMethod, each request the caller's member id (16 bytes) followed by the message.
// The node (node/sharding_driver.cc) and the simulator (sim_harness.cc) both send and serve
// through these two functions, so the simulation runs the node's framing too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/member_id.h"
#include "common/rpc_channel.h"
#include "common/transport.h"
#include "sharding/core.h"

namespace shoal::sharding {

inline constexpr std::string_view kShardMethod = "shard";

// Sends `body` (an encoded message) from `self` to the node at `cluster`. A member with no
// address (port 0) fails like any unreachable one, through `done`.
void CallPeer(RpcChannel& rpc, const MemberId& self, const Endpoint& cluster, std::string_view body,
              int64_t timeout_us, CoreIo::ReplyFn done);

// Serves a kShardMethod request: checks and strips the caller's id, and hands the message to
// `core`, whose answer (or error) goes to `reply`.
void ServeRequest(ShardingCore& core, std::string_view request, CoreIo::ReplyFn reply);

}  // namespace shoal::sharding
