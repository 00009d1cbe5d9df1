// The replies of the Redis Cluster commands (CLUSTER SLOTS, SHARDS, NODES, INFO, HELP) and INFO's
// "# Cluster" section, as free functions of a ClusterView so they can be tested with a hand-made
// bucket map. The command handlers (commands/cluster_family.cc) build the view from the calling
// worker's copy of the map and member table.
//
// Which nodes are listed (NODES, SHARDS, cluster_known_nodes): the leader of every replica set that
// owns at least one bucket in the map (ordered by its first bucket), then every alive or suspect
// member that leads none (masters without slots, ordered by id; members without a client port are
// skipped), then this node if neither named it. A listed leader that the member table has as
// suspect is flagged "fail?", dead or left "fail" (SHARDS health "fail"); a leader the table does
// not know (or no table at all) counts as healthy in NODES and SHARDS.
//
// CLUSTER INFO: cluster_slots_assigned counts buckets with an owner in the map; of those,
// cluster_slots_pfail are a suspect owner's, cluster_slots_fail a dead, left or unknown (not in
// the member table) owner's, cluster_slots_ok the rest. cluster_state is ok exactly when every
// bucket is assigned and none fails, i.e. every bucket has a live (alive or suspect) owner.
//
// Formats are Redis 7.0's: SLOTS entries [start, end, [ip, port, id, {}]], SHARDS
// [{"slots": [s, e, ...], "nodes": [{id, port, ip, endpoint, role, replication-offset, health}]}],
// NODES lines "<id> <ip>:<port>@<cport> <flags> - 0 0 <epoch> <link> <slot ranges>\n" (myself's
// line also lists buckets being sent "[b->-<id>]" and received "[b-<-<id>]"). The config epoch
// of every node, current epoch and my epoch are all the map's epoch.
#pragma once

#include <cstdint>
#include <string>

#include "common/transport.h"
#include "engine/bucket_plane.h"
#include "membership/types.h"
#include "resp/reply_builder.h"
#include "sharding/bucket_map.h"

namespace shoal::commands {

struct ClusterView {
  const sharding::BucketMap* map = nullptr;          // required
  const membership::MemberTable* members = nullptr;  // may be null (no control plane)
  membership::MemberId self;                         // this node (empty without control plane)
  // This node's client and cluster-bus addresses, used only when neither the map nor the member
  // table names this node.
  Endpoint self_client;
  uint16_t self_cport = 0;
  // This node's bucket states, for the migration markers of myself's NODES line; may be null.
  const engine::BucketPlane* plane = nullptr;
};

void WriteClusterSlots(const ClusterView& v, resp::ReplyBuilder& out);
void WriteClusterShards(const ClusterView& v, resp::ReplyBuilder& out);
// CLUSTER NODES's text (sent as a verbatim string).
std::string ClusterNodesText(const ClusterView& v);
// CLUSTER INFO's text (sent as a verbatim string).
std::string ClusterInfoText(const ClusterView& v);
void WriteClusterHelp(resp::ReplyBuilder& out);

// INFO's "# Cluster" section, with its trailing blank line. `keys`: this node's key count.
std::string InfoClusterSection(bool enabled, bool redirect, const sharding::BucketMap& map,
                               const engine::BucketPlane& plane, uint64_t keys);

}  // namespace shoal::commands
