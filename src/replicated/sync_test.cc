// Sync: a SyncSession against the stateless Answer, in process, repairs both copies whatever the
// difference (one empty, one missing a little, writes on both sides, conflicting versions,
// tombstones), in the expected number of rounds; an answer over kMaxAnswerBytes stops early and
// the session asks again, and a push over it is split; change batches round-trip; malformed
// requests, batches and answers are errors, never crashes.
#include "replicated/sync.h"
#include "replicated/test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/wire.h"

namespace shoal::replicated {
namespace {

using namespace ::shoal::replicated::testing;  // NOLINT

std::string Key(int i) {
  char b[32];
  std::snprintf(b, sizeof b, "user:%08d", i);
  return b;
}

// Both copies hold the same entries: the root digest, every level-8 digest and the contents.
void ExpectSame(const LwwMap& a, const LwwMap& b) {
  EXPECT_EQ(a.Digest(0, 0), b.Digest(0, 0));
  for (uint32_t i = 0; i < (1u << kTopBits); ++i) {
    ASSERT_EQ(a.Digest(kTopBits, i), b.Digest(kTopBits, i)) << "level-8 node " << i;
  }
  EXPECT_EQ(a.entries(), b.entries());
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(ContentsOf(a), ContentsOf(b));
}

struct SyncRun {
  SyncStats stats;
  size_t max_answer = 0;
  size_t max_request = 0;
  size_t pushes = 0;
  size_t reconciles = 0;
  size_t compares = 0;
};

// Runs one session of `a` (initiator) against `b` (responder) to the end, applying what each
// side receives. `between` (optional) runs after every round, to change the maps mid-session.
SyncRun Sync(LwwMap& a, LwwMap& b, const std::function<void()>& between = {}) {
  SyncRun run;
  SyncSession s("m");
  std::optional<std::string> req = s.Start(a);
  int guard = 0;
  while (req) {
    EXPECT_LT(++guard, 1000) << "session does not end";
    if (guard >= 1000) break;
    run.max_request = std::max(run.max_request, req->size());
    Result<SyncRequest> q = DecodeRequest(*req);
    EXPECT_TRUE(q.ok()) << q.error().ToString();
    if (!q.ok()) break;
    EXPECT_EQ(q->map, "m");
    run.compares += q->kind == SyncKind::kCompare;
    run.reconciles += q->kind == SyncKind::kReconcile;
    run.pushes += q->kind == SyncKind::kPush;
    std::vector<Change> pushed;
    Result<std::string> ans = Answer(b, *q, &pushed);
    EXPECT_TRUE(ans.ok());
    if (!ans.ok()) break;
    for (const Change& c : pushed) b.Apply(c);
    run.max_answer = std::max(run.max_answer, ans->size());
    Result<SyncSession::Step> step = s.OnAnswer(a, *ans);
    EXPECT_TRUE(step.ok()) << step.error().ToString();
    if (!step.ok()) break;
    for (const Change& c : step->received) a.Apply(c);
    req = std::move(step->request);
    if (between) between();
  }
  EXPECT_TRUE(s.done());
  run.stats = s.stats();
  return run;
}

void Fill(LwwMap& m, int from, int to, uint64_t t, uint64_t node) {
  for (int i = from; i < to; ++i) m.Apply(Put(Key(i), "value-" + std::to_string(i), t + i, node));
}

// Reconcile rounds for the differing leaves of a session.
uint64_t Batches(const SyncRun& r) {
  return (r.stats.leaves_differing + kLeavesPerReconcile - 1) / kLeavesPerReconcile;
}

TEST(Sync, EqualMapsTakeOneRound) {
  LwwMap a, b;
  Fill(a, 0, 10'000, 100, 1);
  Fill(b, 0, 10'000, 100, 1);
  const SyncRun r = Sync(a, b);
  EXPECT_EQ(r.stats.rounds, 1u);
  EXPECT_EQ(r.stats.entries_received, 0u);
  EXPECT_EQ(r.stats.entries_sent, 0u);
  EXPECT_LT(r.stats.bytes_sent + r.stats.bytes_received, 4000u);
  ExpectSame(a, b);
}

TEST(Sync, EmptyInitiatorGetsEverything) {
  LwwMap a, b;
  Fill(b, 0, 20'000, 100, 2);
  b.Apply(Del(Key(5), 1'000'000, 3));
  b.Apply(Del("gone", 1'000'000, 3));
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(r.stats.entries_received, 20'001u);
  EXPECT_EQ(r.stats.entries_sent, 0u);
  // An empty initiator descends too, then reconciles the leaves that hold entries.
  EXPECT_EQ(r.compares, 3u);
  EXPECT_GT(r.stats.leaves_differing, 10'000u);
  EXPECT_EQ(r.reconciles, Batches(r));
  EXPECT_EQ(r.pushes, 0u);
  EXPECT_EQ(a.tombstones(), 2u);
}

TEST(Sync, EmptyResponderGetsEverythingPushed) {
  LwwMap a, b;
  Fill(a, 0, 20'000, 100, 2);
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(r.stats.entries_sent, 20'000u);
  EXPECT_EQ(r.stats.entries_received, 0u);
  EXPECT_EQ(r.compares, 3u);  // levels 8, 12, 16
  // The leaves that hold entries, in batches, each answered by a push.
  EXPECT_GT(r.stats.leaves_differing, 10'000u);
  EXPECT_EQ(r.reconciles, Batches(r));
  EXPECT_EQ(r.pushes, Batches(r));
}

TEST(Sync, BothEmpty) {
  LwwMap a, b;
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(a.entries(), 0u);
  EXPECT_EQ(r.stats.rounds, 1u);  // equal level-8 digests
  EXPECT_LT(r.stats.bytes_sent + r.stats.bytes_received, 4000u);
}

TEST(Sync, MissingOnePercent) {
  std::mt19937_64 rng(1);
  LwwMap a, b;
  const int n = 50'000;
  Fill(a, 0, n, 100, 1);
  Fill(b, 0, n, 100, 1);
  // a gets 1% more: half updates, half new keys, stamped later.
  for (int i = 0; i < n / 100; ++i) {
    const int k = i % 2 == 0 ? static_cast<int>(rng() % n) : n + i;
    a.Apply(Put(Key(k), "newer-" + std::to_string(i), 10'000'000 + i, 2));
  }
  const SyncRun r = Sync(b, a);  // b, behind, initiates
  ExpectSame(a, b);
  EXPECT_GE(r.stats.entries_received, static_cast<uint64_t>(n / 100) - 30);  // few duplicates
  EXPECT_LE(r.stats.entries_received, static_cast<uint64_t>(n / 100));
  // b's older versions of the updated keys are not pushed back (a has just sent newer ones).
  EXPECT_EQ(r.stats.entries_sent, 0u);
  EXPECT_EQ(r.compares, 3u);
  EXPECT_EQ(r.pushes, 0u);
  // Far less than the map.
  EXPECT_LT(r.stats.bytes_sent + r.stats.bytes_received, a.wire_bytes() / 4);
  // Again: nothing left to do.
  EXPECT_EQ(Sync(b, a).stats.rounds, 1u);
}

TEST(Sync, MissingAFewEntriesDescendsToTheirLeaves) {
  LwwMap a, b;
  Fill(a, 0, 30'000, 100, 1);
  Fill(b, 0, 30'000, 100, 1);
  a.Apply(Put(Key(7), "w", 1'000'000, 2));
  a.Apply(Put("new", "w", 1'000'000, 2));
  b.Apply(Del(Key(42), 1'000'000, 3));
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(r.stats.leaves_differing, 3u);
  // b sends its tombstone and its older version of Key(7) (it cannot tell it is older); a pushes
  // its two new entries but not its older version of Key(42).
  EXPECT_EQ(r.stats.entries_received, 2u);
  EXPECT_EQ(r.stats.entries_sent, 2u);
  EXPECT_EQ(r.stats.rounds, 5u);  // 3 compares, 1 reconcile, 1 push
  EXPECT_LT(r.stats.bytes_sent + r.stats.bytes_received, 8000u);
  EXPECT_EQ(a.Get(Key(42), 0), nullptr);
  EXPECT_EQ(b.Get("new", 0)->value, "w");
}

TEST(Sync, UniqueWritesOnBothSides) {
  LwwMap a, b;
  Fill(a, 0, 10'000, 100, 1);
  Fill(b, 0, 10'000, 100, 1);
  Fill(a, 10'000, 13'000, 200, 2);
  Fill(b, 13'000, 17'000, 300, 3);
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(a.size(), 17'000u);
  EXPECT_EQ(r.stats.entries_received, 4'000u);
  EXPECT_EQ(r.stats.entries_sent, 3'000u);
}

TEST(Sync, ConflictingVersionsResolveToTheGreaterStamp) {
  std::mt19937_64 rng(2);
  LwwMap a, b;
  std::map<std::string, Change> want;
  for (int i = 0; i < 5'000; ++i) {
    const std::string k = Key(i);
    // Same key on both sides, different stamps (sometimes only the origin differs).
    const uint64_t ta = 1000 + rng() % 50, tb = 1000 + rng() % 50;
    Change ca = Put(k, "a" + std::to_string(i), ta, 1);
    Change cb = rng() % 3 == 0 ? Del(k, tb, 2) : Put(k, "b" + std::to_string(i), tb, 2);
    a.Apply(ca);
    b.Apply(cb);
    want[k] = ca.stamp < cb.stamp ? cb : ca;
  }
  Sync(a, b);
  ExpectSame(a, b);
  for (const auto& [k, c] : want) {
    ASSERT_NE(a.Find(k), nullptr);
    EXPECT_EQ(LwwMap::ToChange(k, *a.Find(k)), c) << k;
  }
}

TEST(Sync, TombstonesTravelBothWays) {
  LwwMap a, b;
  Fill(a, 0, 5'000, 100, 1);
  Fill(b, 0, 5'000, 100, 1);
  for (int i = 0; i < 500; ++i) a.Apply(Del(Key(i), 1'000'000, 1));         // deleted on a
  for (int i = 500; i < 1000; ++i) b.Apply(Del(Key(i), 1'000'000, 2));      // deleted on b
  for (int i = 1000; i < 1100; ++i) a.Apply(Del(Key(i), 1'000'000, 1));     // deleted on both,
  for (int i = 1000; i < 1100; ++i) b.Apply(Del(Key(i), 1'000'001, 2));     // b's is newer
  for (int i = 1100; i < 1200; ++i) b.Apply(Put(Key(i), "again", 999, 2));  // older than a's
  a.Apply(Del("never-written", 5, 1));
  Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(a.size(), 5'000u - 1'100u);
  EXPECT_EQ(a.tombstones(), 1'101u);
  EXPECT_EQ(a.Find(Key(1050))->stamp, At(1'000'001, 2));
  EXPECT_EQ(a.Get(Key(1150), 0)->value, "value-1150");
}

TEST(Sync, ExpiryTravelsWithTheValue) {
  LwwMap a, b;
  a.Apply(Put("s", "v", 10, 1, 5000));
  a.Apply(Put("t", "v", 10, 1, 6000));
  a.ExpireSome(5500, kGroups);  // "s" is a tombstone on a with the same stamp
  b.Apply(Put("s", "v", 10, 1, 5000));
  EXPECT_EQ(a.Digest(0, 0) ^ b.Digest(0, 0), LwwMap::EntryHash("t", At(10, 1)));
  Sync(b, a);
  EXPECT_EQ(a.Digest(0, 0), b.Digest(0, 0));
  ASSERT_NE(b.Find("t"), nullptr);
  EXPECT_EQ(b.Find("t")->expire_ms, 6000);
  EXPECT_EQ(b.Get("t", 6000), nullptr);
}

TEST(Sync, MapsChangingDuringTheSessionStillConverge) {
  std::mt19937_64 rng(3);
  LwwMap a, b;
  Fill(a, 0, 20'000, 100, 1);
  Fill(b, 0, 18'000, 100, 1);
  uint64_t t = 5'000'000;
  auto churn = [&] {
    for (int j = 0; j < 50; ++j) {
      LwwMap& m = rng() % 2 ? a : b;
      const std::string k = Key(static_cast<int>(rng() % 25'000));
      m.Apply(rng() % 5 == 0 ? Del(k, ++t, 1 + rng() % 2) : Put(k, "c", ++t, 1 + rng() % 2));
    }
  };
  Sync(a, b, churn);
  Sync(a, b);  // what changed during the first session
  ExpectSame(a, b);
}

TEST(Sync, BigAnswersStopEarlyAndTheSessionAsksAgain) {
  // 24 entries of 1 MiB in the first reconcile batch's leaves: more than kMaxAnswerBytes.
  const std::string big(1 << 20, 'x');
  LwwMap a, b;
  int n = 0;
  for (int i = 0; n < 24; ++i) {
    const std::string k = "big:" + std::to_string(i);
    if (LwwMap::LeafOf(k) >= kLeavesPerReconcile) continue;
    b.Apply(Put(k, big + std::to_string(i), 100, 2));
    ++n;
  }
  Fill(b, 0, 1000, 100, 2);
  ASSERT_GT(b.wire_bytes(), kMaxAnswerBytes);
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_GT(r.reconciles, Batches(r));  // at least one batch was answered in two parts
  EXPECT_EQ(r.stats.entries_received, 1024u);
  // An answer goes over the cap by less than one leaf's entries.
  EXPECT_LT(r.max_answer, kMaxAnswerBytes + 3 * (1 << 20));
}

TEST(Sync, BigPushesAreSplit) {
  // The same from the other side: the initiator has the big entries, the responder nothing.
  const std::string big(1 << 20, 'y');
  LwwMap a, b;
  int n = 0;
  for (int i = 0; n < 40; ++i) {
    const std::string k = "big:" + std::to_string(i);
    if (LwwMap::LeafOf(k) >= kLeavesPerReconcile) continue;
    a.Apply(Put(k, big, 100, 1));
    ++n;
  }
  const SyncRun r = Sync(a, b);
  ExpectSame(a, b);
  EXPECT_EQ(r.stats.entries_sent, 40u);
  EXPECT_GE(r.pushes, 3u);  // 40 MiB in pushes of at most 16 MiB
  EXPECT_LE(r.max_request, kMaxAnswerBytes + 4096);
}

TEST(Sync, ChangeBatchesRoundTrip) {
  std::vector<Change> cs = {Put("a", "1", 10, 1), Del("b", 11, 2), Put("c", "", 12, 3, 99),
                            Put(std::string("\0k\xff", 3), std::string(1000, '\0'), UINT64_MAX, 4)};
  cs[1].stamp.time.logical = UINT32_MAX;
  cs[2].stamp.origin = MemberId(UINT64_MAX, UINT64_MAX);
  cs[3].expire_ms = INT64_MAX - 1;
  Result<ChangeBatch> b = DecodeChanges(EncodeChanges("users", cs));
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(b->map, "users");
  EXPECT_EQ(b->changes, cs);
  Result<ChangeBatch> empty = DecodeChanges(EncodeChanges("m", {}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->changes.empty());
  // A map name is required and bounded.
  EXPECT_FALSE(DecodeChanges(EncodeChanges("", cs)).ok());
  EXPECT_FALSE(DecodeChanges(EncodeChanges(std::string(257, 'm'), cs)).ok());
  EXPECT_TRUE(DecodeChanges(EncodeChanges(std::string(256, 'm'), cs)).ok());
}

TEST(Sync, RequestsRoundTrip) {
  SyncRequest c;
  c.kind = SyncKind::kCompare;
  c.map = "m";
  c.bits = kGroupBits;
  c.nodes = {0, 5, kGroups - 1};
  c.digests = {1, 2, UINT64_MAX};
  SyncRequest fresh = c;
  fresh.fresh = true;
  SyncRequest r;
  r.kind = SyncKind::kReconcile;
  r.map = "m";
  r.leaves = {0, kLeaves - 1};
  r.hashes = {{1, 2, 3}, {}};
  SyncRequest p;
  p.kind = SyncKind::kPush;
  p.map = "m";
  p.changes = {Put("a", "1", 10, 1), Del("b", 11, 2)};
  for (const SyncRequest& q : {c, fresh, r, p}) {
    Result<SyncRequest> d = DecodeRequest(EncodeRequest(q));
    ASSERT_TRUE(d.ok()) << d.error().ToString();
    EXPECT_EQ(d->kind, q.kind);
    EXPECT_EQ(d->fresh, q.fresh);
    EXPECT_EQ(d->map, q.map);
    EXPECT_EQ(d->nodes, q.nodes);
    EXPECT_EQ(d->digests, q.digests);
    EXPECT_EQ(d->leaves, q.leaves);
    EXPECT_EQ(d->hashes, q.hashes);
    EXPECT_EQ(d->changes, q.changes);
  }
}

// Valid messages of every kind, for the malformed-input tests.
std::vector<std::string> ValidRequests() {
  LwwMap a;
  Fill(a, 0, 300, 100, 1);
  a.Apply(Del(Key(3), 1000, 1));
  std::vector<std::string> out;
  SyncSession s("m");
  out.push_back(s.Start(a));  // compare at level 8
  SyncSession f("m");
  out.push_back(f.Start(a, /*fresh=*/true));
  SyncRequest c;
  c.kind = SyncKind::kCompare;
  c.map = "m";
  c.bits = kLeafBits;
  c.nodes = {1, 2, 3};
  c.digests = {4, 5, 6};
  out.push_back(EncodeRequest(c));
  SyncRequest r;
  r.kind = SyncKind::kReconcile;
  r.map = "m";
  r.leaves = {7, 8};
  r.hashes = {{1, 2}, {3}};
  out.push_back(EncodeRequest(r));
  SyncRequest p;
  p.kind = SyncKind::kPush;
  p.map = "m";
  p.changes = {Put("a", "1", 10, 1, 500), Del("b", 11, 2)};
  out.push_back(EncodeRequest(p));
  return out;
}

TEST(Sync, TruncatedOrCorruptRequestsAreErrors) {
  LwwMap m;
  Fill(m, 0, 300, 100, 1);
  int corrupt_ok = 0;
  for (const std::string& msg : ValidRequests()) {
    ASSERT_TRUE(DecodeRequest(msg).ok());
    for (size_t len = 0; len < msg.size(); ++len) {
      Result<SyncRequest> q = DecodeRequest(std::string_view(msg).substr(0, len));
      EXPECT_FALSE(q.ok()) << "prefix of " << len << " of " << msg.size() << " bytes decoded";
      if (!q.ok()) {
        EXPECT_NE(q.error().message().find("replicated sync"), std::string::npos);
      }
    }
    for (size_t pos = 0; pos < msg.size(); ++pos) {
      for (uint8_t x : {0x01, 0x80, 0xff}) {
        std::string bad = msg;
        bad[pos] = static_cast<char>(bad[pos] ^ x);
        Result<SyncRequest> q = DecodeRequest(bad);
        if (!q.ok()) continue;
        ++corrupt_ok;  // a flip inside a digest or a value is still a valid request
        std::vector<Change> pushed;
        ASSERT_TRUE(Answer(m, *q, &pushed).ok());  // and a decoded request is answerable
      }
    }
  }
  EXPECT_FALSE(DecodeRequest("").ok());
  EXPECT_GT(corrupt_ok, 0);
}

TEST(Sync, SpecificBadRequests) {
  auto compare = [](int bits, std::vector<uint32_t> nodes, size_t digests) {
    SyncRequest q;
    q.kind = SyncKind::kCompare;
    q.map = "m";
    q.bits = bits;
    q.nodes = std::move(nodes);
    q.digests.assign(digests, 0);
    return q;
  };
  LwwMap m;
  for (const SyncRequest& q :
       {compare(4, {0}, 1), compare(0, {0}, 1), compare(kTopBits, {256}, 1),
        compare(kGroupBits, {kGroups}, 1), compare(kLeafBits, {kLeaves}, 1),
        compare(kTopBits, {1, 2}, 1), compare(kTopBits, std::vector<uint32_t>(257, 0), 257)}) {
    EXPECT_FALSE(DecodeRequest(EncodeRequest(q)).ok()) << q.bits;
    EXPECT_FALSE(Answer(m, q, nullptr).ok()) << q.bits;  // Answer checks hand-built requests
  }
  SyncRequest r;
  r.kind = SyncKind::kReconcile;
  r.map = "m";
  r.leaves = {kLeaves};
  r.hashes = {{}};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(r)).ok());
  EXPECT_FALSE(Answer(m, r, nullptr).ok());
  r.leaves = {1, 2};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(r)).ok());  // leaves without hashes
  EXPECT_FALSE(Answer(m, r, nullptr).ok());
  r.leaves.assign(kLeavesPerReconcile + 1, 0);
  r.hashes.assign(kLeavesPerReconcile + 1, {});
  EXPECT_FALSE(DecodeRequest(EncodeRequest(r)).ok());
  r.leaves = {1};
  r.hashes = {{1}};
  r.map = "";
  EXPECT_FALSE(DecodeRequest(EncodeRequest(r)).ok());
  EXPECT_FALSE(Answer(m, r, nullptr).ok());
  // Hand-made: a wrong version, an unknown kind, packed integers of a bad length.
  {
    wire::Writer w;
    w.Array(4);
    w.U64(2);
    w.U64(3);
    w.Bin("m");
    w.Array(0);
    EXPECT_FALSE(DecodeRequest(w.Take()).ok());
  }
  {
    wire::Writer w;
    w.Array(4);
    w.U64(1);
    w.U64(4);
    w.Bin("m");
    w.Array(0);
    EXPECT_FALSE(DecodeRequest(w.Take()).ok());
  }
  {
    wire::Writer w;
    w.Array(7);
    w.U64(1);
    w.U64(1);
    w.Bin("m");
    w.U64(8);
    w.Bin("abc");  // not a multiple of 4
    w.Bin("");
    w.U64(0);
    Result<SyncRequest> q = DecodeRequest(w.Take());
    ASSERT_FALSE(q.ok());
    EXPECT_NE(q.error().message().find("bad length"), std::string::npos) << q.error().message();
  }
  EXPECT_FALSE(DecodeRequest(std::string(1, '\xc1')).ok());    // not msgpack
  EXPECT_FALSE(DecodeRequest(std::string(100, '\x91')).ok());  // deep nesting
}

TEST(Sync, TruncatedOrCorruptChangeBatchesAreErrors) {
  const std::string msg = EncodeChanges("users", {Put("a", "1", 10, 1, 500), Del("b", 11, 2),
                                                  Put("c", std::string(300, 'v'), 12, 3)});
  ASSERT_TRUE(DecodeChanges(msg).ok());
  for (size_t len = 0; len < msg.size(); ++len) {
    Result<ChangeBatch> b = DecodeChanges(std::string_view(msg).substr(0, len));
    EXPECT_FALSE(b.ok()) << len;
    if (!b.ok()) {
      EXPECT_NE(b.error().message().find("replicated changes"), std::string::npos);
    }
  }
  for (size_t pos = 0; pos < msg.size(); ++pos) {
    for (uint8_t x : {0x01, 0x10, 0x80, 0xff}) {
      std::string bad = msg;
      bad[pos] = static_cast<char>(bad[pos] ^ x);
      Result<ChangeBatch> b = DecodeChanges(bad);
      if (b.ok()) {
        // Whatever decodes re-encodes to something that decodes the same.
        Result<ChangeBatch> again = DecodeChanges(EncodeChanges(b->map, b->changes));
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(again->changes, b->changes);
      }
    }
  }
  auto change = [](uint64_t has, uint64_t logical, uint64_t expire) {
    wire::Writer w;
    w.Array(3);
    w.U64(1);
    w.Bin("m");
    w.Array(1);
    w.Array(7);
    w.Bin("k");
    w.U64(has);
    w.Bin("v");
    w.U64(1);
    w.U64(logical);
    w.Id(MemberId(0, 1));
    w.U64(expire);
    return w.Take();
  };
  EXPECT_TRUE(DecodeChanges(change(1, 0, 0)).ok());
  EXPECT_FALSE(DecodeChanges(change(2, 0, 0)).ok());
  EXPECT_FALSE(DecodeChanges(change(1, uint64_t{UINT32_MAX} + 1, 0)).ok());
  EXPECT_FALSE(DecodeChanges(change(1, 0, uint64_t{INT64_MAX} + 1)).ok());
  Result<ChangeBatch> del = DecodeChanges(change(0, 0, 77));  // a delete has no expiry
  ASSERT_TRUE(del.ok());
  EXPECT_FALSE(del->changes[0].value.has_value());
  EXPECT_EQ(del->changes[0].expire_ms, kNoExpire);
}

TEST(Sync, MalformedAnswersAreErrorsAndEndTheSession) {
  LwwMap a, b;
  Fill(a, 0, 2000, 100, 1);
  Fill(b, 0, 2100, 100, 1);
  auto packed = [](std::vector<uint32_t> v) {
    wire::Writer w;
    w.Array(1);
    w.Bin(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
    return w.Take();
  };
  // Drives a fresh session to the given phase: 0 = compare at 8, 1 = at 12, 2 = at 16,
  // 3 = first reconcile; returns the session and the valid answer to its current request.
  auto at = [&](int phase, SyncSession& s) {
    std::string req = s.Start(a);
    std::string ans;
    for (int i = 0;; ++i) {
      Result<SyncRequest> q = DecodeRequest(req);
      EXPECT_TRUE(q.ok());
      ans = *Answer(b, *q, nullptr);
      if (i == phase) return ans;
      Result<SyncSession::Step> st = s.OnAnswer(a, ans);
      EXPECT_TRUE(st.ok() && st->request);
      req = *st->request;
    }
  };
  for (int phase = 0; phase < 4; ++phase) {
    SyncSession ref("m");
    const std::string valid = at(phase, ref);
    // Every prefix, and single flipped bytes, of the valid answer.
    for (size_t len = 0; len < valid.size(); ++len) {
      SyncSession s("m");
      at(phase, s);
      Result<SyncSession::Step> st = s.OnAnswer(a, std::string_view(valid).substr(0, len));
      EXPECT_FALSE(st.ok()) << "phase " << phase << " prefix " << len;
      EXPECT_TRUE(s.done());
      EXPECT_FALSE(s.OnAnswer(a, valid).ok());  // and nothing after that
    }
    for (size_t pos = 0; pos < valid.size(); pos += 1 + valid.size() / 64) {
      SyncSession s("m");
      at(phase, s);
      std::string bad = valid;
      bad[pos] = static_cast<char>(bad[pos] ^ 0x5a);
      (void)s.OnAnswer(a, bad);  // an error or a step: no crash
    }
    // Garbage of every kind.
    for (const std::string& junk :
         {std::string(), std::string("\xc1"), std::string(50, '\xdc'), packed({}) + "x"}) {
      SyncSession s("m");
      at(phase, s);
      (void)s.OnAnswer(a, junk);
    }
  }
  // Tree nodes that were not asked about: out of range at every level, or simply not asked.
  const std::vector<std::vector<uint32_t>> out_of_range = {{256, 300, UINT32_MAX},
                                                           {kGroups, kGroups + 1, UINT32_MAX},
                                                           {kLeaves, kLeaves + 5, UINT32_MAX}};
  for (int phase = 0; phase < 3; ++phase) {
    for (uint32_t node : out_of_range[phase]) {
      SyncSession s("m");
      at(phase, s);
      Result<SyncSession::Step> st = s.OnAnswer(a, packed({node}));
      EXPECT_FALSE(st.ok()) << "phase " << phase << " node " << node;
      EXPECT_TRUE(s.done());
    }
  }
  {
    // At level 12 only the children of the differing level-8 nodes were asked about.
    SyncSession s("m");
    at(1, s);
    std::vector<uint32_t> all(kGroups);
    for (uint32_t i = 0; i < kGroups; ++i) all[i] = i;
    Result<SyncSession::Step> st = s.OnAnswer(a, packed(all));
    EXPECT_FALSE(st.ok());
  }
  // A reconcile answer that claims more leaves than were asked, or none.
  auto reconcile_answer = [](uint64_t answered) {
    wire::Writer w;
    w.Array(3);
    w.U64(answered);
    w.Array(0);
    w.Bin("");
    return w.Take();
  };
  {
    SyncSession s("m");
    at(3, s);
    EXPECT_FALSE(s.OnAnswer(a, reconcile_answer(kLeavesPerReconcile + 1)).ok());
  }
  {
    SyncSession s("m");
    at(3, s);
    EXPECT_FALSE(s.OnAnswer(a, reconcile_answer(0)).ok());
  }
  {
    // An answer for a finished session.
    SyncSession s("m");
    LwwMap c;
    Fill(c, 0, 2000, 100, 1);
    Result<SyncRequest> q = DecodeRequest(s.Start(c));
    Result<SyncSession::Step> st = s.OnAnswer(c, *Answer(a, *q, nullptr));
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->request.has_value());
    EXPECT_TRUE(s.done());
    EXPECT_FALSE(s.OnAnswer(c, packed({})).ok());
  }
}

}  // namespace
}  // namespace shoal::replicated
