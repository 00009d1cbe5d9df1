#include "sim/sim_disk.h"

#include <gtest/gtest.h>

#include <set>

namespace shoal::sim {
namespace {

using Mode = SimDisk::CrashMode;

// Writes `synced` to /d/f, syncs file and folder, then appends each of `unsynced` without a sync.
void Prepare(SimDisk& disk, const std::string& synced, const std::vector<std::string>& unsynced,
             std::unique_ptr<WritableFile>* keep = nullptr) {
  ASSERT_TRUE(disk.CreateDirs("/d").ok());
  auto f = disk.NewWritableFile("/d/f");
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(synced).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  for (const std::string& u : unsynced) ASSERT_TRUE((*f)->Append(u).ok());
  if (keep != nullptr) *keep = std::move(*f);
}

std::string Read(SimDisk& disk, const std::string& path) {
  auto r = disk.ReadFile(path);
  return r.ok() ? *r : "<" + r.error().message() + ">";
}

TEST(SimDisk, BehavesAsAFileSystemWhileUp) {
  SimDisk disk(1);
  ASSERT_TRUE(disk.CreateDirs("/data/sub").ok());
  EXPECT_FALSE(disk.NewWritableFile("/nowhere/f").ok());
  ASSERT_TRUE(WriteFileAtomically(disk, "/data/a", "one").ok());
  ASSERT_TRUE(WriteFileAtomically(disk, "/data/a", "two").ok());
  EXPECT_EQ(Read(disk, "/data/a"), "two");
  EXPECT_EQ(*disk.ListDir("/data"), (std::vector<std::string>{"a", "sub"}));
  auto ap = disk.NewAppendableFile("/data/a");
  ASSERT_TRUE(ap.ok());
  ASSERT_TRUE((*ap)->Append("+").ok());
  EXPECT_EQ(Read(disk, "/data/a"), "two+");
  ASSERT_TRUE(disk.Rename("/data/a", "/data/sub/b").ok());
  EXPECT_FALSE(disk.Exists("/data/a"));
  EXPECT_EQ(Read(disk, "/data/sub/b"), "two+");
  ASSERT_TRUE(disk.RemoveFile("/data/sub/b").ok());
  auto missing = disk.ReadFile("/data/sub/b");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(missing.error().message(), "cannot open /data/sub/b: No such file or directory");
  EXPECT_FALSE(disk.RemoveFile("/data/sub/b").ok());
  EXPECT_FALSE(disk.ReadFile("/data").ok());
}

TEST(SimDisk, CrashLosesUnsyncedBytes) {
  SimDisk disk(2);
  std::unique_ptr<WritableFile> f;
  Prepare(disk, "synced", {"-lost", "-too"}, &f);
  disk.Crash(Mode::kLoseUnsynced);
  EXPECT_EQ(Read(disk, "/d/f"), "synced");
  // The handle died with the power.
  Status st = f->Append("x");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), std::errc::io_error);
  EXPECT_EQ(Read(disk, "/d/f"), "synced");
}

TEST(SimDisk, CrashLosesUnsyncedFolderEntries) {
  SimDisk disk(3);
  Prepare(disk, "old", {});
  // Created and synced, but the folder is not: the name is lost, with the bytes.
  auto g = disk.NewWritableFile("/d/g");
  ASSERT_TRUE((*g)->Append("g").ok());
  ASSERT_TRUE((*g)->Sync().ok());
  ASSERT_TRUE(disk.RemoveFile("/d/f").ok());
  disk.Crash(Mode::kLoseUnsynced);
  EXPECT_FALSE(disk.Exists("/d/g"));
  EXPECT_EQ(Read(disk, "/d/f"), "old");  // the removal is undone too
  // Once the folder is synced, the entries survive.
  g = disk.NewWritableFile("/d/g");
  ASSERT_TRUE((*g)->Append("g").ok());
  ASSERT_TRUE((*g)->Sync().ok());
  ASSERT_TRUE(disk.Rename("/d/g", "/d/f").ok());
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  disk.Crash(Mode::kLoseUnsynced);
  EXPECT_EQ(*disk.ListDir("/d"), std::vector<std::string>{"f"});
  EXPECT_EQ(Read(disk, "/d/f"), "g");
}

TEST(SimDisk, CrashCanKeepEverything) {
  SimDisk disk(4);
  Prepare(disk, "a", {"b", "c"});
  ASSERT_TRUE(disk.NewWritableFile("/d/new").ok());
  disk.Crash(Mode::kKeepAll);
  EXPECT_EQ(Read(disk, "/d/f"), "abc");
  EXPECT_TRUE(disk.Exists("/d/new"));
}

TEST(SimDisk, CrashTearsTheLastWrite) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SimDisk disk(seed);
    Prepare(disk, "synced|", {"first|", "the-last-write"});
    disk.Crash(Mode::kTearLastWrite);
    const std::string got = Read(disk, "/d/f");
    ASSERT_TRUE(got.starts_with("synced|first|")) << got;  // the earlier writes are whole
    ASSERT_LT(got.size(), std::string("synced|first|the-last-write").size()) << got;
    EXPECT_TRUE(std::string("the-last-write").starts_with(got.substr(13))) << got;
    EXPECT_EQ(disk.torn_writes(), 1u);
  }
}

TEST(SimDisk, RandomCrashesDrawEveryOutcomeFromTheSeed) {
  const std::string whole = "synced|unsynced-tail";
  std::set<std::string> seen_kinds;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::string outcome[2];
    for (int run = 0; run < 2; ++run) {
      SimDisk disk(seed);
      Prepare(disk, "synced|", {"unsynced-tail"});
      disk.Crash();
      outcome[run] = Read(disk, "/d/f");
    }
    EXPECT_EQ(outcome[0], outcome[1]) << "seed " << seed;  // same seed, same disk
    const std::string& got = outcome[0];
    ASSERT_TRUE(got.starts_with("synced|") && whole.starts_with(got)) << got;
    seen_kinds.insert(got == "synced|" ? "lost" : got == whole ? "kept" : "torn");
  }
  EXPECT_EQ(seen_kinds, (std::set<std::string>{"kept", "lost", "torn"}));
}

TEST(SimDisk, PowerOffAfterFailsEveryLaterOperationUntilTheCrash) {
  SimDisk disk(5);
  ASSERT_TRUE(disk.CreateDirs("/d").ok());
  disk.PowerOffAfter(2);
  auto f = disk.NewWritableFile("/d/f");  // 1
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("x").ok());  // 2
  Status st = (*f)->Sync();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), std::errc::io_error);
  EXPECT_FALSE(disk.ReadFile("/d/f").ok());
  EXPECT_FALSE(disk.SyncDir("/d").ok());
  disk.Crash(Mode::kLoseUnsynced);
  EXPECT_FALSE(disk.Exists("/d/f"));  // never made durable
  ASSERT_TRUE(WriteFileAtomically(disk, "/d/f", "up again").ok());
  EXPECT_EQ(disk.crashes(), 1u);
}

}  // namespace
}  // namespace shoal::sim
