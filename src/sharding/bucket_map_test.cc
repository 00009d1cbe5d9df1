#include "sharding/bucket_map.h"

#include <gtest/gtest.h>

#include "common/rng.h"
#include "sharding/core.h"
#include "sharding/messages.h"

namespace shoal::sharding {
namespace {

using membership::MemberId;

BucketMap TwoSetMap() {
  BucketMap m;
  m.set_epoch(Epoch(7));
  const uint16_t a =
      m.AddSet(SetInfo{ReplicaSetId(11), 1, MemberId(1, 2), Endpoint{"127.0.0.1", 17001},
                       Endpoint{"127.0.0.1", 7001}, 5});
  const uint16_t b =
      m.AddSet(SetInfo{ReplicaSetId(22), 2, MemberId(3, 4), Endpoint{"127.0.0.2", 17002},
                       Endpoint{"127.0.0.2", 7002}, 6});
  for (uint32_t i = 0; i < 8000; ++i) m.Assign(BucketId(static_cast<uint16_t>(i)), a);
  for (uint32_t i = 8000; i < 16000; ++i) m.Assign(BucketId(static_cast<uint16_t>(i)), b);
  return m;
}

TEST(BucketMap, RangesAndCounts) {
  BucketMap m = TwoSetMap();
  EXPECT_EQ(m.CountOf(0), 8000u);
  EXPECT_EQ(m.CountOf(1), 8000u);
  EXPECT_EQ(m.Unowned(), 384u);
  auto r = m.Ranges();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].first, 0);
  EXPECT_EQ(r[0].last, 7999);
  EXPECT_EQ(r[1].first, 8000);
  EXPECT_EQ(r[1].last, 15999);
  EXPECT_EQ(m.OwnerOf(BucketId(16383)), nullptr);
  EXPECT_EQ(m.OwnerOf(BucketId(5))->id, ReplicaSetId(11));
}

TEST(BucketMap, EncodeDecodeRoundTrip) {
  BucketMap m = TwoSetMap();
  auto d = BucketMap::Decode(m.Encode());
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->epoch(), Epoch(7));
  EXPECT_TRUE(d->SameAssignment(m));
  EXPECT_EQ(d->sets(), m.sets());
}

TEST(BucketMap, DecodeRejectsGarbageAndTruncation) {
  const std::string good = TwoSetMap().Encode();
  for (size_t n = 0; n < good.size(); n += 7) {
    EXPECT_FALSE(BucketMap::Decode(good.substr(0, n)).ok()) << n;
  }
  SeededRng rng(5);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    bad[rng.Uniform(bad.size())] = static_cast<char>(rng.Next());
    (void)BucketMap::Decode(bad);  // must not crash; may or may not decode
  }
}

TEST(Messages, EveryKindRoundTrips) {
  ReportMsg rep;
  rep.epoch = Epoch(3);
  rep.leaving = true;
  rep.active.set(0);
  rep.active.set(16383);
  rep.sending.emplace_back(uint16_t{5}, MemberId(9, 9));
  rep.receiving = {6, 7};
  rep.garbage.emplace_back(uint16_t{8}, MemberId(7, 7));
  rep.send_batches = 1;
  rep.recv_batches = 2;
  rep.keys = 12345;
  std::vector<Message> all = {
      PollMsg{MemberId(1, 1)},
      rep,
      MapMsg{TwoSetMap()},
      AdoptMsg{MemberId(1, 1), {1, 2, 3}},
      DropMsg{MemberId(1, 1), {4}},
      MigrateMsg{MemberId(1, 1), MemberId(2, 2), Endpoint{"h", 1}, {10, 11}},
      TransferMsg{42, {10, 11}, true, std::string("chunk\0data", 10)},
      CommitMsg{42},
      AbortMsg{43},
      QueryMsg{44},
      AckMsg{false, "busy", {1}},
  };
  for (const Message& m : all) {
    auto d = Decode(Encode(m));
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_EQ(d->index(), m.index());
  }
  auto d = Decode(Encode(rep));
  const auto& r = std::get<ReportMsg>(*d);
  EXPECT_EQ(r.epoch, Epoch(3));
  EXPECT_TRUE(r.leaving);
  EXPECT_EQ(r.active.count(), 2u);
  EXPECT_TRUE(r.active.test(16383));
  EXPECT_EQ(r.sending.size(), 1u);
  EXPECT_EQ(r.receiving, (std::vector<uint16_t>{6, 7}));
  EXPECT_EQ(r.keys, 12345u);
  ASSERT_EQ(r.garbage.size(), 1u);
  EXPECT_EQ(r.garbage[0].first, 8);
  EXPECT_EQ(r.garbage[0].second, MemberId(7, 7));
  auto t = std::get<TransferMsg>(*Decode(Encode(all[6])));
  EXPECT_EQ(t.chunk, std::string("chunk\0data", 10));
  EXPECT_EQ(t.buckets, (std::vector<uint16_t>{10, 11}));
}

