// The C ABI exactly as FFI callers see it: real OpenCL discovery, JSON into caller buffers,
// documented errors (buffer too small with the size needed), no exception ever escaping.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "state_store.hpp"

#include "chronos.h"
#include "helpers.hpp"

using chronos_test::Json;
using chronos_test::parse_json;
using chronos_test::TempDir;

namespace {

struct Handle {
  chronos_t *h;
  explicit Handle(const std::string &dir) : h(chronos_init(dir.c_str(), nullptr)) {}
  ~Handle() { chronos_shutdown(h); }
};

Json call_json(int (*fn)(chronos_t *, char *, size_t, size_t *), chronos_t *h) {
  std::string buf(1 << 16, '\0');
  size_t needed = 0;
  const int rc = fn(h, &buf[0], buf.size(), &needed);
  INFO(chronos_last_error());
  REQUIRE(rc == CHRONOS_OK);
  REQUIRE(needed == std::strlen(buf.c_str()) + 1);
  return parse_json(buf.c_str());
}

}  // namespace

TEST_CASE("version and last error are plain C strings", "[c_api]") {
  CHECK(std::string(chronos_version()) == CHRONOS_VERSION_STRING);
  CHECK(chronos_last_error() != nullptr);
}

TEST_CASE("init with an unreadable config fails with a reason, not a crash", "[c_api]") {
  TempDir dir;
  chronos_t *h = chronos_init(dir.path().c_str(), "/nonexistent/chronos.yaml");
  CHECK(h == nullptr);
  CHECK_THAT(std::string(chronos_last_error()), Catch::Contains("/nonexistent/chronos.yaml"));
  chronos_shutdown(nullptr);  // ignored
}

TEST_CASE("a NULL handle is an error, not a crash", "[c_api]") {
  char buf[CHRONOS_PARTITION_JSON_MAX];
  CHECK(chronos_list(nullptr, buf, sizeof buf, nullptr) == CHRONOS_E_INVALID_ARGUMENT);
  CHECK_THAT(std::string(chronos_last_error()), Catch::Contains("NULL"));
  CHECK(parse_json(buf)["error"]["code"].s == "INVALID_ARGUMENT");
  uint32_t n = 0;
  CHECK(chronos_device_count(nullptr, &n) == CHRONOS_E_INVALID_ARGUMENT);
}

TEST_CASE("devices are discovered through OpenCL and described as JSON", "[c_api]") {
  TempDir dir;
  Handle h(dir.path());
  REQUIRE(h.h != nullptr);
  uint32_t n = 0;
  REQUIRE(chronos_device_count(h.h, &n) == CHRONOS_OK);
  REQUIRE(n >= 1);
  char buf[4096];
  size_t needed = 0;
  REQUIRE(chronos_device_info(h.h, 0, buf, sizeof buf, &needed) == CHRONOS_OK);
  const Json d = parse_json(buf);
  CHECK(d["index"].n == 0);
  CHECK_FALSE(d["name"].s.empty());
  CHECK(d["total_memory_bytes"].n > 0);
  CHECK(chronos_device_info(h.h, n, buf, sizeof buf, &needed) == CHRONOS_E_INVALID_ARGUMENT);
  CHECK_THAT(std::string(chronos_last_error()), Catch::Contains("unknown device"));
}

TEST_CASE("create, list, release and stats through the C ABI", "[c_api]") {
  TempDir dir;
  Handle h(dir.path());
  REQUIRE(h.h != nullptr);
  char buf[CHRONOS_PARTITION_JSON_MAX];
  size_t needed = 0;
  REQUIRE(chronos_create(h.h, 0, 0.5, 60, "alice", "j-1", buf, sizeof buf, &needed) ==
          CHRONOS_OK);
  const Json p = parse_json(buf);
  CHECK(p["memory"].n == 0.5);
  CHECK(p["owner"].s == "alice");
  CHECK(p["job_id"].s == "j-1");
  CHECK(p["existing"].b == false);
  CHECK(p["remaining_s"].n == 60);
  CHECK(p["expires_at_ms"].n - p["start_ms"].n == 60000);
  const std::string id = p["id"].s;

  const Json l = call_json(chronos_list, h.h);
  REQUIRE(l["partitions"].size() == 1);
  CHECK(l["partitions"][0]["id"].s == id);
  CHECK(l["partitions"][0]["remaining_s"].n > 59);
  CHECK(l["partitions"][0]["remaining_s"].n <= 60);

  const Json s = call_json(chronos_stats, h.h);
  CHECK(s["devices"][0]["allocated"].n == 0.5);
  CHECK(s["devices"][0]["owners"]["alice"].n == 0.5);
  CHECK(s["partitions"].n == 1);
  CHECK(s["policy"]["max_share_per_owner"].n == 0.75);

  // Same job id again: the same partition comes back.
  REQUIRE(chronos_create(h.h, 0, 0.2, 5, "alice", "j-1", buf, sizeof buf, nullptr) ==
          CHRONOS_OK);
  CHECK(parse_json(buf)["id"].s == id);
  CHECK(parse_json(buf)["existing"].b == true);

  REQUIRE(chronos_release(h.h, id.c_str(), buf, sizeof buf, &needed) == CHRONOS_OK);
  CHECK(parse_json(buf)["id"].s == id);
  CHECK(chronos_release(h.h, id.c_str(), nullptr, 0, nullptr) == CHRONOS_E_NOT_FOUND);
  CHECK_THAT(std::string(chronos_last_error()), Catch::Contains("no live partition " + id));
  CHECK(call_json(chronos_list, h.h)["partitions"].size() == 0);
  CHECK(call_json(chronos_reap, h.h)["reclaimed"].size() == 0);
}

