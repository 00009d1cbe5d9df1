// Redis Cluster replies (cluster_replies.h) against a hand-made bucket map and member table, in
// RESP2 and RESP3, checked byte for byte against Redis 7.0's layouts; node names; the command
// table.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands/cluster_names.h"
#include "commands/cluster_replies.h"
#include "engine/bucket_plane.h"
#include "engine/command.h"
#include "membership/types.h"
#include "resp/reply_builder.h"
#include "sharding/bucket_map.h"

namespace shoal::commands {

using namespace engine;  // NOLINT

using namespace engine;  // NOLINT: the families are written in the engine's vocabulary
namespace {

using membership::Member;
using membership::MemberId;
using membership::MemberState;
using membership::MemberTable;
using sharding::BucketMap;
using sharding::BucketState;
using sharding::SetInfo;

std::string Int(int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::string Arr(size_t n) { return "*" + std::to_string(n) + "\r\n"; }
// A map header of n pairs in protocol `proto`.
std::string Map(size_t n, int proto) {
  return proto == 3 ? "%" + std::to_string(n) + "\r\n" : Arr(2 * n);
}

const MemberId kA(0xa, 1), kB(0xb, 2), kC(0xc, 3), kD(0xd, 4), kE(0xe, 5), kF(0xf, 6);

SetInfo Set(uint64_t id, const MemberId& leader, int n) {
  SetInfo s;
  s.id = ReplicaSetId(id);
  s.leader = leader;
  s.cluster = Endpoint{"10.0.0." + std::to_string(n), static_cast<uint16_t>(17000 + n)};
  s.client = Endpoint{"10.0.0." + std::to_string(n), static_cast<uint16_t>(7000 + n)};
  return s;
}

void AssignRange(BucketMap& m, uint32_t first, uint32_t last, uint16_t set) {
  for (uint32_t b = first; b <= last; ++b) m.Assign(BucketId(static_cast<uint16_t>(b)), set);
}

// Three sets over seven ranges:
//   A: 0-99, 200-5460, 16000   B: 100-199, 5461-10922   C: 10923-15999, 16001-16383
BucketMap ThreeSets() {
  BucketMap m;
  m.set_epoch(Epoch(7));
  const uint16_t a = m.AddSet(Set(1, kA, 1));
  const uint16_t b = m.AddSet(Set(2, kB, 2));
  const uint16_t c = m.AddSet(Set(3, kC, 3));
  AssignRange(m, 0, 99, a);
  AssignRange(m, 100, 199, b);
  AssignRange(m, 200, 5460, a);
  AssignRange(m, 5461, 10922, b);
  AssignRange(m, 10923, 15999, c);
  AssignRange(m, 16000, 16000, a);
  AssignRange(m, 16001, 16383, c);
  return m;
}

Member MakeMember(const MemberId& id, int n, MemberState state, uint16_t client_port) {
  Member m;
  m.record.id = id;
  m.record.address = Endpoint{"10.0.0." + std::to_string(n), static_cast<uint16_t>(17000 + n)};
  m.record.client_port = client_port;
  m.state = state;
  return m;
}

// A, B, C lead the sets; D is alive without buckets; E is dead; F has no client port.
std::shared_ptr<const MemberTable> Members(MemberState a_state = MemberState::kAlive,
                                           MemberState c_state = MemberState::kAlive) {
  std::vector<Member> ms = {
      MakeMember(kA, 1, a_state, 7001),
      MakeMember(kB, 2, MemberState::kAlive, 7002),
      MakeMember(kC, 3, c_state, 7003),
      MakeMember(kD, 4, MemberState::kAlive, 7004),
      MakeMember(kE, 5, MemberState::kDead, 7005),
      MakeMember(kF, 6, MemberState::kAlive, 0),
  };
  return std::make_shared<const MemberTable>(12, kB, std::move(ms));
}

class ClusterReplies : public ::testing::Test {
 protected:
  ClusterReplies() {
    view.map = &map;
    view.members = members.get();
    view.self = kB;
    view.self_client = Endpoint{"127.0.0.1", 6379};
  }
  template <typename F>
  std::string Reply(F&& write, int proto) {
    std::string out;
    resp::ReplyBuilder rb(&out, proto);
    write(view, rb);
    return out;
  }

  BucketMap map = ThreeSets();
  std::shared_ptr<const MemberTable> members = Members();
  ClusterView view;
};

std::string SlotsEntry(int first, int last, int n, const MemberId& id, int proto) {
  return Arr(3) + Int(first) + Int(last) + Arr(4) + Bulk("10.0.0." + std::to_string(n)) +
         Int(7000 + n) + Bulk(NodeName(id)) + Map(0, proto);
}

TEST_F(ClusterReplies, SlotsRanges) {
  for (int proto : {2, 3}) {
    const std::string want =
        Arr(7) + SlotsEntry(0, 99, 1, kA, proto) + SlotsEntry(100, 199, 2, kB, proto) +
        SlotsEntry(200, 5460, 1, kA, proto) + SlotsEntry(5461, 10922, 2, kB, proto) +
        SlotsEntry(10923, 15999, 3, kC, proto) + SlotsEntry(16000, 16000, 1, kA, proto) +
        SlotsEntry(16001, 16383, 3, kC, proto);
    EXPECT_EQ(Reply(WriteClusterSlots, proto), want) << "RESP" << proto;
  }
}

std::string ShardEntry(const std::vector<int>& slots, int n, const MemberId& id,
                       std::string_view health, int proto) {
  std::string s = Map(2, proto) + Bulk("slots") + Arr(slots.size());
  for (int b : slots) s += Int(b);
  const std::string ip = "10.0.0." + std::to_string(n);
  s += Bulk("nodes") + Arr(1) + Map(7, proto);
  s += Bulk("id") + Bulk(NodeName(id));
  s += Bulk("port") + Int(7000 + n);
  s += Bulk("ip") + Bulk(ip);
  s += Bulk("endpoint") + Bulk(ip);
  s += Bulk("role") + Bulk("master");
  s += Bulk("replication-offset") + Int(0);
  s += Bulk("health") + Bulk(health);
  return s;
}

TEST_F(ClusterReplies, ShardsWithAMasterWithoutSlots) {
  for (int proto : {2, 3}) {
    const std::string want = Arr(4) +
                             ShardEntry({0, 99, 200, 5460, 16000, 16000}, 1, kA, "online", proto) +
                             ShardEntry({100, 199, 5461, 10922}, 2, kB, "online", proto) +
                             ShardEntry({10923, 15999, 16001, 16383}, 3, kC, "online", proto) +
                             ShardEntry({}, 4, kD, "online", proto);
    EXPECT_EQ(Reply(WriteClusterShards, proto), want) << "RESP" << proto;
  }
}

TEST_F(ClusterReplies, ShardsHealthOfADeadLeader) {
  members = Members(MemberState::kDead);
  view.members = members.get();
  const std::string want = Arr(4) + ShardEntry({0, 99, 200, 5460, 16000, 16000}, 1, kA, "fail", 3) +
                           ShardEntry({100, 199, 5461, 10922}, 2, kB, "online", 3) +
                           ShardEntry({10923, 15999, 16001, 16383}, 3, kC, "online", 3) +
                           ShardEntry({}, 4, kD, "online", 3);
  EXPECT_EQ(Reply(WriteClusterShards, 3), want);
}

TEST_F(ClusterReplies, Nodes) {
  const std::string want =
      NodeName(kA) + " 10.0.0.1:7001@17001 master - 0 0 7 connected 0-99 200-5460 16000\n" +
      NodeName(kB) + " 10.0.0.2:7002@17002 myself,master - 0 0 7 connected 100-199 5461-10922\n" +
      NodeName(kC) + " 10.0.0.3:7003@17003 master - 0 0 7 connected 10923-15999 16001-16383\n" +
      NodeName(kD) + " 10.0.0.4:7004@17004 master - 0 0 7 connected\n";
  EXPECT_EQ(ClusterNodesText(view), want);
}

TEST_F(ClusterReplies, NodesFlagsFailingLeaders) {
  members = Members(MemberState::kDead, MemberState::kSuspect);
  view.members = members.get();
  const std::string text = ClusterNodesText(view);
  EXPECT_NE(text.find(NodeName(kA) + " 10.0.0.1:7001@17001 master,fail - 0 0 7 disconnected 0-99"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(NodeName(kC) + " 10.0.0.3:7003@17003 master,fail? - 0 0 7 connected 10923"),
            std::string::npos)
      << text;
}

TEST_F(ClusterReplies, NodesShowsMyMigratingAndImportingBuckets) {
  auto plane = std::make_unique<BucketPlane>();
  plane->Set(150, BucketState::kSending, kA);
  plane->Set(11000, BucketState::kReceiving, kC);
  plane->Set(42, BucketState::kActive, MemberId());
  view.plane = plane.get();
  const std::string text = ClusterNodesText(view);
  const std::string mine = NodeName(kB) +
                           " 10.0.0.2:7002@17002 myself,master - 0 0 7 connected 100-199 "
                           "5461-10922 [150->-" +
                           NodeName(kA) + "] [11000-<-" + NodeName(kC) + "]\n";
  EXPECT_NE(text.find(mine), std::string::npos) << text;
}

TEST_F(ClusterReplies, Info) {
  EXPECT_EQ(ClusterInfoText(view),
            "cluster_state:ok\r\n"
            "cluster_slots_assigned:16384\r\n"
            "cluster_slots_ok:16384\r\n"
            "cluster_slots_pfail:0\r\n"
            "cluster_slots_fail:0\r\n"
            "cluster_known_nodes:4\r\n"
            "cluster_size:3\r\n"
            "cluster_current_epoch:7\r\n"
            "cluster_my_epoch:7\r\n"
            "cluster_stats_messages_sent:0\r\n"
            "cluster_stats_messages_received:0\r\n"
            "total_cluster_links_buffer_limit_exceeded:0\r\n");
}

TEST_F(ClusterReplies, InfoCountsFailingAndUnownedBuckets) {
  members = Members(MemberState::kDead, MemberState::kSuspect);
  view.members = members.get();
  map.Assign(BucketId(5), BucketMap::kNoOwner);  // one of A's buckets loses its owner
  const int a_buckets = 100 + (5460 - 200 + 1) + 1 - 1;
  const int c_buckets = (15999 - 10923 + 1) + (16383 - 16001 + 1);
  const std::string text = ClusterInfoText(view);
  EXPECT_NE(text.find("cluster_state:fail\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_assigned:16383\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_ok:" + std::to_string(16383 - a_buckets - c_buckets) + "\r\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cluster_slots_pfail:" + std::to_string(c_buckets) + "\r\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cluster_slots_fail:" + std::to_string(a_buckets) + "\r\n"),
            std::string::npos)
      << text;
}

// A dead owner fails its buckets and the cluster, even when every bucket is still assigned (the
// map still names it): its buckets answer nothing until they are adopted.
TEST_F(ClusterReplies, InfoFailsWhileAnOwnerIsDead) {
  members = Members(MemberState::kDead);
  view.members = members.get();
  const int a_buckets = 100 + (5460 - 200 + 1) + 1;
  const std::string text = ClusterInfoText(view);
  EXPECT_NE(text.find("cluster_state:fail\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_assigned:16384\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_ok:" + std::to_string(16384 - a_buckets) + "\r\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cluster_slots_pfail:0\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_fail:" + std::to_string(a_buckets) + "\r\n"),
            std::string::npos)
      << text;
}

// A suspect owner (PFAIL) still serves: the state stays ok, as in Redis.
TEST_F(ClusterReplies, InfoStaysOkWhileAnOwnerIsOnlySuspect) {
  members = Members(MemberState::kAlive, MemberState::kSuspect);
  view.members = members.get();
  const std::string text = ClusterInfoText(view);
  EXPECT_NE(text.find("cluster_state:ok\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_fail:0\r\n"), std::string::npos) << text;
}

// An owner the member table does not know (forgotten, or named by a map from elsewhere) is no
// live owner either.
TEST_F(ClusterReplies, InfoFailsTheBucketsOfAnUnknownOwner) {
  std::vector<Member> ms = {MakeMember(kA, 1, MemberState::kAlive, 7001),
                            MakeMember(kB, 2, MemberState::kAlive, 7002)};
  members = std::make_shared<const MemberTable>(3, kB, std::move(ms));
  view.members = members.get();
  const int c_buckets = (15999 - 10923 + 1) + (16383 - 16001 + 1);
  const std::string text = ClusterInfoText(view);
  EXPECT_NE(text.find("cluster_state:fail\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster_slots_fail:" + std::to_string(c_buckets) + "\r\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cluster_slots_ok:" + std::to_string(16384 - c_buckets) + "\r\n"),
            std::string::npos)
      << text;
}

TEST_F(ClusterReplies, BeforeAnyMapAndWithoutControlPlane) {
  const BucketMap empty;
  view.map = &empty;
  view.members = nullptr;
  view.self = MemberId();
  view.self_cport = 16379;
  const std::string zeros(40, '0');
  EXPECT_EQ(ClusterNodesText(view),
            zeros + " 127.0.0.1:6379@16379 myself,master - 0 0 0 connected\n");
  EXPECT_EQ(Reply(WriteClusterSlots, 2), Arr(0));
  EXPECT_EQ(Reply(WriteClusterShards, 2),
            Arr(1) + Arr(4) + Bulk("slots") + Arr(0) + Bulk("nodes") + Arr(1) + Arr(14) +
                Bulk("id") + Bulk(zeros) + Bulk("port") + Int(6379) + Bulk("ip") +
                Bulk("127.0.0.1") + Bulk("endpoint") + Bulk("127.0.0.1") + Bulk("role") +
                Bulk("master") + Bulk("replication-offset") + Int(0) + Bulk("health") +
                Bulk("online"));
  const std::string info = ClusterInfoText(view);
  EXPECT_EQ(info.substr(0, info.find("cluster_stats")),
            "cluster_state:fail\r\n"
            "cluster_slots_assigned:0\r\n"
            "cluster_slots_ok:0\r\n"
            "cluster_slots_pfail:0\r\n"
            "cluster_slots_fail:0\r\n"
            "cluster_known_nodes:1\r\n"
            "cluster_size:0\r\n"
            "cluster_current_epoch:0\r\n"
            "cluster_my_epoch:0\r\n");
}

TEST_F(ClusterReplies, SelfWithoutBucketsComesFromTheMemberTable) {
  view.self = kD;
  const std::string text = ClusterNodesText(view);
  EXPECT_NE(text.find(NodeName(kD) + " 10.0.0.4:7004@17004 myself,master - 0 0 7 connected\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(NodeName(kB) + " 10.0.0.2:7002@17002 master - 0 0 7 connected"),
            std::string::npos)
      << text;
}

TEST_F(ClusterReplies, Help) {
  std::string out;
  resp::ReplyBuilder rb(&out, 2);
  WriteClusterHelp(rb);
  EXPECT_EQ(
      out.rfind(Arr(21) + "+CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n",
                0),
      0u)
      << out;
  EXPECT_NE(out.find("+HELP\r\n+    Print this help.\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 30), "+HELP\r\n+    Print this help.\r\n");
}

TEST(ClusterInfoSection, EnabledAndDisabled) {
  BucketMap map = ThreeSets();
  auto plane = std::make_unique<BucketPlane>();
  EXPECT_EQ(InfoClusterSection(false, false, map, *plane, 3),
            "# Cluster\r\ncluster_enabled:0\r\n\r\n");
  for (uint16_t b = 0; b < 10; ++b) plane->Set(b, BucketState::kActive, MemberId());
  plane->Set(10, BucketState::kSending, kA);
  plane->Set(11, BucketState::kReceiving, kA);
  plane->Set(12, BucketState::kGarbage, kA);
  EXPECT_EQ(InfoClusterSection(true, true, map, *plane, 42),
            "# Cluster\r\ncluster_enabled:1\r\ncluster_mode:redirect\r\ncluster_epoch:7\r\n"
            "buckets_served:11\r\nbuckets_sending:1\r\nbuckets_receiving:1\r\nkeys:42\r\n\r\n");
  EXPECT_NE(InfoClusterSection(true, false, map, *plane, 0).find("cluster_mode:forward\r\n"),
            std::string::npos);
}

TEST(ClusterNames, FortyHexDigitsThatMapBack) {
  const std::string name = NodeName(kA);
  ASSERT_EQ(name.size(), 40u);
  EXPECT_EQ(name.substr(0, 32), kA.ToString());
  EXPECT_EQ(name.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(NodeName(kA).substr(32), NodeName(kB).substr(32));
  EXPECT_EQ(NodeName(kA), name);  // stable
  EXPECT_EQ(ParseNodeName(name), kA);
  std::string bad = name;
  bad[39] = bad[39] == '0' ? '1' : '0';
  EXPECT_EQ(ParseNodeName(bad), std::nullopt);
  EXPECT_EQ(ParseNodeName(name.substr(0, 32)), std::nullopt);
  EXPECT_EQ(NodeName(MemberId()), std::string(40, '0'));
  EXPECT_EQ(ParseNodeName(std::string(40, '0')), MemberId());
}

TEST(ClusterCommandTable, Entries) {
  for (std::string_view name : {"CLUSTER", "asking", "ReadOnly", "readwrite"}) {
    const CommandSpec* s = FindCommand(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->group, "cluster");
    EXPECT_EQ(s->first_key, 0);
    EXPECT_EQ(s->key_handler, nullptr);
    EXPECT_NE(s->conn_handler, nullptr);
    EXPECT_TRUE(s->flags & kCmdConnection);
  }
  EXPECT_EQ(FindCommand("cluster")->arity, -2);
  EXPECT_EQ(FindCommand("asking")->arity, 1);
}

}  // namespace
}  // namespace shoal::commands
