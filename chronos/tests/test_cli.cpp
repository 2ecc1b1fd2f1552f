// chronos_cli as users run it: the built binary in a child process, real OpenCL, a temp state
// directory. Checks output, exit codes and the one-line errors.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "helpers.hpp"

using chronos_test::Json;
using chronos_test::parse_json;
using chronos_test::run_cli;
using chronos_test::TempDir;

namespace {

size_t count_lines(const std::string &s) {
  size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("create 0.5, refuse 0.6, release, then 0.6 fits", "[cli]") {
  TempDir dir;
  auto r = run_cli(dir.path(), {"create", "0", "0.5", "60", "--json", "--owner", "alice"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Json p = parse_json(r.out);
  const std::string id = p["id"].s;
  CHECK(p["memory"].n == 0.5);

  r = run_cli(dir.path(), {"list", "--json"});
  REQUIRE(r.exit_code == 0);
  const Json l = parse_json(r.out);
  REQUIRE(l["partitions"].size() == 1);
  CHECK(l["partitions"][0]["id"].s == id);
  CHECK(l["partitions"][0]["remaining_s"].n > 55);
  CHECK(l["partitions"][0]["remaining_s"].n <= 60);

  r = run_cli(dir.path(), {"create", "0", "0.6", "60"});
  CHECK(r.exit_code == 4);
  CHECK(count_lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::StartsWith("chronos_cli: device 0 has 0.5 free, requested 0.6") &&
                        Catch::Contains("earliest fit in"));
  CHECK(r.out.empty());

  r = run_cli(dir.path(), {"release", id});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("released " + id));
  r = run_cli(dir.path(), {"list", "--json"});
  CHECK(parse_json(r.out)["partitions"].size() == 0);
  r = run_cli(dir.path(), {"create", "0", "0.6", "60", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.out)["memory"].n == 0.6);
}

TEST_CASE("after the duration passes list no longer shows it and 0.6 fits", "[cli]") {
  TempDir dir;
  // A partition created 61 s ago for 60 s (written with a clock in the past; no sleeping).
  chronos_test::ManualClock past;
  *past.now = chronos::system_now_ms() - 61000;
  chronos_test::make_engine(chronos_test::test_config(dir.path()), past, 1)
      ->create(0, 0.5, 60, "alice", "");
  auto r = run_cli(dir.path(), {"list", "--json"});
  REQUIRE(r.exit_code == 0);
  CHECK(parse_json(r.out)["partitions"].size() == 0);
  r = run_cli(dir.path(), {"create", "0", "0.6", "60"});
  CHECK(r.exit_code == 0);
}

TEST_CASE("human output shows the remaining time", "[cli]") {
  TempDir dir;
  auto r = run_cli(dir.path(), {"create", "0", "0.25", "3700", "--owner", "bob", "--job", "j-7"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("created p-") && Catch::Contains("owner bob, job j-7"));
  r = run_cli(dir.path(), {"list"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("REMAINING") && Catch::Contains("1h01m") &&
                        Catch::Contains("bob") && Catch::Contains("j-7"));
  r = run_cli(dir.path(), {"stats"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ALLOCATED") && Catch::Contains("0.25"));
  r = run_cli(dir.path(), {"stats", "--json"});
  REQUIRE(r.exit_code == 0);
  const Json s = parse_json(r.out);
  CHECK(s["devices"].size() >= 1);
  CHECK(s["devices"][0]["allocated"].n == 0.25);
  CHECK(s["state_dir"].s == dir.path());
}

TEST_CASE("bad arguments give one clear line and the documented exit code", "[cli]") {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    int code;
    const char *message;
  };
  const std::vector<Case> cases = {
      {{"create", "0", "-0.5", "60"}, 2, "memory must be a fraction in (0, 1]"},
      {{"create", "0", "1.5", "60"}, 2, "got 1.5"},
      {{"create", "0", "0", "60"}, 2, "memory must be a fraction"},
      {{"create", "0", "abc", "60"}, 2, "memory must be a number in (0, 1], got 'abc'"},
      {{"create", "0", "0.5", "ten"}, 2, "duration must be a number of seconds > 0, got 'ten'"},
      {{"create", "0", "0.5", "-3"}, 2, "duration must be a positive number"},
      {{"create", "x", "0.5", "60"}, 2, "device must be a non-negative integer index, got 'x'"},
      {{"create", "-1", "0.5", "60"}, 2, "device must be a non-negative integer index"},
      {{"create", "99", "0.5", "60"}, 2, "unknown device 99"},
      {{"create", "0", "0.5"}, 2, "'create' takes <device> <memory> <duration_s>"},
      {{"create", "0", "0.5", "60", "--owner", "a b"}, 2, "owner must be"},
      {{"release", "p-ffffffffffff"}, 3, "no live partition p-ffffffffffff"},
      {{"release", "banana"}, 2, "'banana' is not a partition id"},
      {{"release"}, 2, "'release' takes <partition_id>"},
      {{"list", "extra"}, 2, "'list' takes no arguments"},
      {{"frobnicate"}, 2, "unknown command 'frobnicate'"},
      {{"list", "--verbose"}, 2, "unknown option '--verbose'"},
      {{"list", "--owner", "x"}, 2, "--owner and --job only apply to 'create'"},
      {{}, 2, "usage: chronos_cli"},
  };
  for (const Case &c : cases) {
    INFO("args: " << (c.args.empty() ? std::string("(none)") : c.args[0]) << " ... expect "
                  << c.message);
    const auto r = run_cli(dir.path(), c.args);
    CHECK(r.exit_code == c.code);
    CHECK_THAT(r.err, Catch::Contains(c.message));
    if (!c.args.empty()) CHECK(count_lines(r.err) == 1);
    CHECK(r.out.empty());
  }
}

TEST_CASE("with --json, errors also come as a JSON object on stdout", "[cli]") {
  TempDir dir;
  const auto r = run_cli(dir.path(), {"release", "p-ffffffffffff", "--json"});
  CHECK(r.exit_code == 3);
  const Json e = parse_json(r.out)["error"];
  CHECK(e["code"].s == "NOT_FOUND");
  CHECK(e["status"].n == 3);
}

TEST_CASE("a corrupt state file gives exit 6 until repaired", "[cli]") {
  TempDir dir;
  REQUIRE(run_cli(dir.path(), {"create", "0", "0.5", "60"}).exit_code == 0);
  const std::string text = chronos_test::read_file(dir.file("state.v1"));
  chronos_test::write_file(dir.file("state.v1"), text.substr(0, text.size() / 2));
  auto r = run_cli(dir.path(), {"list"});
  CHECK(r.exit_code == 6);
  CHECK(count_lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("is corrupt") && Catch::Contains("chronos_cli repair"));
  r = run_cli(dir.path(), {"repair", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.out)["repaired"].b);
  CHECK(run_cli(dir.path(), {"list"}).exit_code == 0);
}

TEST_CASE("probe and version work from the command line", "[cli]") {
  TempDir dir;
  auto r = run_cli(dir.path(), {"probe", "0", "--json"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.out)["ok"].b);
  r = run_cli(dir.path(), {"version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == std::string(CHRONOS_VERSION_STRING) + "\n");
}

// Real identities: root makes a partition, then the test drops to uid/gid 65534 (nobody) with
// setpriv for the calls that must be refused or allowed. Needs root to switch uid.
TEST_CASE("another uid cannot release a partition; its own it can, and root any", "[cli]") {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
    WARN("needs root and /usr/bin/setpriv to switch uid: not checked here");
    return;
  }
  TempDir dir;
  TempDir cache;  // PoCL's kernel cache for the unprivileged caller
  auto r = run_cli(dir.path(), {"create", "0", "0.25", "60", "--json", "--owner", "root-job"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string mine = parse_json(r.out)["id"].s;
  CHECK(parse_json(r.out)["uid"].n == 0);
  // Let the other uid reach the shared state file at all (the check under test is Chronos's).
  for (const std::string &p : {dir.path(), cache.path()}) REQUIRE(::chmod(p.c_str(), 0777) == 0);
  for (const char *f : {"/state.v1", "/chronos.lock"}) ::chmod((dir.path() + f).c_str(), 0666);
  const auto as_nobody = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                  "--clear-groups", CHRONOS_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return chronos_test::run_process(argv, {{"CHRONOS_STATE_DIR", dir.path()},
                                            {"CHRONOS_CONFIG", ""},
                                            {"POCL_CACHE_DIR", cache.path()},
                                            {"HOME", cache.path()}});
  };

  r = as_nobody({"release", mine});
  INFO(r.err);
  CHECK(r.exit_code == 13);
  CHECK_THAT(r.err, Catch::Contains("was made by uid 0; uid 65534 may release only its own"));
  r = run_cli(dir.path(), {"list", "--json"});
  CHECK(parse_json(r.out)["partitions"].size() == 1);  // the refusal changed nothing

  r = as_nobody({"create", "0", "0.25", "60", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string theirs = parse_json(r.out)["id"].s;
  CHECK(parse_json(r.out)["uid"].n == 65534);
  CHECK(as_nobody({"release", theirs}).exit_code == 0);
  r = as_nobody({"create", "0", "0.25", "60", "--json"});
  REQUIRE(r.exit_code == 0);
  CHECK(run_cli(dir.path(), {"release", parse_json(r.out)["id"].s}).exit_code == 0);  // root
}
