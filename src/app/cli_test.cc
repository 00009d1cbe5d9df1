#include "app/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace shoal::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kMb = 1024 * 1024;

struct Parsed {
  Result<Invocation> inv;
  std::string out;
  std::string err;
};

Parsed Parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  std::ostringstream out, err;
  Result<Invocation> inv =
      ParseCommandLine(args, CliContext{config::MapEnv(std::move(env)), &out, &err});
  return Parsed{std::move(inv), out.str(), err.str()};
}

TEST(Cli, NoArgumentsPrintsHelpAndExits1) {
  Parsed r = Parse({});
  ASSERT_TRUE(r.inv.ok());
  EXPECT_EQ(r.inv->command, Command::kNone);
  EXPECT_EQ(r.inv->exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("Redis protocol"));
  EXPECT_THAT(r.out, HasSubstr("serve"));
}

TEST(Cli, TopLevelHelpDescribesShoalAndListsPlannedSubcommands) {
  for (const char* flag : {"--help", "-h"}) {
    Parsed r = Parse({flag});
    ASSERT_TRUE(r.inv.ok());
    EXPECT_EQ(r.inv->exit_code, 0);
    EXPECT_THAT(r.out, HasSubstr("shoal is an in-memory key-value server"));
    EXPECT_THAT(r.out, HasSubstr("serve"));
    EXPECT_THAT(r.out, HasSubstr("version"));
    for (const char* planned : {"start", "status", "join", "leave"}) {  // listed
      EXPECT_THAT(r.out, HasSubstr(planned));
    }
    EXPECT_THAT(r.out, HasSubstr("(not implemented yet) start a local 3-node cluster"));
    EXPECT_THAT(r.out, HasSubstr("Examples:"));
    EXPECT_TRUE(r.err.empty());
  }
}

TEST(Cli, ServeHelpShowsEachFlagWithDefaultAndEnvVar) {
  Parsed r = Parse({"serve", "--help"});
  ASSERT_TRUE(r.inv.ok());
  EXPECT_EQ(r.inv->exit_code, 0);
  for (const char* s :
       {"--port PORT=6379", "env: SHOAL_PORT", "--bind ADDR=127.0.0.1", "env: SHOAL_BIND",
        "--threads N=0", "env: SHOAL_THREADS", "--maxmemory BYTES=0", "env: SHOAL_MAXMEMORY",
        "--maxmemory-policy POLICY=noeviction", "env: SHOAL_MAXMEMORY_POLICY",
        "--loglevel LEVEL=info", "env: SHOAL_LOGLEVEL", "--requirepass PASSWORD",
        "env: SHOAL_REQUIREPASS", "--config FILE", "env: SHOAL_CONFIG", "--set NAME=VALUE",
        // the table of all settings
        "proto-max-bulk-len", "512mb", "SHOAL_PROTO_MAX_BULK_LEN", "client-query-buffer-limit",
        "SHOAL_CLIENT_OUTPUT_BUFFER_LIMIT", "[startup only]",
        "Example shoal.yaml:", "shoal serve --port 7000"}) {
    EXPECT_THAT(r.out, HasSubstr(s));
  }
}

TEST(Cli, Version) {
  for (const char* arg : {"version", "--version"}) {
    Parsed r = Parse({arg});
    ASSERT_TRUE(r.inv.ok()) << arg;
    EXPECT_EQ(r.inv->command, Command::kVersion);
    EXPECT_EQ(r.inv->exit_code, 0);
    EXPECT_EQ(r.out, VersionString() + "\n");
  }
  EXPECT_THAT(VersionString(), ::testing::MatchesRegex("shoal [0-9]+\\.[0-9]+\\.[0-9]+"));
}

TEST(Cli, ServeDefaults) {
  Parsed r = Parse({"serve"});
  ASSERT_TRUE(r.inv.ok()) << r.inv.error().message();
  EXPECT_EQ(r.inv->command, Command::kServe);
  EXPECT_FALSE(r.inv->exit_code.has_value());
  EXPECT_EQ(r.inv->server, config::ServerConfig{});
  EXPECT_TRUE(r.out.empty());
}

