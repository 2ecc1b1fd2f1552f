// Partition arithmetic, admission, expiry (manual clock, no sleeps), fair share, idempotency.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "helpers.hpp"
#include "ledger.hpp"
#include "status.hpp"

using namespace chronos;
using chronos_test::ManualClock;
using chronos_test::TempDir;

namespace {

Status status_of(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.status();
  }
  return Status::kOk;
}

Partition part(const std::string &id, uint32_t dev, uint32_t ppm, int64_t exp,
               const std::string &owner) {
  Partition p;
  p.id = id;
  p.device = dev;
  p.ppm = ppm;
  p.start_ms = 0;
  p.expires_ms = exp;
  p.owner = owner;
  return p;
}

}  // namespace

TEST_CASE("fractions convert to exact parts per million", "[ledger]") {
  CHECK(fraction_to_ppm(0.5) == 500000);
  CHECK(fraction_to_ppm(1.0) == kWholePpm);
  CHECK(fraction_to_ppm(0.1) + fraction_to_ppm(0.2) + fraction_to_ppm(0.7) == kWholePpm);
  CHECK(fraction_to_ppm(0.000001) == 1);
  CHECK(fraction_to_ppm(0.0) == 0);
  CHECK(fraction_to_ppm(-0.5) == 0);
  CHECK(fraction_to_ppm(1.0000001) == 0);
  CHECK(fraction_to_ppm(1e-9) == 0);
  CHECK(fraction_to_ppm(std::nan("")) == 0);
  CHECK(fraction_to_ppm(std::numeric_limits<double>::infinity()) == 0);
}

TEST_CASE("admission fills a device exactly to 1.0 and no further", "[ledger]") {
  State s;
  s.partitions.push_back(part("p-000000000001", 0, 500000, 10000, "a"));
  Policy policy;
  Request r;
  r.device = 0;
  r.owner = "a";
  r.ppm = 500000;
  CHECK(admit(s, r, policy, 0).verdict == Admission::Verdict::kAdmit);
  r.ppm = 500001;
  const Admission no = admit(s, r, policy, 0);
  CHECK(no.verdict == Admission::Verdict::kNoCapacity);
  CHECK(no.earliest_fit_ms == 10000);
  CHECK_THAT(no.reason, Catch::Contains("has 0.5 free, requested 0.500001"));
  r.device = 1;  // another device is untouched
  CHECK(admit(s, r, policy, 0).verdict == Admission::Verdict::kAdmit);
}

TEST_CASE("earliest fit is the first expiry after which the request fits", "[ledger]") {
  State s;
  s.partitions.push_back(part("p-000000000001", 0, 300000, 10000, "a"));
  s.partitions.push_back(part("p-000000000002", 0, 400000, 20000, "a"));
  s.partitions.push_back(part("p-000000000003", 0, 200000, 30000, "a"));
  Request r;
  r.owner = "a";
  r.ppm = 500000;
  const Admission a = admit(s, r, Policy{}, 1000);
  CHECK(a.verdict == Admission::Verdict::kNoCapacity);
  CHECK(a.earliest_fit_ms == 20000);  // 0.1 free now, 0.4 at 10 s, 0.8 at 20 s
  CHECK_THAT(a.reason, Catch::Contains("earliest fit in 19.0 s"));
}

TEST_CASE("reclaim_expired drops partitions and waiters at their expiry, not before", "[ledger]") {
  State s;
  s.partitions.push_back(part("p-000000000001", 0, 300000, 10000, "a"));
  s.partitions.push_back(part("p-000000000002", 0, 300000, 20000, "b"));
  s.waiters.push_back(Waiter{"c", 0, 100000, 15000});
  CHECK(reclaim_expired(s, 9999).empty());
  CHECK(s.partitions.size() == 2);
  const auto gone = reclaim_expired(s, 15000);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].id == "p-000000000001");
  CHECK(s.waiters.empty());
  CHECK(allocated_ppm(s, 0) == 300000);
}

TEST_CASE("invariant check catches over-allocation and duplicates", "[ledger]") {
  State s;
  s.partitions.push_back(part("p-000000000001", 0, 600000, 10, "a"));
  CHECK(check_invariants(s).empty());
  s.partitions.push_back(part("p-000000000002", 0, 500000, 10, "a"));
  CHECK_THAT(check_invariants(s), Catch::Contains("above 1.0"));
  s.partitions.back().device = 1;
  CHECK(check_invariants(s).empty());
  s.partitions.back().id = "p-000000000001";
  CHECK_THAT(check_invariants(s), Catch::Contains("duplicate"));
}

