// The shared state file: atomic replacement, corrupt/truncated files refused then repaired,
// crashed writers and crashed lock holders never wedging anyone, lock timeout, threads.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "helpers.hpp"
#include "state_store.hpp"
#include "status.hpp"

using namespace chronos;
using chronos_test::ManualClock;
using chronos_test::TempDir;

namespace {

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status status_of(const std::function<void()> &fn, std::string *message = nullptr) {
  try {
    fn();
  } catch (const Error &e) {
    if (message != nullptr) *message = e.what();
    return e.status();
  }
  return Status::kOk;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return status;
}

}  // namespace

TEST_CASE("a missing state file is an empty ledger and writes leave no temp file", "[store]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path() + "/nested/dir"),
                                          clock);
  CHECK(engine->list().partitions.empty());
  CHECK_FALSE(exists(dir.path() + "/nested/dir/state.v1"));  // read-only call wrote nothing
  engine->create(0, 0.25, 60, "alice", "");
  CHECK(exists(dir.path() + "/nested/dir/state.v1"));
  CHECK_FALSE(exists(dir.path() + "/nested/dir/state.v1.tmp"));
  const ParseResult r = engine->store().read_unlocked();
  REQUIRE(r.ok);
  CHECK(r.state.partitions.size() == 1);
}

TEST_CASE("a corrupt state file is refused with a clear error, then repaired", "[store]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  engine->create(0, 0.25, 60, "alice", "");
  engine->create(0, 0.25, 60, "bob", "");
  const std::string path = dir.file("state.v1");
  std::string text = chronos_test::read_file(path);

  const std::string damage =
      GENERATE(as<std::string>{}, "truncated", "edited", "empty", "binary garbage");
  INFO("damage: " << damage);
  if (damage == "truncated") {
    text.resize(text.size() / 2 + 10);
  } else if (damage == "edited") {
    text[text.find("alice")] = 'A';  // still well formed, but the checksum no longer matches
  } else if (damage == "empty") {
    text.clear();
  } else {
    text = std::string("\x7f" "ELF\0\0\x01", 7);
  }

  chronos_test::write_file(path, text);
  std::string msg;
  CHECK(status_of([&] { engine->list(); }, &msg) == Status::kStateCorrupt);
  CHECK_THAT(msg, Catch::Contains(path) && Catch::Contains("corrupt") &&
                      Catch::Contains("chronos_cli repair"));
  CHECK(status_of([&] { engine->create(0, 0.1, 60, "carol", ""); }) == Status::kStateCorrupt);
  CHECK(chronos_test::read_file(path) == text);  // refused calls never overwrite evidence

  const RepairOutcome rep = engine->repair();
  CHECK(rep.repaired);
  CHECK(exists(rep.moved_to));
  CHECK(chronos_test::read_file(rep.moved_to) == text);
  const ListOutcome after = engine->list();
  CHECK(after.partitions.size() <= 2);
  CHECK(after.partitions.size() == rep.kept);
  if (damage == "edited") CHECK(after.partitions.size() == 2);
  engine->create(0, 0.1, 60, "carol", "");
  CHECK_FALSE(engine->repair().repaired);
}

TEST_CASE("a writer killed before rename leaves the previous state intact", "[store]") {
  TempDir dir;
  ManualClock clock;
  const Config cfg = chronos_test::test_config(dir.path());
  auto engine = chronos_test::make_engine(cfg, clock);
  const Partition kept = engine->create(0, 0.25, 60, "alice", "").partition;

  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: a writer that dies holding the lock, with its new version half done.
    Engine crashing(cfg, [] { return chronos_test::fake_devices(); }, clock.fn(),
                    [] { ::raise(SIGKILL); });
    crashing.create(0, 0.5, 60, "mallory", "");
    ::_exit(0);  // not reached
  }
  const int status = wait_child(pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(exists(dir.file("state.v1.tmp")));  // the half-done version

  // The kernel dropped the dead writer's lock: the next call proceeds at once.
  const auto t0 = std::chrono::steady_clock::now();
  const ListOutcome l = engine->list();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  REQUIRE(l.partitions.size() == 1);
  CHECK(l.partitions[0].id == kept.id);
  engine->create(0, 0.5, 60, "bob", "");  // overwrites the stale temp file
  CHECK(engine->list().partitions.size() == 2);
}

