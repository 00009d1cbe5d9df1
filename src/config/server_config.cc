#include "config/server_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <limits>
#include <thread>

#include "common/ascii.h"

namespace shoal::config {

Result<std::string> ReadSecretFile(std::string_view path, std::string_view what) {
  std::ifstream f{std::string(path)};
  if (!f) return Error(Errc::kIo, fmt::format("cannot read {} file '{}'", what, path));
  std::string line;
  std::getline(f, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty())
    return Error(Errc::kInvalidValue, fmt::format("{} file '{}' is empty", what, path));
  return line;
}

namespace {

std::string_view DescribeErrc(Errc e) {
  switch (e) {
    case Errc::kInvalidValue:
      return "invalid value";
    case Errc::kUnknownParameter:
      return "unknown parameter";
    case Errc::kImmutable:
      return "immutable parameter";
    case Errc::kParse:
      return "config file parse error";
    case Errc::kIo:
      return "config file I/O error";
  }
  return "";
}

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// Lower case, '_' -> '-'.
std::string NormalizeName(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = c == '_' ? '-' : AsciiToLower(c);
  return out;
}

Error InvalidValue(std::string message) { return Error(Errc::kInvalidValue, std::move(message)); }

Status AssignYesNo(std::string_view v, bool& field) {
  if (v != "yes" && v != "no") return InvalidValue("argument must be 'yes' or 'no'");
  field = v == "yes";
  return Status::Ok();
}

std::string YesNo(bool value) { return value ? "yes" : "no"; }

Error OutOfRange(int64_t min, int64_t max) {
  return InvalidValue(fmt::format("argument must be between {} and {} inclusive", min, max));
}

Result<int64_t> ParseInteger(std::string_view text, int64_t min, int64_t max) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ptr != end || ec == std::errc::invalid_argument) {
    return InvalidValue("argument couldn't be parsed into an integer");
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) return OutOfRange(min, max);
  return v;
}

Result<int64_t> ParseMemoryInRange(std::string_view text, int64_t min, int64_t max) {
  Result<int64_t> v = ParseMemory(text);
  if (!v) return v;
  if (*v < min || *v > max) return OutOfRange(min, max);
  return v;
}

// "normal <hard> <soft> <seconds>" (Redis syntax, only the normal class) or one memory value.
Result<int64_t> ParseOutputBufferLimit(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  if (words.size() == 1) return ParseMemoryInRange(words[0], 0, kInt64Max);
  if (words.size() != 4 || !AsciiEqualsNoCase(words[0], "normal")) {
    return InvalidValue(
        "argument must be a memory value or 'normal <hard> <soft> <soft-seconds>' (shoal has "
        "only the normal client class)");
  }
  Result<int64_t> hard = ParseMemoryInRange(words[1], 0, kInt64Max);
  if (!hard) return hard;
  Result<int64_t> soft = ParseMemory(words[2]);
  if (!soft) return soft;
  Result<int64_t> seconds = ParseInteger(words[3], 0, kInt64Max);
  if (!seconds) return seconds;
  if (*soft != 0 || *seconds != 0) {
    return InvalidValue("soft output buffer limits are not supported: use 'normal <hard> 0 0'");
  }
  return hard;
}

struct LogLevelName {
  std::string_view name;
  std::string_view canonical;
};
// Redis's "verbose" and "notice" are accepted as the nearest shoal level.
constexpr std::array<LogLevelName, 7> kLogLevels = {{{"debug", "debug"},
                                                     {"verbose", "debug"},
                                                     {"info", "info"},
                                                     {"notice", "info"},
                                                     {"warning", "warning"},
                                                     {"warn", "warning"},
                                                     {"error", "error"}}};

constexpr std::array<MaxmemoryPolicy, 4> kPolicies = {
    MaxmemoryPolicy::kNoEviction, MaxmemoryPolicy::kAllKeysLru, MaxmemoryPolicy::kVolatileLru,
    MaxmemoryPolicy::kAllKeysRandom};

using Setter = Status (*)(ServerConfig&, std::string_view);
using Getter = std::string (*)(const ServerConfig&);

struct Param {
  std::string_view name;
  std::string_view alias;  // "" = none
  std::string_view description;
  bool mutable_at_runtime;
  bool is_memory;  // default shown with FormatMemory
  Setter set;
  Getter get;
};

// Helpers that turn "parse then assign" into a Setter without repeating the Result plumbing.
template <typename T>
Status Assign(Result<T> parsed, auto& field) {
  if (!parsed) return parsed.error();
  field = static_cast<std::remove_reference_t<decltype(field)>>(*parsed);
  return Status::Ok();
}

