#include "membership/codec.h"

#include <limits>
#include <type_traits>

#include "common/crypto.h"

namespace shoal::membership {
namespace {

// ---- Writing ----

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutId(MemberId id, std::string* out) { out->append(id.ToBytes()); }

void PutString(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

void PutEndpoint(const Endpoint& e, std::string* out) {
  PutString(e.host, out);
  PutVarint(e.port, out);
}

void PutRecord(const MemberRecord& r, std::string* out) {
  PutId(r.id, out);
  PutEndpoint(r.address, out);
  PutVarint(r.client_port, out);
  PutVarint(r.http_port, out);
  PutVarint(r.roles.size(), out);
  for (const std::string& role : r.roles) PutString(role, out);
  PutVarint(r.replica_set.value(), out);
  PutVarint(r.weight, out);
  PutVarint(r.labels.size(), out);
  for (const auto& [k, v] : r.labels) {
    PutString(k, out);
    PutString(v, out);
  }
}

void PutBody(const Message& msg, std::string* out) {
  std::visit(
      [out](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PingMsg>) {
          PutVarint(m.seq, out);
          PutId(m.target, out);
          PutId(m.source, out);
          PutVarint(m.source_incarnation.value(), out);
        } else if constexpr (std::is_same_v<T, IndirectPingMsg>) {
          PutVarint(m.seq, out);
          PutId(m.target, out);
          PutEndpoint(m.address, out);
          out->push_back(static_cast<char>(m.want_nack ? 1 : 0));
        } else if constexpr (std::is_same_v<T, AckMsg> || std::is_same_v<T, NackMsg>) {
          PutVarint(m.seq, out);
        } else if constexpr (std::is_same_v<T, AliveMsg>) {
          PutVarint(m.incarnation.value(), out);
          PutRecord(m.record, out);
        } else if constexpr (std::is_same_v<T, SuspectMsg> || std::is_same_v<T, DeadMsg>) {
          PutVarint(m.incarnation.value(), out);
          PutId(m.member, out);
          PutId(m.from, out);
        } else if constexpr (std::is_same_v<T, LeaveMsg>) {
          PutVarint(m.incarnation.value(), out);
          PutId(m.member, out);
        }
      },
      msg);
}

MessageType TypeOf(const Message& msg) {
  static constexpr MessageType kTypes[] = {
      MessageType::kPing,  MessageType::kIndirectPing, MessageType::kAck,  MessageType::kNack,
      MessageType::kAlive, MessageType::kSuspect,      MessageType::kDead, MessageType::kLeave,
  };
  return kTypes[msg.index()];
}

std::string_view MacOf(std::string_view cookie, std::string_view data, size_t size,
                       Sha256Digest* digest) {
  *digest = HmacSha256(cookie, data);
  return {reinterpret_cast<const char*>(digest->data()), size};
}

// ---- Reading ----

// A cursor over untrusted bytes. Every getter checks the bytes remaining first; after the first
// failure the reader stays failed and every further getter fails too, so a decoder can read a
// whole structure and check ok() once.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool ok() const { return ok_; }
  bool empty() const { return data_.empty(); }
  size_t remaining() const { return data_.size(); }

  bool Byte(uint8_t* v) {
    if (!ok_ || data_.empty()) return Fail();
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      // The 10th byte may carry only the top bit of a 64-bit value.
      if (shift == 63 && b > 1) return Fail();
      result |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return Fail();
  }

  template <typename T>
  bool Uint(T* v) {
    uint64_t x;
    if (!Varint(&x) || x > std::numeric_limits<T>::max()) return Fail();
    *v = static_cast<T>(x);
    return true;
  }

  bool Id(MemberId* id) {
    std::string_view raw;
    if (!Raw(16, &raw)) return false;
    *id = *MemberId::FromBytes(raw);
    return true;
  }

  bool String(std::string* s, size_t max_len) {
    uint64_t len;
    if (!Varint(&len) || len > max_len) return Fail();
    std::string_view raw;
    if (!Raw(len, &raw)) return false;
    s->assign(raw);
    return true;
  }

  bool Raw(uint64_t len, std::string_view* out) {
    if (!ok_ || len > data_.size()) return Fail();
    *out = data_.substr(0, len);
    data_.remove_prefix(len);
    return true;
  }