TEST_CASE("a lock held by a process that was killed is released at once", "[store]") {
  TempDir dir;
  ManualClock clock;
  Config cfg = chronos_test::test_config(dir.path());
  cfg.lock_timeout_ms = 2000;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FileLock lock(dir.file("chronos.lock"), 1000);
    const char ok = 'x';
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    for (;;) ::pause();  // hold the lock until killed
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  ::close(ready[1]);
  ::kill(pid, SIGKILL);
  wait_child(pid);
  auto engine = chronos_test::make_engine(cfg, clock);
  const auto t0 = std::chrono::steady_clock::now();
  engine->create(0, 0.5, 60, "alice", "");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
}

TEST_CASE("a live process holding the lock too long gives LOCK_TIMEOUT, not a hang", "[store]") {
  TempDir dir;
  ManualClock clock;
  Config cfg = chronos_test::test_config(dir.path());
  cfg.lock_timeout_ms = 150;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FileLock lock(dir.file("chronos.lock"), 1000);
    const char ok = 'x';
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  auto engine = chronos_test::make_engine(cfg, clock);
  std::string msg;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(status_of([&] { engine->list(); }, &msg) == Status::kLockTimeout);
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= std::chrono::milliseconds(150));
  CHECK(waited < std::chrono::seconds(2));
  CHECK_THAT(msg, Catch::Contains("timed out after 150 ms"));
  ::kill(pid, SIGKILL);
  wait_child(pid);
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(engine->list().partitions.empty());
}

TEST_CASE("threads of one process exclude each other through the lock", "[store]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  std::atomic<int> created{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        try {
          const Partition p =
              engine->create(static_cast<uint32_t>(t % 2), 0.2, 60, "u" + std::to_string(t), "")
                  .partition;
          ++created;
          engine->release(p.id);
        } catch (const Error &e) {
          if (e.status() != Status::kNoCapacity && e.status() != Status::kFairShare) ++failures;
        }
      }
    });
  }
  for (auto &th : threads) th.join();
  CHECK(failures == 0);
  CHECK(created > 0);
  CHECK(engine->list().partitions.empty());
}

TEST_CASE("an unusable state directory gives an I/O error naming it", "[store]") {
  TempDir dir;
  ManualClock clock;
  chronos_test::write_file(dir.file("plainfile"), "x");
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.file("plainfile")), clock);
  std::string msg;
  CHECK(status_of([&] { engine->list(); }, &msg) == Status::kIo);
  CHECK_THAT(msg, Catch::Contains("plainfile"));
}

TEST_CASE("files root writes into a user's state directory stay that user's", "[store]") {
  if (::geteuid() != 0) {
    WARN("not root: ownership is not exercised");
    return;
  }
  TempDir dir;
  const std::string state = dir.path() + "/user";
  REQUIRE(::mkdir(state.c_str(), 0750) == 0);
  const uid_t uid = 65534;  // nobody: the agent's SSH login in production
  const gid_t gid = 65534;
  REQUIRE(::chown(state.c_str(), uid, gid) == 0);
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(state), clock);
  engine->create(0, 0.25, 60, "alice", "");
  for (const char *name : {"/state.v1", "/chronos.lock"}) {
    struct stat st;
    REQUIRE(::stat((state + name).c_str(), &st) == 0);
    CHECK(st.st_uid == uid);
    CHECK(st.st_gid == gid);
  }
  // A root-owned directory: files stay root's.
  const std::string rootdir = dir.path() + "/root";
  REQUIRE(::mkdir(rootdir.c_str(), 0750) == 0);
  auto engine2 = chronos_test::make_engine(chronos_test::test_config(rootdir), clock);
  engine2->create(0, 0.25, 60, "alice", "");
  struct stat st;
  REQUIRE(::stat((rootdir + "/state.v1").c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
}
