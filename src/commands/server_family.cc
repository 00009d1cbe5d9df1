// Connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET COMMAND INFO TIME
// CONFIG CLIENT.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "commands/cluster_replies.h"
#include "commands/families.h"
#include "commands/keyspace.h"
#include "common/ascii.h"
#include "common/log.h"
#include "engine/engine.h"
#include "node/cluster.h"

namespace shoal::commands {

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
using node::Bus;
using node::ClusterNode;
using node::ShardingDriver;
namespace {
using resp::DispatchResult;
constexpr auto kDone = DispatchResult::kDone;

ClientInfo* Info(resp::Connection* c) { return static_cast<ClientInfo*>(c->state()); }

DispatchResult Ping(Engine&, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  if (a.size() > 2) {
    out->Error("ERR wrong number of arguments for 'ping' command");
  } else if (c->protocol() == 2 && Info(c)->subscribed) {
    out->ArrayHeader(2);  // Redis's answer in subscribed mode
    out->Bulk("pong");
    out->Bulk(a.size() == 2 ? a[1] : "");
  } else if (a.size() == 2) {
    out->Bulk(a[1]);
  } else {
    out->SimpleString("PONG");
  }
  return kDone;
}

DispatchResult Echo(Engine&, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  out->Bulk(a[1]);
  return kDone;
}

bool CheckPassword(Engine& e, std::string_view user, std::string_view pass) {
  const std::string& want = e.CurrentShard()->settings().requirepass;
  return user == "default" && !want.empty() && pass == want;
}

DispatchResult Auth(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  if (a.size() > 3) {
    out->Error(kSyntaxErr);
    return kDone;
  }
  const std::string_view user = a.size() == 3 ? a[1] : "default";
  const std::string_view pass = a.back();
  if (e.CurrentShard()->settings().requirepass.empty() && a.size() == 2) {
    out->Error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
    return kDone;
  }
  if (!CheckPassword(e, user, pass)) {
    out->Error("WRONGPASS invalid username-password pair or user is disabled.");
    return kDone;
  }
  Info(c)->authenticated = true;
  out->Ok();
  return kDone;
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]
DispatchResult Hello(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  int proto = c->protocol();
  size_t i = 1;
  if (a.size() > 1) {
    int64_t v;
    if (!ParseInt64(a[1], &v)) {
      out->Error("ERR Protocol version is not an integer or out of range");
      return kDone;
    }
    if (v != 2 && v != 3) {
      out->Error("NOPROTO unsupported protocol version");
      return kDone;
    }
    proto = static_cast<int>(v);
    i = 2;
  }
  std::string name;
  bool setname = false;
  for (; i < a.size(); ++i) {
    const std::string o = AsciiLower(a[i]);
    if (o == "auth" && i + 2 < a.size()) {
      if (!CheckPassword(e, a[i + 1], a[i + 2])) {
        out->Error("WRONGPASS invalid username-password pair or user is disabled.");
        return kDone;
      }
      Info(c)->authenticated = true;
      i += 2;
    } else if (o == "setname" && i + 1 < a.size()) {
      name.assign(a[i + 1]);
      setname = true;
      ++i;
    } else {
      out->Error(fmt::format("ERR Syntax error in HELLO option '{}'", a[i]));
      return kDone;
    }
  }
  if (!Info(c)->authenticated && !e.CurrentShard()->settings().requirepass.empty()) {
    out->Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
    return kDone;
  }
  if (setname) c->set_name(name);
  c->set_protocol(proto);
  resp::ReplyBuilder rb(out->out(), proto);
  rb.MapHeader(7);
  rb.Bulk("server");
  rb.Bulk("redis");
  rb.Bulk("version");
  rb.Bulk("7.2.0");
  rb.Bulk("proto");
  rb.Integer(proto);
  rb.Bulk("id");
  rb.Integer(static_cast<int64_t>(c->id()));
  rb.Bulk("mode");
  rb.Bulk(e.plane().enabled() ? "cluster" : "standalone");
  rb.Bulk("role");
  rb.Bulk("master");
  rb.Bulk("modules");
  rb.ArrayHeader(0);
  return kDone;
}

DispatchResult Select(Engine&, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  int64_t db;
  if (!ParseInt64(a[1], &db)) {
    out->Error(kNotIntegerErr);
  } else if (db != 0) {
    out->Error("ERR DB index is out of range");
  } else {
    out->Ok();
  }
  return kDone;
}

// DEBUG SLEEP seconds: blocks the client's worker, as Redis's blocks its server. Allowed only by
// enable-debug-command (as Redis 7, off by default): it exists to test what a busy worker does
// to the rest of the node.
DispatchResult Debug(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  using Who = config::ServerConfig::DebugCommand;
  const Who who = e.Config().enable_debug_command;
  const std::string& peer = c->peer();
  const bool local = peer.rfind("127.", 0) == 0 || peer.rfind("[::1]", 0) == 0 ||
                     peer.rfind("::1", 0) == 0 || peer.rfind("unix", 0) == 0;
  if (who == Who::kNo || (who == Who::kLocal && !local)) {
    out->Error(
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", "
        "you can run it from a local connection, otherwise you need to set this option in the "
        "configuration file, and then restart the server.");
    return kDone;
  }
  if (AsciiLower(a[1]) == "sleep" && a.size() == 3) {
    double seconds = 0;
    if (!ParseDouble(a[2], &seconds) || seconds < 0 || seconds > 3600) {
      out->Error("ERR value is not a valid float");
      return kDone;
    }
    SHOAL_LOG_WARN("DEBUG SLEEP {} from client id={} addr={}: this worker stops serving", seconds,
                   c->id(), peer);
    ::usleep(static_cast<useconds_t>(seconds * 1e6));
    out->Ok();
    return kDone;
  }
  out->Error(fmt::format("ERR unknown subcommand '{}'. Try DEBUG HELP.", a[1]));
  return kDone;
}

DispatchResult Quit(Engine&, resp::Connection* c, Args, resp::ReplyBuilder* out) {
  out->Ok();
  c->CloseAfterReply();
  return kDone;
}

DispatchResult Reset(Engine& e, resp::Connection* c, Args, resp::ReplyBuilder* out) {
  c->set_protocol(2);
  c->set_name("");
  Info(c)->authenticated = false;
  Info(c)->asking = false;
  Info(c)->readonly = false;
  ForgetPubSubClient(e, c);
  resp::ReplyBuilder rb(out->out(), 2);
  rb.SimpleString("RESET");
  return kDone;
}

DispatchResult Time(Engine& e, resp::Connection*, Args, resp::ReplyBuilder* out) {
  const int64_t us = e.clock()->NowUnixMicros();
  out->ArrayHeader(2);
  out->Bulk(std::to_string(us / 1'000'000));
  out->Bulk(std::to_string(us % 1'000'000));
  return kDone;
}

// COMMAND [COUNT | INFO name... | DOCS name... | GETKEYS cmd args... | LIST]
void CommandInfoReply(const CommandSpec& s, resp::ReplyBuilder* out) {
  out->ArrayHeader(10);
  out->Bulk(s.name);
  out->Integer(s.arity);
  auto flags = FlagNames(s.flags);
  out->SetHeader(flags.size());
  for (auto& f : flags) out->SimpleString(f);
  out->Integer(s.first_key);
  out->Integer(s.last_key);
  out->Integer(s.key_step);
  out->SetHeader(1);
  out->SimpleString("@" + std::string(s.group));
  out->SetHeader(0);    // tips
  out->ArrayHeader(0);  // key specs (not provided; first/last/step are)
  out->ArrayHeader(0);  // subcommands
}

DispatchResult Command(Engine&, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  auto all = AllCommands();
  if (a.size() == 1) {
    out->ArrayHeader(all.size());
    for (const auto& s : all) CommandInfoReply(s, out);
    return kDone;
  }
  const std::string sub = AsciiLower(a[1]);
  if (sub == "count" && a.size() == 2) {
    out->Integer(static_cast<int64_t>(all.size()));
  } else if (sub == "list" && a.size() == 2) {
    out->ArrayHeader(all.size());
    for (const auto& s : all) out->Bulk(s.name);
  } else if (sub == "info") {
    if (a.size() == 2) {
      out->ArrayHeader(all.size());
      for (const auto& s : all) CommandInfoReply(s, out);
    } else {
      out->ArrayHeader(a.size() - 2);
      for (size_t i = 2; i < a.size(); ++i) {
        const CommandSpec* s = FindCommand(a[i]);
        if (s == nullptr) {
          out->NullArray();
        } else {
          CommandInfoReply(*s, out);
        }
      }
    }
  } else if (sub == "docs") {
    std::vector<const CommandSpec*> list;
    if (a.size() == 2) {
      for (const auto& s : all) list.push_back(&s);
    } else {
      for (size_t i = 2; i < a.size(); ++i) {
        if (const CommandSpec* s = FindCommand(a[i])) list.push_back(s);
      }
    }
    out->MapHeader(list.size());
    for (const CommandSpec* s : list) {
      out->Bulk(s->name);
      out->MapHeader(3);
      out->Bulk("summary");
      out->Bulk(s->summary);
      out->Bulk("since");
      out->Bulk("1.0.0");
      out->Bulk("group");
      out->Bulk(s->group);
    }
  } else if (sub == "getkeys" && a.size() >= 3) {
    const CommandSpec* s = FindCommand(a[2]);
    Args cmd = a.subspan(2);
    const int argc = static_cast<int>(cmd.size());
    if (s == nullptr) {
      out->Error("ERR Invalid command specified");
    } else if ((s->arity > 0 && argc != s->arity) || (s->arity < 0 && argc < -s->arity)) {
      out->Error("ERR Invalid number of arguments specified for command");
    } else {
      auto pos = KeyPositions(*s, cmd);
      if (pos.empty()) {
        out->Error("ERR The command has no key arguments");
      } else {
        out->ArrayHeader(pos.size());
        for (size_t p : pos) out->Bulk(cmd[p]);
      }
    }
  } else {
    out->Error(fmt::format("ERR unknown subcommand '{}'. Try COMMAND HELP.", a[1]));
  }
  return kDone;
}

std::string HumanBytes(int64_t n) {
  const double d = static_cast<double>(n);
  if (n >= (1LL << 30)) return fmt::format("{:.2f}G", d / (1LL << 30));
  if (n >= (1LL << 20)) return fmt::format("{:.2f}M", d / (1LL << 20));
  if (n >= (1LL << 10)) return fmt::format("{:.2f}K", d / (1LL << 10));
  return fmt::format("{}B", n);
}

// INFO [section ...]: server clients memory stats journal keyspace cluster (default: all of them).
//
// The counters come from the metrics registry (probes.h): per-worker values read with relaxed
// loads, so INFO never pauses the other workers; it only waits for the client's own earlier
// commands.
DispatchResult InfoCmd(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* reply) {
  // Within a pipeline it still sees what the connection's earlier commands did.
  if (c->pending_replies() > 0) return DispatchResult::kBlocked;
  std::vector<std::string> want;
  for (size_t i = 1; i < a.size(); ++i) want.push_back(AsciiLower(a[i]));
  Engine* eng = &e;
  resp::ReplyBuilder& out = *reply;
  {
    auto on = [&](std::string_view s) {
      if (want.empty()) return true;
      for (auto& w : want) {
        if (w == s || w == "all" || w == "everything" || w == "default") return true;
      }
      return false;
    };
    const metrics::Registry& reg = eng->metrics();
    auto u64 = [&reg](std::string_view name) { return static_cast<uint64_t>(reg.Value(name)); };
    struct {
      uint64_t keys, volatile_keys, expired_keys, evicted_keys;
      int64_t used_bytes;
    } t{u64("shoal_db_keys"), u64("shoal_db_keys_expiring"), u64("shoal_expired_keys_total"),
        u64("shoal_evicted_keys_total"),
        static_cast<int64_t>(reg.Value("shoal_memory_used_bytes"))};
    struct {
      uint64_t commands, keyspace_hits, keyspace_misses, rejected_oom, forwarded_batches,
          forwarded_ops, held_writes;
    } ss{u64("shoal_commands_processed_total"), u64("shoal_keyspace_hits_total"),
         u64("shoal_keyspace_misses_total"),    u64("shoal_rejected_oom_commands_total"),
         u64("shoal_forwarded_batches_total"),  u64("shoal_forwarded_commands_total"),
         u64("shoal_held_writes_total")};
    const config::ServerConfig cfg = eng->Config();
    const int64_t now = eng->clock()->NowUnixMillis();
    std::string s;
    if (on("server")) {
      s += "# Server\r\n";
      s += fmt::format("redis_version:7.2.0\r\nshoal_version:0.1.0\r\nredis_mode:{}\r\n",
                       eng->plane().enabled() ? "cluster" : "standalone");
      s += fmt::format("os:Linux\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\n",
                       getpid());
      s += fmt::format("tcp_port:{}\r\n", cfg.port);
      s += fmt::format("uptime_in_seconds:{}\r\n", (now - eng->start_unix_ms) / 1000);
      s += fmt::format("uptime_in_days:{}\r\n", (now - eng->start_unix_ms) / 86'400'000);
      s += fmt::format("hz:{}\r\nio_threads_active:0\r\nworker_threads:{}\r\n", cfg.hz,
                       eng->num_shards());
      s += fmt::format("executable:shoal\r\nconfig_file:{}\r\n\r\n", cfg.config_file);
    }
    if (on("clients")) {
      s += "# Clients\r\n";
      s += fmt::format("connected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\r\n",
                       eng->connected_clients.load(), cfg.max_clients);
    }
    if (on("memory")) {
      const auto rss = static_cast<int64_t>(reg.Value("shoal_memory_rss_bytes"));
      s += "# Memory\r\n";
      s += fmt::format("used_memory:{}\r\nused_memory_human:{}\r\n", t.used_bytes,
                       HumanBytes(t.used_bytes));
      s += fmt::format("used_memory_rss:{}\r\nused_memory_rss_human:{}\r\n", rss, HumanBytes(rss));
      s += fmt::format("used_memory_dataset:{}\r\n", t.used_bytes);
      s += fmt::format("maxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n",
                       cfg.maxmemory, HumanBytes(cfg.maxmemory),
                       config::ToString(cfg.maxmemory_policy));
      s += fmt::format(
          "mem_fragmentation_ratio:{:.2f}\r\n",
          t.used_bytes > 0 ? static_cast<double>(rss) / static_cast<double>(t.used_bytes) : 0.0);
      s += "\r\n";
    }
    if (on("stats")) {
      s += "# Stats\r\n";
      s += fmt::format("total_connections_received:{}\r\n", eng->total_connections.load());
      s += fmt::format("total_commands_processed:{}\r\n", ss.commands);
      s += fmt::format("rejected_connections:{}\r\n", eng->rejected_connections.load());
      s += fmt::format("expired_keys:{}\r\nevicted_keys:{}\r\n", t.expired_keys, t.evicted_keys);
      s += fmt::format("keyspace_hits:{}\r\nkeyspace_misses:{}\r\n", ss.keyspace_hits,
                       ss.keyspace_misses);
      s += fmt::format("rejected_oom_commands:{}\r\n\r\n", ss.rejected_oom);
    }
    if (on("cluster")) {
      s += InfoClusterSection(eng->plane().enabled(), cfg.cluster_redirect,
                              *eng->CurrentShard()->map(), eng->plane(), t.keys);
    }
    if (on("sharding") && eng->plane().enabled()) {
      s += "# Sharding\r\n";
      ClusterNode* cluster = node::ClusterOf(*eng);
      const ShardingDriver* sd = cluster != nullptr ? cluster->sharding() : nullptr;
      if (sd != nullptr) {
        const ShardingDriver::Snapshot snap = sd->snapshot();
        const auto& k = snap.counters;
        s += fmt::format("coordinator:{}\r\ncoordinator_id:{}\r\nleaving:{}\r\n",
                         snap.coordinator ? 1 : 0, snap.coordinator_id.ToString(),
                         snap.leaving ? 1 : 0);
        s += fmt::format("map_epoch:{}\r\nbuckets_active:{}\r\nbuckets_sending:{}\r\n", snap.epoch,
                         snap.active, snap.sending);
        s += fmt::format("buckets_receiving:{}\r\nbuckets_garbage:{}\r\nkeys:{}\r\n",
                         snap.receiving, snap.garbage, t.keys);
        s += fmt::format("migrations_in_flight:{}\r\nbuckets_sent:{}\r\nbuckets_received:{}\r\n",
                         snap.flights.size(), k.sent_buckets, k.received_buckets);
        s += fmt::format("migration_batches_sent:{}\r\nmigration_batches_aborted:{}\r\n",
                         k.sent_batches, k.aborted_batches);
        s += fmt::format("migration_bytes_sent:{}\r\nbuckets_adopted:{}\r\n", k.bytes_sent,
                         k.adopted);
        s += fmt::format("buckets_lost_with_dead_nodes:{}\r\nbuckets_dropped_duplicates:{}\r\n",
                         k.lost, k.dropped);
        s += fmt::format("maps_published:{}\r\n", k.maps_published);
        s += fmt::format("remembered_peers:{}\r\npeer_reached:{}\r\ncluster_formed_alone:{}\r\n",
                         cluster->remembered_peers(), cluster->reached_peer() ? 1 : 0,
                         cluster->formed_alone() ? 1 : 0);
      }
      s += fmt::format("forwarded_batches:{}\r\nforwarded_commands:{}\r\nheld_writes:{}\r\n\r\n",
                       ss.forwarded_batches, ss.forwarded_ops, ss.held_writes);
    }
    if (on("bus")) {
      ClusterNode* cluster = node::ClusterOf(*eng);
      if (Bus* bus = cluster != nullptr ? cluster->bus() : nullptr) {
        const bus::Counters k = bus->counters();
        const Bus::Snapshot snap = bus->snapshot();
        s += "# Bus\r\n";
        s += fmt::format("bus_exchanges:{}\r\nbus_local_handlers:{}\r\n", snap.exchanges,
                         snap.local_handlers);
        s += fmt::format("bus_requests_in_flight:{}\r\nbus_requests_held:{}\r\n",
                         snap.pending_requests, snap.held_requests);
        s += fmt::format("bus_interest_entries:{}\r\nbus_requests:{}\r\nbus_replies_ok:{}\r\n",
                         snap.interest_entries, k.requests, k.replies_ok);
        s += fmt::format("bus_handler_errors:{}\r\nbus_no_handler:{}\r\nbus_timeouts:{}\r\n",
                         k.handler_errors, k.no_handler, k.timeouts);
        s += fmt::format("bus_overflow:{}\r\nbus_caller_overflow:{}\r\nbus_unreachable:{}\r\n",
                         k.overflow, k.caller_overflow, k.unreachable);
        s += fmt::format("bus_delivered:{}\r\nbus_expired:{}\r\nbus_late_replies:{}\r\n",
                         k.delivered, k.expired, k.late_replies);
        s +=
            fmt::format("bus_retried_gone:{}\r\nbus_publishes:{}\r\n", k.retried_gone, k.publishes);
        s += fmt::format("bus_publish_messages_sent:{}\r\nbus_publish_messages_received:{}\r\n",
                         k.publish_messages, k.publish_received);
        s += fmt::format("bus_publish_deliveries:{}\r\nbus_malformed:{}\r\n\r\n",
                         k.publish_deliveries, k.malformed);
      }
    }
    if (on("replicated")) s += InfoReplicatedSection(*eng);
    if (on("membership")) {
      s += "# Membership\r\n";
      const auto& table = eng->CurrentShard()->members();
      if (table != nullptr) {
        using membership::MemberState;
        s += fmt::format("node_id:{}\r\n", table->self().ToString());
        if (const membership::Member* self = table->Find(table->self())) {
          s += fmt::format("node_address:{}\r\nincarnation:{}\r\n", self->record.address.ToString(),
                           self->incarnation.value());
        }
        s += fmt::format("members_alive:{}\r\nmembers_suspect:{}\r\nmembers_dead:{}\r\n",
                         table->CountIn(MemberState::kAlive), table->CountIn(MemberState::kSuspect),
                         table->CountIn(MemberState::kDead));
        s += fmt::format("members_left:{}\r\nview_version:{}\r\n",
                         table->CountIn(MemberState::kLeft), table->version());
      }
      if (ClusterNode* cluster = node::ClusterOf(*eng)) {
        const membership::SwimCounters c = cluster->counters();
        s += fmt::format("swim_pings_sent:{}\r\nswim_pings_received:{}\r\n", c.pings_sent,
                         c.pings_received);
        s += fmt::format("swim_acks_received:{}\r\nswim_nacks_received:{}\r\n", c.acks_received,
                         c.nacks_received);
        s += fmt::format("swim_indirect_probes_sent:{}\r\nswim_suspicions_raised:{}\r\n",
                         c.indirect_probes_sent, c.suspicions_raised);
        s += fmt::format("swim_refutations:{}\r\nswim_bad_auth_packets:{}\r\n", c.refutations,
                         c.bad_auth);
        s += fmt::format("swim_malformed_packets:{}\r\nswim_push_pulls_merged:{}\r\n", c.malformed,
                         c.push_pulls_merged);
        s += fmt::format("rpc_handshake_failures:{}\r\n", cluster->rpc_handshake_failures());
        s += fmt::format("requirepass_mismatched_peers:{}\r\n",
                         cluster->requirepass_mismatched_peers());
      }
      s += "\r\n";
    }
    if (on("journal")) {
      s += "# Journal\r\n";
      for (unsigned i = 0; i < eng->num_shards(); ++i) {
        s += fmt::format("journal_lsn_worker_{}:{}\r\n", i, eng->shard(i)->journal().lsn().value());
      }
      s += "\r\n";
    }
    // Not in the default set (as in Redis): only when asked for by name, "all" or "everything".
    bool commandstats = false;
    for (auto& w : want) commandstats |= w == "commandstats" || w == "all" || w == "everything";
    if (commandstats) {
      s += "# Commandstats\r\n";
      const metrics::Family* calls = reg.Find("shoal_commands_total");
      const metrics::Family* times = reg.Find("shoal_commands_duration_seconds");
      std::map<std::string, std::pair<uint64_t, uint64_t>> by_cmd;  // calls, usec
      if (calls != nullptr) {
        for (const auto& x : calls->Collect()) {
          by_cmd[x.labels.at(0)].first = static_cast<uint64_t>(x.value);
        }
      }
      if (times != nullptr) {
        for (const auto& x : times->Collect()) {
          if (x.hist != nullptr) by_cmd[x.labels.at(0)].second = x.hist->sum / 1000;
        }
      }
      for (const auto& [name, v] : by_cmd) {
        s += fmt::format(
            "cmdstat_{}:calls={},usec={},usec_per_call={:.2f}\r\n", name, v.first, v.second,
            v.first > 0 ? static_cast<double>(v.second) / static_cast<double>(v.first) : 0.0);
      }
      s += "\r\n";
    }
    if (on("keyspace")) {
      s += "# Keyspace\r\n";
      if (t.keys > 0)
        s += fmt::format("db0:keys={},expires={},avg_ttl=0\r\n", t.keys, t.volatile_keys);
      s += "\r\n";
    }
    while (s.size() >= 2 && s.compare(s.size() - 2, 2, "\r\n") == 0 && s.size() >= 4 &&
           s.compare(s.size() - 4, 4, "\r\n\r\n") == 0) {
      s.resize(s.size() - 2);
    }
    out.Verbatim(s);
  }
  return kDone;
}

// CONFIG GET pattern... | CONFIG SET name value [name value ...] | CONFIG RESETSTAT
DispatchResult Config(Engine& e, resp::Connection*, Args a, resp::ReplyBuilder* out) {
  const std::string sub = AsciiLower(a[1]);
  if (sub == "get" && a.size() >= 3) {
    const config::ServerConfig cfg = e.Config();
    std::vector<std::pair<std::string, std::string>> hits;
    for (const std::string& name : config::ServerConfig::Names()) {
      for (size_t i = 2; i < a.size(); ++i) {
        if (GlobMatch(AsciiLower(a[i]), name, true)) {
          if (auto v = cfg.Get(name)) hits.emplace_back(name, *v);
          break;
        }
      }
    }
    // Read-only settings that clients and tools (redis-benchmark) ask about.
    static const std::pair<const char*, const char*> kFixed[] = {
        {"save", ""}, {"appendonly", "no"}, {"databases", "1"}};
    for (auto& [k, v] : kFixed) {
      for (size_t i = 2; i < a.size(); ++i) {
        if (GlobMatch(AsciiLower(a[i]), k, true)) {
          hits.emplace_back(k, v);
          break;
        }
      }
    }
    out->MapHeader(hits.size());
    for (auto& [k, v] : hits) {
      out->Bulk(k);
      out->Bulk(v);
    }
  } else if (sub == "set" && a.size() >= 4 && a.size() % 2 == 0) {
    for (size_t i = 2; i < a.size(); i += 2) {
      Status st = e.UpdateConfig(AsciiLower(a[i]), a[i + 1]);
      if (!st.ok()) {
        out->Error("ERR " + config::ConfigSetErrorText(std::string(a[i]), st.error()));
        return kDone;
      }
    }
    out->Ok();
  } else if (sub == "resetstat" && a.size() == 2) {
    out->Ok();
  } else if (sub == "get" || sub == "set") {
    out->Error(fmt::format("ERR wrong number of arguments for 'config|{}' command", sub));
  } else {
    out->Error(fmt::format("ERR unknown subcommand '{}'. Try CONFIG HELP.", a[1]));
  }
  return kDone;
}

std::string ClientLine(const resp::Connection* c, int64_t now_ms) {
  return fmt::format(
      "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db=0 sub=0 psub=0 multi=-1 "
      "qbuf={} qbuf-free=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user=default resp={}",
      c->id(), c->peer(), c->local(), c->name(), (now_ms - c->created_ms()) / 1000,
      (now_ms - c->last_active_ms()) / 1000, c->query_buffer_bytes(), c->output_buffer_bytes(),
      c->last_command().empty() ? "NULL" : AsciiLower(c->last_command()), c->protocol());
}

DispatchResult Client(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  const std::string sub = AsciiLower(a[1]);
  if (sub == "id" && a.size() == 2) {
    out->Integer(static_cast<int64_t>(c->id()));
  } else if (sub == "getname" && a.size() == 2) {
    if (c->name().empty()) {
      out->NullBulk();
    } else {
      out->Bulk(c->name());
    }
  } else if (sub == "setname" && a.size() == 3) {
    for (char ch : a[2]) {
      if (ch <= ' ' || ch > '~') {
        out->Error("ERR Client names cannot contain spaces, newlines or special characters.");
        return kDone;
      }
    }
    c->set_name(std::string(a[2]));
    out->Ok();
  } else if (sub == "info" && a.size() == 2) {
    out->Verbatim(ClientLine(c, c->loop()->NowMs()) + "\n");
  } else if (sub == "setinfo" && a.size() == 4) {
    out->Ok();
  } else if (sub == "list") {
    return e.FanOut(
        c,
        [](Shard& s) {
          std::string lines;
          for (auto& [id, conn] : s.clients()) lines += ClientLine(conn, s.loop()->NowMs()) + "\n";
          return lines;
        },
        [](std::vector<std::string>& parts, resp::ReplyBuilder& o) {
          std::string all;
          for (auto& p : parts) all += p;
          o.Verbatim(all);
        });
  } else if (sub == "kill" && a.size() >= 3) {
    // CLIENT KILL addr | CLIENT KILL ID id | CLIENT KILL ADDR addr ...
    std::string by_addr, by_laddr;
    int64_t by_id = -1;
    bool legacy = a.size() == 3;
    if (legacy) {
      by_addr.assign(a[2]);
    } else {
      for (size_t i = 2; i + 1 < a.size(); i += 2) {
        const std::string f = AsciiLower(a[i]);
        if (f == "id") {
          if (!ParseInt64(a[i + 1], &by_id)) {
            out->Error("ERR client-id should be greater than 0");
            return kDone;
          }
        } else if (f == "addr") {
          by_addr.assign(a[i + 1]);
        } else if (f == "laddr") {
          by_laddr.assign(a[i + 1]);
        } else if (f == "skipme" || f == "type" || f == "user" || f == "maxage") {
          continue;
        } else {
          out->Error(kSyntaxErr);
          return kDone;
        }
      }
      if (a.size() % 2 != 0) {
        out->Error(kSyntaxErr);
        return kDone;
      }
    }
    const uint64_t self = c->id();
    return e.FanOut(
        c,
        [by_addr, by_laddr, by_id, self](Shard& s) {
          std::vector<resp::Connection*> victims;
          for (auto& [id, conn] : s.clients()) {
            if (by_id >= 0 && conn->id() != static_cast<uint64_t>(by_id)) continue;
            if (!by_addr.empty() && conn->peer() != by_addr) continue;
            if (!by_laddr.empty() && conn->local() != by_laddr) continue;
            victims.push_back(conn);
          }
          // The killer's own connection closes after its reply.
          for (auto* v : victims) {
            if (v->id() == self) {
              v->CloseAfterReply();
            } else {
              v->Close("killed by CLIENT KILL");
            }
          }
          return std::to_string(victims.size());
        },
        [legacy](std::vector<std::string>& parts, resp::ReplyBuilder& o) {
          int64_t n = 0;
          for (auto& p : parts) n += std::stoll(p);
          if (!legacy) return o.Integer(n);
          if (n == 0) return o.Error("ERR No such client");
          o.Ok();
        });
  } else if (sub == "no-evict" || sub == "no-touch") {
    out->Ok();
  } else {
    out->Error(fmt::format(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.", a[1]));
  }
  return kDone;
}

constexpr uint32_t kC = kCmdConnection;
const CommandSpec kServerCommands[] = {
    {"ping", -1, kC | kCmdFast, 0, 0, 0, nullptr, Ping, "connection",
     "Returns the server's liveliness response."},
    {"debug", -2, kC | kCmdAdmin, 0, 0, 0, nullptr, Debug, "server",
     "A debugging command (shoal: SLEEP only), allowed by enable-debug-command."},
    {"echo", 2, kC | kCmdFast, 0, 0, 0, nullptr, Echo, "connection", "Returns the given string."},
    {"auth", -2, kC | kCmdNoAuth | kCmdFast, 0, 0, 0, nullptr, Auth, "connection",
     "Authenticates the connection."},
    {"hello", -1, kC | kCmdNoAuth | kCmdFast, 0, 0, 0, nullptr, Hello, "connection",
     "Handshakes with the server (RESP2 or RESP3)."},
    {"select", 2, kC | kCmdFast, 0, 0, 0, nullptr, Select, "connection",
     "Changes the selected database (only 0 exists)."},
    {"quit", -1, kC | kCmdNoAuth | kCmdFast, 0, 0, 0, nullptr, Quit, "connection",
     "Closes the connection."},
    {"reset", 1, kC | kCmdNoAuth | kCmdFast, 0, 0, 0, nullptr, Reset, "connection",
     "Resets the connection."},
    {"client", -2, kC | kCmdAdmin, 0, 0, 0, nullptr, Client, "connection",
     "A container for client connection commands."},
    {"command", -1, kC, 0, 0, 0, nullptr, Command, "server",
     "Returns detailed information about all commands."},
    {"info", -1, kC, 0, 0, 0, nullptr, InfoCmd, "server",
     "Returns information and statistics about the server."},
    {"time", 1, kC | kCmdFast, 0, 0, 0, nullptr, Time, "server", "Returns the server time."},
    {"config", -2, kC | kCmdAdmin, 0, 0, 0, nullptr, Config, "server",
     "A container for server configuration commands."},
};

}  // namespace

std::span<const CommandSpec> ServerCommands() { return kServerCommands; }

}  // namespace shoal::commands
