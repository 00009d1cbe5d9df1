#include "sharding/bucket_map.h"

#include "common/wire.h"

namespace shoal::sharding {
namespace {

std::string_view DescribeErrc(Errc e) {
  switch (e) {
    case Errc::kMalformed:
      return "malformed";
    case Errc::kRefused:
      return "refused";
    case Errc::kConflict:
      return "conflict";
  }
  return "";
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(Errc, "sharding", DescribeErrc)

ReplicaSetId AutoSetId(const membership::MemberId& id) {
  uint64_t v = id.hi() ^ (id.lo() * 0x9e3779b97f4a7c15ULL);
  return ReplicaSetId(v == 0 ? 1 : v);
}

std::string_view ToString(BucketState s) {
  switch (s) {
    case BucketState::kNone:
      return "none";
    case BucketState::kActive:
      return "active";
    case BucketState::kSending:
      return "sending";
    case BucketState::kReceiving:
      return "receiving";
    case BucketState::kGarbage:
      return "garbage";
  }
  return "?";
}

uint16_t BucketMap::AddSet(const SetInfo& info) {
  for (size_t i = 0; i < sets_.size(); ++i) {
    if (sets_[i].id == info.id) return static_cast<uint16_t>(i);
  }
  sets_.push_back(info);
  return static_cast<uint16_t>(sets_.size() - 1);
}

uint32_t BucketMap::CountOf(uint16_t i) const {
  uint32_t n = 0;
  for (uint16_t o : owner_) n += (o == i);
  return n;
}

uint32_t BucketMap::Unowned() const { return CountOf(kNoOwner); }

std::vector<BucketMap::Range> BucketMap::Ranges() const {
  std::vector<Range> out;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    const uint16_t o = owner_[b];
    if (!out.empty() && out.back().set_index == o && out.back().last + 1u == b) {
      out.back().last = static_cast<uint16_t>(b);
    } else {
      out.push_back(Range{static_cast<uint16_t>(b), static_cast<uint16_t>(b), o});
    }
  }
  std::erase_if(out, [](const Range& r) { return r.set_index == kNoOwner; });
  return out;
}

bool BucketMap::SameAssignment(const BucketMap& other) const {
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    const SetInfo* x = OwnerOf(BucketId(static_cast<uint16_t>(b)));
    const SetInfo* y = other.OwnerOf(BucketId(static_cast<uint16_t>(b)));
    if ((x == nullptr) != (y == nullptr)) return false;
    if (x == nullptr) continue;
    if (x->id != y->id || x->leader != y->leader || x->cluster != y->cluster ||
        x->client != y->client) {
      return false;
    }
  }
  return true;
}

// [epoch, [[set id, weight, leader, cluster, client, keys]...], owners as 2 bytes per bucket]
std::string BucketMap::Encode() const {
  wire::Writer w;
  w.Array(3);
  w.U64(epoch_.value());
  w.Array(static_cast<uint32_t>(sets_.size()));
  for (const SetInfo& s : sets_) {
    w.Array(6);
    w.U64(s.id.value());
    w.U64(s.weight);
    w.Id(s.leader);
    w.Ep(s.cluster);
    w.Ep(s.client);
    w.U64(s.keys);
  }
  std::string owners(kNumBuckets * 2, '\0');
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    owners[2 * b] = static_cast<char>(owner_[b] >> 8);
    owners[2 * b + 1] = static_cast<char>(owner_[b] & 0xFF);
  }
  w.Bin(owners);
  return w.Take();
}

Result<BucketMap> BucketMap::Decode(std::string_view bytes) {
  try {
    auto oh = wire::Unpack(bytes);
    wire::Reader r(oh.get());
    if (r.Array() != 3) throw wire::WireError("bucket map: expected 3 fields");
    BucketMap m;
    m.epoch_ = Epoch(r.At(0).U64());
    wire::Reader sets = r.At(1);
    const uint32_t n = sets.Array();
    if (n >= kNoOwner) throw wire::WireError("bucket map: too many sets");
    for (uint32_t i = 0; i < n; ++i) {
      wire::Reader s = sets.At(i);
      if (s.Array() != 6) throw wire::WireError("bucket map: bad set");
      SetInfo info;
      info.id = ReplicaSetId(s.At(0).U64());
      info.weight = static_cast<uint32_t>(s.At(1).U64Max(1u << 20));
      info.leader = s.At(2).Id();
      info.cluster = s.At(3).Ep();
      info.client = s.At(4).Ep();
      info.keys = s.At(5).U64();
      m.sets_.push_back(std::move(info));
    }
    std::string_view owners = r.At(2).Bin();
    if (owners.size() != kNumBuckets * 2) throw wire::WireError("bucket map: bad owner table");
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      const uint16_t o = static_cast<uint16_t>((static_cast<uint8_t>(owners[2 * b]) << 8) |
                                               static_cast<uint8_t>(owners[2 * b + 1]));
      if (o != kNoOwner && o >= n) throw wire::WireError("bucket map: owner out of range");
      m.owner_[b] = o;
    }
    return m;
  } catch (const wire::WireError& e) {
    return Error(Errc::kMalformed, e.what());
  }
}

}  // namespace shoal::sharding
