// Metrics of the engine: commands, clients, memory, keyspace, network, forwarding (probes.h).
#include <unistd.h>

#include <fstream>
#include <string>

#include "engine/engine.h"
#include "engine/probes.h"

namespace shoal::engine {

CommandMetrics::CommandMetrics(metrics::Registry* registry) : table_(AllCommands()) {
  metrics::Family* total = registry->AddCounter(
      "shoal_commands_total", "Client commands received, by command (counted once each).", {"cmd"});
  metrics::Family* duration = registry->AddHistogram(
      "shoal_commands_duration_seconds",
      "Time spent running commands on the worker that executes them, by command.", {"cmd"},
      metrics::DefaultLatencyBoundsNanos(), 1e9);
  total->set_skip_zero(true);
  duration->set_skip_zero(true);
  for (const CommandSpec& s : table_) {
    const std::string name(s.name);
    counts_.push_back(total->CounterWith({name}));
    durations_.push_back(duration->HistogramWith({name}));
  }
  // Measures CycleClock's rate now, at start-up, so its wait never falls on a command.
  (void)CycleClock::ToNanos(0);
}

namespace {

int64_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  int64_t pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * sysconf(_SC_PAGESIZE);
}

// Sums a ShardStats counter over the workers.
auto SumStat(Engine* e, metrics::OwnedValue<uint64_t> ShardStats::*field) {
  return [e, field] {
    uint64_t n = 0;
    for (unsigned i = 0; i < e->num_shards(); ++i) n += (e->shard(i)->stats().*field).Get();
    return static_cast<double>(n);
  };
}

// Sums a table counter over the workers.
template <typename Fn>
auto SumTable(Engine* e, Fn fn) {
  return [e, fn] {
    double n = 0;
    for (unsigned i = 0; i < e->num_shards(); ++i) {
      n += static_cast<double>(fn(e->shard(i)->table().stats()));
    }
    return n;
  };
}

}  // namespace

void RegisterServerMetrics(Engine* e) {
  metrics::Registry& r = e->metrics();
  r.CallbackGauge("shoal_uptime_seconds", "Seconds since the node started.", [e] {
    return static_cast<double>(e->clock()->NowUnixMillis() - e->start_unix_ms) / 1000.0;
  });
  r.CallbackGauge("shoal_worker_threads", "Worker threads serving clients.",
                  [e] { return static_cast<double>(e->num_shards()); });
  r.CallbackGauge("shoal_connected_clients", "Client connections open now.",
                  [e] { return static_cast<double>(e->connected_clients.load()); });
  r.CallbackCounter("shoal_connections_received_total", "Client connections accepted.",
                    [e] { return static_cast<double>(e->total_connections.load()); });
  r.CallbackCounter("shoal_rejected_connections_total",
                    "Client connections refused over maxclients.",
                    [e] { return static_cast<double>(e->rejected_connections.load()); });
  r.CallbackGauge("shoal_memory_used_bytes", "Memory used by the dataset (all workers' tables).",
                  SumTable(e, [](const storage::TableStats& t) { return t.used_bytes; }));
  r.CallbackGauge("shoal_memory_rss_bytes", "Resident set size of the process.",
                  [] { return static_cast<double>(RssBytes()); });
  r.CallbackGauge("shoal_memory_max_bytes", "The maxmemory setting (0: no limit).",
                  [e] { return static_cast<double>(e->Config().maxmemory); });
  r.CallbackGauge("shoal_db_keys", "Keys held by this node.",
                  SumTable(e, [](const storage::TableStats& t) { return t.keys; }));
  r.CallbackGauge("shoal_db_keys_expiring", "Keys with a time to live.",
                  SumTable(e, [](const storage::TableStats& t) { return t.volatile_keys; }));
  r.CallbackCounter("shoal_expired_keys_total", "Keys removed because their time to live passed.",
                    SumTable(e, [](const storage::TableStats& t) { return t.expired_keys; }));
  r.CallbackCounter("shoal_evicted_keys_total", "Keys evicted to stay under maxmemory.",
                    SumTable(e, [](const storage::TableStats& t) { return t.evicted_keys; }));
  r.CallbackCounter("shoal_keyspace_hits_total", "Key lookups that found the key.",
                    SumStat(e, &ShardStats::keyspace_hits));
  r.CallbackCounter("shoal_keyspace_misses_total", "Key lookups that did not find the key.",
                    SumStat(e, &ShardStats::keyspace_misses));
  r.CallbackCounter("shoal_commands_processed_total",
                    "Keyed commands executed by this node's workers (including forwarded ones).",
                    SumStat(e, &ShardStats::commands));
  r.CallbackCounter("shoal_rejected_oom_commands_total",
                    "Commands refused because used memory was over maxmemory.",
                    SumStat(e, &ShardStats::rejected_oom));
  r.CallbackCounter("shoal_forwarded_batches_total",
                    "Batches of commands forwarded to the nodes serving their buckets.",
                    SumStat(e, &ShardStats::forwarded_batches));
  r.CallbackCounter("shoal_forwarded_commands_total",
                    "Commands forwarded to the nodes serving their buckets.",
                    SumStat(e, &ShardStats::forwarded_ops));
  r.CallbackCounter("shoal_held_writes_total",
                    "Writes that waited for their bucket's migration cut-over.",
                    SumStat(e, &ShardStats::held_writes));
  r.CallbackCounter("shoal_replicated_commands_total", "Commands on replicated-map keys.",
                    SumStat(e, &ShardStats::replicated_commands));
  r.CallbackCounter("shoal_net_input_bytes_total", "Bytes read from client connections.",
                    SumStat(e, &ShardStats::net_input_bytes));
  r.CallbackCounter("shoal_net_output_bytes_total", "Bytes written to client connections.",
                    SumStat(e, &ShardStats::net_output_bytes));
  metrics::Family* lsn = r.AddGauge("shoal_journal_lsn",
                                    "The last LSN of each worker's journal of writes.", {"worker"});
  for (unsigned i = 0; i < e->num_shards(); ++i) {
    lsn->CallbackWith({std::to_string(i)},
                      [e, i] { return static_cast<double>(e->shard(i)->journal().lsn().value()); });
  }
}

}  // namespace shoal::engine