TEST(Cli, ServeFlags) {
  Parsed r =
      Parse({"serve", "--port", "7000", "--bind=0.0.0.0", "--threads", "3", "--requirepass", "pw",
             "--maxmemory", "1gb", "--maxmemory-policy", "allkeys-random", "--loglevel", "debug",
             "--set", "hz=50", "--set", "client_query_buffer_limit=8mb"});
  ASSERT_TRUE(r.inv.ok()) << r.inv.error().message();
  const config::ServerConfig& c = r.inv->server;
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.requirepass, "pw");
  EXPECT_EQ(c.maxmemory, 1024 * kMb);
  EXPECT_EQ(c.maxmemory_policy, config::MaxmemoryPolicy::kAllKeysRandom);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.hz, 50);
  EXPECT_EQ(c.query_buffer_limit, 8 * kMb);
}

TEST(Cli, NewClusterFlag) {
  Parsed r = Parse({"serve", "--new-cluster"});
  ASSERT_TRUE(r.inv.ok()) << r.inv.error().message();
  EXPECT_TRUE(r.inv->server.new_cluster);
  Parsed d = Parse({"serve"});
  ASSERT_TRUE(d.inv.ok());
  EXPECT_FALSE(d.inv->server.new_cluster);
}

TEST(Cli, DedicatedFlagBeatsSetAndLastFlagWins) {
  Parsed r = Parse({"serve", "--port", "7000", "--set", "port=7001", "--port", "7002"});
  ASSERT_TRUE(r.inv.ok()) << r.inv.error().message();
  EXPECT_EQ(r.inv->server.port, 7002);
  Parsed s = Parse({"serve", "--set", "timeout=1", "--set", "timeout=2"});
  ASSERT_TRUE(s.inv.ok());
  EXPECT_EQ(s.inv->server.timeout, 2);
}

