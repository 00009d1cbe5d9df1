#include "config/sources.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace shoal::config {

namespace {

// "unknown parameter 'maxmemroy' (did you mean 'maxmemory'?)".
std::string UnknownMessage(std::string_view name) {
  std::string msg = fmt::format("unknown parameter '{}'", name);
  if (std::optional<std::string> s = ServerConfig::SuggestName(name)) {
    msg += fmt::format(" (did you mean '{}'?)", *s);
  }
  return msg;
}

// Re-labels an error from ServerConfig::Set with where the setting came from.
Error FromSource(const Error& e, std::string_view where, std::string_view name) {
  if (e.code() == Errc::kUnknownParameter) {
    return Error(e.code(), fmt::format("{}: {}", where, UnknownMessage(name)));
  }
  return Error(e.code(), fmt::format("{}: {}", where, e.message()));
}

std::string Position(std::string_view source, const YAML::Mark& mark) {
  if (mark.is_null()) return std::string(source);
  return fmt::format("{}:{}:{}", source, mark.line + 1, mark.column + 1);
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// The "maps" section: {NAME: {mode: replicated, prefix: "KEY-PREFIX"}, ...}.
Status ApplyMaps(ServerConfig& config, const YAML::Node& maps, std::string_view source) {
  auto fail = [&](const YAML::Node& at, const std::string& why) {
    return Status(
        Error(Errc::kParse, fmt::format("{}: maps: {}", Position(source, at.Mark()), why)));
  };
  if (maps.IsNull()) return Status::Ok();
  if (!maps.IsMap()) {
    return fail(maps, "expected a mapping of map names to {mode: replicated, prefix: ...}");
  }
  for (const auto& kv : maps) {
    if (!kv.first.IsScalar()) return fail(kv.first, "expected a map name");
    const std::string name = kv.first.Scalar();
    const YAML::Node& spec = kv.second;
    if (!spec.IsMap())
      return fail(spec, "'" + name + "': expected {mode: replicated, prefix: ...}");
    std::string mode, prefix;
    for (const auto& f : spec) {
      const std::string field = f.first.IsScalar() ? f.first.Scalar() : std::string();
      if (!f.second.IsScalar()) return fail(f.second, "'" + name + "': expected a single value");
      if (field == "mode") {
        mode = f.second.Scalar();
      } else if (field == "prefix") {
        prefix = f.second.Scalar();
      } else {
        return fail(f.first, "'" + name + "': unknown field '" + field +
                                 "' (a map has 'mode' and 'prefix')");
      }
    }
    if (mode != "replicated") {
      return fail(spec, "'" + name +
                            "': mode must be 'replicated' (keys outside every "
                            "replicated map's prefix are the sharded keyspace)");
    }
    Status st = AddReplicatedMap(config.replicated_maps, config::ReplicatedMapDecl{name, prefix});
    if (!st.ok()) return fail(spec, st.error().message());
  }
  return Status::Ok();
}

Status ApplyYaml(ServerConfig& config, std::string_view text, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error(Errc::kParse,
                 fmt::format("{}: invalid YAML: {}", Position(source, e.mark), e.msg));
  }
  if (root.IsNull()) return Status::Ok();  // empty file
  if (!root.IsMap()) {
    return Error(Errc::kParse,
                 fmt::format("{}: expected a mapping of parameter names to values, e.g. "
                             "'port: 7000'",
                             Position(source, root.Mark())));
  }
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const YAML::Node& key = kv.first;
    const YAML::Node& value = kv.second;
    if (!key.IsScalar()) {
      return Error(Errc::kParse,
                   fmt::format("{}: expected a parameter name", Position(source, key.Mark())));
    }
    const std::string& name = key.Scalar();
    std::string where = fmt::format("{}: {}", Position(source, key.Mark()), name);
    if (name == "maps") {
      if (Status st = ApplyMaps(config, value, source); !st.ok()) return st;
      continue;
    }
    std::optional<std::string> canonical = ServerConfig::CanonicalName(name);
    if (!canonical) {
      return Error(Errc::kUnknownParameter,
                   fmt::format("{}: {}", Position(source, key.Mark()), UnknownMessage(name)));
    }
    if (!seen.insert(*canonical).second) {
      return Error(Errc::kParse,
                   fmt::format("{}: '{}' is given more than once", where, *canonical));
    }
    std::string v;
    if (value.IsScalar()) {
      v = value.Scalar();
    } else if (!value.IsNull()) {  // "requirepass:" with nothing after it means ""
      return Error(Errc::kParse, fmt::format("{}: expected a single value, not a {}", where,
                                             value.IsMap() ? "mapping" : "list"));
    }
    if (Status s = config.Set(name, v); !s) return FromSource(s.error(), where, name);
  }
  return Status::Ok();
}

Status ApplyYamlFile(ServerConfig& config, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return Error(Errc::kIo, fmt::format("cannot read config file '{}': {}", path,
                                        err != 0 ? std::strerror(err) : "open failed"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error(Errc::kIo, fmt::format("cannot read config file '{}'", path));
  return ApplyYaml(config, text.str(), path);
}

Status ApplyEnv(ServerConfig& config, const EnvLookup& env) {
  if (!env) return Status::Ok();
  for (const std::string& name : ServerConfig::Names()) {
    std::string var = EnvVarName(name);
    std::optional<std::string> value = env(var);
    if (!value || value->empty()) continue;
    if (Status s = config.Set(name, *value); !s) {
      std::string shown = name == "requirepass" ? "..." : *value;
      return FromSource(s.error(), fmt::format("environment variable {}='{}'", var, shown), name);
    }
  }
  return Status::Ok();
}

Result<ServerConfig> LoadServerConfig(const ConfigSources& sources) {
  ServerConfig config;
  std::string file = sources.config_file;
  if (file.empty() && sources.env) {
    file = sources.env(std::string(kConfigFileEnvVar)).value_or("");
  }
  if (!file.empty()) {
    if (Status s = ApplyYamlFile(config, file); !s) return s.error();
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(file, ec);
    config.config_file = ec ? file : abs.lexically_normal().string();
  }
  if (Status s = ApplyEnv(config, sources.env); !s) return s.error();
  for (const Override& o : sources.overrides) {
    if (Status s = config.Set(o.name, o.value); !s) {
      return FromSource(s.error(), o.origin, o.name);
    }
  }
  return config;
}

}  // namespace shoal::config
