// libFuzzer target: the replicated maps' decoders and sync protocol — sync requests
// (DecodeRequest, then Answer on a small map), change batches (DecodeChanges), snapshots
// (DecodeSnapshot, then RestoreSnapshot) and answers to a SyncSession at each phase of a session
// (OnAnswer). The first byte picks which; with its high bit set, the input instead edits a valid
// message of that kind (byte flips and a truncation, the second byte choosing the message), and a
// snapshot's checksum is then recomputed so that the checks behind it are reached too.
// Each must reject bad input with an error, never crash, and:
//   * a request that decodes is answerable, and re-encodes to one that decodes the same;
//   * a batch that decodes re-encodes to one that decodes the same;
//   * a snapshot that decodes restores, and the restored map's snapshot decodes;
//   * after an answer the session accepts, its next requests decode, and the session, answered
//     by the real responder from then on, ends within a bounded number of rounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "replicated/lww_map.h"
#include "replicated/snapshot.h"
#include "replicated/sync.h"

namespace {

using namespace shoal::replicated;  // NOLINT
using shoal::HlcTime;
using shoal::Result;

Change Put(std::string k, std::string v, uint64_t t, uint64_t node) {
  return Change{std::move(k), std::move(v), Stamp{HlcTime{t, 0}, MemberId(0, node)}, kNoExpire};
}

// Two small maps that differ: `a` the initiator's, `b` the responder's.
struct Maps {
  LwwMap a, b;
  Maps() {
    for (int i = 0; i < 300; ++i) {
      const std::string k = "key:" + std::to_string(i);
      a.Apply(Put(k, "v" + std::to_string(i), 100 + i, 1));
      b.Apply(Put(k, "v" + std::to_string(i), 100 + i, 1));
    }
    for (int i = 0; i < 40; ++i) {
      b.Apply(Put("b:" + std::to_string(i), std::string(i, 'b'), 1000 + i, 2));
      a.Apply(Put("a:" + std::to_string(i), std::string(i, 'a'), 1000 + i, 3));
    }
    for (int i = 0; i < 20; ++i) {
      b.Apply(Change{"key:" + std::to_string(i), std::nullopt,
                     Stamp{HlcTime{2000 + static_cast<uint64_t>(i), 0}, MemberId(0, 2)}});
    }
    Change e = Put("expiring", "x", 3000, 1);
    e.expire_ms = 123456;
    a.Apply(e);
    a.CollectTombstones(HlcTime{50, 0});
  }
};

const Maps& SharedMaps() {
  static const Maps* maps = new Maps();
  return *maps;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

void FuzzRequest(std::string_view in) {
  Result<SyncRequest> q = DecodeRequest(in);
  if (!q.ok()) return;
  std::vector<Change> pushed;
  Check(Answer(SharedMaps().b, *q, &pushed).ok());
  if (q->kind == SyncKind::kPush) Check(pushed == q->changes);
  Result<SyncRequest> again = DecodeRequest(EncodeRequest(*q));
  Check(again.ok() && again->kind == q->kind && again->map == q->map && again->bits == q->bits &&
        again->nodes == q->nodes && again->digests == q->digests && again->leaves == q->leaves &&
        again->hashes == q->hashes && again->changes == q->changes);
  if (!pushed.empty() && pushed.size() < 1000) {
    LwwMap m;
    for (const Change& c : pushed) m.Apply(c);
    uint64_t sum = 0;
    m.ForEach([&sum](const std::string& k, const LwwMap::Entry& e) {
      sum += LwwMap::WireBytes(k.size(), e.value.size());
      return true;
    });
    Check(sum == m.wire_bytes());
  }
}

void FuzzChanges(std::string_view in) {
  Result<ChangeBatch> b = DecodeChanges(in);
  if (!b.ok()) return;
  Result<ChangeBatch> again = DecodeChanges(EncodeChanges(b->map, b->changes));
  Check(again.ok() && again->map == b->map && again->changes == b->changes);
}

void FuzzSnapshot(std::string_view in) {
  Result<Snapshot> s = DecodeSnapshot(in, "fuzz");
  if (!s.ok()) {
    Check(!s.error().message().empty());
    return;
  }
  LwwMap m;
  RestoreSnapshot(*s, &m);
  Check(m.entries() <= s->changes.size());
  Result<Snapshot> again = DecodeSnapshot(EncodeSnapshot(s->map, m), "again");
  Check(again.ok() && again->changes.size() == m.entries() && again->map == s->map);
}

// Drives a session of `a` against `b` to `phase` (0: the level-8 compare, 1: level 12, 2: level
// 16, 3: the first reconcile), then feeds `answer`, then lets `b` answer to the end.
void FuzzAnswer(int phase, std::string_view answer) {
  const Maps& shared = SharedMaps();
  SyncSession s("m");
  std::optional<std::string> req = s.Start(shared.a);
  for (int i = 0; i < phase && req; ++i) {
    Result<SyncRequest> q = DecodeRequest(*req);
    Check(q.ok());
    Result<std::string> ans = Answer(shared.b, *q, nullptr);
    Check(ans.ok());
    Result<SyncSession::Step> st = s.OnAnswer(shared.a, *ans);
    Check(st.ok());
    req = std::move(st->request);
  }
  if (!req) return;
  Result<SyncSession::Step> st = s.OnAnswer(shared.a, answer);
  if (!st.ok()) {
    Check(s.done());
    return;
  }
  req = std::move(st->request);
  for (int rounds = 0; req; ++rounds) {
    Check(rounds < 200);
    Result<SyncRequest> q = DecodeRequest(*req);
    Check(q.ok());
    Result<std::string> ans = Answer(shared.b, *q, nullptr);
    Check(ans.ok());
    Result<SyncSession::Step> next = s.OnAnswer(shared.a, *ans);
    Check(next.ok());
    req = std::move(next->request);
  }
  Check(s.done());
}

// Valid messages to edit.
std::string MakeValid(int kind, uint8_t which) {
  const Maps& shared = SharedMaps();
  switch (kind) {
    case 0: {
      SyncSession s("m");
      std::optional<std::string> req = s.Start(shared.a);
      for (int i = 0; i < which % 6 && req; ++i) {
        Result<SyncRequest> q = DecodeRequest(*req);
        Result<SyncSession::Step> st = s.OnAnswer(shared.a, *Answer(shared.b, *q, nullptr));
        req = st.ok() ? std::move(st->request) : std::nullopt;
      }
      return req ? *req : std::string();
    }
    case 1: {
      std::vector<Change> cs;
      shared.a.ForEach([&](const std::string& k, const LwwMap::Entry& e) {
        cs.push_back(LwwMap::ToChange(k, e));
        return cs.size() < 1u + which % 8;
      });
      cs.push_back(Change{"deleted", std::nullopt, Stamp{HlcTime{9, 9}, MemberId(9, 9)}});
      return EncodeChanges("users", cs);
    }
    case 2: {
      LwwMap m;
      int n = 0;
      shared.b.ForEach([&](const std::string& k, const LwwMap::Entry& e) {
        m.Apply(LwwMap::ToChange(k, e));
        return ++n < 1 + which % 6;
      });
      m.Apply(Change{"gone", std::nullopt, Stamp{HlcTime{5000, 1}, MemberId(0, 4)}});
      return EncodeSnapshot("users", m);
    }
    default: {
      // An answer to phase which % 4.
      SyncSession s("m");
      std::optional<std::string> req = s.Start(shared.a);
      std::string ans;
      for (int i = 0; req; ++i) {
        Result<SyncRequest> q = DecodeRequest(*req);
        ans = *Answer(shared.b, *q, nullptr);
        if (i == which % 4) break;
        Result<SyncSession::Step> st = s.OnAnswer(shared.a, ans);
        req = st.ok() ? std::move(st->request) : std::nullopt;
      }
      return ans;
    }
  }
}

// MakeValid, remembered (the messages are a function of the arguments).
const std::string& Valid(int kind, uint8_t which) {
  static std::map<std::pair<int, int>, std::string>* cache =
      new std::map<std::pair<int, int>, std::string>();
  const std::pair<int, int> k(kind, which % 24);
  auto it = cache->find(k);
  if (it == cache->end()) it = cache->emplace(k, MakeValid(kind, which % 24)).first;
  return it->second;
}

// Edits `msg` with `edits`: a truncation length, then (position, xor) pairs.
std::string Edit(std::string msg, std::string_view edits) {
  if (msg.empty()) return msg;
  if (!edits.empty()) {
    const uint8_t cut = static_cast<uint8_t>(edits[0]);
    if (cut < 32) msg.resize(msg.size() * cut / 32);  // otherwise: whole
    edits.remove_prefix(1);
  }
  for (size_t i = 0; i + 3 <= edits.size() && !msg.empty(); i += 3) {
    uint16_t pos;
    std::memcpy(&pos, edits.data() + i, 2);
    msg[pos % msg.size()] ^= edits[i + 2];
  }
  return msg;
}

void Reseal(std::string& snapshot) {
  if (snapshot.size() < 16) return;
  const size_t body = snapshot.size() - 16;
  const uint64_t sum = shoal::Hash64(std::string_view(snapshot).substr(0, body));
  std::memcpy(snapshot.data() + body, &sum, 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int kind = (mode & 0x7f) % 4;
  std::string edited;
  uint8_t which = 0;
  if (mode & 0x80) {
    if (in.empty()) return 0;
    which = static_cast<uint8_t>(in[0]);
    edited = Edit(Valid(kind, which), in.substr(1));
    if (kind == 2 && (which & 0x80)) Reseal(edited);
    in = edited;
  } else if (kind == 3) {
    if (in.empty()) return 0;
    which = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
  }
  switch (kind) {
    case 0:
      FuzzRequest(in);
      break;
    case 1:
      FuzzChanges(in);
      break;
    case 2:
      FuzzSnapshot(in);
      break;
    default:
      FuzzAnswer(which % 4, in);
  }
  return 0;
}
