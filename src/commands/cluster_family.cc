// Redis Cluster commands: CLUSTER (SLOTS SHARDS NODES INFO MYID KEYSLOT COUNTKEYSINSLOT
// GETKEYSINSLOT HELP), ASKING, READONLY, READWRITE; and the reply writers of cluster_replies.h.
//
// The topology replies are computed on the client's worker from that worker's copies of the bucket
// map and the member table (Shard::map(), Shard::members()). COUNTKEYSINSLOT and GETKEYSINSLOT
// read the table of the worker that holds the bucket, locked (Engine::RunLocked), as every command
// that reads another worker's table does.
//
// A node without cluster sharding (BucketPlane disabled) answers like Redis with cluster support
// disabled: an error for everything but CLUSTER KEYSLOT.
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "commands/cluster_names.h"
#include "commands/cluster_replies.h"
#include "commands/families.h"
#include "common/ascii.h"
#include "common/keyslot.h"
#include "engine/engine.h"
#include "node/cluster.h"
#include "storage/entry.h"

namespace shoal::commands {

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
using node::ClusterNode;
namespace {

using membership::MemberId;
using membership::MemberState;

enum class Health { kOk, kPfail, kFail };

// One line of CLUSTER NODES, one shard of CLUSTER SHARDS.
struct NodeEntry {
  MemberId id;
  Endpoint client;
  uint16_t cport = 0;
  bool myself = false;
  Health health = Health::kOk;
  std::vector<std::pair<uint16_t, uint16_t>> ranges;  // inclusive; empty: a master without slots
};

Health HealthOf(const ClusterView& v, const MemberId& id) {
  if (v.members == nullptr || id == v.self) return Health::kOk;
  const membership::Member* m = v.members->Find(id);
  if (m == nullptr) return Health::kOk;
  switch (m->state) {
    case MemberState::kAlive:
      return Health::kOk;
    case MemberState::kSuspect:
      return Health::kPfail;
    case MemberState::kDead:
    case MemberState::kLeft:
      return Health::kFail;
  }
  return Health::kOk;
}

NodeEntry EntryOf(const ClusterView& v, const membership::MemberRecord& r) {
  NodeEntry n;
  n.id = r.id;
  n.client = Endpoint{r.address.host, r.client_port};
  n.cport = r.address.port;
  n.myself = r.id == v.self;
  n.health = HealthOf(v, r.id);
  return n;
}

// The nodes, in the order and with the rules of cluster_replies.h's header comment.
std::vector<NodeEntry> ListNodes(const ClusterView& v) {
  const std::vector<sharding::SetInfo>& sets = v.map->sets();
  std::vector<std::vector<std::pair<uint16_t, uint16_t>>> ranges_of(sets.size());
  std::vector<uint16_t> order;  // set indexes by first bucket
  for (const sharding::BucketMap::Range& r : v.map->Ranges()) {
    if (r.set_index >= sets.size()) continue;
    if (ranges_of[r.set_index].empty()) order.push_back(r.set_index);
    ranges_of[r.set_index].emplace_back(r.first, r.last);
  }
  std::vector<NodeEntry> out;
  std::unordered_set<MemberId> listed;
  for (uint16_t i : order) {
    const sharding::SetInfo& s = sets[i];
    NodeEntry n;
    n.id = s.leader;
    n.client = s.client;
    n.cport = s.cluster.port;
    n.myself = s.leader == v.self;
    n.health = HealthOf(v, s.leader);
    n.ranges = std::move(ranges_of[i]);
    listed.insert(n.id);
    out.push_back(std::move(n));
  }
  if (v.members != nullptr) {
    for (const membership::Member& m : v.members->members()) {
      if (m.state != MemberState::kAlive && m.state != MemberState::kSuspect) continue;
      if (listed.contains(m.record.id)) continue;
      if (m.record.client_port == 0 && m.record.id != v.self) continue;
      listed.insert(m.record.id);
      out.push_back(EntryOf(v, m.record));
    }
  }
  if (!listed.contains(v.self)) {
    const membership::Member* m = v.members != nullptr ? v.members->Find(v.self) : nullptr;
    if (m != nullptr) {
      out.push_back(EntryOf(v, m->record));
    } else {
      NodeEntry n;
      n.id = v.self;
      n.client = v.self_client;
      n.cport = v.self_cport;
      n.myself = true;
      out.push_back(std::move(n));
    }
  }
  return out;
}

// [ip, port, id, {}]: a node of a CLUSTER SLOTS entry.
void WriteSlotsNode(const sharding::SetInfo& s, resp::ReplyBuilder& out) {
  out.ArrayHeader(4);
  out.Bulk(s.client.host);
  out.Integer(s.client.port);
  out.Bulk(NodeName(s.leader));
  out.MapHeader(0);  // other networking metadata (hostname, ...): none
}

}  // namespace

void WriteClusterSlots(const ClusterView& v, resp::ReplyBuilder& out) {
  const std::vector<sharding::BucketMap::Range> ranges = v.map->Ranges();
  const std::vector<sharding::SetInfo>& sets = v.map->sets();
  size_t n = 0;
  for (const auto& r : ranges) n += r.set_index < sets.size();
  out.ArrayHeader(n);
  for (const auto& r : ranges) {
    if (r.set_index >= sets.size()) continue;
    out.ArrayHeader(3);
    out.Integer(r.first);
    out.Integer(r.last);
    WriteSlotsNode(sets[r.set_index], out);
  }
}

void WriteClusterShards(const ClusterView& v, resp::ReplyBuilder& out) {
  const std::vector<NodeEntry> nodes = ListNodes(v);
  out.ArrayHeader(nodes.size());
  for (const NodeEntry& n : nodes) {
    out.MapHeader(2);
    out.Bulk("slots");
    out.ArrayHeader(2 * n.ranges.size());
    for (const auto& [first, last] : n.ranges) {
      out.Integer(first);
      out.Integer(last);
    }
    out.Bulk("nodes");
    out.ArrayHeader(1);
    out.MapHeader(n.client.port != 0 ? 7 : 6);
    out.Bulk("id");
    out.Bulk(NodeName(n.id));
    if (n.client.port != 0) {
      out.Bulk("port");
      out.Integer(n.client.port);
    }
    out.Bulk("ip");
    out.Bulk(n.client.host);
    out.Bulk("endpoint");
    out.Bulk(n.client.host);
    out.Bulk("role");
    out.Bulk("master");
    out.Bulk("replication-offset");
    out.Integer(0);
    out.Bulk("health");
    out.Bulk(n.health == Health::kFail ? "fail" : "online");
  }
}

std::string ClusterNodesText(const ClusterView& v) {
  const uint64_t epoch = v.map->epoch().value();
  std::string text;
  for (const NodeEntry& n : ListNodes(v)) {
    std::string flags = n.myself ? "myself,master" : "master";
    if (n.health == Health::kPfail) flags += ",fail?";
    if (n.health == Health::kFail) flags += ",fail";
    text += fmt::format("{} {}:{}@{} {} - 0 0 {} {}", NodeName(n.id), n.client.host, n.client.port,
                        n.cport, flags, epoch,
                        n.health == Health::kFail ? "disconnected" : "connected");
    for (const auto& [first, last] : n.ranges) {
      if (first == last) {
        text += fmt::format(" {}", first);
      } else {
        text += fmt::format(" {}-{}", first, last);
      }
    }
    if (n.myself && v.plane != nullptr) {
      for (uint32_t b = 0; b < kNumBuckets; ++b) {
        const auto bucket = static_cast<uint16_t>(b);
        const sharding::BucketState st = v.plane->state(bucket);
        if (st == sharding::BucketState::kSending) {
          text += fmt::format(" [{}->-{}]", b, NodeName(v.plane->peer(bucket)));
        } else if (st == sharding::BucketState::kReceiving) {
          text += fmt::format(" [{}-<-{}]", b, NodeName(v.plane->peer(bucket)));
        }
      }
    }
    text += '\n';
  }
  return text;
}

std::string ClusterInfoText(const ClusterView& v) {
  const std::vector<sharding::SetInfo>& sets = v.map->sets();
  uint32_t assigned = 0, pfail = 0, fail = 0;
  std::unordered_set<uint16_t> owning;
  for (const sharding::BucketMap::Range& r : v.map->Ranges()) {
    if (r.set_index >= sets.size()) continue;
    owning.insert(r.set_index);
    const uint32_t n = static_cast<uint32_t>(r.last) - r.first + 1;
    assigned += n;
    // An owner this node's view does not know (never seen, or forgotten) is no live owner: its
    // buckets fail as a dead one's do.
    const MemberId& leader = sets[r.set_index].leader;
    const bool unknown =
        v.members != nullptr && leader != v.self && v.members->Find(leader) == nullptr;
    switch (unknown ? Health::kFail : HealthOf(v, leader)) {
      case Health::kOk:
        break;
      case Health::kPfail:
        pfail += n;
        break;
      case Health::kFail:
        fail += n;
        break;
    }
  }
  const uint64_t epoch = v.map->epoch().value();
  std::string s;
  // As Redis with full coverage required: ok only if every bucket has a live owner (a suspect
  // owner, PFAIL, still counts as live).
  const bool ok = assigned == kNumBuckets && fail == 0;
  s += fmt::format("cluster_state:{}\r\n", ok ? "ok" : "fail");
  s += fmt::format("cluster_slots_assigned:{}\r\n", assigned);
  s += fmt::format("cluster_slots_ok:{}\r\n", assigned - pfail - fail);
  s += fmt::format("cluster_slots_pfail:{}\r\n", pfail);
  s += fmt::format("cluster_slots_fail:{}\r\n", fail);
  s += fmt::format("cluster_known_nodes:{}\r\n", ListNodes(v).size());
  s += fmt::format("cluster_size:{}\r\n", owning.size());
  s += fmt::format("cluster_current_epoch:{}\r\n", epoch);
  s += fmt::format("cluster_my_epoch:{}\r\n", epoch);
  s += "cluster_stats_messages_sent:0\r\n";
  s += "cluster_stats_messages_received:0\r\n";
  s += "total_cluster_links_buffer_limit_exceeded:0\r\n";
  return s;
}

void WriteClusterHelp(resp::ReplyBuilder& out) {
  static constexpr std::string_view kLines[] = {
      "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "COUNTKEYSINSLOT <slot>",
      "    Return the number of keys in <slot>.",
      "GETKEYSINSLOT <slot> <count>",
      "    Return key names stored by current node in a slot.",
      "INFO",
      "    Return information about the cluster.",
      "KEYSLOT <key>",
      "    Return the hash slot for <key>.",
      "MYID",
      "    Return the node id.",
      "NODES",
      "    Return cluster configuration seen by node. Output format:",
      "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> "
      "<slot> ...",
      "SHARDS",
      "    Return information about slot range mappings and the nodes associated with them.",
      "SLOTS",
      "    Return information about slots range mappings. Each range is made of:",
      "    start, end, master and replicas IP addresses, ports and ids",
      "HELP",
      "    Print this help.",
  };
  out.ArrayHeader(std::size(kLines));
  for (std::string_view line : kLines) out.SimpleString(line);
}

std::string InfoClusterSection(bool enabled, bool redirect, const sharding::BucketMap& map,
                               const BucketPlane& plane, uint64_t keys) {
  if (!enabled) return "# Cluster\r\ncluster_enabled:0\r\n\r\n";
  uint32_t served = 0, sending = 0, receiving = 0;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    const sharding::BucketState st = plane.state(static_cast<uint16_t>(b));
    served += st == sharding::BucketState::kActive || st == sharding::BucketState::kSending;
    sending += st == sharding::BucketState::kSending;
    receiving += st == sharding::BucketState::kReceiving;
  }
  std::string s = "# Cluster\r\ncluster_enabled:1\r\n";
  s += fmt::format("cluster_mode:{}\r\n", redirect ? "redirect" : "forward");
  s += fmt::format("cluster_epoch:{}\r\n", map.epoch().value());
  s += fmt::format("buckets_served:{}\r\nbuckets_sending:{}\r\nbuckets_receiving:{}\r\n", served,
                   sending, receiving);
  s += fmt::format("keys:{}\r\n\r\n", keys);
  return s;
}

