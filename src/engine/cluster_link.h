// What the data plane needs from the cluster it runs in, as an interface the engine defines and
// the node implements (node::ClusterNode). The engine never names the control plane's classes:
// everything else a worker learns about the cluster arrives as published snapshots (the member
// table, the bucket map, the bucket plane).
#pragma once

#include "membership/types.h"

namespace shoal::engine {

class ClusterLink {
 public:
  virtual ~ClusterLink() = default;
  // This node's member id: a bucket whose owner in the map is this node but which the plane
  // does not serve is changing hands here (TRYAGAIN), not elsewhere (MOVED).
  virtual membership::MemberId id() const = 0;
};

}  // namespace shoal::engine
