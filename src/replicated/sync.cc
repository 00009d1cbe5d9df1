#include "replicated/sync.h"

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/wire.h"

namespace shoal::replicated {

namespace {

constexpr uint64_t kVersion = 1;
constexpr size_t kMaxMapName = 256;

template <typename T>
std::string PackInts(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}
template <typename T>
std::vector<T> UnpackInts(std::string_view s) {
  if (s.size() % sizeof(T) != 0) throw wire::WireError("packed integers of a bad length");
  std::vector<T> v(s.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), s.data(), s.size());
  return v;
}

void WriteChange(wire::Writer& w, const Change& c) {
  w.Array(7);
  w.Bin(c.key);
  w.U64(c.value ? 1 : 0);
  w.Bin(c.value ? std::string_view(*c.value) : std::string_view());
  w.U64(c.stamp.time.wall);
  w.U64(c.stamp.time.logical);
  w.Id(c.stamp.origin);
  w.U64(static_cast<uint64_t>(c.expire_ms + 1));  // kNoExpire (-1) is 0
}

Change ReadChange(const wire::Reader& r) {
  if (r.Array() != 7) throw wire::WireError("bad change");
  Change c;
  c.key = std::string(r.At(0).Bin());
  const uint64_t has = r.At(1).U64Max(1);
  if (has) c.value = std::string(r.At(2).Bin());
  c.stamp.time.wall = r.At(3).U64();
  c.stamp.time.logical = static_cast<uint32_t>(r.At(4).U64Max(UINT32_MAX));
  c.stamp.origin = r.At(5).Id();
  const uint64_t exp = r.At(6).U64Max(static_cast<uint64_t>(INT64_MAX));
  c.expire_ms = has ? static_cast<int64_t>(exp) - 1 : kNoExpire;
  return c;
}

void WriteChanges(wire::Writer& w, const std::vector<Change>& cs) {
  w.Array(static_cast<uint32_t>(cs.size()));
  for (const Change& c : cs) WriteChange(w, c);
}

std::vector<Change> ReadChanges(const wire::Reader& r) {
  const uint32_t n = r.Array();
  std::vector<Change> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) out.push_back(ReadChange(r.At(i)));
  return out;
}

std::string ReadMapName(const wire::Reader& r) {
  std::string_view m = r.Bin();
  if (m.empty() || m.size() > kMaxMapName) throw wire::WireError("bad map name");
  return std::string(m);
}

uint32_t NodesAt(int bits) { return bits == 0 ? 1u : 1u << bits; }

// What DecodeRequest checks beyond the encoding, for requests built by hand (Answer's callers).
const char* Invalid(const SyncRequest& q) {
  if (q.map.empty() || q.map.size() > kMaxMapName) return "bad map name";
  switch (q.kind) {
    case SyncKind::kCompare:
      if (q.bits != kTopBits && q.bits != kGroupBits && q.bits != kLeafBits) {
        return "bad tree level";
      }
      if (q.nodes.size() != q.digests.size()) return "nodes without digests";
      if (q.nodes.size() > NodesAt(q.bits)) return "more tree nodes than the level has";
      for (uint32_t n : q.nodes) {
        if (n >= NodesAt(q.bits)) return "tree node out of range";
      }
      return nullptr;
    case SyncKind::kReconcile:
      if (q.hashes.size() != q.leaves.size() || q.leaves.size() > kLeavesPerReconcile) {
        return "bad reconcile leaves";
      }
      for (uint32_t leaf : q.leaves) {
        if (leaf >= kLeaves) return "leaf out of range";
      }
      return nullptr;
    case SyncKind::kPush:
      return nullptr;
  }
  return "unknown sync request";
}

}  // namespace

std::string EncodeChanges(std::string_view map, const std::vector<Change>& changes) {
  wire::Writer w;
  w.Array(3);
  w.U64(kVersion);
  w.Bin(map);
  WriteChanges(w, changes);
  return w.Take();
}

