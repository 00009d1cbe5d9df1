// The control plane's metrics (cluster_probe.cc: SWIM membership and sharding; bus_probe.cc: the
// messaging bus), registered into the engine's registry (engine/probes.h has the engine's own).
// They read through ClusterOf(engine) when the registry is rendered, so they report nothing
// before the cluster starts or after it stops.
#pragma once

namespace shoal::engine {
class Engine;
}  // namespace shoal::engine

namespace shoal::node {

void RegisterClusterMetrics(engine::Engine* engine);
void RegisterBusMetrics(engine::Engine* engine);

}  // namespace shoal::node