TEST_CASE("create, list and release through the engine", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  const PartitionOutcome c = engine->create(0, 0.5, 60, "alice", "");
  CHECK(c.partition.id.size() == 14);
  CHECK(c.partition.ppm == 500000);
  CHECK(c.partition.start_ms == clock.ms());
  CHECK(c.partition.expires_ms == clock.ms() + 60000);
  CHECK(c.partition.memory_bytes == (8ull << 30));
  CHECK_FALSE(c.existing);

  CHECK(status_of([&] { engine->create(0, 0.6, 60, "alice", ""); }) == Status::kNoCapacity);
  CHECK(engine->list().partitions.size() == 1);
  CHECK(engine->release(c.partition.id).partition.id == c.partition.id);
  CHECK(engine->list().partitions.empty());
  CHECK(engine->create(0, 0.6, 60, "alice", "").partition.ppm == 600000);
  CHECK(status_of([&] { engine->release(c.partition.id); }) == Status::kNotFound);
}

TEST_CASE("a non-root caller may release and re-take only partitions its uid made", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  const chronos::Config cfg = chronos_test::test_config(dir.path());
  auto alice = chronos_test::make_engine(cfg, clock, 2, 1001);
  auto bob = chronos_test::make_engine(cfg, clock, 2, 1002);
  auto root = chronos_test::make_engine(cfg, clock, 2, 0);
  const Partition a = alice->create(0, 0.25, 60, "alice", "job-a").partition;
  CHECK(a.uid == 1001);
  CHECK(status_of([&] { bob->release(a.id); }) == Status::kPermissionDenied);
  CHECK(status_of([&] { bob->create(0, 0.25, 60, "bob", "job-a"); }) ==
        Status::kPermissionDenied);
  CHECK(alice->list().partitions.size() == 1);  // refused calls changed nothing
  CHECK(alice->create(0, 0.25, 60, "alice", "job-a").existing);
  CHECK(alice->release(a.id).partition.id == a.id);
  const Partition b = bob->create(0, 0.25, 60, "bob", "").partition;
  CHECK(root->release(b.id).partition.uid == 1002);  // root may release any
}

TEST_CASE("a partition expires exactly at start + duration (manual clock)", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  const Partition p = engine->create(0, 0.5, 60, "alice", "").partition;
  clock.advance_ms(59999);
  const ListOutcome l = engine->list();
  REQUIRE(l.partitions.size() == 1);
  CHECK(l.partitions[0].expires_ms - l.now_ms == 1);
  CHECK(status_of([&] { engine->create(0, 0.6, 60, "alice", ""); }) == Status::kNoCapacity);
  clock.advance_ms(1);
  CHECK(engine->list().partitions.empty());
  CHECK(status_of([&] { engine->release(p.id); }) == Status::kNotFound);
  CHECK(engine->create(0, 0.6, 60, "alice", "").partition.ppm == 600000);
}

TEST_CASE("reap reports what expired, once", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  engine->create(0, 0.2, 1, "a", "");
  engine->create(1, 0.2, 5, "a", "");
  clock.advance_ms(1000);
  const ListOutcome r = engine->reap();
  REQUIRE(r.partitions.size() == 1);
  CHECK(r.partitions[0].device == 0);
  CHECK(engine->reap().partitions.empty());
  CHECK(engine->list().partitions.size() == 1);
}

TEST_CASE("a refused request reports the earliest time it could fit", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  engine->create(0, 0.5, 60, "alice", "");
  try {
    engine->create(0, 0.6, 30, "alice", "");
    FAIL("expected a refusal");
  } catch (const Error &e) {
    CHECK(e.status() == Status::kNoCapacity);
    CHECK(e.earliest_fit_ms() == clock.ms() + 60000);
    CHECK_THAT(e.what(), Catch::Contains("device 0 has 0.5 free, requested 0.6"));
  }
}

TEST_CASE("fair share: an owner alone may take the whole device", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  Config cfg = chronos_test::test_config(dir.path());
  cfg.policy.max_share_ppm = 500000;
  auto engine = chronos_test::make_engine(cfg, clock);
  engine->create(0, 0.6, 60, "alice", "");
  engine->create(0, 0.4, 60, "alice", "");
  CHECK(allocated_ppm([&] {
          State s;
          s.partitions = engine->list().partitions;
          return s;
        }(),
                      0) == kWholePpm);
}

