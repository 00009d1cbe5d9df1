#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "config/server_config.h"
#include "config/sources.h"

namespace shoal::config {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kKb = 1024;
constexpr int64_t kMb = 1024 * kKb;
constexpr int64_t kGb = 1024 * kMb;

// --- ParseMemory ---------------------------------------------------------------------------

TEST(ParseMemory, UnitsLikeRedis) {
  EXPECT_EQ(*ParseMemory("0"), 0);
  EXPECT_EQ(*ParseMemory("100"), 100);
  EXPECT_EQ(*ParseMemory("100b"), 100);
  EXPECT_EQ(*ParseMemory("1k"), 1000);
  EXPECT_EQ(*ParseMemory("1kb"), 1024);
  EXPECT_EQ(*ParseMemory("1m"), 1000 * 1000);
  EXPECT_EQ(*ParseMemory("1mb"), kMb);
  EXPECT_EQ(*ParseMemory("1g"), 1000 * 1000 * 1000);
  EXPECT_EQ(*ParseMemory("1gb"), kGb);
  EXPECT_EQ(*ParseMemory("100mb"), 100 * kMb);
  EXPECT_EQ(*ParseMemory("1GB"), kGb);
  EXPECT_EQ(*ParseMemory("2Mb"), 2 * kMb);
  EXPECT_EQ(*ParseMemory("007kB"), 7 * kKb);
}

TEST(ParseMemory, RejectsMalformed) {
  for (const char* bad : {"", "mb", "-1", "+1", "1.5mb", "1 mb", " 1mb", "1mb ", "1tb", "1kk",
                          "1bb", "one", "0x10", "1e6", "10%"}) {
    Result<int64_t> r = ParseMemory(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "'";
    EXPECT_EQ(r.error().code(), Errc::kInvalidValue);
    EXPECT_EQ(r.error().message(), "argument must be a memory value") << bad;
  }
}

TEST(ParseMemory, Overflow) {
  EXPECT_EQ(*ParseMemory("9223372036854775807"), std::numeric_limits<int64_t>::max());
  for (const char* big : {"9223372036854775808", "99999999999999999999999", "8589934592gb",
                          "9223372036854775807k", "9007199254740992kb"}) {
    Result<int64_t> r = ParseMemory(big);
    ASSERT_FALSE(r.ok()) << big;
    EXPECT_THAT(r.error().message(), HasSubstr("out of range")) << big;
  }
  EXPECT_EQ(*ParseMemory("8589934591gb"), 8589934591 * kGb);  // largest whole gb
}

TEST(FormatMemory, ShortestExactForm) {
  EXPECT_EQ(FormatMemory(0), "0");
  EXPECT_EQ(FormatMemory(1000), "1000");
  EXPECT_EQ(FormatMemory(1024), "1kb");
  EXPECT_EQ(FormatMemory(512 * kMb), "512mb");
  EXPECT_EQ(FormatMemory(kGb), "1gb");
  EXPECT_EQ(FormatMemory(1536 * kKb), "1536kb");
}

// --- ServerConfig::Set / Get ---------------------------------------------------------------

TEST(ServerConfig, Defaults) {
  ServerConfig c;
  EXPECT_EQ(c.port, 6379);
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.threads, 0);
  EXPECT_EQ(c.maxmemory, 0);
  EXPECT_EQ(c.maxmemory_policy, MaxmemoryPolicy::kNoEviction);
  EXPECT_EQ(c.maxmemory_samples, 5);
  EXPECT_EQ(c.proto_max_bulk_len, 512 * kMb);
  EXPECT_EQ(c.query_buffer_limit, kGb);
  EXPECT_EQ(c.output_buffer_limit, 256 * kMb);
  EXPECT_EQ(c.max_clients, 10000);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.hz, 10);
  EXPECT_EQ(c.timeout, 0);
  EXPECT_GE(c.EffectiveThreads(), 1);
  c.threads = 3;
  EXPECT_EQ(c.EffectiveThreads(), 3);
}

