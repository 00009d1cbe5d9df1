#include "app/cli.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <array>
#include <iostream>
#include <string>
#include <utility>

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "unknown"
#endif

namespace shoal::app {

namespace {

std::string_view DescribeErrc(Errc e) { return e == Errc::kUsage ? "usage error" : ""; }

constexpr std::string_view kDescription =
    "shoal is an in-memory key-value server that speaks the Redis protocol (RESP2/RESP3), so\n"
    "redis-cli, redis-benchmark and Redis client libraries work with it unchanged. It is being\n"
    "built into a cluster server (sharded and replicated maps, a messaging bus, failover);\n"
    "today 'serve' runs a node that finds its peers (SWIM membership), 'status' shows a\n"
    "node's view of the cluster and 'join' points a running node at more peers.\n";

constexpr std::string_view kMainFooter =
    "Examples:\n"
    "  shoal serve                                   # listen on 127.0.0.1:6379\n"
    "  shoal serve --port 7000 --maxmemory 1gb --maxmemory-policy allkeys-lru\n"
    "  SHOAL_REQUIREPASS=secret shoal serve --config shoal.yaml\n"
    "  redis-cli -p 7000 ping\n"
    "\n"
    "Run 'shoal <subcommand> --help' for a subcommand's flags.\n";

constexpr std::string_view kServeDescription =
    "Run one shoal node in the foreground, serving Redis clients on --bind:--port";

// A planned subcommand: listed in --help, prints a notice and exits 2 when run.
struct Planned {
  Command command;
  std::string_view name;
  std::string_view what;
};
constexpr std::array<Planned, 1> kPlanned = {{
    {Command::kStart, "start", "start a local 3-node cluster for development"},
}};
constexpr int kPlannedExitCode = 2;

// A serve flag that maps to one config parameter.
struct ParamFlag {
  std::string_view flag;
  std::string_view param;
  std::string_view type_name;
};
constexpr std::array<ParamFlag, 17> kParamFlags = {{
    {"--port", "port", "PORT"},
    {"--bind", "bind", "ADDR"},
    {"--threads", "threads", "N"},
    {"--requirepass", "requirepass", "PASSWORD"},
    {"--maxmemory", "maxmemory", "BYTES"},
    {"--maxmemory-policy", "maxmemory-policy", "POLICY"},
    {"--loglevel", "loglevel", "LEVEL"},
    {"--cluster-port", "cluster-port", "PORT"},
    {"--http-port", "http-port", "PORT"},
    {"--advertise-address", "advertise-address", "ADDR"},
    {"--seeds", "seeds", "HOST:PORT,..."},
    {"--cookie", "cookie", "SECRET"},
    {"--cookie-file", "cookie-file", "FILE"},
    {"--data-dir", "data-dir", "DIR"},
    {"--discovery-dns", "discovery-dns", "NAME:PORT"},
    {"--admin-token", "admin-token", "TOKEN"},
    {"--admin-token-file", "admin-token-file", "FILE"},
}};

const config::ParamInfo& FindInfo(const std::vector<config::ParamInfo>& params,
                                  std::string_view name) {
  for (const config::ParamInfo& p : params) {
    if (p.name == name) return p;
  }
  std::abort();  // kParamFlags names a parameter that does not exist: a programming error
}

std::string ServeFooter(const std::vector<config::ParamInfo>& params) {
  std::string out =
      "Settings come from, lowest to highest precedence: built-in defaults, the YAML file\n"
      "(--config, or $SHOAL_CONFIG), SHOAL_* environment variables, then this command line\n"
      "(--set in order, then the dedicated flags, so --port wins over --set port=...).\n"
      "Empty environment variables are ignored.\n"
      "\n"
      "All settings (YAML key and --set name, default, environment variable):\n";
  for (const config::ParamInfo& p : params) {
    out += fmt::format("  {:<27} {:<10} {}\n      {}{}\n", p.name, p.default_value, p.env_var,
                       p.description, p.mutable_at_runtime ? "" : " [startup only]");
  }
  out +=
      "\n"
      "Names are case-insensitive and '_' may replace '-'. Memory sizes use Redis units:\n"
      "1k = 1000, 1kb = 1024, likewise m/mb and g/gb. CONFIG SET refuses [startup only] ones.\n"
      "\n"
      "Example shoal.yaml:\n"
      "  port: 7000\n"
      "  maxmemory: 100mb\n"
      "  maxmemory-policy: allkeys-lru\n"
      "  requirepass: change-me\n"
      "\n"
      "Examples:\n"
      "  shoal serve --port 7000 --threads 4\n"
      "  shoal serve --config shoal.yaml --set hz=50 --set timeout=300\n"
      "  SHOAL_MAXMEMORY=2gb shoal serve --bind 0.0.0.0\n";
  return out;
}

// --token / --token-file of the subcommands that call a node's admin API.
struct TokenFlags {
  std::string token;
  std::string file;
};

void AddTokenFlags(CLI::App* sub, TokenFlags& flags) {
  CLI::Option* token =
      sub->add_option("--token", flags.token,
                      "the node's admin token (its admin-token), sent as a bearer token\n"
                      "env: SHOAL_ADMIN_TOKEN")
          ->type_name("TOKEN");
  sub->add_option("--token-file", flags.file,
                  "read the admin token from this file (first line)\nenv: SHOAL_ADMIN_TOKEN_FILE")
      ->type_name("FILE")
      ->excludes(token);
}

// The token to send: --token, else --token-file, else $SHOAL_ADMIN_TOKEN, else
// $SHOAL_ADMIN_TOKEN_FILE, else none (the node has no token, or GETs only).
Result<std::string> ResolveToken(const TokenFlags& flags, const config::EnvLookup& env) {
  if (!flags.token.empty()) return flags.token;
  if (!flags.file.empty()) return config::ReadSecretFile(flags.file, "admin token");
  auto get = [&env](const char* name) -> std::string {
    if (!env) return "";
    return env(name).value_or("");
  };
  if (std::string t = get("SHOAL_ADMIN_TOKEN"); !t.empty()) return t;
  if (std::string f = get("SHOAL_ADMIN_TOKEN_FILE"); !f.empty()) {
    return config::ReadSecretFile(f, "admin token");
  }
  return std::string();
}

// CLI11 messages plus where to look for help.
Error UsageError(const CLI::ParseError& e, const CLI::App& app) {
  std::string help = "shoal --help";
  for (const CLI::App* sub : app.get_subcommands()) help = "shoal " + sub->get_name() + " --help";
  return Error(Errc::kUsage, fmt::format("{} (see '{}')", e.what(), help));
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(Errc, "shoal.app", DescribeErrc)

std::string_view ToString(Command command) {
  switch (command) {
    case Command::kNone:
      return "";
    case Command::kServe:
      return "serve";
    case Command::kVersion:
      return "version";
    case Command::kStart:
      return "start";
    case Command::kStatus:
      return "status";
    case Command::kJoin:
      return "join";
    case Command::kLeave:
      return "leave";
  }
  return "";
}

std::string VersionString() { return std::string("shoal ") + SHOAL_VERSION; }

Result<Invocation> ParseCommandLine(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  return ParseCommandLine(args, CliContext{config::ProcessEnv(), &std::cout, &std::cerr});
}

Result<Invocation> ParseCommandLine(const std::vector<std::string>& args, const CliContext& ctx) {
  const std::vector<config::ParamInfo> params = config::ServerConfig::Params();

  CLI::App app(std::string(kDescription), "shoal");
  app.set_version_flag("--version", VersionString(), "Print the version and exit");
  app.require_subcommand(0, 1);
  app.get_formatter()->column_width(36);

  // serve
  CLI::App* serve = app.add_subcommand("serve", std::string(kServeDescription));
  serve->footer(ServeFooter(params));
  std::string config_file;
  serve
      ->add_option(
          "--config", config_file,
          fmt::format("YAML file of settings (see below)\nenv: {}", config::kConfigFileEnvVar))
      ->type_name("FILE");
  std::array<std::string, kParamFlags.size()> flag_values;
  std::array<CLI::Option*, kParamFlags.size()> flag_options{};
  for (size_t i = 0; i < kParamFlags.size(); ++i) {
    const config::ParamInfo& info = FindInfo(params, kParamFlags[i].param);
    flag_options[i] = serve
                          ->add_option(std::string(kParamFlags[i].flag), flag_values[i],
                                       fmt::format("{}\nenv: {}", info.description, info.env_var))
                          ->type_name(std::string(kParamFlags[i].type_name))
                          ->default_str(info.default_value)
                          ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  std::vector<std::string> replicated_maps;
  serve
      ->add_option("--replicated-map", replicated_maps,
                   "Declare a replicated map NAME=KEY-PREFIX (held in full on every node); "
                   "repeatable, e.g. --replicated-map users=users:")
      ->type_name("NAME=PREFIX")
      ->allow_extra_args(false);
  bool new_cluster = false;
  serve->add_flag("--new-cluster", new_cluster,
                  "Forget the peers remembered in --data-dir and form a new cluster (same as "
                  "--set new-cluster=yes)");
  std::vector<std::string> sets;
  serve
      ->add_option("--set", sets,
                   "Set any setting listed below; repeatable, e.g. --set hz=50 --set timeout=300")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);

  // version
  CLI::App* version = app.add_subcommand("version", "Print the version and exit");

  // status / join: talk to a running node's admin HTTP API.
  std::string status_node = "127.0.0.1:7379";
  bool status_json = false;
  CLI::App* status = app.add_subcommand(
      "status", "Show the cluster's members as one node sees them (its admin HTTP API)");
  status->add_option("--node", status_node, "the node's admin address HOST:HTTP-PORT")
      ->capture_default_str();
  status->add_flag("--json", status_json, "print the API's JSON instead of a table");
  TokenFlags status_token, join_token, leave_token;
  AddTokenFlags(status, status_token);
  std::string join_node = "127.0.0.1:7379";
  std::vector<std::string> join_seeds;
  CLI::App* join = app.add_subcommand(
      "join", "Tell a running node to join a cluster through the given seeds (host:cluster-port)");
  join->add_option("--node", join_node, "the node's admin address HOST:HTTP-PORT")
      ->capture_default_str();
  join->add_option("seeds", join_seeds, "cluster addresses of nodes already in the cluster")
      ->required()
      ->expected(1, -1);
  AddTokenFlags(join, join_token);

  std::string leave_node = "127.0.0.1:7379";
  CLI::App* leave = app.add_subcommand(
      "leave",
      "Make a running node leave its cluster gracefully: it hands its buckets to the others "
      "(retrying for as long as one of them can take them), then exits");
  leave->add_option("--node", leave_node, "the node's admin address HOST:HTTP-PORT")
      ->capture_default_str();
  AddTokenFlags(leave, leave_token);
  bool leave_force = false;
  leave->add_flag("--force", leave_force,
                  "exit now, even if some buckets were not handed over (their keys are lost); "
                  "also ends a leave that is already waiting");

  // planned
  std::array<CLI::App*, kPlanned.size()> planned{};
  for (size_t i = 0; i < kPlanned.size(); ++i) {
    planned[i] = app.add_subcommand(std::string(kPlanned[i].name),
                                    fmt::format("(not implemented yet) {}", kPlanned[i].what));
    planned[i]->allow_extras();
    planned[i]->group("Planned subcommands");
    planned[i]->footer(fmt::format(
        "'shoal {}' is not implemented yet: running it prints a notice and exits with status {}.\n"
        "For now, run nodes with 'shoal serve'.\n",
        kPlanned[i].name, kPlannedExitCode));
  }
  app.footer(std::string(kMainFooter));  // after add_subcommand: subcommands copy the footer

  std::vector<const char*> argv;
  argv.push_back("shoal");
  for (const std::string& a : args) argv.push_back(a.c_str());

  Invocation inv;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    inv.exit_code = app.exit(e, *ctx.out, *ctx.err);
    return inv;
  } catch (const CLI::CallForVersion& e) {
    inv.command = Command::kVersion;
    inv.exit_code = app.exit(e, *ctx.out, *ctx.err);
    return inv;
  } catch (const CLI::ParseError& e) {
    return UsageError(e, app);
  }

  if (version->parsed()) {
    inv.command = Command::kVersion;
    *ctx.out << VersionString() << "\n";
    inv.exit_code = 0;
    return inv;
  }

  if (status->parsed()) {
    inv.command = Command::kStatus;
    inv.node = status_node;
    inv.json = status_json;
    auto token = ResolveToken(status_token, ctx.env);
    if (!token) return token.error();
    inv.token = std::move(*token);
    return inv;
  }
  if (join->parsed()) {
    inv.command = Command::kJoin;
    inv.node = join_node;
    inv.args = join_seeds;
    auto token = ResolveToken(join_token, ctx.env);
    if (!token) return token.error();
    inv.token = std::move(*token);
    return inv;
  }

  if (leave->parsed()) {
    inv.command = Command::kLeave;
    inv.node = leave_node;
    auto token = ResolveToken(leave_token, ctx.env);
    if (!token) return token.error();
    inv.token = std::move(*token);
    inv.force = leave_force;
    return inv;
  }

  for (size_t i = 0; i < kPlanned.size(); ++i) {
    if (!planned[i]->parsed()) continue;
    inv.command = kPlanned[i].command;
    inv.args = planned[i]->remaining();
    *ctx.err << fmt::format(
        "shoal {}: not implemented yet. It is planned to {}.\nFor now, run nodes with 'shoal "
        "serve' (see 'shoal serve --help').\n",
        kPlanned[i].name, kPlanned[i].what);
    inv.exit_code = kPlannedExitCode;
    return inv;
  }

  if (!serve->parsed()) {  // no subcommand
    *ctx.out << app.help();
    inv.exit_code = 1;
    return inv;
  }

  inv.command = Command::kServe;
  config::ConfigSources sources;
  sources.config_file = config_file;
  sources.env = ctx.env;
  for (const std::string& s : sets) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(Errc::kUsage,
                   fmt::format("--set expects NAME=VALUE, got '{}' (see 'shoal serve --help')", s));
    }
    sources.overrides.push_back({s.substr(0, eq), s.substr(eq + 1), "--set " + s});
  }
  for (size_t i = 0; i < kParamFlags.size(); ++i) {
    if (flag_options[i]->count() == 0) continue;
    const std::string& v = flag_values[i];
    const bool secret = kParamFlags[i].param == "requirepass" || kParamFlags[i].param == "cookie" ||
                        kParamFlags[i].param == "admin-token";
    std::string origin =
        secret ? std::string(kParamFlags[i].flag) : fmt::format("{} {}", kParamFlags[i].flag, v);
    sources.overrides.push_back({std::string(kParamFlags[i].param), v, std::move(origin)});
  }
  if (new_cluster) sources.overrides.push_back({"new-cluster", "yes", "--new-cluster"});
  if (!replicated_maps.empty()) {
    std::string joined;
    for (const std::string& m : replicated_maps) joined += (joined.empty() ? "" : ",") + m;
    sources.overrides.push_back({"replicated-maps", joined, "--replicated-map " + joined});
  }
  Result<config::ServerConfig> merged = config::LoadServerConfig(sources);
  if (!merged) return merged.error();
  inv.server = std::move(*merged);
  return inv;
}

}  // namespace shoal::app
