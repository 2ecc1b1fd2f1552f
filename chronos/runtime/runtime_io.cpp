#include "runtime_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

namespace chronos {
namespace runtime {
namespace {

/** Owns a file descriptor (the wrapper links no Chronos engine code, so it has its own). */
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /** Closes now, reporting the error close(2) gives (a write may only fail there). */
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

/** Removes a temporary file on destruction unless it was renamed into place. */
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  TempFile(const TempFile &) = delete;
  TempFile &operator=(const TempFile &) = delete;
  ~TempFile() {
    if (!committed_) ::unlink(path_.c_str());
  }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  bool committed_ = false;
};

std::string errno_text(int err) { return std::strerror(err); }

std::string octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", mode);
  return buf;
}

// Reads the rest of an open file, refusing more than kMaxFileBytes.
std::string read_fd(int fd, const std::string &what) {
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Refusal(what + ": cannot read, got " + errno_text(errno));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileBytes) {
      throw Refusal(what + ": larger than " + std::to_string(kMaxFileBytes) + " bytes, got more");
    }
  }
}

// One grant file, opened without following a link and checked before it is read.
// Returns false when it does not exist.
bool read_grant_file(const std::string &path, const std::string &id, uid_t owner_uid,
                     std::string &text) {
  const std::string what = "grant " + id;
  // O_NONBLOCK: a FIFO planted in the directory must not hang container start.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    if (errno == ELOOP) throw Refusal(what + ": is a symbolic link, got " + path);
    throw Refusal(what + ": cannot open " + path + ", got " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    throw Refusal(what + ": cannot stat " + path + ", got " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) throw Refusal(what + ": not a regular file, got " + path);
  if (st.st_uid != owner_uid) {
    throw Refusal(what + ": not owned by uid " + std::to_string(owner_uid) + ", got uid " +
                  std::to_string(st.st_uid));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw Refusal(what + ": writable by group or others, got mode " +
                  octal(st.st_mode & 07777));
  }
  text = read_fd(fd.get(), what);
  return true;
}

std::string iso_time_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::vector<Grant> load_grants(const std::string &dir,
                               const std::vector<std::string> &partition_ids, uid_t owner_uid) {
  std::vector<Grant> grants;
  std::vector<std::string> missing;
  for (const std::string &id : partition_ids) {
    std::string text;
    if (!read_grant_file(dir + "/" + id + ".json", id, owner_uid, text)) {
      missing.push_back(id);
      continue;
    }
    grants.push_back(parse_grant(text, id));
  }
  if (!grants.empty() && !missing.empty()) {
    // Half a job's GPUs is never right: the agent writes a group's grants before the job starts.
    throw Refusal("grants: " + missing.front() + " missing from " + dir + ", got " +
                  std::to_string(grants.size()) + " of " + std::to_string(partition_ids.size()));
  }
  return grants;
}

DeviceNode stat_device(const std::string &host_path) {
  struct stat st;
  if (::stat(host_path.c_str(), &st) != 0) {
    throw Refusal("device " + host_path + ": cannot stat, got " + errno_text(errno));
  }
  DeviceNode node;
  if (S_ISCHR(st.st_mode)) {
    node.type = 'c';
  } else if (S_ISBLK(st.st_mode)) {
    node.type = 'b';
  } else {
    throw Refusal("device " + host_path + ": not a device node, got mode " +
                  octal(st.st_mode & 0170000));
  }
  node.major = major(st.st_rdev);
  node.minor = minor(st.st_rdev);
  return node;
}

void write_file_atomically(const std::string &path, const std::string &text) {
  struct stat st;
  const mode_t mode = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  std::vector<char> name(path.begin(), path.end());
  const std::string suffix = ".cumulus-XXXXXX";
  name.insert(name.end(), suffix.begin(), suffix.end());
  name.push_back('\0');
  Fd fd(::mkostemp(name.data(), O_CLOEXEC));
  if (!fd.valid()) {
    throw Refusal(path + ": cannot create a temporary file, got " + errno_text(errno));
  }
  const std::string tmp(name.data());
  TempFile guard(tmp);
  if (::fchmod(fd.get(), mode) != 0) {
    throw Refusal(tmp + ": cannot chmod, got " + errno_text(errno));
  }
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Refusal(tmp + ": cannot write, got " + errno_text(errno));
    }
    off += static_cast<size_t>(n);
  }
  // No fsync: the bundle lives on tmpfs (/run) under Docker, and a config lost to a crash
  // belongs to a container that was never created.
  if (fd.close() != 0) throw Refusal(tmp + ": cannot close, got " + errno_text(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Refusal(path + ": cannot replace, got " + errno_text(errno));
  }
  guard.commit();
}

std::string find_runc(const std::string &search_path) {
  struct stat self;
  const bool know_self = ::stat("/proc/self/exe", &self) == 0;
  size_t start = 0;
  while (start <= search_path.size()) {
    size_t end = search_path.find(':', start);
    if (end == std::string::npos) end = search_path.size();
    const std::string dir = search_path.substr(start, end - start);
    start = end + 1;
    if (dir.empty()) continue;
    const std::string candidate = dir + "/runc";
    struct stat st;
    if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::access(candidate.c_str(), X_OK) != 0) continue;
    if (know_self && st.st_dev == self.st_dev && st.st_ino == self.st_ino) continue;
    return candidate;
  }
  throw Refusal("runc: not found in " + search_path +
                " (name it with --cumulus-runc or CUMULUS_GPU_RUNC), got none");
}

BundleOutcome prepare_bundle(const Invocation &inv) {
  const std::string path = inv.bundle + "/config.json";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  // A config we cannot read is runc's to report: it says the same about the same file.
  if (!fd.valid()) return BundleOutcome::kUntouched;
  std::string text;
  try {
    text = read_fd(fd.get(), "config.json");
  } catch (const Refusal &) {
    return BundleOutcome::kUntouched;
  }
  Json config;
  const JobRequest req = inspect_config(text, config);
  if (!req.is_job) return BundleOutcome::kUntouched;
  const std::vector<Grant> grants = load_grants(inv.grants_dir, req.partition_ids, ::geteuid());
  ApplyOptions options;
  options.nvidia_runtime = is_nvidia_runtime(inv.runtime_path);
  if (grants.empty() && !options.nvidia_runtime) return BundleOutcome::kUntouched;
  const Json out = apply_grants(config, req.job_id, grants, stat_device, options);
  write_file_atomically(path, out.dump());
  return BundleOutcome::kRewritten;
}

void report_refusal(const Invocation &inv, const std::string &message) {
  const std::string line = "cumulus-gpu-runc: " + message;
  std::cerr << line << std::endl;
  if (inv.log_path.empty()) return;
  Fd fd(::open(inv.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return;  // stderr already has it
  std::string entry;
  if (inv.log_format == "json") {
    Json j = Json::object();
    j["level"] = "error";
    j["msg"] = line;
    j["time"] = iso_time_now();
    entry = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  } else {
    entry = "time=\"" + iso_time_now() + "\" level=error msg=" +
            Json(line).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  // Best effort: a short write only loses the copy for the shim.
  const ssize_t written = ::write(fd.get(), entry.data(), entry.size());
  (void)written;
}

}  // namespace runtime
}  // namespace chronos