TEST(ServerConfig, SetEveryParameter) {
  ServerConfig c;
  ASSERT_TRUE(c.Set("port", "7000"));
  ASSERT_TRUE(c.Set("bind", "0.0.0.0"));
  ASSERT_TRUE(c.Set("threads", "4"));
  ASSERT_TRUE(c.Set("requirepass", "s3cret"));
  ASSERT_TRUE(c.Set("maxmemory", "100mb"));
  ASSERT_TRUE(c.Set("maxmemory-policy", "allkeys-lru"));
  ASSERT_TRUE(c.Set("maxmemory-samples", "10"));
  ASSERT_TRUE(c.Set("proto-max-bulk-len", "1gb"));
  ASSERT_TRUE(c.Set("client-query-buffer-limit", "2gb"));
  ASSERT_TRUE(c.Set("client-output-buffer-limit", "64mb"));
  ASSERT_TRUE(c.Set("maxclients", "50"));
  ASSERT_TRUE(c.Set("loglevel", "debug"));
  ASSERT_TRUE(c.Set("hz", "100"));
  ASSERT_TRUE(c.Set("timeout", "300"));
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.threads, 4);
  EXPECT_EQ(c.requirepass, "s3cret");
  EXPECT_EQ(c.maxmemory, 100 * kMb);
  EXPECT_EQ(c.maxmemory_policy, MaxmemoryPolicy::kAllKeysLru);
  EXPECT_EQ(c.maxmemory_samples, 10);
  EXPECT_EQ(c.proto_max_bulk_len, kGb);
  EXPECT_EQ(c.query_buffer_limit, 2 * kGb);
  EXPECT_EQ(c.output_buffer_limit, 64 * kMb);
  EXPECT_EQ(c.max_clients, 50);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.hz, 100);
  EXPECT_EQ(c.timeout, 300);
}

TEST(ServerConfig, NamesAreCaseInsensitiveAndAcceptUnderscoresAndAliases) {
  ServerConfig c;
  ASSERT_TRUE(c.Set("MAXMEMORY_POLICY", "VOLATILE-LRU"));
  EXPECT_EQ(c.maxmemory_policy, MaxmemoryPolicy::kVolatileLru);
  ASSERT_TRUE(c.Set("max_clients", "7"));
  EXPECT_EQ(c.max_clients, 7);
  ASSERT_TRUE(c.Set("log-level", "warning"));
  EXPECT_EQ(c.log_level, "warning");
  ASSERT_TRUE(c.Set("query_buffer_limit", "1mb"));
  EXPECT_EQ(c.query_buffer_limit, kMb);
  EXPECT_EQ(ServerConfig::CanonicalName("Client_Output_Buffer_Limit"),
            "client-output-buffer-limit");
  EXPECT_EQ(ServerConfig::CanonicalName("output-buffer-limit"), "client-output-buffer-limit");
  EXPECT_EQ(ServerConfig::CanonicalName("nope"), std::nullopt);
}

TEST(ServerConfig, RedisLikeValidationErrors) {
  ServerConfig c;
  const ServerConfig before = c;
  struct Case {
    const char* name;
    const char* value;
    const char* message;
  };
  const Case cases[] = {
      {"maxmemory", "lots", "argument must be a memory value"},
      {"maxmemory", "-1", "argument must be a memory value"},
      {"port", "abc", "argument couldn't be parsed into an integer"},
      {"port", "", "argument couldn't be parsed into an integer"},
      {"port", "65536", "argument must be between 0 and 65535 inclusive"},
      {"port", "-1", "argument must be between 0 and 65535 inclusive"},
      {"port", "99999999999999999999", "argument must be between 0 and 65535 inclusive"},
      {"maxmemory-samples", "0", "argument must be between 1 and 64 inclusive"},
      {"hz", "501", "argument must be between 1 and 500 inclusive"},
      {"maxclients", "0", "argument must be between 1 and 2147483647 inclusive"},
      {"proto-max-bulk-len", "1000",
       "argument must be between 1048576 and 9223372036854775807 inclusive"},
      {"maxmemory-policy", "volatile-ttl",
       "argument(s) must be one of the following: noeviction, allkeys-lru, volatile-lru, "
       "allkeys-random"},
      {"loglevel", "chatty",
       "argument(s) must be one of the following: debug, info, warning, error"},
      {"bind", "", "argument must be one address (shoal binds a single address)"},
      {"bind", "127.0.0.1 ::1", "argument must be one address (shoal binds a single address)"},
  };
  for (const Case& t : cases) {
    Status s = c.Set(t.name, t.value);
    ASSERT_FALSE(s.ok()) << t.name << "=" << t.value;
    EXPECT_EQ(s.error().code(), Errc::kInvalidValue);
    EXPECT_EQ(s.error().message(), t.message) << t.name << "=" << t.value;
  }
  EXPECT_EQ(c, before) << "a failed Set must not change anything";

  Status unknown = c.Set("maxmemroy", "1");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Errc::kUnknownParameter);
  EXPECT_EQ(unknown.error().message(), "unknown parameter 'maxmemroy'");
}

