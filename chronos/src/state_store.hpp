// The shared state file: an flock(2)-guarded, atomically replaced file in the state directory.
//
//   <dir>/chronos.lock   lock file (never replaced, so every process locks the same inode)
//   <dir>/state.v1       the ledger (state_codec.hpp format), replaced by rename(2)
//   <dir>/state.v1.tmp   the next version while it is being written
//
// flock locks belong to the open file description and the kernel drops them when the holder
// dies, so a crashed process can never wedge the others; a half-written temp file is simply
// overwritten by the next writer, and readers only ever see complete files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ledger.hpp"
#include "state_codec.hpp"

namespace chronos {

/** Owns a file descriptor; closes it on destruction. Move-only. */
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
  UniqueFd &operator=(UniqueFd &&other) noexcept;
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

/** An exclusive flock held for the object's lifetime (RAII). */
class FileLock {
 public:
  /**
   * Locks `path` (created if missing); throws Error(kLockTimeout) after timeout_ms, or at once
   * Error(kWouldBlock) when `nowait` and another holder has it.
   */
  FileLock(const std::string &path, int64_t timeout_ms, bool nowait = false);
  FileLock(FileLock &&) = default;
  FileLock(const FileLock &) = delete;
  FileLock &operator=(const FileLock &) = delete;
  ~FileLock();

 private:
  UniqueFd fd_;
};

/** Where the store lives and how long to wait for the lock. */
struct StoreOptions {
  std::string dir;
  int64_t lock_timeout_ms = 10000;
  /** Test seam: called after the temp file is written, before rename (e.g. to crash there). */
  std::function<void()> after_temp_written;
};

/** What chronos_repair() did. */
struct RepairOutcome {
  bool repaired = false;
  size_t kept = 0;
  size_t dropped = 0;
  std::string moved_to;  ///< where the damaged file was kept
};

/** Load-modify-store transactions over the state file. Thread- and process-safe. */
class StateStore {
 public:
  explicit StateStore(StoreOptions options);

  const std::string &dir() const { return opts_.dir; }
  const std::string &state_path() const { return state_path_; }

  /**
   * Runs fn on the current state under the exclusive lock. When fn returns true the new state
   * is written atomically (temp file, fsync, rename, fsync of the directory).
   * Throws Error(kStateCorrupt) when the file is damaged, Error(kIo) on I/O failure.
   * With `nowait` it throws Error(kWouldBlock) instead of waiting for the lock or for a disk.
   */
  void transact(const std::function<bool(State &)> &fn, bool nowait = false);

  /** True when the state directory exists on tmpfs/ramfs, where fsync never waits. */
  bool memory_backed() const;

  /** Reads the file without the lock (what an observer sees; complete thanks to rename). */
  ParseResult read_unlocked() const;

  /** Salvages a damaged file (see chronos_repair in chronos.h). */
  RepairOutcome repair();

 private:
  std::string read_file_or_empty(bool &exists) const;
  void write_atomically(const State &state);
  void ensure_dir() const;

  StoreOptions opts_;
  std::string lock_path_;
  std::string state_path_;
  std::string temp_path_;
};

}  // namespace chronos
