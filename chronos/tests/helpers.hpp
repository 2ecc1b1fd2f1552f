// Test helpers: temporary directories, a manual clock, fixed device lists, running the real
// chronos_cli, and a small JSON reader to check what the library and the CLI print.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "device.hpp"
#include "engine.hpp"

namespace chronos_test {

/** A fresh directory under $TMPDIR, removed with its contents on destruction. */
class TempDir {
 public:
  TempDir();
  /** A fresh directory under `base` (e.g. /dev/shm for a memory-backed one). */
  explicit TempDir(const std::string &base);
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/** A clock tests move by hand. Shared so engines and the test see the same time. */
struct ManualClock {
  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(1700000000000);
  chronos::Clock fn() const {
    auto n = now;
    return [n] { return n->load(); };
  }
  void advance_ms(int64_t ms) const { *now += ms; }
  int64_t ms() const { return *now; }
};

/** Two fixed 16 GiB "GPUs" (pure-logic and concurrency tests; OpenCL is tested separately). */
std::vector<chronos::DeviceInfo> fake_devices(size_t n = 2);

/** A config for tests: state in dir, default policy unless changed by the caller. */
chronos::Config test_config(const std::string &dir);

/** An engine over fake devices and the given clock. */
std::unique_ptr<chronos::Engine> make_engine(const chronos::Config &cfg, const ManualClock &clock,
                                             size_t devices = 2, int64_t caller_uid = 0);

/** Result of running a process. */
struct ProcResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/** Runs argv (argv[0] is a path) with extra environment variables; no shell involved. */
ProcResult run_process(const std::vector<std::string> &argv,
                       const std::map<std::string, std::string> &env = {});

/** Runs the built chronos_cli with CHRONOS_STATE_DIR=state_dir. */
ProcResult run_cli(const std::string &state_dir, const std::vector<std::string> &args);

/** Reads a whole file ("" if missing). */
std::string read_file(const std::string &path);

/** Writes a whole file. */
void write_file(const std::string &path, const std::string &data);

/** A parsed JSON value (tests only). */
struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::map<std::string, Json> o;

  const Json &operator[](const std::string &key) const;
  const Json &operator[](size_t i) const { return a.at(i); }
  bool has(const std::string &key) const { return o.count(key) != 0; }
  size_t size() const { return type == Type::kArray ? a.size() : o.size(); }
};

/** Parses JSON; throws std::runtime_error on malformed input. */
Json parse_json(const std::string &text);

}  // namespace chronos_test