TEST(ServerConfig, LogLevelAcceptsRedisNames) {
  ServerConfig c;
  ASSERT_TRUE(c.Set("loglevel", "notice"));
  EXPECT_EQ(c.log_level, "info");
  ASSERT_TRUE(c.Set("loglevel", "verbose"));
  EXPECT_EQ(c.log_level, "debug");
  ASSERT_TRUE(c.Set("loglevel", "WARN"));
  EXPECT_EQ(c.log_level, "warning");
}

TEST(ServerConfig, OutputBufferLimitAcceptsRedisSyntax) {
  ServerConfig c;
  ASSERT_TRUE(c.Set("client-output-buffer-limit", "normal 32mb 0 0"));
  EXPECT_EQ(c.output_buffer_limit, 32 * kMb);
  ASSERT_TRUE(c.Set("client-output-buffer-limit", "0"));
  EXPECT_EQ(c.output_buffer_limit, 0);
  Status soft = c.Set("client-output-buffer-limit", "normal 32mb 16mb 60");
  ASSERT_FALSE(soft.ok());
  EXPECT_THAT(soft.error().message(), HasSubstr("soft output buffer limits are not supported"));
  Status replica = c.Set("client-output-buffer-limit", "replica 256mb 64mb 60");
  ASSERT_FALSE(replica.ok());
  EXPECT_THAT(replica.error().message(), HasSubstr("only the normal client class"));
  EXPECT_EQ(c.output_buffer_limit, 0);
}

TEST(ServerConfig, GetFormatsLikeRedisConfigGet) {
  ServerConfig c;
  ASSERT_TRUE(c.Set("maxmemory", "100mb"));
  EXPECT_EQ(c.Get("maxmemory"), "104857600");
  EXPECT_EQ(c.Get("MAXMEMORY"), "104857600");
  EXPECT_EQ(c.Get("maxmemory-policy"), "noeviction");
  EXPECT_EQ(c.Get("proto-max-bulk-len"), "536870912");
  EXPECT_EQ(c.Get("client-query-buffer-limit"), "1073741824");
  EXPECT_EQ(c.Get("client-output-buffer-limit"), "normal 268435456 0 0");
  EXPECT_EQ(c.Get("port"), "6379");
  EXPECT_EQ(c.Get("bind"), "127.0.0.1");
  EXPECT_EQ(c.Get("requirepass"), "");
  EXPECT_EQ(c.Get("loglevel"), "info");
  EXPECT_EQ(c.Get("nope"), std::nullopt);
}

TEST(ServerConfig, GetOutputRoundTripsThroughSet) {
  ServerConfig a;
  ASSERT_TRUE(a.Set("maxmemory", "3gb"));
  ASSERT_TRUE(a.Set("maxmemory-policy", "allkeys-random"));
  ASSERT_TRUE(a.Set("client-output-buffer-limit", "1mb"));
  ASSERT_TRUE(a.Set("requirepass", "pw"));
  ServerConfig b;
  b.port = 1;
  b.hz = 99;
  ASSERT_TRUE(a.Set("seeds", "127.0.0.1:17001, node2:17002"));
  for (const std::string& name : ServerConfig::Names()) {
    // The cookie and the admin token are secrets: CONFIG GET never shows them, so they cannot
    // round-trip.
    if (name == "cookie" || name == "cookie-file" || name == "admin-token" ||
        name == "admin-token-file") {
      continue;
    }
    std::optional<std::string> v = a.Get(name);
    ASSERT_TRUE(v.has_value()) << name;
    ASSERT_TRUE(b.Set(name, *v)) << name << "=" << *v;
  }
  EXPECT_EQ(a, b);
}

