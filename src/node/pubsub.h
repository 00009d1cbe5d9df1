// The worker side of publish-subscribe and of RESP bus handlers: which clients of a worker
// subscribe to what, and how a publication or a bus request reaches them (cmd_pubsub.cc).
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "bus/dispatcher.h"

namespace shoal::resp {
class Connection;
}

namespace shoal::node {

class Engine;
class Shard;

// Per worker: interest entry (bus/dispatcher.h's format) -> ids of this worker's clients.
struct WorkerPubSub {
  absl::flat_hash_map<std::string, absl::flat_hash_set<uint64_t>> clients;
};

// Pushes `p` (which matched `pattern`) to the clients of `shard` subscribed on `entry`; returns
// how many got it. The shard's thread.
uint64_t DeliverPublication(Shard& shard, const std::string& entry, const bus::Publication& p,
                            const std::string& pattern);
// The number of clients of `shard` per entry, for the entries whose first byte is in `spaces`.
std::map<std::string, uint64_t> CountSubscriptions(Shard& shard, std::string_view spaces);
// Pushes a bus request to the RESP handler connection `client_id` of `shard`; false if the
// connection is gone. The shard's thread.
bool DeliverBusRequest(Shard& shard, uint64_t client_id, uint64_t handler_id,
                       const bus::IncomingRequest& request);
// Pushes a registry event to the RESP handler connection; the shard's thread.
void DeliverBusEvent(Shard& shard, uint64_t client_id, const bus::Event& event);
// Drops a closing client's subscriptions and handlers. The client's worker thread.
void ForgetPubSubClient(Engine& engine, resp::Connection* c);

}  // namespace shoal::node
