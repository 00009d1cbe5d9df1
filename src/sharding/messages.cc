#include "sharding/messages.h"

#include "common/wire.h"

namespace shoal::sharding {
namespace {

using wire::Reader;
using wire::WireError;
using wire::Writer;

void WriteBuckets(Writer& w, const std::vector<uint16_t>& b) {
  std::string bytes(b.size() * 2, '\0');
  for (size_t i = 0; i < b.size(); ++i) {
    bytes[2 * i] = static_cast<char>(b[i] >> 8);
    bytes[2 * i + 1] = static_cast<char>(b[i] & 0xFF);
  }
  w.Bin(bytes);
}

std::vector<uint16_t> ReadBuckets(const Reader& r) {
  std::string_view bytes = r.Bin();
  if (bytes.size() % 2 != 0 || bytes.size() > kNumBuckets * 2) throw WireError("bad bucket list");
  std::vector<uint16_t> out(bytes.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint16_t>((static_cast<uint8_t>(bytes[2 * i]) << 8) |
                                   static_cast<uint8_t>(bytes[2 * i + 1]));
    if (out[i] >= kNumBuckets) throw WireError("bucket out of range");
  }
  return out;
}

struct EncodeVisitor {
  Writer& w;
  void operator()(const PollMsg& m) {
    w.Array(2);
    w.U64(static_cast<uint64_t>(Kind::kPoll));
    w.Id(m.coordinator);
  }
  void operator()(const ReportMsg& m) {
    w.Array(10);
    w.U64(static_cast<uint64_t>(Kind::kReport));
    w.U64(m.epoch.value());
    w.Bool(m.leaving);
    std::string bits(kNumBuckets / 8, '\0');
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (m.active.test(b)) bits[b / 8] = static_cast<char>(bits[b / 8] | (1 << (b % 8)));
    }
    w.Bin(bits);
    w.Array(static_cast<uint32_t>(m.sending.size()));
    for (const auto& [b, to] : m.sending) {
      w.Array(2);
      w.U64(b);
      w.Id(to);
    }
    WriteBuckets(w, m.receiving);
    w.U64(m.send_batches);
    w.U64(m.recv_batches);
    w.U64(m.keys);
    w.Array(static_cast<uint32_t>(m.garbage.size()));
    for (const auto& [b, to] : m.garbage) {
      w.Array(2);
      w.U64(b);
      w.Id(to);
    }
  }
  void operator()(const MapMsg& m) {
    w.Array(2);
    w.U64(static_cast<uint64_t>(Kind::kMap));
    w.Bin(m.map.Encode());
  }
  void operator()(const AdoptMsg& m) {
    w.Array(3);
    w.U64(static_cast<uint64_t>(Kind::kAdopt));
    w.Id(m.coordinator);
    WriteBuckets(w, m.buckets);
  }
  void operator()(const DropMsg& m) {
    w.Array(3);
    w.U64(static_cast<uint64_t>(Kind::kDrop));
    w.Id(m.coordinator);
    WriteBuckets(w, m.buckets);
  }
  void operator()(const MigrateMsg& m) {
    w.Array(5);
    w.U64(static_cast<uint64_t>(Kind::kMigrate));
    w.Id(m.coordinator);
    w.Id(m.to);
    w.Ep(m.to_cluster);
    WriteBuckets(w, m.buckets);
  }
  void operator()(const TransferMsg& m) {
    // A whole chunk keeps the 5-element form; a piece adds its total and offset.
    const bool piece = m.total != 0;
    w.Array(piece ? 7 : 5);
    w.U64(static_cast<uint64_t>(Kind::kTransfer));
    w.U64(m.migration);
    WriteBuckets(w, m.buckets);
    w.Bool(m.first);
    w.Bin(m.chunk);
    if (piece) {
      w.U64(m.total);
      w.U64(m.offset);
    }
  }
  void operator()(const CommitMsg& m) { Simple(Kind::kCommit, m.migration); }
  void operator()(const AbortMsg& m) { Simple(Kind::kAbort, m.migration); }
  void operator()(const QueryMsg& m) { Simple(Kind::kQuery, m.migration); }
  void operator()(const AckMsg& m) {
    w.Array(4);
    w.U64(static_cast<uint64_t>(Kind::kAck));
    w.Bool(m.ok);
    w.Bin(m.detail);
    WriteBuckets(w, m.buckets);
  }
  void Simple(Kind k, uint64_t migration) {
    w.Array(2);
    w.U64(static_cast<uint64_t>(k));
    w.U64(migration);
  }
};

Message DecodeOrThrow(const Reader& r) {
  const uint32_t n = r.Array();
  if (n < 1) throw WireError("empty message");
  const auto kind = static_cast<Kind>(r.At(0).U64Max(255));
  auto need = [&](uint32_t fields) {
    if (n != fields) throw WireError("wrong field count");
  };
  switch (kind) {
    case Kind::kPoll:
      need(2);
      return PollMsg{r.At(1).Id()};
    case Kind::kReport: {
      need(10);
      ReportMsg m;
      m.epoch = Epoch(r.At(1).U64());
      m.leaving = r.At(2).Bool();
      std::string_view bits = r.At(3).Bin();
      if (bits.size() != kNumBuckets / 8) throw WireError("bad bucket bitmap");
      for (uint32_t b = 0; b < kNumBuckets; ++b) {
        if (static_cast<uint8_t>(bits[b / 8]) & (1 << (b % 8))) m.active.set(b);
      }
      Reader sending = r.At(4);
      const uint32_t ns = sending.Array();
      if (ns > kNumBuckets) throw WireError("too many sending buckets");
      for (uint32_t i = 0; i < ns; ++i) {
        Reader e = sending.At(i);
        if (e.Array() != 2) throw WireError("bad sending entry");
        m.sending.emplace_back(static_cast<uint16_t>(e.At(0).U64Max(kNumBuckets - 1)),
                               e.At(1).Id());
      }
      m.receiving = ReadBuckets(r.At(5));
      m.send_batches = static_cast<uint32_t>(r.At(6).U64Max(1u << 20));
      m.recv_batches = static_cast<uint32_t>(r.At(7).U64Max(1u << 20));
      m.keys = r.At(8).U64();
      Reader garbage = r.At(9);
      const uint32_t ng = garbage.Array();
      if (ng > kNumBuckets) throw WireError("too many garbage buckets");
      for (uint32_t i = 0; i < ng; ++i) {
        Reader e = garbage.At(i);
        if (e.Array() != 2) throw WireError("bad garbage entry");
        m.garbage.emplace_back(static_cast<uint16_t>(e.At(0).U64Max(kNumBuckets - 1)),
                               e.At(1).Id());
      }
      return m;
    }
    case Kind::kMap: {
      need(2);
      auto map = BucketMap::Decode(r.At(1).Bin());
      if (!map.ok()) throw WireError(map.error().message());
      return MapMsg{std::move(map).value()};
    }
    case Kind::kAdopt:
      need(3);
      return AdoptMsg{r.At(1).Id(), ReadBuckets(r.At(2))};
    case Kind::kDrop:
      need(3);
      return DropMsg{r.At(1).Id(), ReadBuckets(r.At(2))};
    case Kind::kMigrate:
      need(5);
      return MigrateMsg{r.At(1).Id(), r.At(2).Id(), r.At(3).Ep(), ReadBuckets(r.At(4))};
    case Kind::kTransfer: {
      if (n != 5 && n != 7) throw WireError("wrong field count");
      TransferMsg m;
      m.migration = r.At(1).U64();
      m.buckets = ReadBuckets(r.At(2));
      m.first = r.At(3).Bool();
      m.chunk = std::string(r.At(4).Bin());
      if (n == 7) {
        m.total = r.At(5).U64();
        m.offset = r.At(6).U64();
        if (m.total == 0 || m.offset > m.total || m.chunk.size() > m.total - m.offset) {
          throw WireError("transfer piece out of range");
        }
      }
      return m;
    }
    case Kind::kCommit:
      need(2);
      return CommitMsg{r.At(1).U64()};
    case Kind::kAbort:
      need(2);
      return AbortMsg{r.At(1).U64()};
    case Kind::kQuery:
      need(2);
      return QueryMsg{r.At(1).U64()};
    case Kind::kAck: {
      need(4);
      AckMsg m;
      m.ok = r.At(1).Bool();
      m.detail = std::string(r.At(2).Bin());
      m.buckets = ReadBuckets(r.At(3));
      return m;
    }
  }
  throw WireError("unknown message kind");
}

}  // namespace

std::string Encode(const Message& m) {
  Writer w;
  std::visit(EncodeVisitor{w}, m);
  return w.Take();
}

Result<Message> Decode(std::string_view bytes) {
  try {
    auto oh = wire::Unpack(bytes);
    return DecodeOrThrow(Reader(oh.get()));
  } catch (const WireError& e) {
    return Error(Errc::kMalformed, e.what());
  }
}

}  // namespace shoal::sharding
