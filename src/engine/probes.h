// The data plane's metrics, one probe file per module, registering into the engine's registry
// (Engine::metrics()). Values are read when the registry is rendered: per-worker cells summed,
// or callbacks over counters the modules already keep thread-safe (atomics, snapshots taken
// under the module's lock). docs/metrics.md lists every metric.
//
//   server_probe.cc      commands, clients, memory, keyspace, network, forwarding
//   replicated_probe.cc  replicated maps
//
// The control plane's probes (membership, sharding, the bus) are node/probes.h's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "engine/command.h"

namespace shoal::engine {

class Engine;

void RegisterServerMetrics(Engine* engine);
void RegisterReplicatedMetrics(Engine* engine);

// shoal_commands_total{cmd} and shoal_commands_duration_seconds{cmd}: one child per command of
// the table, created up front, so the hot path is an index and a relaxed add on the worker's
// own cell.
class CommandMetrics {
 public:
  explicit CommandMetrics(metrics::Registry* registry);
  // A client's command, counted on the client's worker `w`.
  void Count(unsigned w, const CommandSpec& spec) {
    const size_t i = Index(spec);
    if (i < counts_.size()) counts_[i]->Add(w);
  }
  // The time one command's handler ran on worker `w`, in CycleClock ticks.
  void Observe(unsigned w, const CommandSpec& spec, uint64_t ticks) {
    const size_t i = Index(spec);
    if (i < durations_.size()) durations_[i]->Observe(w, CycleClock::ToNanos(ticks));
  }
  // A reading for durations: CycleClock (the time-stamp counter: cheaper than two vDSO calls).
  static uint64_t Now() { return CycleClock::Now(); }

 private:
  size_t Index(const CommandSpec& spec) const {
    const auto p = reinterpret_cast<uintptr_t>(&spec);
    const auto b = reinterpret_cast<uintptr_t>(table_.data());
    if (p < b) return counts_.size();
    return (p - b) / sizeof(CommandSpec);
  }
  std::span<const CommandSpec> table_;
  std::vector<metrics::Counter*> counts_;
  std::vector<metrics::Histogram*> durations_;
};

}  // namespace shoal::engine
