#include "sim/sim_disk.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace shoal::sim {
namespace {

Error ErrnoError(int err, std::string_view what, const std::string& path) {
  return Error(std::error_code(err, std::generic_category()),
               std::string(what) + " " + path + ": " + std::strerror(err));
}

std::string Base(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

class SimDisk::File final : public WritableFile {
 public:
  File(SimDisk* disk, std::shared_ptr<Inode> inode, uint64_t epoch, std::string path)
      : disk_(disk), inode_(std::move(inode)), epoch_(epoch), path_(std::move(path)) {}

  Status Append(std::string_view data) override {
    std::lock_guard lock(disk_->mu_);
    if (auto e = Check("cannot write")) return *e;
    inode_->last_write_at = inode_->data.size();
    inode_->data.append(data);
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard lock(disk_->mu_);
    if (auto e = Check("cannot fsync")) return *e;
    inode_->durable = inode_->data;
    return Status::Ok();
  }

  Status Close() override {
    closed_ = true;
    return Status::Ok();
  }

 private:
  std::optional<Error> Check(std::string_view what) {
    if (closed_) return ErrnoError(EBADF, what, path_);
    if (epoch_ != disk_->epoch_) return ErrnoError(EIO, what, path_);  // opened before a crash
    return disk_->Gate(true, what, path_);
  }

  SimDisk* disk_;
  std::shared_ptr<Inode> inode_;
  uint64_t epoch_;
  std::string path_;
  bool closed_ = false;
};

SimDisk::SimDisk(uint64_t seed) : rng_(seed) {
  dirs_.insert("/");
  dirs_.insert(".");
}

SimDisk::~SimDisk() = default;

std::optional<Error> SimDisk::Gate(bool changes, std::string_view what, const std::string& path) {
  if (ops_left_) {
    if (*ops_left_ == 0) return ErrnoError(EIO, what, path);
    if (changes) --*ops_left_;
  }
  return std::nullopt;
}

bool SimDisk::DirExists(const std::string& dir) const { return dirs_.count(dir) > 0; }

Result<std::unique_ptr<WritableFile>> SimDisk::Open(const std::string& path, bool truncate) {
  std::lock_guard lock(mu_);
  const std::string_view what = truncate ? "cannot create" : "cannot open";
  if (auto e = Gate(true, what, path)) return *e;
  if (DirExists(path)) return ErrnoError(EISDIR, what, path);
  if (!DirExists(ParentDir(path))) return ErrnoError(ENOENT, what, path);
  std::shared_ptr<Inode>& inode = live_[path];
  if (inode == nullptr) {
    inode = std::make_shared<Inode>();
  } else if (truncate) {
    inode->data.clear();
    inode->last_write_at = 0;
  }
  return std::unique_ptr<WritableFile>(std::make_unique<File>(this, inode, epoch_, path));
}

Result<std::unique_ptr<WritableFile>> SimDisk::NewWritableFile(const std::string& path) {
  return Open(path, true);
}

Result<std::unique_ptr<WritableFile>> SimDisk::NewAppendableFile(const std::string& path) {
  return Open(path, false);
}

Result<std::string> SimDisk::ReadFile(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto e = Gate(false, "cannot read", path)) return *e;
  if (DirExists(path)) return ErrnoError(EISDIR, "cannot read", path);
  auto it = live_.find(path);
  if (it == live_.end()) return ErrnoError(ENOENT, "cannot open", path);
  return it->second->data;
}

bool SimDisk::Exists(const std::string& path) {
  std::lock_guard lock(mu_);
  if (Gate(false, "", path)) return false;
  return DirExists(path) || live_.count(path) > 0;
}

Status SimDisk::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  const std::string what = from + " to " + to;
  if (auto e = Gate(true, "cannot rename", what)) return *e;
  auto it = live_.find(from);
  if (it == live_.end()) return ErrnoError(ENOENT, "cannot rename", what);
  if (DirExists(to)) return ErrnoError(EISDIR, "cannot rename", what);
  if (!DirExists(ParentDir(to))) return ErrnoError(ENOENT, "cannot rename", what);
  std::shared_ptr<Inode> inode = it->second;
  live_.erase(it);
  live_[to] = std::move(inode);
  return Status::Ok();
}

