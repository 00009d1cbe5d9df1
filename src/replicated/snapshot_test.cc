// Snapshots: a map (tombstones, expiry and horizon included) round-trips through the bytes and a
// file; a truncated, corrupt or foreign file is refused with a message naming the file and the
// fault, and is left as it was.
#include "replicated/snapshot.h"
#include "replicated/test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/hash.h"
#include "sim/sim_disk.h"

namespace shoal::replicated {
namespace {

using namespace ::shoal::replicated::testing;  // NOLINT

// A map with everything a snapshot must keep: values (binary ones too), expiring values, an
// expired value turned tombstone, deletes, and a horizon.
LwwMap Sample(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  LwwMap m;
  m.Apply(Del("collected", 10, 1));
  for (int i = 0; i < n; ++i) {
    const std::string k = "key:" + std::to_string(i);
    const uint64_t t = 1000 + static_cast<uint64_t>(i);
    switch (i % 5) {
      case 0:
        m.Apply(Del(k, t, 2));
        break;
      case 1:
        m.Apply(Put(k, "expires", t, 3, 50'000 + i));
        break;
      case 2:
        m.Apply(Put(k, "expired", t, 3, 100));
        break;
      default:
        m.Apply(Put(k, std::string(rng() % 64, static_cast<char>(rng())) + std::string("\0bin", 4),
                    t, 1 + i % 3));
    }
  }
  m.ExpireSome(200, kGroups);               // "expired" values become tombstones
  m.CollectTombstones(HlcTime{500, 7});     // drops "collected", sets the horizon
  m.Apply(Put("old-live", "kept", 20, 1));  // refused: older than the horizon
  return m;
}

void ExpectSameMap(const LwwMap& a, const LwwMap& b) {
  EXPECT_EQ(a.Digest(0, 0), b.Digest(0, 0));
  EXPECT_EQ(a.horizon(), b.horizon());
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(a.tombstones(), b.tombstones());
  EXPECT_EQ(a.wire_bytes(), b.wire_bytes());
  EXPECT_EQ(ContentsOf(a), ContentsOf(b));
}

TEST(Snapshot, RoundTrip) {
  const LwwMap m = Sample(2000, 1);
  ASSERT_GT(m.tombstones(), 500u);
  ASSERT_EQ(m.horizon(), (HlcTime{500, 7}));
  const std::string bytes = EncodeSnapshot("users", m);
  Result<Snapshot> s = DecodeSnapshot(bytes);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(s->map, "users");
  EXPECT_EQ(s->horizon, (HlcTime{500, 7}));
  EXPECT_EQ(s->changes.size(), m.entries());
  for (const Change& c : s->changes) {
    const LwwMap::Entry* e = m.Find(c.key);
    ASSERT_NE(e, nullptr) << c.key;
    EXPECT_EQ(LwwMap::ToChange(c.key, *e), c);
  }
  LwwMap back;
  back.Apply(Put("replaced", "v", 1, 1));  // a restore replaces what was there
  RestoreSnapshot(*s, &back);
  ExpectSameMap(back, m);
  EXPECT_EQ(back.Find("replaced"), nullptr);
  // The restored map refuses what the original refuses.
  EXPECT_FALSE(back.Apply(Put("collected", "resurrect", 20, 9)));
  // A snapshot of the restored map restores to the same map again.
  Result<Snapshot> again = DecodeSnapshot(EncodeSnapshot("users", back));
  ASSERT_TRUE(again.ok());
  LwwMap third;
  RestoreSnapshot(*again, &third);
  ExpectSameMap(third, m);
}

TEST(Snapshot, RestoreKeepsLiveEntriesOlderThanTheHorizon) {
  LwwMap m;
  m.Apply(Put("ancient", "still here", 5, 1));
  m.Apply(Del("gone", 6, 1));
  m.CollectTombstones(HlcTime{100, 0});
  Result<Snapshot> s = DecodeSnapshot(EncodeSnapshot("m", m));
  ASSERT_TRUE(s.ok());
  LwwMap back;
  back.CollectTombstones(HlcTime{1000, 0});  // even over a map with a later horizon
  RestoreSnapshot(*s, &back);
  ASSERT_NE(back.Get("ancient", 0), nullptr);
  EXPECT_EQ(back.Get("ancient", 0)->value, "still here");
  EXPECT_EQ(back.horizon(), (HlcTime{100, 0}));
  ExpectSameMap(back, m);
}

TEST(Snapshot, EmptyMap) {
  LwwMap m;
  const std::string bytes = EncodeSnapshot("e", m);
  Result<Snapshot> s = DecodeSnapshot(bytes);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(s->map, "e");
  EXPECT_TRUE(s->changes.empty());
  EXPECT_EQ(s->horizon, HlcTime{});
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(DecodeSnapshot(bytes.substr(0, len)).ok()) << len;
  }
}

// Every failure names the source and says it is refused.
void ExpectRefused(const Result<Snapshot>& s, std::string_view what, std::string_view why,
                   const std::string& context) {
  ASSERT_FALSE(s.ok()) << context << ": accepted";
  const std::string& msg = s.error().message();
  EXPECT_TRUE(msg.starts_with(std::string(what) + ": ")) << context << ": " << msg;
  EXPECT_NE(msg.find(why), std::string::npos) << context << ": " << msg;
  EXPECT_NE(msg.find("refusing to load it"), std::string::npos) << context << ": " << msg;
}

TEST(Snapshot, EveryTruncationIsRefused) {
  const std::string small = EncodeSnapshot("m", Sample(20, 2));
  ASSERT_LT(small.size(), 4000u);
  for (size_t len = 0; len < small.size(); ++len) {
    ExpectRefused(DecodeSnapshot(std::string_view(small).substr(0, len), "small.snap"),
                  "small.snap", len == 0 ? "empty file" : "truncated",
                  "length " + std::to_string(len));
  }
  const std::string large = EncodeSnapshot("m", Sample(20'000, 3));
  ASSERT_GT(large.size(), 500'000u);
  std::vector<size_t> lengths;
  for (size_t len = 0; len < large.size(); len += 997) lengths.push_back(len);
  for (size_t k = 1; k <= 64; ++k) lengths.push_back(large.size() - k);  // the tail, byte by byte
  for (size_t len : lengths) {
    ExpectRefused(DecodeSnapshot(std::string_view(large).substr(0, len), "large.snap"),
                  "large.snap", len == 0 ? "empty file" : "truncated",
                  "length " + std::to_string(len));
  }
  ASSERT_TRUE(DecodeSnapshot(large).ok());
}

TEST(Snapshot, EveryFlippedByteIsRefused) {
  const std::string bytes = EncodeSnapshot("m", Sample(20, 4));
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (uint8_t x : {0x01, 0x80, 0xff}) {
      std::string bad = bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ x);
      const std::string why = pos < 8                   ? "bad magic"
                              : pos >= bytes.size() - 8 ? "no end marker"
                                                        : "checksum mismatch";
      ExpectRefused(DecodeSnapshot(bad, "f"), "f", why,
                    "byte " + std::to_string(pos) + " ^ " + std::to_string(x));
    }
  }
  // Sampled over a larger file, and two flips at once.
  const std::string large = EncodeSnapshot("m", Sample(5000, 5));
  std::mt19937_64 rng(5);
  for (int i = 0; i < 300; ++i) {
    std::string bad = large;
    bad[8 + rng() % (large.size() - 16)] ^= static_cast<char>(1 + rng() % 255);
    bad[8 + rng() % (large.size() - 16)] ^= static_cast<char>(1 + rng() % 255);
    if (bad == large) continue;
    ExpectRefused(DecodeSnapshot(bad, "f"), "f", "checksum mismatch",
                  "sample " + std::to_string(i));
  }
  // Bytes added at the end, or in the middle.
  ExpectRefused(DecodeSnapshot(bytes + "x", "f"), "f", "no end marker", "appended");
  std::string inserted = bytes;
  inserted.insert(100, "x");
  ExpectRefused(DecodeSnapshot(inserted, "f"), "f", "checksum mismatch", "inserted");
}

TEST(Snapshot, ForeignFilesAreRefused) {
  const std::string bytes = EncodeSnapshot("m", Sample(10, 6));
  std::string other = bytes;
  other[7] = '2';  // "SHOALRM2"
  ExpectRefused(DecodeSnapshot(other, "f"), "f", "bad magic", "SHOALRM2");
  ExpectRefused(DecodeSnapshot("hello, world\n", "f"), "f", "bad magic", "text");
  ExpectRefused(DecodeSnapshot("SHOAL", "f"), "f", "truncated", "magic prefix");
  ExpectRefused(DecodeSnapshot("SHOALRM1", "f"), "f", "no end marker", "magic alone");
  ExpectRefused(DecodeSnapshot(std::string(100, '\0'), "f"), "f", "bad magic", "zeros");
  ExpectRefused(DecodeSnapshot(bytes.substr(8), "f"), "f", "bad magic", "no magic");
}

// Rewrites the checksum after editing the body, to reach the checks behind it.
std::string Reseal(std::string bytes) {
  const size_t body = bytes.size() - 16;
  const uint64_t sum = Hash64(std::string_view(bytes).substr(0, body));
  std::memcpy(bytes.data() + body, &sum, 8);
  return bytes;
}

TEST(Snapshot, StructuralFaultsBehindAGoodChecksum) {
  LwwMap m;
  m.Apply(Put("a", "1", 10, 1));
  m.Apply(Put("b", "2", 11, 1));
  const std::string bytes = EncodeSnapshot("m", m);
  ASSERT_TRUE(DecodeSnapshot(Reseal(bytes)).ok());
  // Header: magic(8) version(4) name length(4) name(1) horizon(12) saved(8) count(8) records...
  const size_t version = 8, name_len = 12, count = 8 + 4 + 4 + 1 + 12 + 8, first = count + 8;
  {
    std::string b = bytes;
    b[version] = 3;
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "unsupported format version 3", "version");
  }
  {
    std::string b = bytes;
    b[name_len] = 0;  // an empty name
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "bad header", "empty name");
    b[name_len] = 100;  // longer than the file's header
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "", "long name");
  }
  {
    std::string b = bytes;
    b[count] = 3;  // one record more than there is
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "record 2 truncated", "count + 1");
    b[count] = 1;  // one fewer
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "trailing bytes", "count - 1");
    std::memset(b.data() + count, 0xff, 8);
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "record count larger than the file",
                  "huge count");
  }
  {
    std::string b = bytes;
    b[first] = static_cast<char>(b[first] + 1);  // the first record's length
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "record", "record length");
    b = bytes;
    b[first + 4] = static_cast<char>(0xc1);  // not msgpack
    ExpectRefused(DecodeSnapshot(Reseal(b), "f"), "f", "record 0 malformed", "record body");
  }
}

