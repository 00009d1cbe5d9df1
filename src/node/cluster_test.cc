// The node's files in its data dir: the remembered peers file (round trip, and refusal of a
// corrupt or truncated file with a message, never a crash) and the requirepass fingerprint.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "node/cluster.h"

namespace shoal::node {
namespace {

class PeersFile : public ::testing::Test {
 protected:
  PeersFile() {
    dir_ = std::filesystem::temp_directory_path() /
           ("shoal-peers-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~PeersFile() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) {
    std::ofstream f(dir_ / kPeersFileName, std::ios::binary | std::ios::trunc);
    f << text;
  }
  std::string dir() const { return dir_.string(); }

  std::filesystem::path dir_;
};

TEST_F(PeersFile, MissingFileIsNoPeers) {
  auto peers = LoadPeers(dir());
  ASSERT_TRUE(peers.ok()) << peers.error().message();
  EXPECT_TRUE(peers->empty());
  auto none = LoadPeers("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(PeersFile, RoundTrip) {
  const std::vector<Endpoint> want = {
      {"127.0.0.1", 17001}, {"node-2.example", 17002}, {"::1", 17003}};
  ASSERT_TRUE(SavePeers(dir(), want).ok());
  auto got = LoadPeers(dir());
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(*got, want);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "peers.tmp"));
  // Rewritten in place, also to fewer peers.
  ASSERT_TRUE(SavePeers(dir(), {want[1]}).ok());
  got = LoadPeers(dir());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, std::vector<Endpoint>{want[1]});
}

TEST_F(PeersFile, CorruptOrTruncatedFilesAreRefusedWithAMessage) {
  const std::vector<std::string> bad = {
      "",                                                       // empty
      "garbage\n",                                              // no header
      "shoal-peers 1\n127.0.0.1:17001\n",                       // truncated: no end line
      "shoal-peers 1\n127.0.0.1:17001\n127.0.0.1:170",          // cut in the middle
      "shoal-peers 1\n127.0.0.1:17001\nend 2\n",                // count mismatch
      "shoal-peers 1\nnot an address\nend 1\n",                 // bad address
      "shoal-peers 1\n127.0.0.1:0\nend 1\n",                    // port 0
      "shoal-peers 1\nend 0\n127.0.0.1:17001\n",                // text after the end
      "shoal-peers 1\n127.0.0.1:17001\nend x\n",                // bad count
      std::string("shoal-peers 1\n\0\xff\xfe:1\nend 1\n", 26),  // binary junk
  };
  for (const std::string& text : bad) {
    Write(text);
    auto got = LoadPeers(dir());
    ASSERT_FALSE(got.ok()) << "accepted: " << testing::PrintToString(text);
    EXPECT_NE(got.error().message().find("peers"), std::string::npos) << got.error().message();
    EXPECT_NE(got.error().message().find("remove it"), std::string::npos) << got.error().message();
  }
}

TEST(RequirepassFingerprint, NeverThePasswordAndDependsOnTheCookie) {
  EXPECT_EQ(RequirepassFingerprint("cookie", ""), "none");
  const std::string a = RequirepassFingerprint("cookie", "secret");
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find("secret"), std::string::npos);
  EXPECT_EQ(a, RequirepassFingerprint("cookie", "secret"));
  EXPECT_NE(a, RequirepassFingerprint("cookie", "secret2"));
  EXPECT_NE(a, RequirepassFingerprint("other-cookie", "secret"));
  EXPECT_NE(a, "none");
}

}  // namespace
}  // namespace shoal::node