TEST_CASE("a refusal comes back as JSON with the earliest fit time", "[c_api]") {
  TempDir dir;
  Handle h(dir.path());
  char buf[CHRONOS_PARTITION_JSON_MAX];
  REQUIRE(chronos_create(h.h, 0, 0.5, 60, nullptr, nullptr, buf, sizeof buf, nullptr) ==
          CHRONOS_OK);
  CHECK(parse_json(buf)["owner"].s == "anonymous");
  const double expires = parse_json(buf)["expires_at_ms"].n;
  REQUIRE(chronos_create(h.h, 0, 0.6, 60, nullptr, nullptr, buf, sizeof buf, nullptr) ==
          CHRONOS_E_NO_CAPACITY);
  const Json e = parse_json(buf)["error"];
  CHECK(e["code"].s == "NO_CAPACITY");
  CHECK(e["status"].n == CHRONOS_E_NO_CAPACITY);
  CHECK(e["earliest_fit_ms"].n == expires);
  CHECK_THAT(e["message"].s, Catch::Contains("requested 0.6"));
  CHECK(std::string(chronos_last_error()) == e["message"].s);
  REQUIRE(chronos_create(h.h, 0, 1.5, 60, nullptr, nullptr, buf, sizeof buf, nullptr) ==
          CHRONOS_E_INVALID_ARGUMENT);
  CHECK_FALSE(parse_json(buf)["error"].has("earliest_fit_ms"));
}

TEST_CASE("too small buffers report the size needed and change nothing", "[c_api]") {
  TempDir dir;
  Handle h(dir.path());
  char small[16];
  size_t needed = 0;
  CHECK(chronos_create(h.h, 0, 0.5, 60, "a", nullptr, small, sizeof small, &needed) ==
        CHRONOS_E_BUFFER_TOO_SMALL);
  CHECK(needed == CHRONOS_PARTITION_JSON_MAX);
  CHECK(call_json(chronos_list, h.h)["partitions"].size() == 0);  // nothing was created

  char buf[CHRONOS_PARTITION_JSON_MAX];
  for (int i = 0; i < 3; ++i) {
    REQUIRE(chronos_create(h.h, 0, 0.1, 60, "a", nullptr, buf, sizeof buf, nullptr) ==
            CHRONOS_OK);
  }
  CHECK(chronos_list(h.h, small, sizeof small, &needed) == CHRONOS_E_BUFFER_TOO_SMALL);
  CHECK(needed > sizeof small);
  CHECK_THAT(std::string(chronos_last_error()), Catch::Contains("bytes needed"));
  CHECK(chronos_list(h.h, nullptr, 0, &needed) == CHRONOS_E_BUFFER_TOO_SMALL);
  std::string exact(needed, '\0');
  size_t written = 0;
  // The list may shift by a few bytes (remaining_s digits); allow a retry as callers do.
  int rc = chronos_list(h.h, &exact[0], exact.size(), &written);
  if (rc == CHRONOS_E_BUFFER_TOO_SMALL) {
    exact.assign(written, '\0');
    rc = chronos_list(h.h, &exact[0], exact.size(), &written);
  }
  REQUIRE(rc == CHRONOS_OK);
  CHECK(parse_json(exact.c_str())["partitions"].size() == 3);
}

TEST_CASE("last error is per thread", "[c_api]") {
  TempDir dir;
  Handle h(dir.path());
  CHECK(chronos_release(h.h, "p-000000000000", nullptr, 0, nullptr) == CHRONOS_E_NOT_FOUND);
  std::string other;
  std::thread([&] {
    uint32_t n = 0;
    CHECK(chronos_device_count(h.h, &n) == CHRONOS_OK);
    other = chronos_last_error();
  }).join();
  CHECK(other.empty());
  CHECK_THAT(std::string(chronos_last_error()), Catch::Contains("p-000000000000"));
}