TEST(Snapshot, VersionOneFilesStillLoadAndSaveTimeRoundTrips) {
  LwwMap m;
  m.Apply(Put("a", "1", 10, 1));
  const std::string v2 = EncodeSnapshot("m", m, 1'700'000'000'123);
  Result<Snapshot> s2 = DecodeSnapshot(v2);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->saved_unix_ms, 1'700'000'000'123);
  // Version 1: the same without the 8-byte save time after the horizon.
  std::string v1 = v2;
  v1.erase(8 + 4 + 4 + 1 + 12, 8);
  v1[8] = 1;
  Result<Snapshot> s1 = DecodeSnapshot(Reseal(v1));
  ASSERT_TRUE(s1.ok()) << s1.error().message();
  EXPECT_EQ(s1->saved_unix_ms, 0);
  ASSERT_EQ(s1->changes.size(), 1u);
  EXPECT_EQ(s1->changes[0].key, "a");
}

TEST(Snapshot, WriterByGroupsGivesTheSameFile) {
  LwwMap m;
  for (int i = 0; i < 3000; ++i) m.Apply(Put("k" + std::to_string(i), "v", 10 + i, 1 + i % 3));
  m.Apply(Del("k7", 99'999, 2));
  SnapshotWriter w("m", m.horizon(), 5);
  for (uint32_t g = 0; g < kGroups; ++g) {
    m.ForEachInGroup(g, [&w](const std::string& k, const LwwMap::Entry& e) { w.Add(k, e); });
  }
  EXPECT_EQ(w.Finish(), EncodeSnapshot("m", m, 5));
}

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("shoal_snapshot_test_" + std::to_string(::getpid()) + "_" +
               std::to_string(counter_++))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> list() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST(Snapshot, WriteAndLoadFiles) {
  TempDir dir;
  const std::string path = dir.file("users.snap");
  const LwwMap m = Sample(3000, 7);
  const std::string bytes = EncodeSnapshot("users", m);
  ASSERT_TRUE(WriteFileAtomically(Env::Posix(), path, bytes).ok());
  EXPECT_EQ(ReadFile(path), bytes);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"users.snap"});  // no .tmp left behind
  Result<Snapshot> s = LoadSnapshotFile(Env::Posix(), path);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  LwwMap back;
  RestoreSnapshot(*s, &back);
  ExpectSameMap(back, m);
  // Overwriting replaces the whole file.
  LwwMap smaller;
  smaller.Apply(Put("only", "one", 1, 1));
  const std::string again = EncodeSnapshot("users", smaller);
  ASSERT_TRUE(WriteFileAtomically(Env::Posix(), path, again).ok());
  EXPECT_EQ(ReadFile(path), again);
  Result<Snapshot> s2 = LoadSnapshotFile(Env::Posix(), path);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->changes.size(), 1u);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"users.snap"});
}

