// Many real processes sharing one state file. Eight forked workers create and release at
// random (short real durations, so expiry happens too), an observer reads the file without the
// lock (rename makes every read complete), and a crasher keeps forking writers that are
// SIGKILLed halfway through a write. Invariants: the fractions on a device never sum above 1.0
// in any observed state, no live partition is lost, nothing from a dead writer is ever seen,
// and when the workers are done nothing is left (no leak).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <thread>

#include "helpers.hpp"
#include "status.hpp"

using namespace chronos;
using chronos_test::TempDir;

namespace {

constexpr int kWorkers = 8;

struct Counters {
  long created = 0, released = 0, expired = 0, refused = 0, lists = 0, snapshots = 0, kills = 0,
       reused = 0;
};

[[noreturn]] void die(const std::string &why) {
  std::fprintf(stderr, "hammer child %d: %s\n", static_cast<int>(::getpid()), why.c_str());
  std::fflush(stderr);
  ::_exit(1);
}

void check_snapshot(const std::vector<Partition> &ps, int64_t now, const char *where) {
  State s;
  s.partitions = ps;
  const std::string bad = check_invariants(s);
  if (!bad.empty()) die(std::string(where) + ": invariant broken: " + bad);
  for (const Partition &p : ps) {
    if (p.owner == "crasher") die(std::string(where) + ": a killed writer's partition is visible");
    if (now >= 0 && p.expires_ms <= now) die(std::string(where) + ": expired partition listed");
  }
}

std::unique_ptr<Engine> make(const Config &cfg, std::function<void()> hook = nullptr) {
  return std::make_unique<Engine>(cfg, [] { return chronos_test::fake_devices(2); },
                                  system_now_ms, std::move(hook));
}

Counters worker(const Config &cfg, int k, std::chrono::steady_clock::time_point deadline) {
  auto engine = make(cfg);
  std::mt19937 rng(static_cast<unsigned>(::getpid()) * 7919u + static_cast<unsigned>(k));
  std::vector<Partition> own;
  Counters c;
  const std::string owner = "w" + std::to_string(k);
  long seq = 0;
  auto release_one = [&](size_t idx) {
    const Partition p = own[idx];
    own.erase(own.begin() + static_cast<long>(idx));
    try {
      if (engine->release(p.id).partition.id != p.id) die("released the wrong partition");
      ++c.released;
    } catch (const Error &e) {
      if (e.status() != Status::kNotFound) die(std::string("release: ") + e.what());
      // Only expiry may take a partition away from its owner.
      if (system_now_ms() < p.expires_ms) die("partition " + p.id + " lost before its expiry");
      ++c.expired;
    }
  };
  while (std::chrono::steady_clock::now() < deadline) {
    const unsigned r = rng() % 100;
    if (!own.empty() && r < 40) {
      release_one(rng() % own.size());
    } else if (r < 88) {
      const uint32_t dev = rng() % 2;
      const double frac = (2 + rng() % 44) / 100.0;
      const double dur = (30 + rng() % 570) / 1000.0;
      const std::string job = rng() % 2 ? "j-" + owner + "-" + std::to_string(seq++) : "";
      try {
        const PartitionOutcome o = engine->create(dev, frac, dur, owner, job);
        if (o.existing) die("a fresh job id returned an existing partition");
        if (o.partition.owner != owner || o.partition.device != dev) die("wrong partition");
        own.push_back(o.partition);
        ++c.created;
      } catch (const Error &e) {
        if (e.status() != Status::kNoCapacity && e.status() != Status::kFairShare) {
          die(std::string("create: ") + e.what());
        }
        if (e.earliest_fit_ms() < 0) die("refusal without an earliest fit time");
        ++c.refused;
      }
    } else if (r < 93) {
      // Retry of a create with the same job id: must be idempotent while the partition lives.
      for (size_t i = 0; i < own.size(); ++i) {
        if (own[i].job_id.empty()) continue;
        const Partition p = own[i];
        try {
          const PartitionOutcome o = engine->create(p.device, 0.01, 1, owner, p.job_id);
          if (o.existing) {
            if (o.partition.id != p.id) die("job id mapped to another partition");
            ++c.reused;
          } else {
            if (system_now_ms() < p.expires_ms) die("duplicate partition for a live job id");
            ++c.expired;
            ++c.created;
            own[i] = o.partition;
          }
        } catch (const Error &e) {
          if (e.status() != Status::kNoCapacity && e.status() != Status::kFairShare) {
            die(std::string("re-create: ") + e.what());
          }
          if (system_now_ms() < p.expires_ms) die("live job id was refused instead of reused");
          own.erase(own.begin() + static_cast<long>(i));
          ++c.expired;
          ++c.refused;
        }
        break;
      }
    } else {
      const ListOutcome l = engine->list();
      check_snapshot(l.partitions, l.now_ms, "list");
      for (const Partition &p : own) {
        if (p.expires_ms <= l.now_ms) continue;
        bool found = false;
        for (const Partition &q : l.partitions) found = found || q.id == p.id;
        if (!found) die("live partition " + p.id + " missing from list");
      }
      ++c.lists;
    }
  }
  while (!own.empty()) release_one(own.size() - 1);
  return c;
}

Counters observer(const Config &cfg, std::chrono::steady_clock::time_point deadline) {
  auto engine = make(cfg);
  Counters c;
  while (std::chrono::steady_clock::now() < deadline) {
    const ParseResult r = engine->store().read_unlocked();
    if (!r.ok) die("observer read an incomplete or invalid file: " + r.error);
    check_snapshot(r.state.partitions, -1, "observer");
    ++c.snapshots;
    // A short pause keeps the observer from starving the workers on small machines.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return c;
}

Counters crasher(const Config &cfg, std::chrono::steady_clock::time_point deadline) {
  Counters c;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
      auto doomed = make(cfg, [] { ::raise(SIGKILL); });
      try {
        doomed->create(0, 0.05, 60, "crasher", "");
      } catch (...) {
      }
      ::_exit(0);  // only reached if nothing was written
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++c.kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return c;
}

std::string encode(const Counters &c) {
  std::ostringstream s;
  s << c.created << ' ' << c.released << ' ' << c.expired << ' ' << c.refused << ' ' << c.lists
    << ' ' << c.snapshots << ' ' << c.kills << ' ' << c.reused << '\n';
  return s.str();
}

Counters decode(const std::string &text) {
  Counters c;
  std::istringstream s(text);
  s >> c.created >> c.released >> c.expired >> c.refused >> c.lists >> c.snapshots >> c.kills >>
      c.reused;
  return c;
}

void hammer(double seconds) {
  TempDir dir;
  Config cfg = chronos_test::test_config(dir.path());
  cfg.policy.max_share_ppm = 500000;  // fair share in play too
  cfg.policy.waiter_ttl_ms = 300;
  cfg.lock_timeout_ms = 30000;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  struct Child {
    pid_t pid;
    int fd;
    const char *role;
  };
  std::vector<Child> children;
  for (int k = 0; k < kWorkers + 2; ++k) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      Counters c;
      try {
        if (k < kWorkers) {
          c = worker(cfg, k, deadline);
        } else if (k == kWorkers) {
          c = observer(cfg, deadline);
        } else {
          c = crasher(cfg, deadline);
        }
      } catch (const std::exception &e) {
        die(std::string("exception: ") + e.what());
      }
      const std::string line = encode(c);
      if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        die("cannot report");
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    children.push_back(
        Child{pid, fds[0], k < kWorkers ? "worker" : (k == kWorkers ? "observer" : "crasher")});
  }
  Counters total;
  for (const Child &ch : children) {
    std::string text;
    char buf[256];
    ssize_t n;
    while ((n = ::read(ch.fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    ::close(ch.fd);
    int status = 0;
    while (waitpid(ch.pid, &status, 0) < 0) {
    }
    INFO(ch.role << " " << ch.pid << " (its stderr above says why)");
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const Counters c = decode(text);
    total.created += c.created;
    total.released += c.released;
    total.expired += c.expired;
    total.refused += c.refused;
    total.lists += c.lists;
    total.snapshots += c.snapshots;
    total.kills += c.kills;
    total.reused += c.reused;
  }
  WARN("hammer " << seconds << " s: created " << total.created << ", released " << total.released
                 << ", expired " << total.expired << ", refused " << total.refused
                 << ", lists " << total.lists << ", reused job ids " << total.reused
                 << ", observed snapshots " << total.snapshots << ", writers killed "
                 << total.kills);
  // Every partition a worker made was released by it or expired: nothing lost or leaked.
  CHECK(total.created == total.released + total.expired);
  CHECK(total.created > 50);
  CHECK(total.refused > 0);
  CHECK(total.snapshots > 10);
  CHECK(total.kills > 0);
  auto engine = make(cfg);
  const ListOutcome left = engine->list();
  CHECK(left.partitions.empty());
  const ParseResult final_state = engine->store().read_unlocked();
  REQUIRE(final_state.ok);
}

double hammer_seconds() {
  const char *env = std::getenv("CHRONOS_HAMMER_SECONDS");
  if (env != nullptr && *env != '\0') return std::atof(env);
  return CHRONOS_HAMMER_SECONDS_DEFAULT;
}

}  // namespace

TEST_CASE("8 processes creating and releasing at random keep the ledger consistent",
          "[concurrency]") {
  hammer(2.0);
}

TEST_CASE("acceptance: 8 processes hammer the state file and leave it consistent",
          "[acceptance]") {
  hammer(hammer_seconds());
}
