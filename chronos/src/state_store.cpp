#include "state_store.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "clock.hpp"
#include "status.hpp"

namespace chronos {
namespace {

Error io_error(const std::string &what, const std::string &path, int err) {
  return Error(Status::kIo, what + " " + path + ": " + std::strerror(err));
}

void write_all(int fd, const std::string &data, const std::string &path) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot write", path, errno);
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace

UniqueFd &UniqueFd::operator=(UniqueFd &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

namespace {

void keep_directory_owner(int fd, const std::string &dir) {
  // Root (the agent daemon) and an unprivileged user (the agent's SSH login) share one state
  // directory, owned by the user: a file root creates there must stay the user's, or the
  // user's next write fails. Best effort: a failed chown leaves the file root's.
  if (::geteuid() != 0) return;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || st.st_uid == 0) return;
  struct stat own;
  if (::fstat(fd, &own) == 0 && own.st_uid == st.st_uid && own.st_gid == st.st_gid) return;
  (void)::fchown(fd, st.st_uid, st.st_gid);
}

std::string dir_of(const std::string &path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

FileLock::FileLock(const std::string &path, int64_t timeout_ms, bool nowait) {
  // A fresh open per lock gives each caller its own open file description, so threads of one
  // process exclude each other as well as other processes.
  fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd_.valid()) throw io_error("cannot open lock file", path, errno);
  keep_directory_owner(fd_.get(), dir_of(path));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) == 0) return;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) throw io_error("cannot lock", path, errno);
    if (nowait) throw Error(Status::kWouldBlock, "the lock on " + path + " is held by another caller");
    // Polling (rather than a blocking flock) is what lets us give up after a timeout when a
    // live holder hangs; a dead holder's lock is released by the kernel at once.
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(Status::kLockTimeout, "timed out after " + std::to_string(timeout_ms) +
                                            " ms waiting for the lock on " + path +
                                            " (another live process holds it)");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

FileLock::~FileLock() {
  if (fd_.valid()) ::flock(fd_.get(), LOCK_UN);
}

StateStore::StateStore(StoreOptions options) : opts_(std::move(options)) {
  if (opts_.dir.empty()) throw Error(Status::kConfig, "state directory is empty");
  while (opts_.dir.size() > 1 && opts_.dir.back() == '/') opts_.dir.pop_back();
  lock_path_ = opts_.dir + "/chronos.lock";
  state_path_ = opts_.dir + "/state.v1";
  temp_path_ = opts_.dir + "/state.v1.tmp";
}

void StateStore::ensure_dir() const {
  struct stat st;
  if (::stat(opts_.dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      throw Error(Status::kIo, "state directory " + opts_.dir + " is not a directory");
    }
    return;
  }
  // mkdir -p, one component at a time.
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = opts_.dir.find('/', pos + 1);
    path = opts_.dir.substr(0, pos);
    if (path.empty()) continue;
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      throw io_error("cannot create state directory", path, errno);
    }
  }
}

std::string StateStore::read_file_or_empty(bool &exists) const {
  exists = false;
  UniqueFd fd(::open(state_path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return "";
    throw io_error("cannot open state file", state_path_, errno);
  }
  exists = true;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw io_error("cannot stat state file", state_path_, errno);
  if (static_cast<size_t>(st.st_size) > kMaxStateBytes) {
    // Return a marker the parser rejects, without reading a huge file into memory.
    return std::string(kMaxStateBytes + 1, 'x');
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::read(fd.get(), &text[off], text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot read state file", state_path_, errno);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  text.resize(off);
  return text;
}

void StateStore::write_atomically(const State &state) {
  const std::string text = serialize_state(state);
  {
    UniqueFd fd(::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) throw io_error("cannot create", temp_path_, errno);
    keep_directory_owner(fd.get(), opts_.dir);
    write_all(fd.get(), text, temp_path_);
    if (::fsync(fd.get()) != 0) throw io_error("cannot fsync", temp_path_, errno);
    const int raw = fd.release();
    if (::close(raw) != 0) throw io_error("cannot close", temp_path_, errno);
  }
  if (opts_.after_temp_written) opts_.after_temp_written();
  if (::rename(temp_path_.c_str(), state_path_.c_str()) != 0) {
    throw io_error("cannot rename into", state_path_, errno);
  }
  // Make the rename itself durable; failure here leaves a correct file, so it is not fatal.
  UniqueFd dir(::open(opts_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
}

bool StateStore::memory_backed() const {
  struct statfs fs;
  if (::statfs(opts_.dir.c_str(), &fs) != 0) return false;
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

void StateStore::transact(const std::function<bool(State &)> &fn, bool nowait) {
  if (nowait && !memory_backed()) {
    throw Error(Status::kWouldBlock, "state directory " + opts_.dir +
                                         " is not memory-backed (or does not exist yet)");
  }
  ensure_dir();
  FileLock lock(lock_path_, opts_.lock_timeout_ms, nowait);
  bool exists = false;
  const std::string text = read_file_or_empty(exists);
  State state;
  if (exists) {
    ParseResult parsed = parse_state(text);
    if (!parsed.ok) {
      throw Error(Status::kStateCorrupt, "state file " + state_path_ + " is corrupt: " +
                                             parsed.error +
                                             " (run `chronos_cli repair` to salvage it)");
    }
    state = std::move(parsed.state);
  }
  if (fn(state)) write_atomically(state);
}

ParseResult StateStore::read_unlocked() const {
  bool exists = false;
  const std::string text = read_file_or_empty(exists);
  if (!exists) {
    ParseResult r;
    r.ok = true;
    return r;
  }
  return parse_state(text);
}

RepairOutcome StateStore::repair() {
  ensure_dir();
  FileLock lock(lock_path_, opts_.lock_timeout_ms);
  RepairOutcome out;
  bool exists = false;
  const std::string text = read_file_or_empty(exists);
  if (!exists || parse_state(text).ok) return out;
  const SalvageResult salvaged = salvage_state(text.size() > kMaxStateBytes ? "" : text);
  out.repaired = true;
  out.kept = salvaged.kept;
  out.dropped = salvaged.dropped;
  out.moved_to = state_path_ + ".corrupt-" + std::to_string(system_now_ms());
  if (::rename(state_path_.c_str(), out.moved_to.c_str()) != 0) {
    throw io_error("cannot move damaged state file to", out.moved_to, errno);
  }
  write_atomically(salvaged.state);
  return out;
}

}  // namespace chronos
