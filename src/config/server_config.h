// Instance configuration: the settings of one `shoal` process (as opposed to the clusterwide
// configuration document, which is versioned and applied by 2PC).
//
// Every parameter has a Redis-style name ("maxmemory-policy", "client-query-buffer-limit"); names
// are case-insensitive and '_' is accepted for '-'. All sources (YAML file, SHOAL_* environment,
// command-line flags, and the server's CONFIG SET) go through ServerConfig::Set, so they accept the
// same syntax and give the same errors; see config/sources.h for how the sources are merged.
//
// Thread-safety: a ServerConfig is a plain value. The server keeps one per process and publishes
// copies; it is not synchronised internally.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/result.h"

namespace shoal::config {

enum class Errc {
  kInvalidValue = 1,  // a value that does not parse or is out of range
  kUnknownParameter,  // no parameter of that name
  kImmutable,         // CONFIG SET of a parameter that only takes effect at startup
  kParse,             // a config file that is not valid YAML or has the wrong shape
  kIo,                // a config file that cannot be read
};
SHOAL_ERROR_CATEGORY_DECL(Errc)

}  // namespace shoal::config

template <>
struct std::is_error_code_enum<shoal::config::Errc> : std::true_type {};

namespace shoal::config {

enum class MaxmemoryPolicy { kNoEviction, kAllKeysLru, kVolatileLru, kAllKeysRandom };

// "noeviction", "allkeys-lru", "volatile-lru", "allkeys-random".
std::string_view ToString(MaxmemoryPolicy policy);
// Case-insensitive. Error (kInvalidValue) lists the accepted names.
Result<MaxmemoryPolicy> MaxmemoryPolicyFromString(std::string_view name);

// Parses a memory size as Redis does: digits optionally followed by a unit, case-insensitive:
// "b" = 1, "k" = 1000, "kb" = 1024, "m" = 1000^2, "mb" = 1024^2, "g" = 1000^3, "gb" = 1024^3.
// No sign, no fraction, no spaces. Errors (kInvalidValue): "argument must be a memory value",
// or "... (out of range)" when the result exceeds INT64_MAX.
Result<int64_t> ParseMemory(std::string_view text);
// The shortest exact form for humans: 536870912 -> "512mb", 1000 -> "1000", 0 -> "0".
std::string FormatMemory(int64_t bytes);

// What help text and CONFIG GET need to know about one parameter.
struct ParamInfo {
  std::string name;           // canonical, e.g. "maxmemory-policy"
  std::string env_var;        // e.g. "SHOAL_MAXMEMORY_POLICY"
  std::string default_value;  // for humans: memory sizes as "512mb"
  std::string description;    // one line
  bool mutable_at_runtime;    // CONFIG SET may change it
};

// A replicated map: every node holds all of it; keys starting with `prefix` are its.
struct ReplicatedMapDecl {
  std::string name;
  std::string prefix;
  bool operator==(const ReplicatedMapDecl&) const = default;
};

// Parses "name=prefix,name2=prefix2" (the "replicated-maps" parameter) and checks it: names of
// 1-64 letters, digits, '_', '-' or '.', non-empty prefixes, no name twice, and no prefix that
// starts another (a key must belong to one map).
Result<std::vector<ReplicatedMapDecl>> ParseReplicatedMaps(std::string_view text);
// Adds one declaration to `maps` with the same checks.
Status AddReplicatedMap(std::vector<ReplicatedMapDecl>& maps, ReplicatedMapDecl decl);

struct ServerConfig {
  static constexpr int64_t kMb = int64_t{1} << 20;

  int port = 6379;  // "port": TCP port for clients (0 passes validation; net/ decides its meaning)
  std::string bind = "127.0.0.1";  // "bind": one address to listen on
  int threads = 0;                 // "threads": worker threads; 0 = one per hardware core
  std::string config_file;         // the YAML file loaded, absolute; "" = none. Not a parameter.
  std::string requirepass;         // "requirepass": "" = no AUTH needed
  int64_t maxmemory = 0;           // "maxmemory": bytes; 0 = no limit
  MaxmemoryPolicy maxmemory_policy = MaxmemoryPolicy::kNoEviction;  // "maxmemory-policy"
  int maxmemory_samples = 5;                // "maxmemory-samples": keys sampled per eviction
  int64_t proto_max_bulk_len = 512 * kMb;   // "proto-max-bulk-len": largest bulk string
  int64_t query_buffer_limit = 1024 * kMb;  // "client-query-buffer-limit": per client
  int64_t output_buffer_limit = 256 * kMb;  // "client-output-buffer-limit": hard, 0 = none
  int max_clients = 10000;                  // "maxclients"
  std::string log_level = "info";           // "loglevel": debug, info, warning, error
  int hz = 10;                              // "hz": active-expiry cycles per second
  int64_t timeout = 0;                      // "timeout": idle client seconds; 0 = never

