// The SWIM wire format: round trips, authentication, and robustness against truncated, corrupted
// and forged input (every prefix, every single-bit flip, random garbage).
#include "membership/codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/crypto.h"
#include "common/rng.h"

namespace shoal::membership {
namespace {

constexpr std::string_view kCookie = "cluster-cookie";

MemberRecord SampleRecord(uint64_t n = 1) {
  MemberRecord r;
  r.id = MemberId(0x0123456789abcdefULL * n, 0xfedcba9876543210ULL + n);
  r.address = {"10.1.2.3", 7946};
  r.client_port = 6379;
  r.http_port = 8080;
  r.roles = {"storage", "router"};
  r.replica_set = ReplicaSetId(42);
  r.weight = 3;
  r.labels = {{"zone", "eu-1a"}, {"rack", "r7"}};
  return r;
}

std::vector<Message> AllMessages() {
  const MemberId a(1, 2), b(3, 4);
  MemberRecord bare;
  bare.id = a;
  return {
      PingMsg{7, a, b, Incarnation(300)},
      PingMsg{0xffffffffu, MemberId(), MemberId(), Incarnation(0)},
      IndirectPingMsg{9, b, {"::1", 65535}, true},
      IndirectPingMsg{10, b, {"host.example", 1}, false},
      AckMsg{123456},
      NackMsg{0},
      AliveMsg{Incarnation(5), SampleRecord()},
      AliveMsg{Incarnation(~uint64_t{0}), bare},
      SuspectMsg{Incarnation(3), a, b},
      DeadMsg{Incarnation(4), b, a},
      LeaveMsg{Incarnation(1ULL << 40), a},
  };
}

std::string SamplePacket() {
  std::vector<std::string> framed;
  for (const Message& m : AllMessages()) framed.push_back(EncodeMessage(m));
  std::vector<std::string_view> views(framed.begin(), framed.end());
  return SealPacket(kCookie, views);
}

TEST(MemberId, HexAndBytesRoundTrip) {
  const MemberId id(0x0011223344556677ULL, 0x8899aabbccddeeffULL);
  EXPECT_EQ(id.ToString(), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(MemberId::Parse(id.ToString()), id);
  EXPECT_EQ(MemberId::FromBytes(id.ToBytes()), id);
  EXPECT_EQ(MemberId::Parse("xyz"), std::nullopt);
  EXPECT_EQ(MemberId::Parse("00112233445566778899AABBCCDDEEFF"), std::nullopt);  // lowercase only
  EXPECT_EQ(MemberId::FromBytes("short"), std::nullopt);
  EXPECT_LT(MemberId(0, 5), MemberId(1, 0));
  SeededRng rng(1);
  EXPECT_FALSE(MemberId::Random(rng).empty());
}

TEST(Codec, EveryMessageRoundTripsInOnePacket) {
  Result<std::vector<Message>> got = OpenPacket(kCookie, SamplePacket());
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(*got, AllMessages());
}

TEST(Codec, EmptyPacketRoundTrips) {
  const std::string p = SealPacket(kCookie, {});
  EXPECT_EQ(p.size(), PacketSize(0));
  Result<std::vector<Message>> got = OpenPacket(kCookie, p);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST(Codec, EncodedAliveSizeIsExact) {
  const AliveMsg m{Incarnation(300), SampleRecord()};
  EXPECT_EQ(EncodedAliveSize(m), EncodeMessage(m).size());
}

TEST(Codec, StateBlobRoundTrips) {
  StateBlob state;
  state.sender = MemberId(9, 9);
  state.entries.push_back({MemberState::kAlive, Incarnation(1), SampleRecord(1)});
  state.entries.push_back({MemberState::kSuspect, Incarnation(2), SampleRecord(2)});
  state.entries.push_back({MemberState::kDead, Incarnation(3), SampleRecord(3)});
  state.entries.push_back({MemberState::kLeft, Incarnation(4), SampleRecord(4)});
  Result<StateBlob> got = DecodeStateBlob(kCookie, EncodeStateBlob(kCookie, state));
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(*got, state);
  Result<StateBlob> none = DecodeStateBlob(kCookie, EncodeStateBlob(kCookie, {}));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->entries.empty());
}

TEST(Codec, WrongCookieIsRejectedAsBadAuth) {
  Result<std::vector<Message>> got = OpenPacket("other-cookie", SamplePacket());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Errc::kBadAuth);
  Result<StateBlob> state = DecodeStateBlob("other-cookie", EncodeStateBlob(kCookie, {}));
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().code(), Errc::kBadAuth);
}

TEST(Codec, PacketAndStateBlobCannotStandInForEachOther) {
  // Same cookie, valid MACs, but the magic byte is covered by the MAC and checked.
  std::string blob = EncodeStateBlob(kCookie, {});
  EXPECT_FALSE(OpenPacket(kCookie, blob).ok());
  EXPECT_FALSE(DecodeStateBlob(kCookie, SealPacket(kCookie, {})).ok());
}

TEST(Codec, UnknownMessageTypesAreSkipped) {
  std::string body{kPacketMagic, static_cast<char>(kWireVersion), 2};
  body += std::string{static_cast<char>(200), 3, 'x', 'y', 'z'};  // type 200, 3 bytes
  body += EncodeMessage(AckMsg{5});
  Result<std::vector<Message>> got = DecodePacketBody(body);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(std::get<AckMsg>((*got)[0]).seq, 5u);
}

TEST(Codec, RejectsOtherVersionsAndOversizedFields) {
  std::string body{kPacketMagic, 9, 0};
  Result<std::vector<Message>> got = DecodePacketBody(body);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Errc::kBadVersion);