  // A count of items each at least `min_item_bytes` long: larger than the bytes left is a lie.
  bool Count(uint64_t* n, size_t min_item_bytes) {
    if (!Varint(n) || *n > data_.size() / min_item_bytes) return Fail();
    return true;
  }

  bool Fail() {
    ok_ = false;
    return false;
  }

 private:
  std::string_view data_;
  bool ok_ = true;
};

bool GetEndpoint(Reader& r, Endpoint* e) {
  return r.String(&e->host, kMaxHostLength) && r.Uint(&e->port);
}

bool GetIncarnation(Reader& r, Incarnation* inc) {
  uint64_t v;
  if (!r.Varint(&v)) return false;
  *inc = Incarnation(v);
  return true;
}

bool GetRecord(Reader& r, MemberRecord* rec) {
  uint64_t n;
  if (!r.Id(&rec->id) || !GetEndpoint(r, &rec->address) || !r.Uint(&rec->client_port) ||
      !r.Uint(&rec->http_port) || !r.Count(&n, 1)) {
    return false;
  }
  rec->roles.resize(n);
  for (std::string& role : rec->roles) {
    if (!r.String(&role, kMaxStringLength)) return false;
  }
  uint64_t rs;
  if (!r.Varint(&rs) || !r.Uint(&rec->weight) || !r.Count(&n, 2)) return false;
  rec->replica_set = ReplicaSetId(rs);
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!r.String(&k, kMaxStringLength) || !r.String(&v, kMaxStringLength)) return false;
    rec->labels[std::move(k)] = std::move(v);
  }
  return true;
}

// Decodes one message body of a known type; false if it does not decode exactly.
bool GetBody(MessageType type, std::string_view body, Message* out) {
  Reader r(body);
  switch (type) {
    case MessageType::kPing: {
      PingMsg m;
      r.Uint(&m.seq) && r.Id(&m.target) && r.Id(&m.source) &&
          GetIncarnation(r, &m.source_incarnation);
      *out = m;
      break;
    }
    case MessageType::kIndirectPing: {
      IndirectPingMsg m;
      uint8_t flags = 0;
      r.Uint(&m.seq) && r.Id(&m.target) && GetEndpoint(r, &m.address) && r.Byte(&flags);
      if (flags > 1) r.Fail();
      m.want_nack = flags & 1;
      *out = m;
      break;
    }
    case MessageType::kAck: {
      AckMsg m;
      r.Uint(&m.seq);
      *out = m;
      break;
    }
    case MessageType::kNack: {
      NackMsg m;
      r.Uint(&m.seq);
      *out = m;
      break;
    }
    case MessageType::kAlive: {
      AliveMsg m;
      GetIncarnation(r, &m.incarnation) && GetRecord(r, &m.record);
      *out = std::move(m);
      break;
    }
    case MessageType::kSuspect: {
      SuspectMsg m;
      GetIncarnation(r, &m.incarnation) && r.Id(&m.member) && r.Id(&m.from);
      *out = m;
      break;
    }
    case MessageType::kDead: {
      DeadMsg m;
      GetIncarnation(r, &m.incarnation) && r.Id(&m.member) && r.Id(&m.from);
      *out = m;
      break;
    }
    case MessageType::kLeave: {
      LeaveMsg m;
      GetIncarnation(r, &m.incarnation) && r.Id(&m.member);
      *out = m;
      break;
    }
    default:
      return false;
  }
  return r.ok() && r.empty();
}

bool KnownType(uint8_t t) {
  return t >= static_cast<uint8_t>(MessageType::kPing) &&
         t <= static_cast<uint8_t>(MessageType::kLeave);
}

Error Malformed(std::string what) { return Error(Errc::kMalformed, std::move(what)); }

}  // namespace

void AppendMessage(const Message& msg, std::string* out) {
  std::string body;
  PutBody(msg, &body);
  out->push_back(static_cast<char>(TypeOf(msg)));
  PutVarint(body.size(), out);
  out->append(body);
}

std::string EncodeMessage(const Message& msg) {
  std::string out;
  AppendMessage(msg, &out);
  return out;
}

size_t EncodedAliveSize(const AliveMsg& msg) {
  std::string body;
  PutBody(msg, &body);
  return 1 + VarintSize(body.size()) + body.size();
}

