// The `shoal` binary's command line: subcommands, flags, help text, and the merge of flags with
// the YAML file and SHOAL_* environment into one ServerConfig (see config/sources.h).
//
// main.cc does:
//   auto inv = shoal::app::ParseCommandLine(argc, argv);
//   if (!inv) { fmt::print(stderr, "shoal: {}\n", inv.error().message()); return 2; }
//   if (inv->exit_code) return *inv->exit_code;  // help, version or a stub: already printed
//   switch (inv->command) { case Command::kServe: ... inv->server ... }
//
// Exit codes: 0 after --help / version; 1 for `shoal` without a subcommand (help is printed);
// 2 for usage or configuration errors (returned as an Error, nothing printed) and for
// subcommands that are not implemented yet (message printed).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/result.h"
#include "config/server_config.h"
#include "config/sources.h"

namespace shoal::app {

enum class Errc {
  kUsage = 1,  // bad flags or arguments (CLI11's message, plus a hint to run --help)
};
SHOAL_ERROR_CATEGORY_DECL(Errc)

}  // namespace shoal::app

template <>
struct std::is_error_code_enum<shoal::app::Errc> : std::true_type {};

namespace shoal::app {

enum class Command {
  kNone,     // no subcommand: help was printed, exit_code is 1
  kServe,    // run one server node with `server`
  kVersion,  // version was printed, exit_code is 0
  kStart,    // planned: start a local 3-node cluster
  kStatus,   // planned: show a cluster's members and health
  kJoin,     // tell a node to join a cluster through seeds
  kLeave,    // make a node leave its cluster gracefully (hand over its buckets, exit)
};

std::string_view ToString(Command command);

struct Invocation {
  Command command = Command::kNone;
  // Set when main should return right away with this code: the output is already printed.
  std::optional<int> exit_code;
  // kServe: the merged configuration (defaults < file < env < flags).
  config::ServerConfig server;
  // Positional arguments of the planned subcommands (e.g. `shoal join host:port`).
  std::vector<std::string> args;  // join: the seeds; planned subcommands: what followed them
  std::string node;               // status, join: the node's admin address HOST:HTTP-PORT
  bool json = false;              // status --json
  // status, join, leave: the admin token to send (--token, --token-file, SHOAL_ADMIN_TOKEN,
  // SHOAL_ADMIN_TOKEN_FILE, in that order); "" = none.
  std::string token;
  bool force = false;  // leave --force
};

// Where ParseCommandLine reads the environment and writes help, version and notices.
struct CliContext {
  config::EnvLookup env;  // empty = no environment
  std::ostream* out;      // help, version
  std::ostream* err;      // notices (not-yet-implemented subcommands)
};

// The process environment, std::cout and std::cerr.
Result<Invocation> ParseCommandLine(int argc, char** argv);
// `args` excludes the program name. For tests and embedding.
Result<Invocation> ParseCommandLine(const std::vector<std::string>& args, const CliContext& ctx);

// "shoal 0.1.0".
std::string VersionString();

}  // namespace shoal::app