Result<ChangeBatch> DecodeChanges(std::string_view bytes) {
  try {
    auto h = wire::Unpack(bytes);
    wire::Reader r(h.get());
    if (r.Array() != 3 || r.At(0).U64() != kVersion) throw wire::WireError("bad change batch");
    ChangeBatch b;
    b.map = ReadMapName(r.At(1));
    b.changes = ReadChanges(r.At(2));
    return b;
  } catch (const wire::WireError& e) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 std::string("replicated changes: ") + e.what());
  }
}

std::string EncodeRequest(const SyncRequest& q) {
  wire::Writer w;
  switch (q.kind) {
    case SyncKind::kCompare:
      w.Array(7);
      w.U64(kVersion);
      w.U64(static_cast<uint64_t>(q.kind));
      w.Bin(q.map);
      w.U64(static_cast<uint64_t>(q.bits));
      w.Bin(PackInts(q.nodes));
      w.Bin(PackInts(q.digests));
      w.U64(q.fresh ? 1 : 0);
      break;
    case SyncKind::kReconcile:
      w.Array(5);
      w.U64(kVersion);
      w.U64(static_cast<uint64_t>(q.kind));
      w.Bin(q.map);
      w.Bin(PackInts(q.leaves));
      w.Array(static_cast<uint32_t>(q.hashes.size()));
      for (const auto& h : q.hashes) w.Bin(PackInts(h));
      break;
    case SyncKind::kPush:
      w.Array(4);
      w.U64(kVersion);
      w.U64(static_cast<uint64_t>(q.kind));
      w.Bin(q.map);
      WriteChanges(w, q.changes);
      break;
  }
  return w.Take();
}

Result<SyncRequest> DecodeRequest(std::string_view bytes) {
  try {
    auto h = wire::Unpack(bytes);
    wire::Reader r(h.get());
    if (r.Array() < 4 || r.At(0).U64() != kVersion) throw wire::WireError("bad sync request");
    SyncRequest q;
    const uint64_t kind = r.At(1).U64Max(3);
    q.map = ReadMapName(r.At(2));
    switch (kind) {
      case 1: {
        q.kind = SyncKind::kCompare;
        // Six elements: an initiator that does not say whether it is fresh (it is not).
        if (r.Array() != 6 && r.Array() != 7) throw wire::WireError("bad compare");
        q.fresh = r.Array() == 7 && r.At(6).U64Max(1) == 1;
        q.bits = static_cast<int>(r.At(3).U64Max(kLeafBits));
        if (q.bits != kTopBits && q.bits != kGroupBits && q.bits != kLeafBits) {
          throw wire::WireError("bad tree level");
        }
        q.nodes = UnpackInts<uint32_t>(r.At(4).Bin());
        q.digests = UnpackInts<uint64_t>(r.At(5).Bin());
        if (q.nodes.size() != q.digests.size()) throw wire::WireError("nodes without digests");
        if (q.nodes.size() > NodesAt(q.bits)) {
          throw wire::WireError("more tree nodes than the level has");
        }
        for (uint32_t n : q.nodes) {
          if (n >= NodesAt(q.bits)) throw wire::WireError("tree node out of range");
        }
        break;
      }
      case 2: {
        q.kind = SyncKind::kReconcile;
        if (r.Array() != 5) throw wire::WireError("bad reconcile");
        q.leaves = UnpackInts<uint32_t>(r.At(3).Bin());
        const wire::Reader hs = r.At(4);
        if (hs.Array() != q.leaves.size() || q.leaves.size() > kLeavesPerReconcile) {
          throw wire::WireError("bad reconcile leaves");
        }
        for (uint32_t i = 0; i < q.leaves.size(); ++i) {
          if (q.leaves[i] >= kLeaves) throw wire::WireError("leaf out of range");
          q.hashes.push_back(UnpackInts<uint64_t>(hs.At(i).Bin()));
        }
        break;
      }
      case 3:
        q.kind = SyncKind::kPush;
        if (r.Array() != 4) throw wire::WireError("bad push");
        q.changes = ReadChanges(r.At(3));
        break;
      default:
        throw wire::WireError("unknown sync request");
    }
    return q;
  } catch (const wire::WireError& e) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 std::string("replicated sync: ") + e.what());
  }
}

