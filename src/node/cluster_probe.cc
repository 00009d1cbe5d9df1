// Metrics of the cluster's control-thread side: SWIM membership and sharding (probes.h).
#include <string>

#include "engine/engine.h"
#include "engine/probes.h"
#include "node/cluster.h"
#include "node/probes.h"
#include "node/sharding_driver.h"

namespace shoal::node {

using engine::Engine;

namespace {

struct SwimField {
  const char* name;
  const char* help;
  uint64_t membership::SwimCounters::*field;
};

constexpr SwimField kSwim[] = {
    {"shoal_swim_packets_sent_total", "SWIM packets sent.",
     &membership::SwimCounters::packets_sent},
    {"shoal_swim_packets_received_total", "SWIM packets received.",
     &membership::SwimCounters::packets_received},
    {"shoal_swim_pings_sent_total", "SWIM direct probes and reconnect pings sent.",
     &membership::SwimCounters::pings_sent},
    {"shoal_swim_pings_received_total", "SWIM pings received.",
     &membership::SwimCounters::pings_received},
    {"shoal_swim_acks_sent_total", "SWIM acks sent.", &membership::SwimCounters::acks_sent},
    {"shoal_swim_acks_received_total", "SWIM acks received.",
     &membership::SwimCounters::acks_received},
    {"shoal_swim_nacks_sent_total", "SWIM nacks sent.", &membership::SwimCounters::nacks_sent},
    {"shoal_swim_nacks_received_total", "SWIM nacks received.",
     &membership::SwimCounters::nacks_received},
    {"shoal_swim_indirect_probes_sent_total", "SWIM indirect ping requests sent.",
     &membership::SwimCounters::indirect_probes_sent},
    {"shoal_swim_indirect_probes_relayed_total",
     "SWIM indirect ping requests carried out for others.",
     &membership::SwimCounters::indirect_probes_relayed},
    {"shoal_swim_probes_failed_total", "SWIM probes that got no ack.",
     &membership::SwimCounters::probes_failed},
    {"shoal_swim_suspicions_raised_total", "Suspicions this node started from its own probes.",
     &membership::SwimCounters::suspicions_raised},
    {"shoal_swim_deaths_declared_total", "Suspicions of this node that timed out.",
     &membership::SwimCounters::deaths_declared},
    {"shoal_swim_refutations_total", "Suspicions of this node it refuted.",
     &membership::SwimCounters::refutations},
    {"shoal_swim_bad_auth_packets_total", "SWIM packets and state blobs failing the MAC.",
     &membership::SwimCounters::bad_auth},
    {"shoal_swim_malformed_packets_total", "SWIM packets that did not decode.",
     &membership::SwimCounters::malformed},
    {"shoal_swim_push_pulls_requested_total", "SWIM state exchanges (push-pull) requested.",
     &membership::SwimCounters::push_pulls_requested},
    {"shoal_swim_push_pulls_merged_total", "SWIM state exchanges merged.",
     &membership::SwimCounters::push_pulls_merged},
    {"shoal_swim_push_pulls_rejected_total", "SWIM state exchanges that failed auth or decoding.",
     &membership::SwimCounters::push_pulls_rejected},
    {"shoal_swim_reconnect_pings_total", "SWIM pings sent to dead members to reconnect.",
     &membership::SwimCounters::reconnect_pings},
};

struct CoreField {
  const char* name;
  const char* help;
  uint64_t sharding::CoreCounters::*field;
};

constexpr CoreField kCore[] = {
    {"shoal_bucket_maps_published_total", "Bucket maps this node published as coordinator.",
     &sharding::CoreCounters::maps_published},
    {"shoal_buckets_adopted_total", "Buckets taken over empty (new cluster or dead owner).",
     &sharding::CoreCounters::adopted},
    {"shoal_buckets_lost_total", "Buckets adopted after their owner died (coordinator).",
     &sharding::CoreCounters::lost},
    {"shoal_buckets_dropped_total", "Duplicate buckets dropped.", &sharding::CoreCounters::dropped},
    {"shoal_migration_buckets_sent_total", "Buckets migrated away from this node.",
     &sharding::CoreCounters::sent_buckets},
    {"shoal_migration_buckets_received_total", "Buckets migrated to this node.",
     &sharding::CoreCounters::received_buckets},
    {"shoal_migration_batches_sent_total", "Migration batches sent.",
     &sharding::CoreCounters::sent_batches},
    {"shoal_migration_batches_aborted_total", "Migration batches aborted.",
     &sharding::CoreCounters::aborted_batches},
    {"shoal_migration_chunks_sent_total", "Migration chunks sent.",
     &sharding::CoreCounters::chunks_sent},
    {"shoal_migration_bytes_sent_total", "Migration bytes sent.",
     &sharding::CoreCounters::bytes_sent},
};

const ShardingDriver* Sharding(Engine* e) {
  ClusterNode* c = ClusterOf(*e);
  return c != nullptr ? c->sharding() : nullptr;
}

}  // namespace

void RegisterClusterMetrics(Engine* e) {
  metrics::Registry& r = e->metrics();
  for (const SwimField& f : kSwim) {
    r.CallbackCounter(f.name, f.help, [e, field = f.field] {
      ClusterNode* c = ClusterOf(*e);
      return c != nullptr ? static_cast<double>(c->counters().*field) : 0.0;
    });
  }
  r.CallbackCounter("shoal_rpc_handshake_failures_total",
                    "Cluster RPC connections that failed the cookie handshake.", [e] {
                      ClusterNode* c = ClusterOf(*e);
                      return c != nullptr ? static_cast<double>(c->rpc_handshake_failures()) : 0.0;
                    });
  r.CallbackGauge("shoal_requirepass_mismatched_peers",
                  "Live peers whose requirepass differs from this node's.", [e] {
                    ClusterNode* c = ClusterOf(*e);
                    return c != nullptr ? static_cast<double>(c->requirepass_mismatched_peers())
                                        : 0.0;
                  });
  r.AddGauge("shoal_cluster_members", "Members of the cluster view, by state.", {"state"})
      ->SetCollector([e](std::vector<metrics::Sample>* out) {
        ClusterNode* c = ClusterOf(*e);
        auto table = c != nullptr ? c->members() : nullptr;
        if (table == nullptr) return;
        using membership::MemberState;
        for (MemberState s :
             {MemberState::kAlive, MemberState::kSuspect, MemberState::kDead, MemberState::kLeft}) {
          out->push_back({{std::string(membership::ToString(s))},
                          static_cast<double>(table->CountIn(s)),
                          nullptr});
        }
      });
  r.AddGauge("shoal_buckets", "Buckets held by this node, by state.", {"state"})
      ->SetCollector([e](std::vector<metrics::Sample>* out) {
        const ShardingDriver* sd = Sharding(e);
        if (sd == nullptr) return;
        const ShardingDriver::Snapshot s = sd->snapshot();
        out->push_back({{"active"}, static_cast<double>(s.active), nullptr});
        out->push_back({{"sending"}, static_cast<double>(s.sending), nullptr});
        out->push_back({{"receiving"}, static_cast<double>(s.receiving), nullptr});
        out->push_back({{"garbage"}, static_cast<double>(s.garbage), nullptr});
      });
  r.CallbackGauge("shoal_bucket_map_epoch", "Epoch of the bucket map this node follows.", [e] {
    const ShardingDriver* sd = Sharding(e);
    return sd != nullptr ? static_cast<double>(sd->snapshot().epoch) : 0.0;
  });
  r.CallbackGauge("shoal_migrations_in_flight", "Bucket migrations running now.", [e] {
    const ShardingDriver* sd = Sharding(e);
    return sd != nullptr ? static_cast<double>(sd->snapshot().flights.size()) : 0.0;
  });
  for (const CoreField& f : kCore) {
    r.CallbackCounter(f.name, f.help, [e, field = f.field] {
      const ShardingDriver* sd = Sharding(e);
      return sd != nullptr ? static_cast<double>(sd->snapshot().counters.*field) : 0.0;
    });
  }
}

}  // namespace shoal::node
