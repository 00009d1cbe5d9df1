// Metrics of the messaging bus (probes.h).
#include "engine/engine.h"
#include "engine/probes.h"
#include "node/bus.h"
#include "node/cluster.h"
#include "node/probes.h"

namespace shoal::node {

using engine::Engine;

namespace {

struct BusField {
  const char* name;
  const char* help;
  uint64_t bus::Counters::*field;
};

constexpr BusField kBus[] = {
    {"shoal_bus_requests_total", "Bus requests started by this node's callers.",
     &bus::Counters::requests},
    {"shoal_bus_replies_ok_total", "Bus requests answered by a handler.",
     &bus::Counters::replies_ok},
    {"shoal_bus_handler_errors_total", "Bus requests answered with the handler's error.",
     &bus::Counters::handler_errors},
    {"shoal_bus_no_handler_total", "Bus requests refused at once: no live handler.",
     &bus::Counters::no_handler},
    {"shoal_bus_timeouts_total", "Bus requests of this node's callers that timed out.",
     &bus::Counters::timeouts},
    {"shoal_bus_overflow_total", "Bus requests refused: a local handler's queue was full.",
     &bus::Counters::overflow},
    {"shoal_bus_caller_overflow_total",
     "Bus requests refused: this node's limit of requests in flight.",
     &bus::Counters::caller_overflow},
    {"shoal_bus_unreachable_total", "Bus requests whose handler's node could not be reached.",
     &bus::Counters::unreachable},
    {"shoal_bus_delivered_total", "Bus requests handed to this node's handlers.",
     &bus::Counters::delivered},
    {"shoal_bus_expired_total", "Bus requests dropped from a local queue at their deadline.",
     &bus::Counters::expired},
    {"shoal_bus_late_replies_total", "Bus replies to requests no longer held.",
     &bus::Counters::late_replies},
    {"shoal_bus_retried_gone_total", "Bus requests routed again because their handler had gone.",
     &bus::Counters::retried_gone},
    {"shoal_bus_publishes_total", "Bus publications started on this node.",
     &bus::Counters::publishes},
    {"shoal_bus_publish_messages_sent_total", "Inter-node publication messages sent.",
     &bus::Counters::publish_messages},
    {"shoal_bus_publish_messages_received_total", "Publication messages received from peers.",
     &bus::Counters::publish_received},
    {"shoal_bus_publish_deliveries_total", "Publication deliveries to this node's subscribers.",
     &bus::Counters::publish_deliveries},
    {"shoal_bus_malformed_total", "Undecodable bus messages from peers.",
     &bus::Counters::malformed},
};

struct BusGauge {
  const char* name;
  const char* help;
  size_t Bus::Snapshot::*field;
};

constexpr BusGauge kBusGauges[] = {
    {"shoal_bus_exchanges", "Bus exchanges known.", &Bus::Snapshot::exchanges},
    {"shoal_bus_local_handlers", "Bus handlers served on this node.",
     &Bus::Snapshot::local_handlers},
    {"shoal_bus_requests_in_flight", "Bus requests of this node's callers in flight.",
     &Bus::Snapshot::pending_requests},
    {"shoal_bus_requests_held", "Bus requests held for this node's handlers.",
     &Bus::Snapshot::held_requests},
    {"shoal_bus_interest_entries", "Entries in the bus interest table.",
     &Bus::Snapshot::interest_entries},
};

Bus* BusOf(Engine* e) {
  ClusterNode* c = ClusterOf(*e);
  return c != nullptr ? c->bus() : nullptr;
}

}  // namespace

void RegisterBusMetrics(Engine* e) {
  metrics::Registry& r = e->metrics();
  for (const BusField& f : kBus) {
    r.CallbackCounter(f.name, f.help, [e, field = f.field] {
      Bus* b = BusOf(e);
      return b != nullptr ? static_cast<double>(b->counters().*field) : 0.0;
    });
  }
  for (const BusGauge& f : kBusGauges) {
    r.CallbackGauge(f.name, f.help, [e, field = f.field] {
      Bus* b = BusOf(e);
      return b != nullptr ? static_cast<double>(b->snapshot().*field) : 0.0;
    });
  }
}

}  // namespace shoal::node