  // A seq above 32 bits, a port above 16 bits, an 11-byte varint.
  std::string big_seq{kPacketMagic, static_cast<char>(kWireVersion), 1,
                      static_cast<char>(MessageType::kAck), 5};
  big_seq += std::string{'\x80', '\x80', '\x80', '\x80', '\x10'};
  EXPECT_EQ(DecodePacketBody(big_seq).error().code(), Errc::kMalformed);
  std::string long_varint{kPacketMagic, static_cast<char>(kWireVersion), 1,
                          static_cast<char>(MessageType::kAck), 11};
  long_varint += std::string(10, '\xff') + '\x01';
  EXPECT_EQ(DecodePacketBody(long_varint).error().code(), Errc::kMalformed);
  // An authentic state blob whose member count claims more rows than there are bytes: rejected
  // before anything is allocated for them.
  std::string lying{kStateMagic, static_cast<char>(kWireVersion)};
  lying += MemberId(1, 1).ToBytes() + "\xe8\x07";  // 1000 rows
  const Sha256Digest mac = HmacSha256(kCookie, lying);
  lying.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  Result<StateBlob> state = DecodeStateBlob(kCookie, lying);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().code(), Errc::kMalformed);
}

// Every proper prefix of the MAC-stripped body fails cleanly (never crashes, never reads past the
// end, which ASan builds check), and so does every prefix of the sealed packet.
TEST(Codec, EveryTruncationFailsCleanly) {
  const std::string packet = SamplePacket();
  const std::string body = packet.substr(0, packet.size() - kPacketMacSize);
  for (size_t n = 0; n < body.size(); ++n) {
    Result<std::vector<Message>> got = DecodePacketBody(std::string(body.substr(0, n)));
    EXPECT_FALSE(got.ok()) << "body prefix of " << n << " bytes decoded";
  }
  for (size_t n = 0; n < packet.size(); ++n) {
    EXPECT_FALSE(OpenPacket(kCookie, std::string(packet.substr(0, n))).ok()) << n;
  }
  StateBlob state;
  state.entries.push_back({MemberState::kAlive, Incarnation(7), SampleRecord()});
  const std::string blob = EncodeStateBlob(kCookie, state);
  for (size_t n = 0; n < blob.size(); ++n) {
    EXPECT_FALSE(DecodeStateBlob(kCookie, std::string(blob.substr(0, n))).ok()) << n;
  }
}

// Flipping any single bit of a sealed packet makes it fail authentication; flipping any bit of the
// unauthenticated body either fails to decode or decodes to something (never crashes).
TEST(Codec, EveryBitFlipIsRejectedOrHarmless) {
  const std::string packet = SamplePacket();
  for (size_t i = 0; i < packet.size() * 8; ++i) {
    std::string p = packet;
    p[i / 8] = static_cast<char>(p[i / 8] ^ (1 << (i % 8)));
    Result<std::vector<Message>> got = OpenPacket(kCookie, p);
    ASSERT_FALSE(got.ok()) << "bit " << i;
    EXPECT_EQ(got.error().code(), Errc::kBadAuth);
  }
  const std::string body = packet.substr(0, packet.size() - kPacketMacSize);
  size_t decoded = 0;
  for (size_t i = 0; i < body.size() * 8; ++i) {
    std::string b = body;
    b[i / 8] = static_cast<char>(b[i / 8] ^ (1 << (i % 8)));
    decoded += DecodePacketBody(b).ok() ? 1 : 0;
  }
  // Flips inside ids, numbers and strings still decode; flips of lengths and types mostly don't.
  EXPECT_GT(decoded, 0u);
  EXPECT_LT(decoded, body.size() * 8);
}

TEST(Codec, RandomGarbageNeverDecodesOrCrashes) {
  SeededRng rng(7);
  const std::string packet = SamplePacket();
  const std::string body = packet.substr(0, packet.size() - kPacketMacSize);
  for (int round = 0; round < 20000; ++round) {
    // Half pure noise, half a valid body with random bytes overwritten (reaches deeper).
    std::string b;
    if (round % 2 == 0) {
      b.resize(rng.Uniform(64));
      for (char& c : b) c = static_cast<char>(rng.Next());
      if (!b.empty() && rng.Bernoulli(0.5)) b[0] = kPacketMagic;
      if (b.size() > 1 && rng.Bernoulli(0.5)) b[1] = static_cast<char>(kWireVersion);
    } else {
      b = body.substr(0, rng.Uniform(body.size() + 1));
      for (int k = 0; k < 3 && !b.empty(); ++k) {
        b[rng.Uniform(b.size())] = static_cast<char>(rng.Next());
      }
    }
    (void)DecodePacketBody(b);
    EXPECT_FALSE(OpenPacket(kCookie, b).ok());
    (void)DecodeStateBlob(kCookie, b);
  }
}

}  // namespace
}  // namespace shoal::membership