std::string JoinSeeds(const std::vector<std::string>& seeds) {
  std::string out;
  for (const auto& s : seeds) out += (out.empty() ? "" : ",") + s;
  return out;
}

// "host:port[,host:port...]"; the host may be a name, an IPv4 address or [IPv6].
Result<std::vector<std::string>> ParseSeeds(std::string_view text) {
  std::vector<std::string> seeds;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      const size_t colon = item.rfind(':');
      if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
        return InvalidValue("seed '" + std::string(item) + "' is not host:port");
      }
      auto port = ParseInteger(item.substr(colon + 1), 1, 65535);
      if (!port) return InvalidValue("seed '" + std::string(item) + "' has a bad port");
      seeds.emplace_back(item);
    }
    start = end + 1;
  }
  return seeds;
}

const Param kParams[] = {
    {"port", "", "TCP port for Redis clients", false, false,
     [](ServerConfig& c, std::string_view v) { return Assign(ParseInteger(v, 0, 65535), c.port); },
     [](const ServerConfig& c) { return std::to_string(c.port); }},
    {"bind", "", "address to listen on, e.g. 0.0.0.0 for all IPv4 interfaces", false, false,
     [](ServerConfig& c, std::string_view v) -> Status {
       if (v.empty() || v.find_first_of(" \t") != std::string_view::npos) {
         return InvalidValue("argument must be one address (shoal binds a single address)");
       }
       c.bind = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return c.bind; }},
    {"threads", "", "worker threads (0 = one per hardware core)", false, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 0, 1024), c.threads);
     },
     [](const ServerConfig& c) { return std::to_string(c.threads); }},
    {"requirepass", "", "password clients must give with AUTH (empty = none)", true, false,
     [](ServerConfig& c, std::string_view v) {
       c.requirepass = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return c.requirepass; }},
    {"maxmemory", "", "memory limit for data, e.g. 100mb (0 = no limit)", true, true,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseMemoryInRange(v, 0, kInt64Max), c.maxmemory);
     },
     [](const ServerConfig& c) { return std::to_string(c.maxmemory); }},
    {"maxmemory-policy", "",
     "what to do at maxmemory: noeviction, allkeys-lru, volatile-lru, allkeys-random", true, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(MaxmemoryPolicyFromString(v), c.maxmemory_policy);
     },
     [](const ServerConfig& c) { return std::string(ToString(c.maxmemory_policy)); }},
    {"maxmemory-samples", "", "keys sampled per eviction (1-64)", true, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 1, 64), c.maxmemory_samples);
     },
     [](const ServerConfig& c) { return std::to_string(c.maxmemory_samples); }},
    {"proto-max-bulk-len", "", "largest bulk string a client may send (at least 1mb)", true, true,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseMemoryInRange(v, ServerConfig::kMb, kInt64Max), c.proto_max_bulk_len);
     },
     [](const ServerConfig& c) { return std::to_string(c.proto_max_bulk_len); }},
    {"client-query-buffer-limit", "query-buffer-limit",
     "largest unparsed input buffered per client (at least 1mb)", true, true,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseMemoryInRange(v, ServerConfig::kMb, kInt64Max), c.query_buffer_limit);
     },
     [](const ServerConfig& c) { return std::to_string(c.query_buffer_limit); }},
    {"client-output-buffer-limit", "output-buffer-limit",
     "pending replies per client before it is disconnected (0 = no limit)", true, true,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseOutputBufferLimit(v), c.output_buffer_limit);
     },
     [](const ServerConfig& c) { return fmt::format("normal {} 0 0", c.output_buffer_limit); }},
    {"maxclients", "max-clients", "maximum simultaneous client connections", true, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 1, kIntMax), c.max_clients);
     },
     [](const ServerConfig& c) { return std::to_string(c.max_clients); }},
    {"loglevel", "log-level", "log verbosity: debug, info, warning, error", true, false,
     [](ServerConfig& c, std::string_view v) -> Status {
       for (const LogLevelName& l : kLogLevels) {
         if (AsciiEqualsNoCase(v, l.name)) {
           c.log_level = std::string(l.canonical);
           return Status::Ok();
         }
       }
       return InvalidValue("argument(s) must be one of the following: debug, info, warning, error");
     },
     [](const ServerConfig& c) { return c.log_level; }},
    {"hz", "", "background cycles (active expiry) per second (1-500)", true, false,
     [](ServerConfig& c, std::string_view v) { return Assign(ParseInteger(v, 1, 500), c.hz); },
     [](const ServerConfig& c) { return std::to_string(c.hz); }},
    {"timeout", "", "close a client idle this many seconds (0 = never)", true, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 0, kIntMax), c.timeout);
     },
     [](const ServerConfig& c) { return std::to_string(c.timeout); }},
    {"cluster-port", "", "UDP+TCP port for the cluster (0 = client port + 10000)", false, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 0, 65535), c.cluster_port);
     },
     [](const ServerConfig& c) { return std::to_string(c.cluster_port); }},
    {"http-port", "", "admin HTTP port (0 = client port + 1000, -1 = off)", false, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, -1, 65535), c.http_port);
     },
     [](const ServerConfig& c) { return std::to_string(c.http_port); }},
    {"advertise-address", "", "address peers use to reach this node (default: bind)", false, false,
     [](ServerConfig& c, std::string_view v) {
       c.advertise_address = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return c.advertise_address; }},
    {"seeds", "", "comma-separated host:cluster-port of nodes to join", false, false,
     [](ServerConfig& c, std::string_view v) { return Assign(ParseSeeds(v), c.seeds); },
     [](const ServerConfig& c) { return JoinSeeds(c.seeds); }},
    {"cookie", "", "the cluster's shared secret (every node needs the same)", false, false,
     [](ServerConfig& c, std::string_view v) {
       c.cookie = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return std::string(c.cookie.empty() ? "" : "(hidden)"); }},
    {"cookie-file", "", "read the cookie from this file (first line)", false, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ReadSecretFile(v, "cookie"), c.cookie);
     },
     [](const ServerConfig& c) { return std::string(); }},
    {"admin-token", "",
     "bearer token the admin HTTP API wants for POSTs (empty = admin API on 127.0.0.1 only)", false,
     false,
     [](ServerConfig& c, std::string_view v) {
       c.admin_token = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return std::string(c.admin_token.empty() ? "" : "(hidden)"); }},
    {"admin-token-file", "", "read the admin token from this file (first line)", false, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ReadSecretFile(v, "admin token"), c.admin_token);
     },
     [](const ServerConfig& c) { return std::string(); }},
    {"discovery-dns", "",
     "NAME:CLUSTER-PORT whose A/AAAA records are peers (re-resolved every 5 s)", false, false,
     [](ServerConfig& c, std::string_view v) -> Status {
       if (!v.empty()) {
         auto seeds = ParseSeeds(v);
         if (!seeds) return seeds.error();
         if (seeds->size() != 1) return InvalidValue("expected one NAME:PORT");
       }
       c.discovery_dns = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return c.discovery_dns; }},
    {"cluster-mode", "", "forward (serve any key through any node) or redirect (MOVED/ASK)", true,
     false,
     [](ServerConfig& c, std::string_view v) -> Status {
       if (v == "forward") {
         c.cluster_redirect = false;
       } else if (v == "redirect") {
         c.cluster_redirect = true;
       } else {
         return InvalidValue("argument(s) must be one of the following: forward, redirect");
       }
       return Status::Ok();
     },
     [](const ServerConfig& c) {
       return std::string(c.cluster_redirect ? "redirect" : "forward");
     }},
    {"cluster-enabled", "", "yes: spread buckets over the cluster; no: serve every key here", false,
     false, [](ServerConfig& c, std::string_view v) { return AssignYesNo(v, c.cluster_enabled); },
     [](const ServerConfig& c) { return YesNo(c.cluster_enabled); }},
    {"new-cluster", "",
     "yes: forget the peers remembered in the data dir and form a new cluster if no seed answers",
     false, false,
     [](ServerConfig& c, std::string_view v) { return AssignYesNo(v, c.new_cluster); },
     [](const ServerConfig& c) { return YesNo(c.new_cluster); }},
    {"enable-debug-command", "",
     "who may run DEBUG: no, local (loopback clients) or yes (everyone)", false, false,
     [](ServerConfig& c, std::string_view v) -> Status {
       if (v == "no") {
         c.enable_debug_command = ServerConfig::DebugCommand::kNo;
       } else if (v == "local") {
         c.enable_debug_command = ServerConfig::DebugCommand::kLocal;
       } else if (v == "yes") {
         c.enable_debug_command = ServerConfig::DebugCommand::kYes;
       } else {
         return InvalidValue("argument must be 'no', 'local' or 'yes'");
       }
       return Status::Ok();
     },
     [](const ServerConfig& c) {
       switch (c.enable_debug_command) {
         case ServerConfig::DebugCommand::kLocal:
           return std::string("local");
         case ServerConfig::DebugCommand::kYes:
           return std::string("yes");
         case ServerConfig::DebugCommand::kNo:
           break;
       }
       return std::string("no");
     }},
    {"data-dir", "", "directory keeping the node's identity (empty = new id at each start)", false,
     false,
     [](ServerConfig& c, std::string_view v) {
       c.data_dir = std::string(v);
       return Status::Ok();
     },
     [](const ServerConfig& c) { return c.data_dir; }},
    {"replicated-maps", "replicated-map",
     "replicated maps as NAME=KEY-PREFIX,... (every node holds all of each)", false, false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseReplicatedMaps(v), c.replicated_maps);
     },
     [](const ServerConfig& c) {
       std::string out;
       for (const auto& m : c.replicated_maps) {
         out += (out.empty() ? "" : ",") + m.name + "=" + m.prefix;
       }
       return out;
     }},
    {"replicated-tombstone-ttl", "",
     "seconds a replicated map keeps a delete's tombstone (longer than any partition)", false,
     false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 1, kIntMax), c.replicated_tombstone_ttl);
     },
     [](const ServerConfig& c) { return std::to_string(c.replicated_tombstone_ttl); }},
    {"replicated-sync-interval", "",
     "milliseconds between anti-entropy rounds of each replicated map with a random peer", false,
     false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 10, kIntMax), c.replicated_sync_interval_ms);
     },
     [](const ServerConfig& c) { return std::to_string(c.replicated_sync_interval_ms); }},
    {"replicated-save-interval", "",
     "seconds between snapshots of the replicated maps into data-dir (0 = only on SAVE)", false,
     false,
     [](ServerConfig& c, std::string_view v) {
       return Assign(ParseInteger(v, 0, kIntMax), c.replicated_save_interval);
     },
     [](const ServerConfig& c) { return std::to_string(c.replicated_save_interval); }},
};

