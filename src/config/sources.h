// Where a ServerConfig comes from. Lowest to highest precedence:
//
//   built-in defaults  <  YAML file  <  SHOAL_* environment  <  command-line flags
//
// YAML file: one mapping of parameter names to scalar values, e.g.
//     port: 7000
//     maxmemory: 100mb
//     maxmemory-policy: allkeys-lru
// Names as in ServerConfig::Set (Redis-style, '_' accepted for '-'). An unknown key, a key given
// twice, or a bad value is an error naming the file, line and column.
//
// Environment: for each parameter, SHOAL_<NAME> with '-' -> '_' and upper case (SHOAL_PORT,
// SHOAL_MAXMEMORY_POLICY, SHOAL_CLIENT_QUERY_BUFFER_LIMIT). An empty variable counts as unset.
// Other SHOAL_* variables are ignored. SHOAL_CONFIG names the YAML file when no --config is given.
//
// The environment is passed in as a lookup function so tests need not touch the process's.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/server_config.h"

namespace shoal::config {

inline constexpr std::string_view kConfigFileEnvVar = "SHOAL_CONFIG";

// Returns the value of an environment variable, or nullopt if unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// The process environment (getenv).
EnvLookup ProcessEnv();
// A fixed set of variables (tests).
EnvLookup MapEnv(std::map<std::string, std::string> vars);

// Applies a YAML document; `source` names it in errors ("shoal.yaml:3:12: ..."). Errors: kParse
// (not YAML, not a mapping, non-scalar value, duplicate key), kUnknownParameter, kInvalidValue.
// On error `config` may be partly updated.
Status ApplyYaml(ServerConfig& config, std::string_view text, std::string_view source);
// Reads `path` and applies it; kIo if it cannot be read.
Status ApplyYamlFile(ServerConfig& config, const std::string& path);
// Applies every set SHOAL_<PARAM> variable. Errors name the variable.
Status ApplyEnv(ServerConfig& config, const EnvLookup& env);

// One command-line setting. `origin` is how to name it in an error, e.g. "--port 70000" or
// "--set maxmemory=1x".
struct Override {
  std::string name;
  std::string value;
  std::string origin;
};

struct ConfigSources {
  std::string config_file;          // "" = use $SHOAL_CONFIG if set, else no file
  EnvLookup env;                    // empty = no environment
  std::vector<Override> overrides;  // applied in order, last wins
};

// Defaults, then the file, then the environment, then the overrides. `config_file` of the result
// is the absolute path of the file read, or "".
Result<ServerConfig> LoadServerConfig(const ConfigSources& sources);

}  // namespace shoal::config
