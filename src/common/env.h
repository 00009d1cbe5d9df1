// Env: the file system as an interface (LevelDB's Env). The node and the storage layers make every
// file operation through one, so that a test or the simulator can put a simulated disk under the
// same code (sim/sim_disk.h) and crash it.
//
// Durability follows POSIX: bytes appended to a file are durable once the file is synced; a
// folder's entries (a file created, renamed or removed in it) are durable once the folder is
// synced. Errors carry the errno (std::generic_category) and a message naming the path and the
// operation ("cannot open <path>: No such file or directory").
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shoal {

// A file open for writing at its end. Not thread-safe; one owner.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes every byte appended so far durable (fsync).
  virtual Status Sync() = 0;
  // Closes the file; later calls fail. The destructor closes an open file, ignoring errors.
  virtual Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process's real file system (POSIX calls). Stateless and thread-safe; never destroyed.
  static Env& Posix();

  // Creates `path`, or truncates it if it exists. Its folder must exist.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens `path` for appending at its end, creating it (empty) if it does not exist.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  // The whole contents of `path`.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Whether `path` names a file or a folder.
  virtual bool Exists(const std::string& path) = 0;
  // Renames file `from` to `to`, replacing `to` atomically if it exists (rename(2)).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // The names (not paths) of the files and folders in `dir`, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates `dir` and its missing parents; a folder that exists already is no error.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Makes the folder's entries durable (fsync of the folder).
  virtual Status SyncDir(const std::string& dir) = 0;
};

// The folder holding `path` ("." for a bare name).
std::string ParentDir(const std::string& path);

// Replaces `path`'s contents by `bytes` so that a crash at any point leaves either the old file or
// the new one, whole: writes `path.tmp`, syncs it, renames it over `path`, syncs the folder. On an
// error before the rename the tmp file is removed and `path` is untouched. The folder must exist.
Status WriteFileAtomically(Env& env, const std::string& path, std::string_view bytes);

}  // namespace shoal
