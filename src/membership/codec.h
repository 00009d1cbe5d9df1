// The SWIM wire format: messages, authenticated packets, and the authenticated push-pull state.
//
// A compact hand-written binary codec rather than msgpack (which DESIGN.md names for the TCP RPC
// frames): a SWIM datagram is a budget (one MTU, ~1400 bytes) filled with as many piggybacked
// updates as fit, so the encoder must know each message's exact size up front, and the decoder
// faces raw bytes from the network on every packet. A bounds-checked reader over a handful of
// field kinds (byte, LEB128 varint, 16-byte id, length-prefixed string) is small enough to audit,
// allocates nothing it has not already checked against the bytes remaining, never throws, and is
// fuzzed byte by byte (codec_test.cc).
//
// Packet (UDP datagram):
//   'S' version=1 count:u8 { type:u8 len:varint body[len] }*count  mac[16]
// State blob (push-pull, sent over the stream the driver opens):
//   'P' version=1 sender:id count:varint { state:u8 incarnation:varint record }*count  mac[32]
// Bodies:
//   ping          seq:varint target:id source:id source_incarnation:varint
//                 (target zero = whoever answers)
//   indirect ping seq:varint target:id address flags:u8 (bit 0: the requester wants a nack)
//   ack, nack     seq:varint
//   alive         incarnation:varint record
//   suspect, dead incarnation:varint member:id from:id
//   leave         incarnation:varint member:id
//   record        id address client_port:varint http_port:varint roles:(count str*)
//                 replica_set:varint weight:varint labels:(count (str str)*)
//   address       host:str port:varint     str = len:varint bytes
//
// mac = HMAC-SHA256(cookie, everything before the mac); packets keep the first 16 bytes (128
// bits, as IPsec's HMAC-SHA-256-128: forging one still takes ~2^128 tries, and it saves 16 bytes
// of every datagram), the state blob keeps all 32. The leading magic byte differs, so a packet
// cannot be passed off as a state blob or the reverse. A message type this build does not know is
// skipped by its length (so a newer peer can add types); a known type whose body does not decode
// rejects the whole packet.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "membership/types.h"

namespace shoal::membership {

inline constexpr uint8_t kWireVersion = 1;
inline constexpr char kPacketMagic = 'S';
inline constexpr char kStateMagic = 'P';
inline constexpr size_t kPacketMacSize = 16;
inline constexpr size_t kStateMacSize = 32;
// Magic, version and a one-byte message count.
inline constexpr size_t kPacketHeaderSize = 3;
// Caps on decoded fields, far above any sane value, so hostile input cannot ask for much memory
// (the byte-count check already bounds it; these keep records printable and small).
inline constexpr size_t kMaxHostLength = 255;
inline constexpr size_t kMaxStringLength = 1024;

enum class MessageType : uint8_t {
  kPing = 1,
  kIndirectPing = 2,
  kAck = 3,
  kNack = 4,
  kAlive = 5,
  kSuspect = 6,
  kDead = 7,
  kLeave = 8,
};

struct PingMsg {
  uint32_t seq = 0;
  MemberId target;
  MemberId source;  // the pinger and its incarnation, so that a member whose view of the
  Incarnation source_incarnation;  // pinger is behind can tell and catch up
  bool operator==(const PingMsg&) const = default;
};
struct IndirectPingMsg {
  uint32_t seq = 0;
  MemberId target;
  Endpoint address;
  bool want_nack = false;
  bool operator==(const IndirectPingMsg&) const = default;
};
struct AckMsg {
  uint32_t seq = 0;
  bool operator==(const AckMsg&) const = default;
};
struct NackMsg {
  uint32_t seq = 0;
  bool operator==(const NackMsg&) const = default;
};
struct AliveMsg {
  Incarnation incarnation;
  MemberRecord record;
  bool operator==(const AliveMsg&) const = default;
};
struct SuspectMsg {
  Incarnation incarnation;
  MemberId member;
  MemberId from;
  bool operator==(const SuspectMsg&) const = default;
};
struct DeadMsg {
  Incarnation incarnation;
  MemberId member;
  MemberId from;
  bool operator==(const DeadMsg&) const = default;
};
struct LeaveMsg {
  Incarnation incarnation;
  MemberId member;
  bool operator==(const LeaveMsg&) const = default;
};

using Message = std::variant<PingMsg, IndirectPingMsg, AckMsg, NackMsg, AliveMsg, SuspectMsg,
                             DeadMsg, LeaveMsg>;

// Appends one framed message (type, length, body) to `out`.
void AppendMessage(const Message& msg, std::string* out);
// The framed message as a string (for the broadcast queue, which stores updates encoded once).
std::string EncodeMessage(const Message& msg);

// Builds a packet from framed messages (REQUIRES: at most 255 of them) and appends the MAC.
std::string SealPacket(std::string_view cookie, const std::vector<std::string_view>& framed);
// Total size of a packet holding framed messages of `payload_bytes` bytes in all.
inline constexpr size_t PacketSize(size_t payload_bytes) {
  return kPacketHeaderSize + payload_bytes + kPacketMacSize;
}

// Verifies the MAC (Errc::kBadAuth) and decodes (kMalformed, kBadVersion). Never throws, never
// reads outside `packet`.
Result<std::vector<Message>> OpenPacket(std::string_view cookie, std::string_view packet);
// Decodes a packet with the MAC already stripped and not checked: the part fuzz tests aim at.
Result<std::vector<Message>> DecodePacketBody(std::string_view body);

// One row of a push-pull state blob.
struct StateEntry {
  MemberState state = MemberState::kAlive;
  Incarnation incarnation;
  MemberRecord record;
  bool operator==(const StateEntry&) const = default;
};

// A node's whole table, as exchanged by push-pull.
struct StateBlob {
  MemberId sender;
  std::vector<StateEntry> entries;
  bool operator==(const StateBlob&) const = default;
};

std::string EncodeStateBlob(std::string_view cookie, const StateBlob& state);
Result<StateBlob> DecodeStateBlob(std::string_view cookie, std::string_view blob);

// Exact encoded size of the record (for checking that an Alive fits in a packet).
size_t EncodedAliveSize(const AliveMsg& msg);

}  // namespace shoal::membership