TEST_CASE("fair share: an owner cannot grow past the limit while another holds", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  Config cfg = chronos_test::test_config(dir.path());
  cfg.policy.max_share_ppm = 500000;
  auto engine = chronos_test::make_engine(cfg, clock);
  engine->create(0, 0.1, 30, "bob", "");
  engine->create(0, 0.5, 60, "alice", "");  // exactly at the limit: allowed
  try {
    engine->create(0, 0.1, 60, "alice", "");
    FAIL("expected a fair-share refusal");
  } catch (const Error &e) {
    CHECK(e.status() == Status::kFairShare);
    CHECK_THAT(e.what(), Catch::Contains("fair-share limit of 0.5"));
    CHECK(e.earliest_fit_ms() == clock.ms() + 30000);  // when bob's partition ends
  }
  // bob is under the limit and there is room: he may still grow.
  CHECK(engine->create(0, 0.3, 10, "bob", "").partition.owner == "bob");
  // The limit is per device.
  CHECK(engine->create(1, 0.9, 60, "alice", "").partition.device == 1);
}

TEST_CASE("fair share: a waiting owner caps the holder until the wait lapses", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  Config cfg = chronos_test::test_config(dir.path());
  cfg.policy.max_share_ppm = 500000;
  cfg.policy.waiter_ttl_ms = 10000;
  auto engine = chronos_test::make_engine(cfg, clock);
  engine->create(0, 0.8, 600, "alice", "");
  CHECK(status_of([&] { engine->create(0, 0.3, 60, "bob", ""); }) == Status::kNoCapacity);
  CHECK(engine->stats().state.waiters.size() == 1);
  // bob waits: alice (at 0.8) may not take the remaining 0.2 ...
  CHECK(status_of([&] { engine->create(0, 0.1, 60, "alice", ""); }) == Status::kFairShare);
  // ... until bob's wait lapses without him asking again.
  clock.advance_ms(10000);
  CHECK(engine->stats().state.waiters.empty());
  CHECK(engine->create(0, 0.1, 60, "alice", "").partition.ppm == 100000);
}

TEST_CASE("fair share: an admitted request clears its owner's waiting entry", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  const Partition big = engine->create(0, 0.9, 600, "alice", "").partition;
  CHECK(status_of([&] { engine->create(0, 0.3, 60, "bob", ""); }) == Status::kNoCapacity);
  engine->release(big.id);
  engine->create(0, 0.3, 60, "bob", "");
  CHECK(engine->stats().state.waiters.empty());
}

TEST_CASE("a repeated job id returns the live partition instead of a second one", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  const PartitionOutcome first = engine->create(0, 0.5, 60, "alice", "j-000000000001");
  clock.advance_ms(1000);
  const PartitionOutcome again = engine->create(1, 0.7, 10, "alice", "j-000000000001");
  CHECK(again.existing);
  CHECK(again.partition.id == first.partition.id);
  CHECK(again.partition.device == 0);
  CHECK(engine->list().partitions.size() == 1);
  // Once released (or expired) the job id may get a new partition.
  engine->release(first.partition.id);
  const PartitionOutcome fresh = engine->create(1, 0.7, 10, "alice", "j-000000000001");
  CHECK_FALSE(fresh.existing);
  CHECK(fresh.partition.id != first.partition.id);
}

TEST_CASE("bad create arguments are refused with INVALID_ARGUMENT", "[ledger]") {
  TempDir dir;
  ManualClock clock;
  auto engine = chronos_test::make_engine(chronos_test::test_config(dir.path()), clock);
  struct Case {
    uint32_t device;
    double memory;
    double duration;
    const char *owner;
    const char *job;
    const char *expect;
  };
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {
      {0, -0.5, 60, "a", "", "memory must be a fraction in (0, 1]"},
      {0, 0.0, 60, "a", "", "memory must be a fraction"},
      {0, 1.5, 60, "a", "", "got 1.5"},
      {0, nan, 60, "a", "", "got NaN"},
      {0, 0.5, 0, "a", "", "duration must be a positive"},
      {0, 0.5, -1, "a", "", "duration must be a positive"},
      {0, 0.5, inf, "a", "", "got inf"},
      {0, 0.5, 1e12, "a", "", "duration must be between"},
      {2, 0.5, 60, "a", "", "unknown device 2 (this host has 2 devices: 0..1)"},
      {0, 0.5, 60, "bad owner", "", "owner must be"},
      {0, 0.5, 60, "a", "x y", "job id must be"},
  };
  for (const Case &c : cases) {
    INFO("case: " << c.expect);
    try {
      engine->create(c.device, c.memory, c.duration, c.owner, c.job);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(e.status() == Status::kInvalidArgument);
      CHECK_THAT(e.what(), Catch::Contains(c.expect));
    }
  }
  CHECK(status_of([&] { engine->release("p-12"); }) == Status::kInvalidArgument);
  CHECK(status_of([&] { engine->release("../../etc"); }) == Status::kInvalidArgument);
  CHECK(engine->list().partitions.empty());
}
