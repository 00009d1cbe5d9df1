// Metrics of the replicated maps, one child per map (probes.h).
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/probes.h"
#include "engine/replicated_maps.h"

namespace shoal::engine {

namespace {

struct MapField {
  const char* name;
  const char* help;
  std::atomic<uint64_t> ReplicatedMapStats::*field;
};

constexpr MapField kMap[] = {
    {"shoal_replicated_local_writes_total", "Writes made on this node.",
     &ReplicatedMapStats::local_writes},
    {"shoal_replicated_remote_applied_total", "Changes from peers that won.",
     &ReplicatedMapStats::remote_applied},
    {"shoal_replicated_remote_stale_total", "Changes from peers that lost (older or known).",
     &ReplicatedMapStats::remote_stale},
    {"shoal_replicated_batches_sent_total", "Change batches sent to peers.",
     &ReplicatedMapStats::batches_sent},
    {"shoal_replicated_batches_received_total", "Change batches received from peers.",
     &ReplicatedMapStats::batches_received},
    {"shoal_replicated_malformed_total", "Undecodable messages from peers.",
     &ReplicatedMapStats::malformed},
    {"shoal_replicated_syncs_total", "Full syncs with a peer completed.",
     &ReplicatedMapStats::syncs},
    {"shoal_replicated_sync_failures_total", "Full syncs with a peer that failed.",
     &ReplicatedMapStats::sync_failures},
    {"shoal_replicated_sync_bytes_total", "Bytes received in full syncs.",
     &ReplicatedMapStats::sync_bytes},
    {"shoal_replicated_expired_total", "Entries removed because their time to live passed.",
     &ReplicatedMapStats::expired},
    {"shoal_replicated_tombstones_collected_total", "Tombstones collected.",
     &ReplicatedMapStats::tombstones_collected},
    {"shoal_replicated_saves_total", "Snapshots saved to disk.", &ReplicatedMapStats::saves},
};

}  // namespace

void RegisterReplicatedMetrics(Engine* e) {
  metrics::Registry& r = e->metrics();
  ReplicatedMaps* maps = &e->replicated();
  for (const MapField& f : kMap) {
    r.AddCounter(f.name, f.help, {"map"})
        ->SetCollector([maps, field = f.field](std::vector<metrics::Sample>* out) {
          for (ReplicatedMap* m : maps->All()) {
            out->push_back({{m->name()}, static_cast<double>((m->stats().*field).load()), nullptr});
          }
        });
  }
  r.AddGauge("shoal_replicated_keys", "Live keys in each replicated map.", {"map"})
      ->SetCollector([maps](std::vector<metrics::Sample>* out) {
        for (ReplicatedMap* m : maps->All()) {
          const size_t n = m->WithShared([](const replicated::LwwMap& lm) { return lm.size(); });
          out->push_back({{m->name()}, static_cast<double>(n), nullptr});
        }
      });
  r.AddGauge("shoal_replicated_synced", "1 once a map's first sync with a peer completed.", {"map"})
      ->SetCollector([maps](std::vector<metrics::Sample>* out) {
        for (ReplicatedMap* m : maps->All()) {
          out->push_back({{m->name()}, m->stats().synced.load() ? 1.0 : 0.0, nullptr});
        }
      });
}

}  // namespace shoal::engine
