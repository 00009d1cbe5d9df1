#include "common/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace shoal {
namespace {

Error ErrnoError(int err, std::string_view what, const std::string& path) {
  return Error(std::error_code(err, std::generic_category()),
               std::string(what) + " " + path + ": " + std::strerror(err));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return ErrnoError(EBADF, "cannot write", path_);
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "cannot write", path_);
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (fd_ < 0) return ErrnoError(EBADF, "cannot fsync", path_);
    if (::fsync(fd_) != 0) return ErrnoError(errno, "cannot fsync", path_);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoError(errno, "cannot close", path_);
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, "cannot create");
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    return Open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, "cannot open");
  }

  Result<std::string> ReadFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open", path);
    std::string bytes;
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        Error e = ErrnoError(errno, "cannot read", path);
        ::close(fd);
        return e;
      }
      bytes.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return bytes;
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoError(errno, "cannot rename", from + " to " + to);
    }
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoError(errno, "cannot remove", path);
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec);
    if (ec) return Error(ec, "cannot list " + dir + ": " + ec.message());
    std::vector<std::string> names;
    for (const auto& e : it) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error(ec, "cannot create folder " + dir + ": " + ec.message());
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open folder", dir);
    // Some file systems cannot sync a folder (EINVAL): their renames are as durable as they get.
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL) return ErrnoError(err, "cannot fsync folder", dir);
    return Status::Ok();
  }

 private:
  static Result<std::unique_ptr<WritableFile>> Open(const std::string& path, int flags,
                                                    std::string_view what) {
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return ErrnoError(errno, what, path);
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(fd, path));
  }
};

}  // namespace

Env& Env::Posix() {
  static PosixEnv* env = new PosixEnv();
  return *env;
}

std::string ParentDir(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

Status WriteFileAtomically(Env& env, const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  Result<std::unique_ptr<WritableFile>> f = env.NewWritableFile(tmp);
  if (!f.ok()) return f.error();
  // The bytes must be durable before the rename makes them the file: a crash in between must
  // leave the old file or the new one, never an empty or short one.
  Status st = (*f)->Append(bytes);
  if (st.ok()) st = (*f)->Sync();
  if (st.ok()) st = (*f)->Close();
  if (st.ok()) st = env.Rename(tmp, path);
  if (!st.ok()) {
    (void)(*f)->Close();
    (void)env.RemoveFile(tmp);
    return st;
  }
  return env.SyncDir(ParentDir(path));
}

}  // namespace shoal