TEST(Snapshot, LoadingACorruptFileIsAnErrorAndLeavesItAlone) {
  TempDir dir;
  const std::string path = dir.file("m.snap");
  const std::string bytes = EncodeSnapshot("m", Sample(500, 8));
  std::vector<std::string> bad = {bytes.substr(0, bytes.size() / 2), bytes.substr(0, 3), "",
                                  "garbage"};
  std::string flipped = bytes;
  flipped[bytes.size() / 3] ^= 0x10;
  bad.push_back(flipped);
  for (const std::string& b : bad) {
    ASSERT_TRUE(WriteFileAtomically(Env::Posix(), path, b).ok());
    Result<Snapshot> s = LoadSnapshotFile(Env::Posix(), path);
    ASSERT_FALSE(s.ok()) << b.size();
    EXPECT_TRUE(s.error().message().starts_with(path + ": ")) << s.error().message();
    EXPECT_EQ(ReadFile(path), b);  // byte-identical
    EXPECT_EQ(dir.list(), std::vector<std::string>{"m.snap"});
  }
}

TEST(Snapshot, FileErrorsNameThePath) {
  TempDir dir;
  const std::string missing = dir.file("missing.snap");
  Result<Snapshot> s = LoadSnapshotFile(Env::Posix(), missing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), std::errc::no_such_file_or_directory);
  EXPECT_NE(s.error().message().find("cannot open " + missing), std::string::npos)
      << s.error().message();
  // A folder is not a snapshot.
  s = LoadSnapshotFile(Env::Posix(), dir.file(""));
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(s.error().message().empty());
  // A folder that does not exist cannot take a file.
  const std::string nowhere = dir.file("no/such/dir/m.snap");
  Status st = WriteFileAtomically(Env::Posix(), nowhere, "x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find(nowhere), std::string::npos) << st.error().message();
}