TEST(ServerConfig, ClusterSettings) {
  ServerConfig c;
  c.port = 7001;
  EXPECT_EQ(c.EffectiveClusterPort(), 17001);
  EXPECT_EQ(c.EffectiveHttpPort(), 8001);
  ASSERT_TRUE(c.Set("seeds", "10.0.0.1:17001,[::1]:17002"));
  EXPECT_EQ(c.seeds, (std::vector<std::string>{"10.0.0.1:17001", "[::1]:17002"}));
  EXPECT_FALSE(c.Set("seeds", "nohost"));
  EXPECT_FALSE(c.Set("seeds", "h:0"));
  ASSERT_TRUE(c.Set("cookie", "s3cret"));
  EXPECT_EQ(c.Get("cookie"), "(hidden)");
  EXPECT_FALSE(c.Set("cookie-file", "/nonexistent/cookie"));
  EXPECT_FALSE(c.SetAtRuntime("cluster-port", "1"));
  EXPECT_TRUE(c.Set("discovery-dns", "shoal-headless.default.svc:17000"));
  EXPECT_FALSE(c.Set("discovery-dns", "a:1,b:2"));
  EXPECT_EQ(c.Get("cluster-mode"), "forward");
  ASSERT_TRUE(c.SetAtRuntime("cluster-mode", "redirect"));
  EXPECT_TRUE(c.cluster_redirect);
  EXPECT_FALSE(c.Set("cluster-mode", "proxy"));
  EXPECT_EQ(c.Get("cluster-enabled"), "yes");
  EXPECT_FALSE(c.SetAtRuntime("cluster-enabled", "no"));
  ASSERT_TRUE(c.Set("cluster-enabled", "no"));
  EXPECT_FALSE(c.cluster_enabled);
  EXPECT_FALSE(c.Set("cluster-enabled", "maybe"));
}

TEST(ServerConfig, NewCluster) {
  ServerConfig c;
  EXPECT_FALSE(c.new_cluster);
  ASSERT_TRUE(c.Set("new-cluster", "yes"));
  EXPECT_TRUE(c.new_cluster);
  EXPECT_EQ(c.Get("new-cluster"), "yes");
  EXPECT_FALSE(c.Set("new-cluster", "maybe"));
  EXPECT_FALSE(c.SetAtRuntime("new-cluster", "no").ok());
}

TEST(ServerConfig, NamesAndParams) {
  std::vector<std::string> names = ServerConfig::Names();
  EXPECT_EQ(names.size(), 32u);
  EXPECT_THAT(names, ::testing::Contains("client-query-buffer-limit"));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("config-file")));
  std::vector<ParamInfo> params = ServerConfig::Params();
  ASSERT_EQ(params.size(), names.size());
  for (const ParamInfo& p : params) {
    EXPECT_FALSE(p.description.empty()) << p.name;
    EXPECT_EQ(p.env_var, EnvVarName(p.name));
  }
  auto find = [&](std::string_view n) {
    return *std::find_if(params.begin(), params.end(),
                         [&](const ParamInfo& p) { return p.name == n; });
  };
  EXPECT_EQ(find("proto-max-bulk-len").default_value, "512mb");
  EXPECT_EQ(find("client-output-buffer-limit").default_value, "256mb");
  EXPECT_EQ(find("maxmemory").default_value, "0");
  EXPECT_EQ(find("port").default_value, "6379");
  EXPECT_FALSE(find("port").mutable_at_runtime);
  EXPECT_TRUE(find("maxmemory").mutable_at_runtime);
  EXPECT_EQ(EnvVarName("maxmemory-policy"), "SHOAL_MAXMEMORY_POLICY");
  EXPECT_EQ(EnvVarName("client-query-buffer-limit"), "SHOAL_CLIENT_QUERY_BUFFER_LIMIT");
}

TEST(ServerConfig, SuggestsNearbyNames) {
  EXPECT_EQ(ServerConfig::SuggestName("maxmemroy"), "maxmemory");
  EXPECT_EQ(ServerConfig::SuggestName("max-memory-policy"), "maxmemory-policy");
  EXPECT_EQ(ServerConfig::SuggestName("prot"), "port");
  EXPECT_EQ(ServerConfig::SuggestName("something-else-entirely"), std::nullopt);
}

// --- CONFIG SET ----------------------------------------------------------------------------

TEST(ConfigSet, RefusesImmutableParameters) {
  ServerConfig c;
  for (const char* name : {"port", "bind", "threads", "PORT"}) {
    Status s = c.SetAtRuntime(name, "1");
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_EQ(s.error().code(), Errc::kImmutable);
    EXPECT_EQ(ConfigSetErrorText(name, s.error()),
              fmt::format("CONFIG SET failed (possibly related to argument '{}') - can't set "
                          "immutable config",
                          name));
  }
  EXPECT_EQ(c.port, 6379);
  ASSERT_TRUE(c.SetAtRuntime("maxmemory", "1gb"));
  EXPECT_EQ(c.maxmemory, kGb);
}