namespace {
using resp::DispatchResult;
constexpr auto kDone = DispatchResult::kDone;
constexpr std::string_view kDisabledErr = "ERR This instance has cluster support disabled";

ClientInfo* Info(resp::Connection* c) { return static_cast<ClientInfo*>(c->state()); }

// The calling worker's view of the cluster, and the pointers it keeps alive.
struct Snapshot {
  std::shared_ptr<const sharding::BucketMap> map;
  std::shared_ptr<const membership::MemberTable> members;
  ClusterView view;
};

std::unique_ptr<Snapshot> TakeSnapshot(Engine& e) {
  auto snap = std::make_unique<Snapshot>();
  Shard* shard = e.CurrentShard();
  snap->map = shard->map();
  snap->members = shard->members();
  ClusterView& v = snap->view;
  v.map = snap->map.get();
  v.members = snap->members.get();
  ClusterNode* cluster = node::ClusterOf(e);
  if (cluster != nullptr) {
    v.self = cluster->id();
    v.self_cport = cluster->address().port;
  } else if (v.members != nullptr) {
    v.self = v.members->self();
  }
  if (auto ep = Endpoint::Parse(e.listen_address)) v.self_client = std::move(*ep);
  if (e.plane().enabled()) v.plane = &e.plane();
  return snap;
}

constexpr auto kSlots = static_cast<int64_t>(kNumBuckets);

DispatchResult CountKeysInSlot(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  int64_t slot = 0;
  if (!ParseInt64(a[2], &slot)) {
    out->Error(kNotIntegerErr);
    return kDone;
  }
  if (slot < 0 || slot >= kSlots) {
    out->Error("ERR Invalid slot");
    return kDone;
  }
  const BucketId b(static_cast<uint16_t>(slot));
  const unsigned owner = b.value() % e.num_shards();
  Engine* eng = &e;
  return e.RunLocked(c, {owner}, [eng, owner, b](resp::ReplyBuilder& o) {
    const storage::Table& t = eng->shard(owner)->table();
    int64_t n = 0;
    t.ForEachInBucket(b, [&](const storage::Entry* en) { n += !t.IsExpired(en); });
    o.Integer(n);
  });
}

DispatchResult GetKeysInSlot(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  int64_t slot = 0, count = 0;
  if (!ParseInt64(a[2], &slot) || !ParseInt64(a[3], &count)) {
    out->Error(kNotIntegerErr);
    return kDone;
  }
  if (slot < 0 || slot >= kSlots || count < 0) {
    out->Error("ERR Invalid slot or number of keys");
    return kDone;
  }
  const BucketId b(static_cast<uint16_t>(slot));
  const unsigned owner = b.value() % e.num_shards();
  const auto max = static_cast<size_t>(count);
  Engine* eng = &e;
  return e.RunLocked(c, {owner}, [eng, owner, b, max](resp::ReplyBuilder& o) {
    const storage::Table& t = eng->shard(owner)->table();
    std::vector<std::string_view> keys;
    t.ForEachInBucket(b, [&](const storage::Entry* en) {
      if (keys.size() < max && !t.IsExpired(en)) keys.push_back(en->key());
    });
    o.BulkArray(keys);
  });
}

struct Subcommand {
  std::string_view name;
  int arity;  // of the whole command, as Redis's "cluster|<name>"
};
constexpr Subcommand kSubcommands[] = {
    {"countkeysinslot", 3}, {"getkeysinslot", 4}, {"help", 2},  {"info", 2},
    {"keyslot", 3},         {"myid", 2},          {"nodes", 2}, {"shards", 2},
    {"slots", 2},
};

DispatchResult Cluster(Engine& e, resp::Connection* c, Args a, resp::ReplyBuilder* out) {
  const std::string sub = AsciiLower(a[1]);
  const auto it = std::find_if(std::begin(kSubcommands), std::end(kSubcommands),
                               [&](const Subcommand& s) { return s.name == sub; });
  if (it == std::end(kSubcommands)) {
    out->Error(fmt::format("ERR unknown subcommand '{}'. Try CLUSTER HELP.", a[1].substr(0, 128)));
    return kDone;
  }
  if (static_cast<int>(a.size()) != it->arity) {
    out->Error(fmt::format("ERR wrong number of arguments for 'cluster|{}' command", sub));
    return kDone;
  }
  if (sub == "keyslot") {
    out->Integer(KeyBucket(a[2]).value());
    return kDone;
  }
  if (!e.plane().enabled()) {
    out->Error(kDisabledErr);
    return kDone;
  }
  if (sub == "countkeysinslot") return CountKeysInSlot(e, c, a, out);
  if (sub == "getkeysinslot") return GetKeysInSlot(e, c, a, out);
  if (sub == "help") {
    WriteClusterHelp(*out);
    return kDone;
  }
  const std::unique_ptr<Snapshot> snap = TakeSnapshot(e);
  if (sub == "slots") {
    WriteClusterSlots(snap->view, *out);
  } else if (sub == "shards") {
    WriteClusterShards(snap->view, *out);
  } else if (sub == "nodes") {
    out->Verbatim(ClusterNodesText(snap->view));
  } else if (sub == "info") {
    out->Verbatim(ClusterInfoText(snap->view));
  } else if (sub == "myid") {
    out->Bulk(NodeName(snap->view.self));
  }
  return kDone;
}

DispatchResult Asking(Engine& e, resp::Connection* c, Args, resp::ReplyBuilder* out) {
  if (!e.plane().enabled()) {
    out->Error(kDisabledErr);
    return kDone;
  }
  Info(c)->asking = true;
  out->Ok();
  return kDone;
}

DispatchResult ReadOnly(Engine& e, resp::Connection* c, Args, resp::ReplyBuilder* out) {
  if (!e.plane().enabled()) {
    out->Error(kDisabledErr);
    return kDone;
  }
  Info(c)->readonly = true;
  out->Ok();
  return kDone;
}

DispatchResult ReadWrite(Engine& e, resp::Connection* c, Args, resp::ReplyBuilder* out) {
  if (!e.plane().enabled()) {
    out->Error(kDisabledErr);
    return kDone;
  }
  Info(c)->readonly = false;
  out->Ok();
  return kDone;
}

constexpr uint32_t kC = kCmdConnection;
const CommandSpec kClusterCommands[] = {
    {"asking", 1, kC | kCmdFast, 0, 0, 0, nullptr, Asking, "cluster",
     "Signals that a cluster client is following an -ASK redirect."},
    {"cluster", -2, kC, 0, 0, 0, nullptr, Cluster, "cluster",
     "A container for Redis Cluster commands."},
    {"readonly", 1, kC | kCmdFast, 0, 0, 0, nullptr, ReadOnly, "cluster",
     "Enables read-only queries for a connection to a Redis Cluster replica node."},
    {"readwrite", 1, kC | kCmdFast, 0, 0, 0, nullptr, ReadWrite, "cluster",
     "Enables read-write queries for a connection to a Redis Cluster replica node."},
};

}  // namespace

std::span<const CommandSpec> ClusterCommands() { return kClusterCommands; }

}  // namespace shoal::commands
