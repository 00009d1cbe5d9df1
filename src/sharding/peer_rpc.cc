#include "sharding/peer_rpc.h"

#include <utility>

namespace shoal::sharding {

void CallPeer(RpcChannel& rpc, const MemberId& self, const Endpoint& cluster, std::string_view body,
              int64_t timeout_us, CoreIo::ReplyFn done) {
  std::string request = self.ToBytes();
  request += body;
  rpc.Call(cluster, kShardMethod, std::move(request), timeout_us, std::move(done));
}

void ServeRequest(ShardingCore& core, std::string_view request, CoreIo::ReplyFn reply) {
  if (request.size() < 16) {
    reply(Error(Errc::kMalformed, "shard: short request"));
    return;
  }
  auto from = MemberId::FromBytes(request.substr(0, 16));
  if (!from) {
    reply(Error(Errc::kMalformed, "shard: bad sender"));
    return;
  }
  core.OnRequest(*from, request.substr(16), std::move(reply));
}

}  // namespace shoal::sharding