Result<std::string> Answer(const LwwMap& map, const SyncRequest& q, std::vector<Change>* pushed) {
  if (const char* why = Invalid(q)) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 std::string("replicated sync: ") + why);
  }
  wire::Writer w;
  switch (q.kind) {
    case SyncKind::kCompare: {
      std::vector<uint32_t> differ;
      for (size_t i = 0; i < q.nodes.size(); ++i) {
        if (map.Digest(q.bits, q.nodes[i]) != q.digests[i]) differ.push_back(q.nodes[i]);
      }
      w.Array(1);
      w.Bin(PackInts(differ));
      break;
    }
    case SyncKind::kReconcile: {
      std::vector<Change> give;
      std::vector<uint64_t> want;
      size_t bytes = 0;
      uint32_t answered = 0;
      for (size_t i = 0; i < q.leaves.size() && bytes < kMaxAnswerBytes; ++i, ++answered) {
        absl::flat_hash_set<uint64_t> theirs(q.hashes[i].begin(), q.hashes[i].end());
        absl::flat_hash_set<uint64_t> mine;
        map.ForEachInLeaf(q.leaves[i], [&](const std::string& k, const LwwMap::Entry& e) {
          const uint64_t h = LwwMap::EntryHash(k, e.stamp);
          mine.insert(h);
          if (!theirs.contains(h)) {
            give.push_back(LwwMap::ToChange(k, e));
            bytes += LwwMap::WireBytes(k.size(), e.value.size());
          }
        });
        for (uint64_t h : q.hashes[i]) {
          if (!mine.contains(h)) want.push_back(h);
        }
      }
      w.Array(3);
      w.U64(answered);
      WriteChanges(w, give);
      w.Bin(PackInts(want));
      break;
    }
    case SyncKind::kPush:
      if (pushed != nullptr) *pushed = q.changes;
      w.Array(1);
      w.U64(q.changes.size());
      break;
  }
  return w.Take();
}

std::string SyncSession::CompareRequest(const LwwMap& m, int bits, std::vector<uint32_t> nodes) {
  SyncRequest q;
  q.kind = SyncKind::kCompare;
  q.map = map_;
  q.bits = bits;
  q.fresh = fresh_;
  q.digests.reserve(nodes.size());
  for (uint32_t n : nodes) q.digests.push_back(m.Digest(bits, n));
  asked_ = nodes;
  q.nodes = std::move(nodes);
  bits_ = bits;
  phase_ = Phase::kCompare;
  return Track(EncodeRequest(q));
}

std::string SyncSession::Start(const LwwMap& m, bool fresh) {
  fresh_ = fresh;
  // An empty map descends too: against an empty or small peer that costs ~2 KiB, not a
  // reconcile of all 65536 leaves.
  std::vector<uint32_t> all(NodesAt(kTopBits));
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  return CompareRequest(m, kTopBits, std::move(all));
}

std::optional<std::string> SyncSession::NextReconcile(const LwwMap& m) {
  if (next_leaf_ >= leaves_.size()) {
    phase_ = Phase::kDone;
    return std::nullopt;
  }
  SyncRequest q;
  q.kind = SyncKind::kReconcile;
  q.map = map_;
  const size_t end = std::min(leaves_.size(), next_leaf_ + kLeavesPerReconcile);
  batch_.assign(leaves_.begin() + static_cast<ptrdiff_t>(next_leaf_),
                leaves_.begin() + static_cast<ptrdiff_t>(end));
  for (uint32_t leaf : batch_) {
    std::vector<uint64_t> hs;
    m.ForEachInLeaf(leaf, [&hs](const std::string& k, const LwwMap::Entry& e) {
      hs.push_back(LwwMap::EntryHash(k, e.stamp));
    });
    q.hashes.push_back(std::move(hs));
  }
  q.leaves = batch_;
  phase_ = Phase::kReconcile;
  return Track(EncodeRequest(q));
}

std::optional<std::string> SyncSession::NextPush() {
  if (push_next_ >= push_.size()) {
    push_.clear();
    push_next_ = 0;
    return std::nullopt;
  }
  SyncRequest q;
  q.kind = SyncKind::kPush;
  q.map = map_;
  size_t bytes = 0;
  while (push_next_ < push_.size()) {
    Change& c = push_[push_next_];
    const size_t b = LwwMap::WireBytes(c.key.size(), c.value ? c.value->size() : 0);
    if (!q.changes.empty() && bytes + b > kMaxAnswerBytes) break;
    bytes += b;
    q.changes.push_back(std::move(c));
    ++push_next_;
  }
  phase_ = Phase::kPush;
  return Track(EncodeRequest(q));
}