TEST(ConfigSet, ErrorTextLikeRedis) {
  ServerConfig c;
  Status bad = c.SetAtRuntime("maxmemory", "lots");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ConfigSetErrorText("maxmemory", bad.error()),
            "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a "
            "memory value");
  Status policy = c.SetAtRuntime("maxmemory-policy", "x");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(ConfigSetErrorText("maxmemory-policy", policy.error()),
            "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) "
            "must be one of the following: noeviction, allkeys-lru, volatile-lru, "
            "allkeys-random");
  Status unknown = c.SetAtRuntime("foo", "1");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(ConfigSetErrorText("foo", unknown.error()),
            "Unknown option or number of arguments for CONFIG SET - 'foo'");
}

TEST(MaxmemoryPolicy, RoundTrip) {
  for (MaxmemoryPolicy p : {MaxmemoryPolicy::kNoEviction, MaxmemoryPolicy::kAllKeysLru,
                            MaxmemoryPolicy::kVolatileLru, MaxmemoryPolicy::kAllKeysRandom}) {
    Result<MaxmemoryPolicy> back = MaxmemoryPolicyFromString(ToString(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  EXPECT_EQ(*MaxmemoryPolicyFromString("AllKeys-LRU"), MaxmemoryPolicy::kAllKeysLru);
  EXPECT_FALSE(MaxmemoryPolicyFromString("allkeys-lfu").ok());
}

// --- YAML ----------------------------------------------------------------------------------

TEST(Yaml, AppliesKeysWithDashesOrUnderscores) {
  ServerConfig c;
  Status s = ApplyYaml(c,
                       "# shoal instance\n"
                       "port: 7000\n"
                       "maxmemory: 100mb\n"
                       "maxmemory_policy: allkeys-lru\n"
                       "requirepass: \"p w\"\n"
                       "client-output-buffer-limit: normal 1mb 0 0\n"
                       "loglevel: warning\n",
                       "shoal.yaml");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.maxmemory, 100 * kMb);
  EXPECT_EQ(c.maxmemory_policy, MaxmemoryPolicy::kAllKeysLru);
  EXPECT_EQ(c.requirepass, "p w");
  EXPECT_EQ(c.output_buffer_limit, kMb);
  EXPECT_EQ(c.log_level, "warning");
}

TEST(Yaml, EmptyDocumentAndNullValue) {
  ServerConfig c;
  ASSERT_TRUE(ApplyYaml(c, "", "a.yaml"));
  ASSERT_TRUE(ApplyYaml(c, "# nothing\n", "a.yaml"));
  c.requirepass = "x";
  ASSERT_TRUE(ApplyYaml(c, "requirepass:\n", "a.yaml"));
  EXPECT_EQ(c.requirepass, "");
}

TEST(Yaml, SyntaxErrorHasLineAndColumn) {
  ServerConfig c;
  Status s = ApplyYaml(c, "port: 7000\nbind: [127.0.0.1\n", "shoal.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Errc::kParse);
  EXPECT_THAT(s.error().message(), ::testing::MatchesRegex("shoal\\.yaml:[0-9]+:[0-9]+: invalid "
                                                           "YAML: .+"));
  Status tabs = ApplyYaml(c, "port: 7000\n  bad: : x\n", "f.yaml");
  ASSERT_FALSE(tabs.ok());
  EXPECT_THAT(tabs.error().message(), HasSubstr("f.yaml:2:"));
}

TEST(Yaml, UnknownKeyNamesFileLineAndSuggestion) {
  ServerConfig c;
  Status s = ApplyYaml(c, "port: 7000\nmaxmemroy: 1gb\n", "shoal.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Errc::kUnknownParameter);
  EXPECT_EQ(s.error().message(),
            "shoal.yaml:2:1: unknown parameter 'maxmemroy' (did you mean 'maxmemory'?)");
}

TEST(Yaml, BadValueNamesFileLineAndKey) {
  ServerConfig c;
  Status s = ApplyYaml(c, "port: 7000\nmaxmemory: lots\n", "shoal.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Errc::kInvalidValue);
  EXPECT_EQ(s.error().message(), "shoal.yaml:2:1: maxmemory: argument must be a memory value");
}

TEST(Yaml, ShapeErrors) {
  ServerConfig c;
  Status list = ApplyYaml(c, "- port\n- 7000\n", "a.yaml");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.error().message(), HasSubstr("a.yaml:1:1: expected a mapping"));
  Status nested = ApplyYaml(c, "bind:\n  - 127.0.0.1\n  - ::1\n", "a.yaml");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error().message(), "a.yaml:1:1: bind: expected a single value, not a list");
  Status dup = ApplyYaml(c, "maxmemory: 1mb\nMAXMEMORY: 2mb\n", "a.yaml");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message(), "a.yaml:2:1: MAXMEMORY: 'maxmemory' is given more than once");
}

TEST(Yaml, MissingFile) {
  ServerConfig c;
  Status s = ApplyYamlFile(c, "/nonexistent/shoal.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Errc::kIo);
  EXPECT_EQ(s.error().message(),
            "cannot read config file '/nonexistent/shoal.yaml': No such file or directory");
}

// --- Environment ---------------------------------------------------------------------------

TEST(Env, AppliesShoalVariables) {
  ServerConfig c;
  ASSERT_TRUE(ApplyEnv(c, MapEnv({{"SHOAL_PORT", "7001"},
                                  {"SHOAL_MAXMEMORY", "2gb"},
                                  {"SHOAL_MAXMEMORY_POLICY", "allkeys-lru"},
                                  {"SHOAL_REQUIREPASS", "pw"},
                                  {"SHOAL_THREADS", "2"},
                                  {"SHOAL_BIND", "0.0.0.0"},
                                  {"SHOAL_CLIENT_QUERY_BUFFER_LIMIT", "64mb"},
                                  {"SHOAL_MAXCLIENTS", "5"},
                                  {"SHOAL_UNRELATED", "ignored"},
                                  {"PORT", "1"}})));
  EXPECT_EQ(c.port, 7001);
  EXPECT_EQ(c.maxmemory, 2 * kGb);
  EXPECT_EQ(c.maxmemory_policy, MaxmemoryPolicy::kAllKeysLru);
  EXPECT_EQ(c.requirepass, "pw");
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.query_buffer_limit, 64 * kMb);
  EXPECT_EQ(c.max_clients, 5);
}

TEST(Env, EmptyVariableCountsAsUnset) {
  ServerConfig c;
  ASSERT_TRUE(ApplyEnv(c, MapEnv({{"SHOAL_PORT", ""}})));
  EXPECT_EQ(c.port, 6379);
}

TEST(Env, BadValueNamesVariable) {
  ServerConfig c;
  Status s = ApplyEnv(c, MapEnv({{"SHOAL_MAXMEMORY", "100 mb"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Errc::kInvalidValue);
  EXPECT_EQ(s.error().message(),
            "environment variable SHOAL_MAXMEMORY='100 mb': argument must be a memory value");
  Status p = ApplyEnv(c, MapEnv({{"SHOAL_PORT", "http"}}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message(),
            "environment variable SHOAL_PORT='http': argument couldn't be parsed into an integer");
}

TEST(Env, ProcessEnvReadsRealEnvironment) {
  // Uses a variable no shoal code reads, so the test leaves nothing behind that matters.
  ASSERT_EQ(setenv("SHOAL_CONFIG_TEST_PROBE", "yes", 1), 0);
  EXPECT_EQ(ProcessEnv()("SHOAL_CONFIG_TEST_PROBE"), "yes");
  unsetenv("SHOAL_CONFIG_TEST_PROBE");
  EXPECT_EQ(ProcessEnv()("SHOAL_CONFIG_TEST_PROBE"), std::nullopt);
}

// --- Precedence: defaults < file < env < flags ---------------------------------------------

class TempFile {
 public:
  explicit TempFile(std::string_view text)
      : path_(std::filesystem::temp_directory_path() /
              ("shoal_config_test_" + std::to_string(::getpid()) + "_" +
               std::to_string(counter_++) + ".yaml")) {
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(LoadServerConfig, DefaultsOnly) {
  Result<ServerConfig> c = LoadServerConfig({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, ServerConfig{});
}

TEST(LoadServerConfig, FileThenEnvThenFlags) {
  TempFile file(
      "port: 7000\n"
      "maxmemory: 100mb\n"
      "maxmemory-policy: allkeys-lru\n"
      "requirepass: from-file\n"
      "hz: 20\n"
      "timeout: 30\n");
  ConfigSources src;
  src.config_file = file.path();
  src.env = MapEnv({{"SHOAL_PORT", "7001"},
                    {"SHOAL_MAXMEMORY", "200mb"},
                    {"SHOAL_REQUIREPASS", "from-env"},
                    {"SHOAL_TIMEOUT", "40"}});
  src.overrides = {{"port", "7002", "--port 7002"},
                   {"maxmemory-policy", "volatile-lru", "--maxmemory-policy volatile-lru"},
                   {"timeout", "50", "--set timeout=50"}};
  Result<ServerConfig> c = LoadServerConfig(src);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->port, 7002);                                       // file < env < flag
  EXPECT_EQ(c->timeout, 50);                                      // file < env < --set
  EXPECT_EQ(c->maxmemory, 200 * kMb);                             // file < env
  EXPECT_EQ(c->requirepass, "from-env");                          // file < env
  EXPECT_EQ(c->maxmemory_policy, MaxmemoryPolicy::kVolatileLru);  // file < flag
  EXPECT_EQ(c->hz, 20);                                           // default < file
  EXPECT_EQ(c->maxmemory_samples, 5);                             // default
  EXPECT_EQ(c->config_file, file.path());
}

TEST(LoadServerConfig, AdminTokenFromEveryLayer) {
  TempFile token_file("tok-from-file\n");
  TempFile empty_file("");
  ServerConfig c;
  EXPECT_EQ(c.AdminBind(), "127.0.0.1");  // no token: the admin API stays on loopback
  c.bind = "0.0.0.0";
  EXPECT_EQ(c.AdminBind(), "127.0.0.1");
  ASSERT_TRUE(c.Set("admin-token", "abc"));
  EXPECT_EQ(c.admin_token, "abc");
  EXPECT_EQ(c.Get("admin-token"), "(hidden)");
  EXPECT_EQ(c.AdminBind(), "0.0.0.0");  // with a token it follows bind
  EXPECT_FALSE(c.SetAtRuntime("admin-token", "x"));
  ASSERT_TRUE(c.Set("admin_token_file", token_file.path()));
  EXPECT_EQ(c.admin_token, "tok-from-file");
  EXPECT_EQ(c.Get("admin-token-file"), "");
  Status missing = c.Set("admin-token-file", "/nonexistent/token");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "cannot read admin token file '/nonexistent/token'");
  Status empty = c.Set("admin-token-file", empty_file.path());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "admin token file '" + empty_file.path() + "' is empty");
  EXPECT_EQ(c.admin_token, "tok-from-file");  // unchanged on error

  // defaults < YAML < env < flags
  TempFile yaml("admin-token: from-yaml\n");
  ConfigSources src;
  src.config_file = yaml.path();
  Result<ServerConfig> r = LoadServerConfig(src);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->admin_token, "from-yaml");
  src.env = MapEnv({{"SHOAL_ADMIN_TOKEN", "from-env"}});
  r = LoadServerConfig(src);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->admin_token, "from-env");
  src.env = MapEnv({{"SHOAL_ADMIN_TOKEN_FILE", token_file.path()}});
  r = LoadServerConfig(src);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->admin_token, "tok-from-file");
  src.overrides = {{"admin-token", "from-flag", "--admin-token"}};
  r = LoadServerConfig(src);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->admin_token, "from-flag");
}

TEST(LoadServerConfig, LaterOverrideWins) {
  ConfigSources src;
  src.overrides = {{"port", "1", "--set port=1"}, {"port", "2", "--port 2"}};
  Result<ServerConfig> c = LoadServerConfig(src);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port, 2);
}

TEST(LoadServerConfig, ConfigFileFromEnvironment) {
  TempFile file("port: 7100\n");
  ConfigSources src;
  src.env = MapEnv({{"SHOAL_CONFIG", file.path()}});
  Result<ServerConfig> c = LoadServerConfig(src);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->port, 7100);

  TempFile other("port: 7200\n");
  src.config_file = other.path();  // --config beats SHOAL_CONFIG
  c = LoadServerConfig(src);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->port, 7200);
}