bool ValidMapName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char ch : n) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

const Param* FindParam(std::string_view name) {
  std::string n = NormalizeName(name);
  for (const Param& p : kParams) {
    if (p.name == n || (!p.alias.empty() && p.alias == n)) return &p;
  }
  return nullptr;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

Status AddReplicatedMap(std::vector<ReplicatedMapDecl>& maps, ReplicatedMapDecl decl) {
  if (!ValidMapName(decl.name)) {
    return InvalidValue("replicated map name '" + decl.name +
                        "' must be 1-64 letters, digits, '_', '-' or '.'");
  }
  if (decl.prefix.empty()) {
    return InvalidValue("replicated map '" + decl.name + "' needs a non-empty key prefix");
  }
  for (const auto& m : maps) {
    if (m.name == decl.name) {
      return InvalidValue("replicated map '" + decl.name + "' is declared twice");
    }
    if (m.prefix.starts_with(decl.prefix) || decl.prefix.starts_with(m.prefix)) {
      return InvalidValue("replicated maps '" + m.name + "' and '" + decl.name +
                          "' have overlapping key prefixes '" + m.prefix + "' and '" + decl.prefix +
                          "'");
    }
  }
  maps.push_back(std::move(decl));
  return Status::Ok();
}

Result<std::vector<ReplicatedMapDecl>> ParseReplicatedMaps(std::string_view text) {
  std::vector<ReplicatedMapDecl> maps;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidValue("expected NAME=KEY-PREFIX, got '" + std::string(item) + "'");
    }
    Status st = AddReplicatedMap(
        maps, ReplicatedMapDecl{std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))});
    if (!st.ok()) return st.error();
  }
  return maps;
}

