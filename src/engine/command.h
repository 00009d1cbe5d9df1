// The command table: every command's name, arity, flags, key positions and handler.
//
// Two kinds of handler:
//  - KeyHandler runs on the worker that owns the command's key(s) and touches only that worker's
//    Table (GET, SET, HSET, ...). The engine routes it there, inline or by message.
//  - ConnHandler runs on the client's own worker and decides itself what to do: connection state
//    (HELLO, AUTH, CLIENT), server state (CONFIG, INFO), or work over several workers' tables
//    (MSET, DEL of many keys, KEYS, SCAN, DBSIZE) through Engine::RunLocked.
#pragma once

#include <absl/container/inlined_vector.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/glob.h"
#include "resp/reply_builder.h"
#include "resp/service.h"
#include "storage/table.h"

namespace shoal::resp {
class Connection;
}

namespace shoal::engine {

class Engine;
class Shard;

using Args = std::span<const std::string_view>;

// Where a KeyHandler runs: the owning worker's table, its clock reading, the reply.
struct ExecContext {
  Args args;
  resp::ReplyBuilder* out;
  Shard* shard;
  storage::Table* table;
  int64_t now_ms;  // wall clock, for expiry arithmetic
  // The client's client-output-buffer-limit (0 = none), for replies sized by the caller.
  int64_t reply_limit = 0;
};

using KeyHandler = void (*)(ExecContext& ctx);
using ConnHandler = resp::DispatchResult (*)(Engine& engine, resp::Connection* c, Args args,
                                             resp::ReplyBuilder* out);

enum CommandFlag : uint32_t {
  kCmdWrite = 1 << 0,
  kCmdReadOnly = 1 << 1,
  kCmdDenyOom = 1 << 2,  // may grow memory: refused (or evicts) over maxmemory
  kCmdAdmin = 1 << 3,
  kCmdNoAuth = 1 << 4,  // allowed before AUTH
  kCmdFast = 1 << 5,
  kCmdConnection = 1 << 6,  // connection or server level, no keys
  kCmdKeyspace = 1 << 7,    // reads or writes the whole keyspace
};

struct CommandSpec {
  std::string_view name;  // lower case
  int arity;              // Redis convention: >0 exact, <0 at least -arity
  uint32_t flags;
  int first_key, last_key, key_step;  // Redis convention; 0 = no keys, last -1 = to the end
  KeyHandler key_handler;             // exactly one of the two handlers is set
  ConnHandler conn_handler;
  std::string_view group;    // "string", "generic", "hash", "server", "connection", "cluster"
  std::string_view summary;  // for COMMAND DOCS
};

// A command family (strings, hashes, pub-sub, ...): its commands, and what it does when one of
// its clients closes (drop the client's subscriptions). The families live above the engine
// (src/commands/) and are installed into it once.
struct CommandFamily {
  std::span<const CommandSpec> commands;
  void (*on_client_close)(Engine& engine, resp::Connection* c) = nullptr;
};
// Installs the command table: every family's commands, sorted by name. Once per process, before
// the first Engine is built (commands::InstallCommands does it); a second call is ignored.
void InstallCommandFamilies(std::span<const CommandFamily> families);
// The installed families, for the client-close hooks.
std::span<const CommandFamily> CommandFamilies();

// The table, sorted by name. Lookup is case-insensitive.
const CommandSpec* FindCommand(std::string_view name);
std::span<const CommandSpec> AllCommands();
std::vector<std::string> FlagNames(uint32_t flags);
// Positions of the keys in `args` according to `spec` (COMMAND GETKEYS and routing).
using KeyPosList = absl::InlinedVector<size_t, 4>;
KeyPosList KeyPositions(const CommandSpec& spec, Args args);

// Shared reply texts (Redis's).
inline constexpr std::string_view kWrongTypeErr =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kNotIntegerErr = "ERR value is not an integer or out of range";
inline constexpr std::string_view kSyntaxErr = "ERR syntax error";
inline constexpr std::string_view kOverflowErr = "ERR increment or decrement would overflow";
inline constexpr std::string_view kNotFloatErr = "ERR value is not a valid float";
inline constexpr std::string_view kNoSuchKeyErr = "ERR no such key";

// Strict integer parsing as Redis's string2ll (no spaces, no '+', no leading zeros).
bool ParseInt64(std::string_view s, int64_t* out);
bool ParseDouble(std::string_view s, double* out);

// Replies whose size the caller chooses (HRANDFIELD with a count, KEYS) are sized before they
// are built: one that could never be sent within `client-output-buffer-limit` is refused with an
// error instead of being built, buffered and then dropped with the connection. `limit` 0 means no
// limit. Returns "" when `estimated_bytes` fits, else the error text to answer.
std::string ReplyTooLargeError(uint64_t estimated_bytes, int64_t limit);
// The RESP encoding size of a bulk string of `len` bytes ("$<len>\r\n<bytes>\r\n").
uint64_t BulkReplyBytes(uint64_t len);

}  // namespace shoal::engine
