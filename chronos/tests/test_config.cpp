// Configuration: defaults without any file, YAML keys, environment overrides, fail-fast errors.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <map>

#include "config.hpp"
#include "helpers.hpp"
#include "status.hpp"

using namespace chronos;
using chronos_test::TempDir;

namespace {

EnvLookup env_of(const std::map<std::string, std::string> &vars) {
  auto copy = std::make_shared<std::map<std::string, std::string>>(vars);
  return [copy](const char *name) -> const char * {
    auto it = copy->find(name);
    return it == copy->end() ? nullptr : it->second.c_str();
  };
}

std::string config_error(const std::string &dir, const std::string &path,
                         const std::map<std::string, std::string> &vars) {
  try {
    load_config(dir, path, env_of(vars));
  } catch (const Error &e) {
    CHECK(e.status() == Status::kConfig);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("defaults work without a config file", "[config]") {
  const Config cfg = load_config("", "", env_of({{"XDG_RUNTIME_DIR", "/run/user/1000"}}));
  CHECK(cfg.state_dir == "/run/user/1000/chronos");
  CHECK(cfg.policy.max_share_ppm == 750000);
  CHECK(cfg.policy.waiter_ttl_ms == 30000);
  CHECK(cfg.lock_timeout_ms == 10000);
  CHECK(cfg.device_types == DeviceTypes::kAuto);
  CHECK(cfg.config_path.empty());
}

TEST_CASE("the default state directory without XDG_RUNTIME_DIR depends on the user", "[config]") {
  const std::string dir = default_state_dir(env_of({}));
  if (::geteuid() == 0) {
    CHECK(dir == "/run/chronos");
  } else {
    CHECK(dir == "/tmp/chronos-" + std::to_string(::getuid()));
  }
}

TEST_CASE("explicit arguments beat the environment, which beats the file", "[config]") {
  Config cfg = load_config("", "", env_of({{"CHRONOS_STATE_DIR", "/from/env"}}));
  CHECK(cfg.state_dir == "/from/env");
  cfg = load_config("/from/arg", "", env_of({{"CHRONOS_STATE_DIR", "/from/env"}}));
  CHECK(cfg.state_dir == "/from/arg");
  TempDir dir;
  const std::string file = dir.file("c.yaml");
  chronos_test::write_file(file, "state_dir: /from/file\nmax_share_per_owner: 0.4\n");
#if CHRONOS_HAVE_YAML
  cfg = load_config("", file, env_of({}));
  CHECK(cfg.state_dir == "/from/file");
  CHECK(cfg.policy.max_share_ppm == 400000);
  CHECK(cfg.config_path == file);
  cfg = load_config("", file, env_of({{"CHRONOS_STATE_DIR", "/from/env"},
                                      {"CHRONOS_MAX_SHARE", "0.6"}}));
  CHECK(cfg.state_dir == "/from/env");
  CHECK(cfg.policy.max_share_ppm == 600000);
  cfg = load_config("/from/arg", file, env_of({{"CHRONOS_STATE_DIR", "/from/env"}}));
  CHECK(cfg.state_dir == "/from/arg");
#else
  // Built without yaml-cpp: a config file is refused rather than silently ignored.
  CHECK_THAT(config_error("", file, {}), Catch::Contains("without yaml-cpp"));
#endif
}

TEST_CASE("every YAML key is read and validated", "[config]") {
#if CHRONOS_HAVE_YAML
  TempDir dir;
  const std::string file = dir.file("c.yaml");
  chronos_test::write_file(file,
                           "# Chronos\n"
                           "max_share_per_owner: 0.5\n"
                           "waiter_ttl_s: 12.5\n"
                           "lock_timeout_ms: 250\n"
                           "max_duration_s: 3600\n"
                           "device_types: cpu\n");
  const Config cfg = load_config("/x", file, env_of({}));
  CHECK(cfg.policy.max_share_ppm == 500000);
  CHECK(cfg.policy.waiter_ttl_ms == 12500);
  CHECK(cfg.lock_timeout_ms == 250);
  CHECK(cfg.max_duration_ms == 3600000);
  CHECK(cfg.device_types == DeviceTypes::kCpu);

  const std::map<std::string, std::string> bad = {
      {"max_share_per_owner: 1.5\n", "max_share_per_owner: must be a fraction in (0, 1]"},
      {"max_share_per_owner: lots\n", "expected a number, got 'lots'"},
      {"lock_timeout_ms: 0\n", "lock_timeout_ms: out of range"},
      {"device_types: tpu\n", "expected auto, gpu, cpu or all, got 'tpu'"},
      {"colour: blue\n", "colour: unknown key"},
      {"max_share_per_owner: [1, 2]\n", "must be a scalar"},
      {"- a\n- b\n", "top level must be a mapping"},
      {"a: [unclosed\n", "cannot parse YAML"},
  };
  for (const auto &c : bad) {
    INFO(c.first);
    chronos_test::write_file(file, c.first);
    CHECK_THAT(config_error("/x", file, {}), Catch::Contains(c.second) && Catch::Contains(file));
  }
  chronos_test::write_file(file, "");
  CHECK(load_config("/x", file, env_of({})).policy.max_share_ppm == 750000);
#else
  WARN("built without yaml-cpp: checking that a config file is refused clearly");
  TempDir dir;
  chronos_test::write_file(dir.file("c.yaml"), "max_share_per_owner: 0.5\n");
  CHECK_THAT(config_error("/x", dir.file("c.yaml"), {}), Catch::Contains("without yaml-cpp"));
#endif
}

TEST_CASE("a named config file that does not exist is an error", "[config]") {
  CHECK_THAT(config_error("/x", "/nonexistent/chronos.yaml", {}),
             Catch::Contains("/nonexistent/chronos.yaml: config file does not exist"));
  CHECK_THAT(config_error("/x", "", {{"CHRONOS_CONFIG", "/nonexistent/env.yaml"}}),
             Catch::Contains("/nonexistent/env.yaml"));
}

TEST_CASE("bad environment overrides name the variable", "[config]") {
  CHECK_THAT(config_error("/x", "", {{"CHRONOS_MAX_SHARE", "0"}}),
             Catch::Contains("CHRONOS_MAX_SHARE"));
  CHECK_THAT(config_error("/x", "", {{"CHRONOS_DEVICE_TYPES", "fpga"}}),
             Catch::Contains("CHRONOS_DEVICE_TYPES"));
  CHECK_THAT(config_error("/x", "", {{"CHRONOS_LOCK_TIMEOUT_MS", "-5"}}),
             Catch::Contains("CHRONOS_LOCK_TIMEOUT_MS"));
}
