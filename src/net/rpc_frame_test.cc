#include "net/rpc_frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shoal::net::rpc {
namespace {

std::string Frame3() {
  std::string wire;
  AppendFrame(&wire, FrameKind::kRequest, 1, "members.push_pull", std::string("a\0b", 3));
  AppendFrame(&wire, FrameKind::kResponse, 0xFFFF'FFFF'FFFF'FFFEull, {}, "");
  AppendFrame(&wire, FrameKind::kError, 42, {}, "no such bucket");
  return wire;
}

TEST(RpcFrame, RoundTripsEveryKind) {
  const std::string wire = Frame3();
  std::string_view in = wire;
  DecodeResult r = DecodeFrame(in);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.frame.kind, FrameKind::kRequest);
  EXPECT_EQ(r.frame.id, 1u);
  EXPECT_EQ(r.frame.method, "members.push_pull");
  EXPECT_EQ(r.frame.body, std::string_view("a\0b", 3));
  EXPECT_EQ(r.consumed,
            kLengthPrefixSize + FrameLength(FrameKind::kRequest, "members.push_pull", 3));
  in.remove_prefix(r.consumed);
  r = DecodeFrame(in);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.frame.kind, FrameKind::kResponse);
  EXPECT_EQ(r.frame.id, 0xFFFF'FFFF'FFFF'FFFEull);
  EXPECT_TRUE(r.frame.method.empty());
  EXPECT_TRUE(r.frame.body.empty());
  in.remove_prefix(r.consumed);
  r = DecodeFrame(in);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.frame.kind, FrameKind::kError);
  EXPECT_EQ(r.frame.body, "no such bucket");
  in.remove_prefix(r.consumed);
  EXPECT_TRUE(in.empty());
}

TEST(RpcFrame, TruncationAtEveryByteNeedsMoreNeverErrs) {
  const std::string wire = Frame3();
  // Where each frame ends.
  std::vector<size_t> ends;
  for (std::string_view rest = wire; !rest.empty();) {
    const DecodeResult r = DecodeFrame(rest);
    ASSERT_EQ(r.status, DecodeStatus::kOk);
    ends.push_back(wire.size() - rest.size() + r.consumed);
    rest.remove_prefix(r.consumed);
  }
  ASSERT_EQ(ends.size(), 3u);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    // Decode the prefix as a stream would: whole frames out, then a partial one waits.
    std::string_view in(wire.data(), cut);
    size_t frames = 0;
    for (;;) {
      const DecodeResult r = DecodeFrame(in);
      ASSERT_NE(r.status, DecodeStatus::kError) << "cut at " << cut << ": " << r.error;
      if (r.status == DecodeStatus::kNeedMore) break;
      ASSERT_GT(r.consumed, 0u);
      ASSERT_LE(r.consumed, in.size());
      in.remove_prefix(r.consumed);
      ++frames;
    }
    size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= cut) ++whole;
    EXPECT_EQ(frames, whole) << "cut at " << cut;
  }
}

TEST(RpcFrame, FeedingOneByteAtATimeYieldsTheSameFrames) {
  const std::string wire = Frame3();
  std::string buffer;
  std::vector<std::pair<uint64_t, std::string>> got;
  for (char c : wire) {
    buffer.push_back(c);
    const DecodeResult r = DecodeFrame(buffer);
    ASSERT_NE(r.status, DecodeStatus::kError);
    if (r.status == DecodeStatus::kOk) {
      got.emplace_back(r.frame.id, std::string(r.frame.body));
      buffer.erase(0, r.consumed);
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2], (std::pair<uint64_t, std::string>{42, "no such bucket"}));
  EXPECT_TRUE(buffer.empty());
}

std::string Header(uint32_t length, uint8_t kind) {
  std::string s;
  s.push_back(static_cast<char>(length >> 24));
  s.push_back(static_cast<char>(length >> 16));
  s.push_back(static_cast<char>(length >> 8));
  s.push_back(static_cast<char>(length));
  s.push_back(static_cast<char>(kind));
  s.append(8, '\0');  // id
  return s;
}

TEST(RpcFrame, RejectsOversizeFromTheLengthPrefixAlone) {
  std::string wire;
  AppendFrame(&wire, FrameKind::kResponse, 7, {}, std::string(100, 'x'));
  EXPECT_EQ(DecodeFrame(std::string_view(wire).substr(0, 4), 100).status, DecodeStatus::kError);
  EXPECT_EQ(DecodeFrame(wire, 109).status, DecodeStatus::kOk);  // kind + id + body = 109
  EXPECT_EQ(DecodeFrame(wire, 108).status, DecodeStatus::kError);
}

TEST(RpcFrame, RejectsMalformedHeaders) {
  EXPECT_EQ(DecodeFrame(Header(8, 2)).status, DecodeStatus::kError);  // shorter than a header
  EXPECT_EQ(DecodeFrame(Header(9, 0)).status, DecodeStatus::kError);  // unknown kind
  EXPECT_EQ(DecodeFrame(Header(9, 4)).status, DecodeStatus::kError);
  EXPECT_EQ(DecodeFrame(Header(9, 1)).status, DecodeStatus::kError);  // request without method
  EXPECT_EQ(DecodeFrame(Header(10, 1) + std::string(1, '\0')).status,
            DecodeStatus::kError);  // empty method
  EXPECT_EQ(DecodeFrame(Header(11, 1) + "\x05m").status,
            DecodeStatus::kError);  // method past the end
  // An unknown kind is refused as soon as its byte arrives, before the rest of the frame.
  EXPECT_EQ(DecodeFrame(Header(1000, 9).substr(0, 5)).status, DecodeStatus::kError);
  EXPECT_EQ(DecodeFrame(Header(1000, 2).substr(0, 5)).status, DecodeStatus::kNeedMore);
}

TEST(RpcFrame, ArbitraryBytesNeverReadOutOfBounds) {
  // A poor man's fuzz pass (the real one is a libFuzzer target over DecodeFrame): every byte value
  // at every position of a short frame.
  std::string wire;
  AppendFrame(&wire, FrameKind::kRequest, 3, "m", "body");
  for (size_t pos = 0; pos < wire.size(); ++pos) {
    for (int v = 0; v < 256; ++v) {
      std::string mutated = wire;
      mutated[pos] = static_cast<char>(v);
      const DecodeResult r = DecodeFrame(mutated, 1 << 20);
      if (r.status == DecodeStatus::kOk) {
        ASSERT_LE(r.consumed, mutated.size());
        ASSERT_GE(r.frame.body.data(), mutated.data());
        ASSERT_LE(r.frame.body.data() + r.frame.body.size(), mutated.data() + r.consumed);
      }
    }
  }
}

}  // namespace
}  // namespace shoal::net::rpc