TEST(LoadServerConfig, ErrorsNameTheirSource) {
  TempFile bad_file("port: 7000\nmaxmemory-policy: lfu\n");
  ConfigSources src;
  src.config_file = bad_file.path();
  Result<ServerConfig> c = LoadServerConfig(src);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), bad_file.path() +
                                     ":2:1: maxmemory-policy: argument(s) must be one of the "
                                     "following: noeviction, allkeys-lru, volatile-lru, "
                                     "allkeys-random");

  ConfigSources flags;
  flags.overrides = {{"maxmemroy", "1", "--set maxmemroy=1"}};
  c = LoadServerConfig(flags);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Errc::kUnknownParameter);
  EXPECT_EQ(c.error().message(),
            "--set maxmemroy=1: unknown parameter 'maxmemroy' (did you mean 'maxmemory'?)");

  ConfigSources env;
  env.env = MapEnv({{"SHOAL_HZ", "0"}});
  c = LoadServerConfig(env);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(),
            "environment variable SHOAL_HZ='0': argument must be between 1 and 500 inclusive");

  ConfigSources missing;
  missing.config_file = "/nonexistent/x.yaml";
  c = LoadServerConfig(missing);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Errc::kIo);
}

// --- Replicated maps ----------------------------------------------------------------

TEST(ReplicatedMaps, FlagSyntaxAndChecks) {
  auto ok = ParseReplicatedMaps("users=users:,sessions=sess:");
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0], (ReplicatedMapDecl{"users", "users:"}));
  EXPECT_EQ((*ok)[1], (ReplicatedMapDecl{"sessions", "sess:"}));
  EXPECT_THAT(ParseReplicatedMaps("users").error().message(), HasSubstr("NAME=KEY-PREFIX"));
  EXPECT_THAT(ParseReplicatedMaps("users=").error().message(), HasSubstr("non-empty key prefix"));
  EXPECT_THAT(ParseReplicatedMaps("a b=x").error().message(), HasSubstr("letters, digits"));
  EXPECT_THAT(ParseReplicatedMaps("a=x:,a=y:").error().message(), HasSubstr("declared twice"));
  EXPECT_THAT(ParseReplicatedMaps("a=u:,b=u:x").error().message(), HasSubstr("overlapping"));
  ServerConfig c;
  ASSERT_TRUE(c.Set("replicated-map", "users=users:").ok());  // the alias
  EXPECT_EQ(c.Get("replicated-maps"), "users=users:");
  ASSERT_TRUE(c.Set("replicated-sync-interval", "500").ok());
  EXPECT_EQ(c.replicated_sync_interval_ms, 500);
  EXPECT_FALSE(c.Set("replicated-sync-interval", "1").ok());
}

