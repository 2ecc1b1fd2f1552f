// The state file format: round trips, and damaged input (truncated, edited, garbage) is
// always rejected with a reason, never a crash; salvage keeps only records that are safe.
#include <catch2/catch.hpp>

#include <cstdio>
#include <random>

#include "ledger.hpp"
#include "state_codec.hpp"

using namespace chronos;

namespace {

State sample_state() {
  State s;
  for (int i = 0; i < 3; ++i) {
    Partition p;
    p.id = "p-00000000000" + std::to_string(i);
    p.device = static_cast<uint32_t>(i % 2);
    p.ppm = 250000;
    p.start_ms = 1700000000000 + i;
    p.expires_ms = p.start_ms + 60000;
    p.owner = i == 1 ? "bob" : "alice";
    p.job_id = i == 2 ? "j-abc:1" : "";
    p.memory_bytes = 4ull << 30;
    p.uid = i == 0 ? -1 : 1000 + i;
    s.partitions.push_back(p);
  }
  s.waiters.push_back(Waiter{"carol", 0, 700000, 1700000030000});
  return s;
}

std::string with_valid_trailer(const std::string &body, size_t count) {
  char t[64];
  std::snprintf(t, sizeof t, "end %zu %08x\n", count, crc32(body.data(), body.size()));
  return body + t;
}

}  // namespace

TEST_CASE("state round-trips through the file format", "[codec]") {
  const State s = sample_state();
  const std::string text = serialize_state(s);
  const ParseResult r = parse_state(text);
  REQUIRE(r.ok);
  REQUIRE(r.state.partitions.size() == 3);
  CHECK(r.state.partitions[2].job_id == "j-abc:1");
  CHECK(r.state.partitions[1].owner == "bob");
  CHECK(r.state.partitions[0].memory_bytes == (4ull << 30));
  CHECK(r.state.partitions[0].uid == -1);
  CHECK(r.state.partitions[2].uid == 1002);
  REQUIRE(r.state.waiters.size() == 1);
  CHECK(r.state.waiters[0].until_ms == 1700000030000);
  CHECK(serialize_state(r.state) == text);
  CHECK(parse_state(serialize_state(State{})).ok);
}

TEST_CASE("a state file written before uids were recorded still loads, creators unknown", "[codec]") {
  // The 9-field partition record of earlier versions.
  const std::string body = std::string("chronos-state 1") +
                           "\nP p-000000000001 0 250000 1700000000000 1700000060000 alice - 42\n";
  const ParseResult r = parse_state(with_valid_trailer(body, 1));
  REQUIRE(r.ok);
  REQUIRE(r.state.partitions.size() == 1);
  CHECK(r.state.partitions[0].uid == -1);
  CHECK(r.state.partitions[0].memory_bytes == 42);
}

TEST_CASE("crc32 matches the standard check value", "[codec]") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
}

TEST_CASE("every truncation of a state file is detected", "[codec]") {
  const std::string text = serialize_state(sample_state());
  for (size_t len = 0; len < text.size(); ++len) {
    INFO("length " << len);
    const ParseResult r = parse_state(text.substr(0, len));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("a changed byte anywhere is detected", "[codec]") {
  const std::string text = serialize_state(sample_state());
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] = bad[i] == '7' ? '8' : '7';
    INFO("offset " << i);
    CHECK_FALSE(parse_state(bad).ok);
  }
}

TEST_CASE("damaged files are refused with a precise reason", "[codec]") {
  CHECK_THAT(parse_state("").error, Catch::Contains("empty"));
  CHECK_THAT(parse_state("hello\n").error, Catch::Contains("line 1: expected header"));
  CHECK_THAT(parse_state(std::string("chronos-state 1\n\0\n", 18)).error, Catch::Contains("NUL"));
  CHECK_THAT(parse_state("chronos-state 1\nP p-000000000001 0 5").error,
             Catch::Contains("truncated"));
  // Well-formed trailers over bad records: the record problem is named with its line.
  CHECK_THAT(parse_state(with_valid_trailer("chronos-state 1\nX 1 2\n", 1)).error,
             Catch::Contains("line 2: unknown record type 'X'"));
  CHECK_THAT(parse_state(with_valid_trailer(
                             "chronos-state 1\nP p-000000000001 0 abc 1 2 alice - 0\n", 1))
                 .error,
             Catch::Contains("bad fraction 'abc'"));
  CHECK_THAT(parse_state(with_valid_trailer(
                             "chronos-state 1\nP p-000000000001 0 1000001 1 2 alice - 0\n", 1))
                 .error,
             Catch::Contains("bad fraction"));
  CHECK_THAT(parse_state(with_valid_trailer(
                             "chronos-state 1\nP p-000000000001 0 5 9 2 alice - 0\n", 1))
                 .error,
             Catch::Contains("bad expiry"));
  CHECK_THAT(parse_state(with_valid_trailer(
                             "chronos-state 1\nP p-000000000001 0 5 1 2 alice - 0\n", 7))
                 .error,
             Catch::Contains("trailer counts 7 records, file has 1"));
  // A file whose records are fine one by one but over-allocate a device is refused too.
  CHECK_THAT(parse_state(with_valid_trailer("chronos-state 1\n"
                                            "P p-000000000001 0 600000 1 2 a - 0\n"
                                            "P p-000000000002 0 600000 1 2 b - 0\n",
                                            2))
                 .error,
             Catch::Contains("invariant"));
}

TEST_CASE("random garbage never crashes the parser", "[codec]") {
  std::mt19937 rng(42);
  const std::string valid = serialize_state(sample_state());
  for (int round = 0; round < 2000; ++round) {
    std::string junk = valid;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      junk[rng() % junk.size()] = static_cast<char>(rng() % 256);
    }
    if (round % 3 == 0) junk.resize(rng() % junk.size());
    const ParseResult r = parse_state(junk);
    if (r.ok) {
      CHECK(check_invariants(r.state).empty());
    } else {
      CHECK_FALSE(r.error.empty());
    }
    const SalvageResult s = salvage_state(junk);
    CHECK(check_invariants(s.state).empty());
  }
}

TEST_CASE("salvage keeps well-formed records and never over-allocates", "[codec]") {
  std::string text = serialize_state(sample_state());
  text.resize(text.size() - 30);  // cut into the waiter line and drop the trailer
  const SalvageResult s = salvage_state(text);
  CHECK(s.state.partitions.size() == 3);
  CHECK(s.dropped >= 1);
  const SalvageResult over = salvage_state(
      "chronos-state 1\nP p-000000000001 0 600000 1 2 a - 0\nP p-000000000002 0 600000 1 2 b - "
      "0\ngarbage\n");
  CHECK(over.kept == 1);
  CHECK(over.dropped == 2);
}