// The power cut at every step of a save (none of the five disk operations done, ... all of them,
// no cut), each crash drawn from the seed: the snapshot that loads is always the old one or the
// new one, whole; a save that returned OK is never lost.
TEST(Snapshot, ACrashWhileSavingLeavesTheOldOrTheNewSnapshot) {
  const std::string path = "/data/replicated/m.snap";
  const std::string old_bytes = EncodeSnapshot("m", Sample(200, 1));
  const std::string new_bytes = EncodeSnapshot("m", Sample(300, 2));
  int saw_old = 0, saw_new = 0;
  uint64_t torn = 0;
  for (uint64_t seed = 0; seed < 420; ++seed) {
    sim::SimDisk disk(seed);
    ASSERT_TRUE(disk.CreateDirs(ParentDir(path)).ok());
    ASSERT_TRUE(WriteFileAtomically(disk, path, old_bytes).ok());
    const uint64_t cut_after = seed % 7;  // 6: no cut
    if (cut_after < 6) disk.PowerOffAfter(cut_after);
    const bool saved = WriteFileAtomically(disk, path, new_bytes).ok();
    disk.Crash();
    torn += disk.torn_writes();
    Result<std::string> bytes = disk.ReadFile(path);
    ASSERT_TRUE(bytes.ok()) << "seed " << seed << ": " << bytes.error().message();
    Result<Snapshot> s = LoadSnapshotFile(disk, path);
    ASSERT_TRUE(s.ok()) << "seed " << seed << ": " << s.error().message();
    ASSERT_TRUE(*bytes == old_bytes || *bytes == new_bytes) << "seed " << seed;
    if (saved) {
      ASSERT_EQ(*bytes, new_bytes) << "seed " << seed;
    }
    (*bytes == old_bytes ? saw_old : saw_new)++;
  }
  EXPECT_GT(saw_old, 0);
  EXPECT_GT(saw_new, 0);
  EXPECT_GT(torn, 0u);  // some crashes tore the tmp file's write
}

// The same crashes without the helper's syncs: the disk does leave torn snapshots, and loading
// refuses every one of them.
TEST(Snapshot, ATornSnapshotIsRefused) {
  const std::string path = "/data/m.snap";
  const std::string bytes = EncodeSnapshot("m", Sample(300, 3));
  for (uint64_t seed = 0; seed < 100; ++seed) {
    sim::SimDisk disk(seed);
    ASSERT_TRUE(disk.CreateDirs("/data").ok());
    auto f = disk.NewWritableFile(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(bytes.substr(0, bytes.size() / 2)).ok());
    ASSERT_TRUE((*f)->Append(bytes.substr(bytes.size() / 2)).ok());
    disk.Crash(sim::SimDisk::CrashMode::kTearLastWrite);
    ASSERT_EQ(disk.torn_writes(), 1u);
    Result<std::string> got = disk.ReadFile(path);
    ASSERT_TRUE(got.ok());
    ASSERT_LT(got->size(), bytes.size());
    Result<Snapshot> s = LoadSnapshotFile(disk, path);
    ASSERT_FALSE(s.ok()) << "seed " << seed << " loaded a torn file of " << got->size();
    EXPECT_TRUE(s.error().message().starts_with(path + ": ")) << s.error().message();
  }
}

}  // namespace
}  // namespace shoal::replicated