SHOAL_ERROR_CATEGORY_DEFINE(Errc, "shoal.config", DescribeErrc)

std::string_view ToString(MaxmemoryPolicy policy) {
  switch (policy) {
    case MaxmemoryPolicy::kNoEviction:
      return "noeviction";
    case MaxmemoryPolicy::kAllKeysLru:
      return "allkeys-lru";
    case MaxmemoryPolicy::kVolatileLru:
      return "volatile-lru";
    case MaxmemoryPolicy::kAllKeysRandom:
      return "allkeys-random";
  }
  return "noeviction";
}

Result<MaxmemoryPolicy> MaxmemoryPolicyFromString(std::string_view name) {
  for (MaxmemoryPolicy p : kPolicies) {
    if (AsciiEqualsNoCase(name, ToString(p))) return p;
  }
  return InvalidValue(
      "argument(s) must be one of the following: noeviction, allkeys-lru, volatile-lru, "
      "allkeys-random");
}

Result<int64_t> ParseMemory(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit = NormalizeName(text.substr(digits));
  int64_t mul;
  if (unit.empty() || unit == "b") {
    mul = 1;
  } else if (unit == "k") {
    mul = 1000;
  } else if (unit == "kb") {
    mul = 1024;
  } else if (unit == "m") {
    mul = 1000 * 1000;
  } else if (unit == "mb") {
    mul = 1024 * 1024;
  } else if (unit == "g") {
    mul = 1000LL * 1000 * 1000;
  } else if (unit == "gb") {
    mul = 1024LL * 1024 * 1024;
  } else {
    mul = 0;
  }
  if (digits == 0 || mul == 0) return InvalidValue("argument must be a memory value");
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec == std::errc::result_out_of_range || n > kInt64Max / mul) {
    return InvalidValue("argument must be a memory value (out of range)");
  }
  return n * mul;
}