std::string SealPacket(std::string_view cookie, const std::vector<std::string_view>& framed) {
  std::string out;
  size_t total = 0;
  for (std::string_view f : framed) total += f.size();
  out.reserve(PacketSize(total));
  out.push_back(kPacketMagic);
  out.push_back(static_cast<char>(kWireVersion));
  out.push_back(static_cast<char>(framed.size()));
  for (std::string_view f : framed) out.append(f);
  Sha256Digest digest;
  out.append(MacOf(cookie, out, kPacketMacSize, &digest));
  return out;
}

Result<std::vector<Message>> OpenPacket(std::string_view cookie, std::string_view packet) {
  if (packet.size() < kPacketHeaderSize + kPacketMacSize) return Malformed("packet too short");
  const std::string_view signed_part = packet.substr(0, packet.size() - kPacketMacSize);
  Sha256Digest digest;
  if (!ConstantTimeEqual(MacOf(cookie, signed_part, kPacketMacSize, &digest),
                         packet.substr(signed_part.size()))) {
    return Error(Errc::kBadAuth, "packet MAC mismatch");
  }
  return DecodePacketBody(signed_part);
}

Result<std::vector<Message>> DecodePacketBody(std::string_view body) {
  Reader r(body);
  uint8_t magic = 0, version = 0, count = 0;
  if (!r.Byte(&magic) || !r.Byte(&version) || !r.Byte(&count)) return Malformed("short header");
  if (magic != static_cast<uint8_t>(kPacketMagic)) return Malformed("not a packet");
  if (version != kWireVersion) return Error(Errc::kBadVersion, "packet version");
  std::vector<Message> out;
  out.reserve(count);
  for (int i = 0; i < count; ++i) {
    uint8_t type;
    uint64_t len;
    std::string_view msg_body;
    if (!r.Byte(&type) || !r.Varint(&len) || !r.Raw(len, &msg_body)) {
      return Malformed("truncated message");
    }
    if (!KnownType(type)) continue;  // from a newer peer: skip
    Message m;
    if (!GetBody(static_cast<MessageType>(type), msg_body, &m)) {
      return Malformed("bad message body");
    }
    out.push_back(std::move(m));
  }
  if (!r.empty()) return Malformed("trailing bytes");
  return out;
}

std::string EncodeStateBlob(std::string_view cookie, const StateBlob& state) {
  std::string out;
  out.push_back(kStateMagic);
  out.push_back(static_cast<char>(kWireVersion));
  PutId(state.sender, &out);
  PutVarint(state.entries.size(), &out);
  for (const StateEntry& e : state.entries) {
    out.push_back(static_cast<char>(e.state));
    PutVarint(e.incarnation.value(), &out);
    PutRecord(e.record, &out);
  }
  Sha256Digest digest;
  out.append(MacOf(cookie, out, kStateMacSize, &digest));
  return out;
}

Result<StateBlob> DecodeStateBlob(std::string_view cookie, std::string_view blob) {
  if (blob.size() < 3 + 16 + kStateMacSize) return Malformed("state too short");
  const std::string_view signed_part = blob.substr(0, blob.size() - kStateMacSize);
  Sha256Digest digest;
  if (!ConstantTimeEqual(MacOf(cookie, signed_part, kStateMacSize, &digest),
                         blob.substr(signed_part.size()))) {
    return Error(Errc::kBadAuth, "state MAC mismatch");
  }
  Reader r(signed_part);
  uint8_t magic = 0, version = 0;
  uint64_t count = 0;
  if (!r.Byte(&magic) || !r.Byte(&version)) return Malformed("short header");
  if (magic != static_cast<uint8_t>(kStateMagic)) return Malformed("not a state blob");
  if (version != kWireVersion) return Error(Errc::kBadVersion, "state version");
  StateBlob state;
  if (!r.Id(&state.sender)) return Malformed("short header");
  // A row is at least 1 (state) + 1 (incarnation) + 16 (id) + 6 (empty address, ports, counts).
  if (!r.Count(&count, 24)) return Malformed("bad member count");
  state.entries.resize(count);
  for (StateEntry& e : state.entries) {
    uint8_t state;
    if (!r.Byte(&state) || state > static_cast<uint8_t>(MemberState::kLeft) ||
        !GetIncarnation(r, &e.incarnation) || !GetRecord(r, &e.record)) {
      return Malformed("bad member row");
    }
    e.state = static_cast<MemberState>(state);
  }
  if (!r.empty()) return Malformed("trailing bytes");
  return state;
}

}  // namespace shoal::membership