TEST(ReplicatedMaps, YamlSection) {
  ServerConfig c;
  ASSERT_TRUE(ApplyYaml(c,
                        "port: 7000\n"
                        "maps:\n"
                        "  users: {mode: replicated, prefix: \"users:\"}\n"
                        "  routes:\n"
                        "    mode: replicated\n"
                        "    prefix: \"route:\"\n",
                        "a.yaml"));
  ASSERT_EQ(c.replicated_maps.size(), 2u);
  EXPECT_EQ(c.replicated_maps[0], (ReplicatedMapDecl{"users", "users:"}));
  EXPECT_EQ(c.replicated_maps[1], (ReplicatedMapDecl{"routes", "route:"}));
  ServerConfig d;
  Status st = ApplyYaml(d, "maps:\n  users: {mode: sharded, prefix: x}\n", "b.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message(), HasSubstr("b.yaml:2"));
  EXPECT_THAT(st.error().message(), HasSubstr("mode must be 'replicated'"));
  st = ApplyYaml(d, "maps:\n  users: {mode: replicated, prefx: x}\n", "b.yaml");
  EXPECT_THAT(st.error().message(), HasSubstr("unknown field 'prefx'"));
  st = ApplyYaml(d, "maps: [1, 2]\n", "b.yaml");
  EXPECT_THAT(st.error().message(), HasSubstr("expected a mapping"));
  st = ApplyYaml(
      d, "maps:\n  a: {mode: replicated, prefix: 'k:'}\n  b: {mode: replicated, prefix: 'k:'}\n",
      "b.yaml");
  EXPECT_THAT(st.error().message(), HasSubstr("overlapping"));
}

}  // namespace
}  // namespace shoal::config
