#include "common/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace shoal {
namespace {

class PosixEnvTest : public ::testing::Test {
 protected:
  PosixEnvTest()
      : dir_((std::filesystem::temp_directory_path() /
              ("shoal_env_test_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                 .string()) {
    std::filesystem::remove_all(dir_);
  }
  ~PosixEnvTest() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  Env& env_ = Env::Posix();
  std::string dir_;
};

TEST_F(PosixEnvTest, WriteAppendReadRoundTrip) {
  ASSERT_TRUE(env_.CreateDirs(path("a/b")).ok());
  ASSERT_TRUE(env_.CreateDirs(path("a/b")).ok());  // exists already: no error
  EXPECT_TRUE(env_.Exists(path("a/b")));
  const std::string f = path("a/b/f");
  {
    auto w = env_.NewWritableFile(f);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    ASSERT_TRUE((*w)->Append("hello ").ok());
    ASSERT_TRUE((*w)->Append(std::string(100'000, 'x')).ok());
    ASSERT_TRUE((*w)->Sync().ok());
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_FALSE((*w)->Append("after close").ok());
  }
  auto r = env_.ReadFile(f);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, "hello " + std::string(100'000, 'x'));
  {
    auto a = env_.NewAppendableFile(f);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*a)->Append("!").ok());
  }  // closed by the destructor
  r = env_.ReadFile(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 100'007u);
  EXPECT_EQ(r->back(), '!');
  // A writable file truncates.
  {
    auto w = env_.NewWritableFile(f);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("new").ok());
  }
  EXPECT_EQ(*env_.ReadFile(f), "new");
}

TEST_F(PosixEnvTest, RenameListRemove) {
  ASSERT_TRUE(env_.CreateDirs(path("d/sub")).ok());
  ASSERT_TRUE(WriteFileAtomically(env_, path("d/x"), "1").ok());
  ASSERT_TRUE(WriteFileAtomically(env_, path("d/y"), "2").ok());
  auto names = env_.ListDir(path("d"));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"sub", "x", "y"}));
  ASSERT_TRUE(env_.Rename(path("d/x"), path("d/y")).ok());
  EXPECT_EQ(*env_.ReadFile(path("d/y")), "1");
  EXPECT_FALSE(env_.Exists(path("d/x")));
  ASSERT_TRUE(env_.SyncDir(path("d")).ok());
  ASSERT_TRUE(env_.RemoveFile(path("d/y")).ok());
  EXPECT_EQ(*env_.ListDir(path("d")), std::vector<std::string>{"sub"});
}

TEST_F(PosixEnvTest, ErrorsCarryErrnoAndPath) {
  ASSERT_TRUE(env_.CreateDirs(dir_).ok());
  const std::string missing = path("missing");
  auto r = env_.ReadFile(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(r.error().message(), "cannot open " + missing + ": No such file or directory");
  EXPECT_FALSE(env_.ReadFile(dir_).ok());  // a folder is not a file
  EXPECT_EQ(env_.RemoveFile(missing).error().code(), std::errc::no_such_file_or_directory);
  EXPECT_FALSE(env_.Rename(missing, path("b")).ok());
  EXPECT_FALSE(env_.ListDir(missing).ok());
  EXPECT_FALSE(env_.SyncDir(missing).ok());
  EXPECT_FALSE(env_.NewWritableFile(path("no/such/f")).ok());
  EXPECT_FALSE(env_.Exists(missing));
}

TEST_F(PosixEnvTest, AtomicWriteReplacesWholeAndLeavesNoTmp) {
  ASSERT_TRUE(env_.CreateDirs(dir_).ok());
  const std::string f = path("peers");
  ASSERT_TRUE(WriteFileAtomically(env_, f, "first version").ok());
  ASSERT_TRUE(WriteFileAtomically(env_, f, "2").ok());
  EXPECT_EQ(*env_.ReadFile(f), "2");
  EXPECT_EQ(*env_.ListDir(dir_), std::vector<std::string>{"peers"});
  // A folder that does not exist: an error naming the file, and nothing written.
  Status st = WriteFileAtomically(env_, path("no/f"), "x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find(path("no/f")), std::string::npos) << st.error().message();
  EXPECT_EQ(*env_.ListDir(dir_), std::vector<std::string>{"peers"});
}

TEST(ParentDir, OfPaths) {
  EXPECT_EQ(ParentDir("/a/b/c"), "/a/b");
  EXPECT_EQ(ParentDir("/a"), "/");
  EXPECT_EQ(ParentDir("name"), ".");
  EXPECT_EQ(ParentDir("d/name"), "d");
}

}  // namespace
}  // namespace shoal