Result<SyncSession::Step> SyncSession::OnAnswer(const LwwMap& m, std::string_view answer) {
  stats_.bytes_received += answer.size();
  Step step;
  try {
    auto h = wire::Unpack(answer);
    wire::Reader r(h.get());
    switch (phase_) {
      case Phase::kCompare: {
        if (r.Array() != 1) throw wire::WireError("bad compare answer");
        std::vector<uint32_t> differ = UnpackInts<uint32_t>(r.At(0).Bin());
        // Only nodes asked about (this also bounds every leaf and child below).
        std::sort(differ.begin(), differ.end());
        differ.erase(std::unique(differ.begin(), differ.end()), differ.end());
        for (uint32_t d : differ) {
          if (!std::binary_search(asked_.begin(), asked_.end(), d)) {
            throw wire::WireError("answer names a tree node not asked about");
          }
        }
        if (bits_ == kLeafBits) {
          leaves_ = std::move(differ);
          stats_.leaves_differing = leaves_.size();
          next_leaf_ = 0;
          step.request = NextReconcile(m);
          break;
        }
        if (differ.empty()) {
          phase_ = Phase::kDone;
          break;
        }
        const int next = bits_ == kTopBits ? kGroupBits : kLeafBits;
        const uint32_t fan = 1u << (next - bits_);
        std::vector<uint32_t> children;
        children.reserve(differ.size() * fan);
        for (uint32_t d : differ) {
          for (uint32_t c = 0; c < fan; ++c) children.push_back(d * fan + c);
        }
        step.request = CompareRequest(m, next, std::move(children));
        break;
      }
      case Phase::kReconcile: {
        if (r.Array() != 3) throw wire::WireError("bad reconcile answer");
        const uint64_t answered = r.At(0).U64Max(batch_.size());
        if (answered == 0 && !batch_.empty()) throw wire::WireError("reconcile answered nothing");
        step.received = ReadChanges(r.At(1));
        stats_.entries_received += step.received.size();
        const std::vector<uint64_t> want = UnpackInts<uint64_t>(r.At(2).Bin());
        next_leaf_ += answered;
        if (!want.empty()) {
          absl::flat_hash_set<uint64_t> wanted(want.begin(), want.end());
          // The peer asks for every entry of ours it lacks, including older versions of keys it
          // has just sent us newer ones of: those it would refuse, so they are not pushed.
          absl::flat_hash_map<std::string_view, Stamp> theirs;
          for (const Change& c : step.received) {
            auto [it, fresh] = theirs.emplace(c.key, c.stamp);
            if (!fresh && it->second < c.stamp) it->second = c.stamp;
          }
          push_.clear();
          push_next_ = 0;
          for (size_t i = 0; i < answered; ++i) {
            m.ForEachInLeaf(batch_[i], [&](const std::string& k, const LwwMap::Entry& e) {
              if (!wanted.contains(LwwMap::EntryHash(k, e.stamp))) return;
              auto it = theirs.find(k);
              if (it != theirs.end() && e.stamp < it->second) return;
              push_.push_back(LwwMap::ToChange(k, e));
            });
          }
          stats_.entries_sent += push_.size();
          step.request = NextPush();
          if (step.request) break;
        }
        step.request = NextReconcile(m);
        break;
      }
      case Phase::kPush:
        if (r.Array() != 1) throw wire::WireError("bad push answer");
        step.request = NextPush();
        if (!step.request) step.request = NextReconcile(m);
        break;
      case Phase::kDone:
        throw wire::WireError("answer after the session ended");
    }
  } catch (const wire::WireError& e) {
    phase_ = Phase::kDone;
    return Error(std::make_error_code(std::errc::invalid_argument),
                 std::string("replicated sync answer: ") + e.what());
  }
  return step;
}

}  // namespace shoal::replicated
