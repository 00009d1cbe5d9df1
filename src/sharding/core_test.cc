// ShardingCore's receiving end of a migration, driven directly: chunks that come in pieces are
// assembled before the store sees them, out-of-order pieces and oversized chunks are refused,
// and a commit waits for an incomplete chunk.
#include "sharding/core.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace shoal::sharding {
namespace {

using membership::MemberId;

class FakeIo final : public CoreIo {
 public:
  void Call(const MemberId&, const Endpoint&, std::string, int64_t, ReplyFn) override {}
  void SetStates(const std::vector<uint16_t>&, BucketState, const MemberId&) override {}
  void PublishMap(std::shared_ptr<const BucketMap>) override {}
  void ReadBuckets(const std::vector<uint16_t>&, ChunksFn) override {}
  void ApplyChunk(std::string chunk, DoneFn done) override {
    applied.push_back(std::move(chunk));
    pending.push_back(std::move(done));
  }
  void DropBuckets(const std::vector<uint16_t>&) override {}
  uint64_t KeyCount() override { return 0; }

  std::vector<std::string> applied;
  std::vector<DoneFn> pending;
};

class Receiver : public ::testing::Test {
 protected:
  Receiver() : core_(MemberId(9, 9), Options(), &io_) {}
  static CoreOptions Options() {
    CoreOptions o;
    o.max_assembly_bytes = 1000;
    return o;
  }
  // Sends `m` from the source; returns the answer (ok, or the refusal's reason). An answer that
  // waits for the store counts as "pending".
  std::string Send(const Message& m) {
    // The answer may come later (after the store): it writes to a string that outlives the call.
    auto out = std::make_shared<std::string>("pending");
    core_.OnRequest(source_, Encode(m), [out](Result<std::string> r) {
      if (!r.ok()) {
        *out = "error: " + r.error().message();
        return;
      }
      auto d = Decode(*r);
      const auto& ack = std::get<AckMsg>(*d);
      *out = ack.ok ? "ok" : ack.detail;
    });
    return *out;
  }
  static TransferMsg Piece(bool first, std::string bytes, uint64_t total, uint64_t offset) {
    TransferMsg t{1, first ? std::vector<uint16_t>{5, 6} : std::vector<uint16_t>{}, first,
                  std::move(bytes)};
    t.total = total;
    t.offset = offset;
    return t;
  }

  FakeIo io_;
  ShardingCore core_;
  MemberId source_{1, 1};
};

TEST_F(Receiver, AssemblesPiecesBeforeTheStoreSeesThem) {
  EXPECT_EQ(Send(Piece(true, "aaaa", 10, 0)), "ok");
  EXPECT_EQ(core_.state(5), BucketState::kReceiving);
  EXPECT_EQ(Send(Piece(false, "bbbb", 10, 4)), "ok");
  EXPECT_TRUE(io_.applied.empty());  // nothing stored while the chunk is incomplete
  // A commit now would make a half-received key's buckets ACTIVE: refused.
  EXPECT_NE(Send(CommitMsg{1}), "ok");
  EXPECT_EQ(Send(Piece(false, "cc", 10, 8)), "pending");  // the ack waits for the store
  ASSERT_EQ(io_.applied.size(), 1u);
  EXPECT_EQ(io_.applied[0], "aaaabbbbcc");
  io_.pending[0](Status::Ok());
  // Small chunks after it are still whole chunks, applied one by one.
  EXPECT_EQ(Send(TransferMsg{1, {}, false, "small"}), "pending");
  ASSERT_EQ(io_.applied.size(), 2u);
  EXPECT_EQ(io_.applied[1], "small");
  io_.pending[1](Status::Ok());
  EXPECT_EQ(Send(CommitMsg{1}), "ok");
  EXPECT_EQ(core_.state(5), BucketState::kActive);
  EXPECT_EQ(core_.counters().chunks_assembled, 1u);
}

TEST_F(Receiver, RefusesAChunkOverItsLimitUpFront) {
  const std::string why = Send(Piece(true, "aaaa", 1001, 0));
  EXPECT_NE(why.find("exceeds this node's limit of 1000 bytes"), std::string::npos) << why;
  EXPECT_TRUE(io_.applied.empty());
}

TEST_F(Receiver, RefusesPiecesOutOfOrder) {
  EXPECT_EQ(Send(Piece(true, "aaaa", 10, 0)), "ok");
  EXPECT_NE(Send(Piece(false, "bbbb", 10, 6)), "ok");         // a gap
  EXPECT_NE(Send(Piece(false, "bbbb", 12, 4)), "ok");         // another chunk's size
  EXPECT_NE(Send(TransferMsg{1, {}, false, "whole"}), "ok");  // a whole chunk in the middle
  EXPECT_TRUE(io_.applied.empty());
  // The source aborts: the buckets are dropped with the partial chunk.
  EXPECT_EQ(Send(AbortMsg{1}), "ok");
  EXPECT_EQ(core_.state(5), BucketState::kNone);
}

}  // namespace
}  // namespace shoal::sharding