TEST(Messages, BadInputIsAnError) {
  EXPECT_FALSE(Decode("").ok());
  EXPECT_FALSE(Decode("\x91\xcc\xff").ok());  // unknown kind
  EXPECT_FALSE(Decode("\x92\x01\x01").ok());  // poll with a bad id
  // A bucket id out of range.
  AdoptMsg a{MemberId(1, 1), {1}};
  std::string enc = Encode(a);
  enc[enc.size() - 2] = static_cast<char>(0x7F);
  enc[enc.size() - 1] = static_cast<char>(0xFF);
  EXPECT_FALSE(Decode(enc).ok());
}

TEST(Messages, TransferPiecesRoundTripAndAreRangeChecked) {
  TransferMsg piece{7, {}, false, std::string(100, 'x')};
  piece.total = 1000;
  piece.offset = 900;
  auto d = Decode(Encode(piece));
  ASSERT_TRUE(d.ok()) << d.error().message();
  const auto& t = std::get<TransferMsg>(*d);
  EXPECT_EQ(t.total, 1000u);
  EXPECT_EQ(t.offset, 900u);
  EXPECT_EQ(t.chunk, std::string(100, 'x'));
  // A whole chunk keeps total 0 (and the short form).
  auto whole = std::get<TransferMsg>(*Decode(Encode(TransferMsg{7, {1}, true, "abc"})));
  EXPECT_EQ(whole.total, 0u);
  // A piece reaching past its chunk's end does not decode.
  piece.offset = 901;
  EXPECT_FALSE(Decode(Encode(piece)).ok());
}

membership::Member Row(uint64_t id, membership::MemberState state, bool leaving) {
  membership::Member m;
  m.record.id = MemberId(id, id);
  m.state = state;
  if (leaving) m.record.labels[std::string(kLeavingLabel)] = "1";
  return m;
}

TEST(Leave, TakersAreOtherLiveMembersThatAreNotLeaving) {
  using membership::MemberState;
  membership::MemberTable view(
      1, MemberId(1, 1),
      {Row(1, MemberState::kAlive, true), Row(2, MemberState::kAlive, false),
       Row(3, MemberState::kSuspect, false), Row(4, MemberState::kAlive, true),
       Row(5, MemberState::kDead, false), Row(6, MemberState::kLeft, false)});
  EXPECT_EQ(LeaveTakers(view, MemberId(1, 1)),
            (std::vector<MemberId>{MemberId(2, 2), MemberId(3, 3)}));
  // Everyone else leaving or gone: nobody.
  membership::MemberTable all_leaving(
      2, MemberId(1, 1),
      {Row(1, MemberState::kAlive, true), Row(4, MemberState::kAlive, true),
       Row(5, MemberState::kDead, false)});
  EXPECT_TRUE(LeaveTakers(all_leaving, MemberId(1, 1)).empty());
}

TEST(Leave, FormatBuckets) {
  EXPECT_EQ(FormatBuckets({}), "none");
  EXPECT_EQ(FormatBuckets({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(FormatBuckets({1, 3, 5, 7}, 2), "1,3,... (2 more)");
}

TEST(Leave, NextStep) {
  // Drained wins; then force; a node with a taker keeps waiting however long it takes.
  EXPECT_EQ(NextLeaveStep(true, true, 0, 0), LeaveStep::kDrained);
  EXPECT_EQ(NextLeaveStep(false, true, 2, 1), LeaveStep::kForced);
  EXPECT_EQ(NextLeaveStep(false, false, 1, 0), LeaveStep::kWait);
  // No taker: stop, but only once the migrations in flight have ended.
  EXPECT_EQ(NextLeaveStep(false, false, 0, 1), LeaveStep::kWait);
  EXPECT_EQ(NextLeaveStep(false, false, 0, 0), LeaveStep::kNoTaker);
}

}  // namespace
}  // namespace shoal::sharding