std::string FormatMemory(int64_t bytes) {
  static constexpr std::array<std::pair<int64_t, std::string_view>, 3> kUnits = {
      {{int64_t{1} << 30, "gb"}, {int64_t{1} << 20, "mb"}, {int64_t{1} << 10, "kb"}}};
  if (bytes != 0) {
    for (const auto& [size, unit] : kUnits) {
      if (bytes % size == 0) return fmt::format("{}{}", bytes / size, unit);
    }
  }
  return std::to_string(bytes);
}

Status ServerConfig::Set(std::string_view name, std::string_view value) {
  const Param* p = FindParam(name);
  if (p == nullptr) {
    return Error(Errc::kUnknownParameter, fmt::format("unknown parameter '{}'", name));
  }
  return p->set(*this, value);
}

Status ServerConfig::SetAtRuntime(std::string_view name, std::string_view value) {
  const Param* p = FindParam(name);
  if (p != nullptr && !p->mutable_at_runtime) {
    return Error(Errc::kImmutable, "can't set immutable config");
  }
  return Set(name, value);
}

std::optional<std::string> ServerConfig::Get(std::string_view name) const {
  const Param* p = FindParam(name);
  if (p == nullptr) return std::nullopt;
  return p->get(*this);
}

std::vector<std::string> ServerConfig::Names() {
  std::vector<std::string> names;
  for (const Param& p : kParams) names.emplace_back(p.name);
  return names;
}

std::vector<ParamInfo> ServerConfig::Params() {
  const ServerConfig defaults;
  std::vector<ParamInfo> out;
  for (const Param& p : kParams) {
    std::string def = p.get(defaults);
    if (p.is_memory) {
      Result<int64_t> bytes = ParseOutputBufferLimit(def);  // also reads plain byte counts
      if (bytes) def = FormatMemory(*bytes);
    }
    out.push_back(ParamInfo{std::string(p.name), EnvVarName(p.name), std::move(def),
                            std::string(p.description), p.mutable_at_runtime});
  }
  return out;
}

std::optional<std::string> ServerConfig::CanonicalName(std::string_view name) {
  const Param* p = FindParam(name);
  if (p == nullptr) return std::nullopt;
  return std::string(p->name);
}

std::optional<std::string> ServerConfig::SuggestName(std::string_view name) {
  std::string n = NormalizeName(name);
  const Param* best = nullptr;
  size_t best_distance = std::max<size_t>(2, n.size() / 4) + 1;
  for (const Param& p : kParams) {
    for (std::string_view candidate : {p.name, p.alias}) {
      if (candidate.empty()) continue;
      size_t d = EditDistance(n, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = &p;
      }
    }
  }
  if (best == nullptr) return std::nullopt;
  return std::string(best->name);
}

int ServerConfig::EffectiveThreads() const {
  if (threads > 0) return threads;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

std::string EnvVarName(std::string_view param) {
  std::string out = "SHOAL_";
  for (char c : param) {
    out.push_back(c == '-' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return out;
}

std::string ConfigSetErrorText(std::string_view name, const Error& error) {
  if (error.code() == Errc::kUnknownParameter) {
    return fmt::format("Unknown option or number of arguments for CONFIG SET - '{}'", name);
  }
  return fmt::format("CONFIG SET failed (possibly related to argument '{}') - {}", name,
                     error.message());
}

}  // namespace shoal::config