Status SimDisk::RemoveFile(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto e = Gate(true, "cannot remove", path)) return *e;
  if (live_.erase(path) == 0) {
    return ErrnoError(DirExists(path) ? EISDIR : ENOENT, "cannot remove", path);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> SimDisk::ListDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto e = Gate(false, "cannot list", dir)) return *e;
  if (!DirExists(dir)) return ErrnoError(ENOENT, "cannot list", dir);
  std::set<std::string> names;
  for (const auto& [path, inode] : live_) {
    if (ParentDir(path) == dir) names.insert(Base(path));
  }
  for (const std::string& d : dirs_) {
    if (d != dir && ParentDir(d) == dir) names.insert(Base(d));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Status SimDisk::CreateDirs(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto e = Gate(true, "cannot create folder", dir)) return *e;
  std::vector<std::string> missing;
  for (std::string d = dir; !d.empty() && !DirExists(d); d = ParentDir(d)) {
    if (live_.count(d) > 0) return ErrnoError(ENOTDIR, "cannot create folder", dir);
    missing.push_back(d);
    if (d == ParentDir(d)) break;
  }
  dirs_.insert(missing.begin(), missing.end());
  return Status::Ok();
}

Status SimDisk::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto e = Gate(true, "cannot fsync folder", dir)) return *e;
  if (!DirExists(dir)) return ErrnoError(ENOENT, "cannot open folder", dir);
  std::erase_if(durable_, [&dir](const auto& kv) { return ParentDir(kv.first) == dir; });
  for (const auto& [path, inode] : live_) {
    if (ParentDir(path) == dir) durable_[path] = inode;
  }
  return Status::Ok();
}

void SimDisk::Crash(CrashMode mode) {
  std::lock_guard lock(mu_);
  using Entries = std::map<std::string, std::shared_ptr<Inode>>;
  // Folders: each keeps its entries as synced or as they are now, whole.
  std::map<std::string, std::pair<Entries, Entries>> by_dir;  // dir -> (as synced, as now)
  for (const auto& [path, inode] : durable_) by_dir[ParentDir(path)].first[path] = inode;
  for (const auto& [path, inode] : live_) by_dir[ParentDir(path)].second[path] = inode;
  Entries after;
  for (auto& [dir, e] : by_dir) {
    bool now = true;
    if (e.first != e.second) {
      switch (mode) {
        case CrashMode::kLoseUnsynced:
          now = false;
          break;
        case CrashMode::kKeepAll:
        case CrashMode::kTearLastWrite:
          now = true;
          break;
        case CrashMode::kRandom:
          now = rng_.Uniform(2) == 1;
          break;
      }
    }
    after.merge(now ? e.second : e.first);
  }
  // Files: the bytes of each one still reachable.
  std::set<Inode*> seen;
  for (const auto& [path, inode] : after) {
    Inode& f = *inode;
    if (!seen.insert(&f).second) continue;
    if (f.data != f.durable) {
      CrashMode m = mode;
      if (m == CrashMode::kRandom) {
        static constexpr CrashMode kChoices[] = {CrashMode::kLoseUnsynced, CrashMode::kKeepAll,
                                                 CrashMode::kTearLastWrite};
        m = kChoices[rng_.Uniform(3)];
      }
      if (m == CrashMode::kLoseUnsynced) {
        f.data = f.durable;
      } else if (m == CrashMode::kTearLastWrite && f.data.size() > f.last_write_at) {
        f.data.resize(f.last_write_at + rng_.Uniform(f.data.size() - f.last_write_at));
        ++torn_;
      }
    }
    f.durable = f.data;
    f.last_write_at = f.data.size();
  }
  live_ = after;
  durable_ = std::move(after);
  ++epoch_;
  ++crashes_;
  ops_left_.reset();
}

void SimDisk::PowerOffAfter(uint64_t ops) {
  std::lock_guard lock(mu_);
  ops_left_ = ops;
}

uint64_t SimDisk::crashes() const {
  std::lock_guard lock(mu_);
  return crashes_;
}

uint64_t SimDisk::torn_writes() const {
  std::lock_guard lock(mu_);
  return torn_;
}

}  // namespace shoal::sim
