// SimDisk: a simulated disk behind the Env interface, in memory, that loses what a real disk may
// lose at a power cut. Code that keeps its files through an Env runs on it unchanged.
//
// Model (see common/env.h for the durability contract):
//   * A file's bytes are durable once the file is synced. A folder's entries (files created,
//     renamed or removed in it) are durable once the folder is synced. Folders themselves are
//     durable as soon as CreateDirs returns (a simplification: nothing here removes folders).
//   * Crash() cuts the power: every open file handle dies (its calls fail from then on), and the
//     disk comes back holding, for each folder whose entries changed since its last sync, either
//     the entries as last synced or as they are now; and, for each file whose bytes changed since
//     its last sync, one of: its synced bytes (the unsynced ones lost), every byte written, or
//     every byte but the tail of the last write (the last write torn at a random length).
//   * Choices come from a seeded RNG, so a run is reproducible from its seed; CrashMode forces one
//     outcome for every file and folder.
//   * PowerOffAfter(n) lets exactly n more changing operations through (create, append, sync,
//     rename, remove, folder create or sync) and fails every later operation with EIO, reads too
//     (the moment of the power cut), until Crash() brings the disk back: a test can cut the power
//     at every step of a sequence of writes.
//
// Paths are strings compared as given: use one spelling per file (absolute, no "..").
// Thread-safe (one lock), although simulations use it from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/env.h"
#include "common/rng.h"

namespace shoal::sim {

class SimDisk final : public Env {
 public:
  enum class CrashMode {
    kRandom,        // each folder and file drawn from the RNG
    kLoseUnsynced,  // folders as last synced, files' unsynced bytes lost
    kKeepAll,       // everything written survives (as if it had all been synced)
    kTearLastWrite  // folders as they are now; each changed file's last write cut short
  };

  explicit SimDisk(uint64_t seed);
  ~SimDisk() override;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  bool Exists(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;

  // Power cut and restart, as described above.
  void Crash(CrashMode mode = CrashMode::kRandom);
  // Lets `ops` more changing operations succeed, then fails every operation with EIO until Crash().
  void PowerOffAfter(uint64_t ops);

  // Counters for tests: crashes so far, and files whose last write a crash tore.
  uint64_t crashes() const;
  uint64_t torn_writes() const;

 private:
  struct Inode {
    std::string data;     // as the running system sees it
    std::string durable;  // as it would survive a crash
    size_t last_write_at = 0;
  };
  class File;

  // An EIO error if the power is off; else counts a changing operation (lock held).
  std::optional<Error> Gate(bool changes, std::string_view what, const std::string& path);
  bool DirExists(const std::string& dir) const;  // lock held
  Result<std::unique_ptr<WritableFile>> Open(const std::string& path, bool truncate);

  mutable std::mutex mu_;
  SeededRng rng_;
  std::map<std::string, std::shared_ptr<Inode>> live_;     // path -> file, as seen now
  std::map<std::string, std::shared_ptr<Inode>> durable_;  // path -> file, as last synced
  std::set<std::string> dirs_;
  uint64_t epoch_ = 0;  // grows at each crash; handles of an older epoch are dead
  std::optional<uint64_t> ops_left_;
  uint64_t crashes_ = 0;
  uint64_t torn_ = 0;
};

}  // namespace shoal::sim
