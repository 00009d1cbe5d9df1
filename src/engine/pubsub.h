// The worker side of publish-subscribe: which clients of a worker subscribe to what, and how a
// publication reaches them. The commands that change it are the pub-sub family's
// (commands/pubsub_family.cc).
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

namespace shoal::engine {

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
}  // namespace shoal::engine