class TempYaml {
 public:
  explicit TempYaml(std::string_view text)
      : path_(std::filesystem::temp_directory_path() /
              ("shoal_cli_test_" + std::to_string(::getpid()) + ".yaml")) {
    std::ofstream(path_) << text;
  }
  ~TempYaml() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(Cli, PrecedenceFileEnvFlag) {
  TempYaml file(
      "port: 7000\n"
      "maxmemory: 100mb\n"
      "maxmemory-policy: allkeys-lru\n"
      "threads: 2\n"
      "hz: 20\n");
  Parsed r = Parse({"serve", "--config", file.path(), "--port", "7002", "--set", "hz=30"},
                   {{"SHOAL_PORT", "7001"},
                    {"SHOAL_MAXMEMORY", "200mb"},
                    {"SHOAL_HZ", "25"},
                    {"SHOAL_THREADS", "4"}});
  ASSERT_TRUE(r.inv.ok()) << r.inv.error().message();
  const config::ServerConfig& c = r.inv->server;
  EXPECT_EQ(c.port, 7002);                                              // flag
  EXPECT_EQ(c.hz, 30);                                                  // --set
  EXPECT_EQ(c.maxmemory, 200 * kMb);                                    // env over file
  EXPECT_EQ(c.threads, 4);                                              // env over file
  EXPECT_EQ(c.maxmemory_policy, config::MaxmemoryPolicy::kAllKeysLru);  // file
  EXPECT_EQ(c.maxmemory_samples, 5);                                    // default
  EXPECT_EQ(c.config_file, file.path());
}

TEST(Cli, ConfigFileFromEnvironment) {
  TempYaml file("port: 7300\n");
  Parsed r = Parse({"serve"}, {{"SHOAL_CONFIG", file.path()}});
  ASSERT_TRUE(r.inv.ok()) << r.inv.error().message();
  EXPECT_EQ(r.inv->server.port, 7300);
}

TEST(Cli, BadFlagValueNamesTheFlag) {
  Parsed r = Parse({"serve", "--port", "http"});
  ASSERT_FALSE(r.inv.ok());
  EXPECT_EQ(r.inv.error().code(), config::Errc::kInvalidValue);
  EXPECT_EQ(r.inv.error().message(), "--port http: argument couldn't be parsed into an integer");
  Parsed m = Parse({"serve", "--maxmemory", "1tb"});
  ASSERT_FALSE(m.inv.ok());
  EXPECT_EQ(m.inv.error().message(), "--maxmemory 1tb: argument must be a memory value");
}

TEST(Cli, BadSet) {
  Parsed unknown = Parse({"serve", "--set", "maxmemroy=1gb"});
  ASSERT_FALSE(unknown.inv.ok());
  EXPECT_EQ(unknown.inv.error().message(),
            "--set maxmemroy=1gb: unknown parameter 'maxmemroy' (did you mean 'maxmemory'?)");
  Parsed no_eq = Parse({"serve", "--set", "maxmemory"});
  ASSERT_FALSE(no_eq.inv.ok());
  EXPECT_EQ(no_eq.inv.error().code(), Errc::kUsage);
  EXPECT_THAT(no_eq.inv.error().message(), HasSubstr("--set expects NAME=VALUE"));
  // --set takes exactly one value per occurrence.
  Parsed extra = Parse({"serve", "--set", "hz=5", "timeout=5"});
  ASSERT_FALSE(extra.inv.ok());
  EXPECT_EQ(extra.inv.error().code(), Errc::kUsage);
}

TEST(Cli, BadEnvironmentNamesTheVariable) {
  Parsed r = Parse({"serve"}, {{"SHOAL_MAXMEMORY_POLICY", "lfu"}});
  ASSERT_FALSE(r.inv.ok());
  EXPECT_THAT(r.inv.error().message(),
              HasSubstr("environment variable SHOAL_MAXMEMORY_POLICY='lfu': argument(s) must be"));
  // A flag does not rescue a bad environment variable: the error is reported, not hidden.
  Parsed f =
      Parse({"serve", "--maxmemory-policy", "noeviction"}, {{"SHOAL_MAXMEMORY_POLICY", "lfu"}});
  EXPECT_FALSE(f.inv.ok());
}

TEST(Cli, UsageErrorsPointToHelp) {
  Parsed flag = Parse({"serve", "--frobnicate"});
  ASSERT_FALSE(flag.inv.ok());
  EXPECT_EQ(flag.inv.error().code(), Errc::kUsage);
  EXPECT_THAT(flag.inv.error().message(), HasSubstr("--frobnicate"));
  EXPECT_THAT(flag.inv.error().message(), HasSubstr("see 'shoal serve --help'"));

  Parsed sub = Parse({"frobnicate"});
  ASSERT_FALSE(sub.inv.ok());
  EXPECT_EQ(sub.inv.error().code(), Errc::kUsage);
  EXPECT_THAT(sub.inv.error().message(), HasSubstr("frobnicate"));
  EXPECT_THAT(sub.inv.error().message(), HasSubstr("see 'shoal --help'"));

  Parsed missing = Parse({"serve", "--port"});
  ASSERT_FALSE(missing.inv.ok());
  EXPECT_EQ(missing.inv.error().code(), Errc::kUsage);

  Parsed top_flag = Parse({"--port", "7000"});
  ASSERT_FALSE(top_flag.inv.ok());
  EXPECT_EQ(top_flag.inv.error().code(), Errc::kUsage);
}

TEST(Cli, StatusAndJoinTargetANodesAdminApi) {
  Parsed st = Parse({"status"});
  ASSERT_TRUE(st.inv.ok());
  EXPECT_EQ(st.inv->command, Command::kStatus);
  EXPECT_FALSE(st.inv->exit_code.has_value());
  EXPECT_EQ(st.inv->node, "127.0.0.1:7379");
  Parsed st2 = Parse({"status", "--node", "10.0.0.2:8001", "--json"});
  ASSERT_TRUE(st2.inv.ok());
  EXPECT_EQ(st2.inv->node, "10.0.0.2:8001");
  EXPECT_TRUE(st2.inv->json);
  Parsed join = Parse({"join", "--node", "127.0.0.1:8002", "127.0.0.1:17001", "h:17003"});
  ASSERT_TRUE(join.inv.ok());
  EXPECT_EQ(join.inv->command, Command::kJoin);
  EXPECT_EQ(join.inv->node, "127.0.0.1:8002");
  EXPECT_THAT(join.inv->args, ::testing::ElementsAre("127.0.0.1:17001", "h:17003"));
  Parsed bad = Parse({"join"});
  EXPECT_FALSE(bad.inv.ok());
}

TEST(Cli, AdminCommandsTakeTheTokenFromFlagsFileOrEnvironment) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("shoal_cli_token_" + std::to_string(::getpid()));
  std::ofstream(file) << "tok-file\n";
  const std::string path = file.string();