TEST_CASE("a corrupt state file is reported through the ABI and repaired", "[c_api]") {
  TempDir dir;
  Handle h(dir.path());
  char buf[CHRONOS_PARTITION_JSON_MAX];
  REQUIRE(chronos_create(h.h, 0, 0.5, 60, "a", nullptr, buf, sizeof buf, nullptr) == CHRONOS_OK);
  const std::string text = chronos_test::read_file(dir.file("state.v1"));
  chronos_test::write_file(dir.file("state.v1"), text.substr(0, text.size() - 5));
  CHECK(chronos_list(h.h, buf, sizeof buf, nullptr) == CHRONOS_E_STATE_CORRUPT);
  CHECK(parse_json(buf)["error"]["code"].s == "STATE_CORRUPT");
  const Json r = call_json(chronos_repair, h.h);
  CHECK(r["repaired"].b);
  CHECK(r["kept"].n == 1);
  CHECK(call_json(chronos_list, h.h)["partitions"].size() == 1);
}

TEST_CASE("try variants work without waiting on a memory-backed state directory", "[c_api]") {
  TempDir dir("/dev/shm");
  Handle h(dir.path());
  char buf[CHRONOS_PARTITION_JSON_MAX];
  // Before OpenCL discovery the call would have to wait for it.
  CHECK(chronos_try_create(h.h, 0, 0.5, 60, "a", nullptr, buf, sizeof buf, nullptr) ==
        CHRONOS_E_WOULD_BLOCK);
  CHECK(parse_json(buf)["error"]["code"].s == "WOULD_BLOCK");
  CHECK(call_json(chronos_list, h.h)["partitions"].size() == 0);
  uint32_t n = 0;
  REQUIRE(chronos_device_count(h.h, &n) == CHRONOS_OK);
  REQUIRE(chronos_try_create(h.h, 0, 0.5, 60, "a", "j-t", buf, sizeof buf, nullptr) ==
          CHRONOS_OK);
  const std::string id = parse_json(buf)["id"].s;
  // Refusals and bad arguments come back as usual.
  CHECK(chronos_try_create(h.h, 0, 0.6, 60, "a", nullptr, buf, sizeof buf, nullptr) ==
        CHRONOS_E_NO_CAPACITY);
  CHECK(chronos_try_create(h.h, 0, 1.5, 60, "a", nullptr, buf, sizeof buf, nullptr) ==
        CHRONOS_E_INVALID_ARGUMENT);
  REQUIRE(chronos_try_release(h.h, id.c_str(), buf, sizeof buf, nullptr) == CHRONOS_OK);
  CHECK(parse_json(buf)["id"].s == id);
  CHECK(chronos_try_release(h.h, id.c_str(), nullptr, 0, nullptr) == CHRONOS_E_NOT_FOUND);
}

TEST_CASE("try variants return WOULD_BLOCK at once while another process holds the lock",
          "[c_api]") {
  TempDir dir("/dev/shm");
  Handle h(dir.path());
  uint32_t n = 0;
  REQUIRE(chronos_device_count(h.h, &n) == CHRONOS_OK);
  char buf[CHRONOS_PARTITION_JSON_MAX];
  REQUIRE(chronos_create(h.h, 0, 0.25, 60, "a", nullptr, buf, sizeof buf, nullptr) == CHRONOS_OK);
  const std::string id = parse_json(buf)["id"].s;
  const std::string before = chronos_test::read_file(dir.file("state.v1"));
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    chronos::FileLock lock(dir.file("chronos.lock"), 1000);
    const char ok = 'x';
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(chronos_try_create(h.h, 0, 0.25, 60, "a", nullptr, buf, sizeof buf, nullptr) ==
        CHRONOS_E_WOULD_BLOCK);
  CHECK(chronos_try_release(h.h, id.c_str(), buf, sizeof buf, nullptr) == CHRONOS_E_WOULD_BLOCK);
  CHECK_THAT(parse_json(buf)["error"]["message"].s, Catch::Contains("held by another caller"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100));
  ::kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(chronos_test::read_file(dir.file("state.v1")) == before);  // nothing changed
  CHECK(chronos_try_release(h.h, id.c_str(), nullptr, 0, nullptr) == CHRONOS_OK);
}

TEST_CASE("try variants refuse to wait for a disk-backed state directory", "[c_api]") {
  TempDir dir(".");  // the build tree: on disk wherever this suite has run so far
  Handle h(dir.path());
  uint32_t n = 0;
  REQUIRE(chronos_device_count(h.h, &n) == CHRONOS_OK);
  chronos::StoreOptions opts;
  opts.dir = dir.path();
  const bool memory = chronos::StateStore(opts).memory_backed();
  char buf[CHRONOS_PARTITION_JSON_MAX];
  const int rc = chronos_try_create(h.h, 0, 0.25, 60, "a", nullptr, buf, sizeof buf, nullptr);
  CHECK(rc == (memory ? CHRONOS_OK : CHRONOS_E_WOULD_BLOCK));
  if (!memory) CHECK_THAT(parse_json(buf)["error"]["message"].s, Catch::Contains("memory-backed"));
  CHECK(chronos::StateStore(chronos::StoreOptions{"/dev/shm", 1, nullptr}).memory_backed());
}