  // Cluster membership (SWIM over UDP and internal RPC over TCP share the cluster port).
  int cluster_port = 0;            // "cluster-port": 0 = client port + 10000 (as Redis Cluster)
  int http_port = 0;               // "http-port": admin HTTP; 0 = client port + 1000; -1 = off
  std::string advertise_address;   // "advertise-address": how peers reach us; "" = bind address
  std::vector<std::string> seeds;  // "seeds": host:cluster-port of nodes to join
  std::string cookie;              // "cookie" / "cookie-file": the cluster's shared secret
  // "admin-token" / "admin-token-file": the bearer token every admin API POST must carry. Without
  // one the admin API listens on 127.0.0.1 only, whatever "bind" says (see AdminBind).
  std::string admin_token;
  std::string data_dir;       // "data-dir": keeps the node's identity; "" = none
  std::string discovery_dns;  // "discovery-dns": NAME:PORT resolved every 5 s to find peers
  // "cluster-mode": how a node answers a command for a key it does not serve: forward it to the
  // owner over the internal RPC (any client works), or answer MOVED/ASK (cluster clients).
  bool cluster_redirect = false;
  // "cluster-enabled": no = this node serves every key itself, whatever the membership (one
  // node's keyspace, as before sharding); yes = buckets are spread over the members.
  bool cluster_enabled = true;
  // "new-cluster": yes = ignore (and forget) the peers remembered in the data dir for this start,
  // so a node that remembers a cluster may form a new one (see node/cluster.h).
  bool new_cluster = false;
  // "enable-debug-command": who may run DEBUG (as Redis 7): no one, local = clients connected
  // over loopback, yes = everyone. Start-up only.
  enum class DebugCommand { kNo, kLocal, kYes };
  DebugCommand enable_debug_command = DebugCommand::kNo;

  // Replicated maps. "replicated-maps": name=prefix,...; also the YAML section
  // "maps: {users: {mode: replicated, prefix: 'users:'}}" and --replicated-map NAME=PREFIX.
  std::vector<ReplicatedMapDecl> replicated_maps;
  int64_t replicated_tombstone_ttl = 86400;    // "replicated-tombstone-ttl": seconds
  int64_t replicated_sync_interval_ms = 2000;  // "replicated-sync-interval": anti-entropy, ms
  int64_t replicated_save_interval = 300;      // "replicated-save-interval": seconds; 0 = on demand

  // The ports after applying the "0 = derived" rules. A derived port past 65535 (or derived
  // from client port 0) is 0: the OS picks one, and the node logs and advertises it.
  int EffectiveClusterPort() const { return cluster_port != 0 ? cluster_port : Derived(10000); }
  int EffectiveHttpPort() const { return http_port != 0 ? http_port : Derived(1000); }
  // The address the admin HTTP API listens on: "bind" with an admin token, else 127.0.0.1 (an
  // API that can make the node leave or save must not be open to the network without a secret).
  std::string AdminBind() const { return admin_token.empty() ? "127.0.0.1" : bind; }
  int Derived(int offset) const { return (port == 0 || port + offset > 65535) ? 0 : port + offset; }

  // Sets parameter `name` from its text form, validating it; on error nothing changes. Takes
  // Redis syntax (a subset where shoal supports less), e.g. Set("maxmemory", "100mb").
  // Errors: kUnknownParameter ("unknown parameter 'x'"), kInvalidValue with a Redis-like reason
  // ("argument must be a memory value", "argument couldn't be parsed into an integer",
  // "argument must be between 0 and 65535 inclusive", "argument(s) must be one of the
  // following: ..."). The message names neither the source nor the parameter: callers add that.
  Status Set(std::string_view name, std::string_view value);
  // Set for CONFIG SET: also refuses parameters that only take effect at startup (port, bind,
  // threads) with kImmutable "can't set immutable config". The caller must apply the others live.
  Status SetAtRuntime(std::string_view name, std::string_view value);
  // The value as Redis's CONFIG GET prints it (memory sizes in plain bytes; the output buffer
  // limit as "normal <hard> 0 0"), or nullopt for an unknown name. Get's output is accepted by Set.
  std::optional<std::string> Get(std::string_view name) const;

  // Canonical names of all parameters, in a stable order (for CONFIG GET patterns).
  static std::vector<std::string> Names();
  static std::vector<ParamInfo> Params();
  // The canonical name for `name` (any case, '_' or '-', aliases such as "max-clients"), if any.
  static std::optional<std::string> CanonicalName(std::string_view name);
  // A known parameter name close to an unknown `name` (typo help), if any.
  static std::optional<std::string> SuggestName(std::string_view name);

  // `threads`, with 0 resolved to the number of hardware cores (at least 1).
  int EffectiveThreads() const;

  bool operator==(const ServerConfig&) const = default;
};

// The first line of file `path`, trailing spaces and CR removed: how "cookie-file" and
// "admin-token-file" read their secret. Errors: kIo "cannot read <what> file 'path'",
// kInvalidValue "<what> file 'path' is empty".
Result<std::string> ReadSecretFile(std::string_view path, std::string_view what);

// "maxmemory-policy" -> "SHOAL_MAXMEMORY_POLICY".
std::string EnvVarName(std::string_view param);

// The text of a Redis CONFIG SET error reply (without the "ERR " prefix), e.g.
// "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
// or "Unknown option or number of arguments for CONFIG SET - 'foo'".
std::string ConfigSetErrorText(std::string_view name, const Error& error);

}  // namespace shoal::config