  EXPECT_EQ(Parse({"status"}).inv->token, "");
  EXPECT_EQ(Parse({"status", "--token", "t1"}).inv->token, "t1");
  EXPECT_EQ(Parse({"join", "--token-file", path, "h:17001"}).inv->token, "tok-file");
  EXPECT_EQ(Parse({"leave"}, {{"SHOAL_ADMIN_TOKEN", "t-env"}}).inv->token, "t-env");
  EXPECT_EQ(Parse({"leave"}, {{"SHOAL_ADMIN_TOKEN_FILE", path}}).inv->token, "tok-file");
  // Flags beat the environment; the token beats the token file.
  EXPECT_EQ(Parse({"status", "--token", "t1"}, {{"SHOAL_ADMIN_TOKEN", "t-env"}}).inv->token, "t1");
  EXPECT_EQ(Parse({"status", "--token-file", path}, {{"SHOAL_ADMIN_TOKEN", "t-env"}}).inv->token,
            "tok-file");
  EXPECT_EQ(Parse({"status"}, {{"SHOAL_ADMIN_TOKEN", "t-env"}, {"SHOAL_ADMIN_TOKEN_FILE", path}})
                .inv->token,
            "t-env");
  // Both flags at once is a usage error; an unreadable file is an error naming it.
  EXPECT_FALSE(Parse({"status", "--token", "a", "--token-file", path}).inv.ok());
  Parsed missing = Parse({"status", "--token-file", "/nonexistent/token"});
  ASSERT_FALSE(missing.inv.ok());
  EXPECT_EQ(missing.inv.error().message(), "cannot read admin token file '/nonexistent/token'");
  // serve takes the node's own token as a setting.
  Parsed serve = Parse({"serve", "--admin-token-file", path});
  ASSERT_TRUE(serve.inv.ok()) << serve.inv.error().message();
  EXPECT_EQ(serve.inv->server.admin_token, "tok-file");
  Parsed serve2 = Parse({"serve", "--admin-token", "x"}, {{"SHOAL_ADMIN_TOKEN", "y"}});
  ASSERT_TRUE(serve2.inv.ok());
  EXPECT_EQ(serve2.inv->server.admin_token, "x");
  std::filesystem::remove(file);
}

TEST(Cli, PlannedSubcommandsSayNotImplementedAndExit2) {
  const std::pair<const char*, Command> planned[] = {{"start", Command::kStart}};
  for (const auto& [name, command] : planned) {
    Parsed r = Parse({name});
    ASSERT_TRUE(r.inv.ok()) << name;
    EXPECT_EQ(r.inv->command, command);
    EXPECT_EQ(r.inv->exit_code, 2);
    EXPECT_THAT(r.err, HasSubstr(std::string("shoal ") + name + ": not implemented yet"));
    EXPECT_EQ(ToString(command), name);
  }
  Parsed leave = Parse({"leave", "--node", "10.0.0.1:8000"});
  ASSERT_TRUE(leave.inv.ok());
  EXPECT_EQ(leave.inv->command, Command::kLeave);
  EXPECT_FALSE(leave.inv->exit_code.has_value());
  EXPECT_EQ(leave.inv->node, "10.0.0.1:8000");
  EXPECT_FALSE(Parse({"leave", "extra"}).inv.ok());
  EXPECT_FALSE(leave.inv->force);
  Parsed forced = Parse({"leave", "--force", "--node", "10.0.0.1:8000"});
  ASSERT_TRUE(forced.inv.ok());
  EXPECT_EQ(forced.inv->command, Command::kLeave);
  EXPECT_TRUE(forced.inv->force);

  Parsed help = Parse({"start", "--help"});
  ASSERT_TRUE(help.inv.ok());
  EXPECT_EQ(help.inv->exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("(not implemented yet)"));
  EXPECT_THAT(help.err, Not(HasSubstr("not implemented yet.")));
}

TEST(Cli, ArgcArgvOverload) {
  char prog[] = "shoal";
  char version[] = "version";
  char* argv[] = {prog, version, nullptr};
  testing::internal::CaptureStdout();
  Result<Invocation> inv = ParseCommandLine(2, argv);
  std::string out = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kVersion);
  EXPECT_EQ(out, VersionString() + "\n");
}

}  // namespace
}  // namespace shoal::app
