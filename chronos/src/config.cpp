#include "config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "status.hpp"

#if CHRONOS_HAVE_YAML
#include <yaml-cpp/yaml.h>
#endif

namespace chronos {
namespace {

const char kDefaultConfigPath[] = "/etc/chronos/config.yaml";

bool file_exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Error config_error(const std::string &where, const std::string &what) {
  return Error(Status::kConfig, "invalid configuration: " + where + ": " + what);
}

double parse_number(const std::string &text, const std::string &key) {
  errno = 0;
  char *end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || end == nullptr || *end != '\0' || !std::isfinite(v)) {
    throw config_error(key, "expected a number, got '" + text + "'");
  }
  return v;
}

uint32_t share_ppm(double v, const std::string &key) {
  const uint32_t ppm = fraction_to_ppm(v);
  if (ppm == 0) throw config_error(key, "must be a fraction in (0, 1], got " + std::to_string(v));
  return ppm;
}

int64_t positive_ms(double v, double scale, const std::string &key, bool allow_zero) {
  if (v < 0 || (!allow_zero && v == 0) || v * scale > 9.0e15) {
    throw config_error(key, "out of range: " + std::to_string(v));
  }
  return static_cast<int64_t>(std::llround(v * scale));
}

#if CHRONOS_HAVE_YAML
void apply_yaml(Config &cfg, const std::string &path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception &e) {
    throw config_error(path, std::string("cannot parse YAML: ") + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw config_error(path, "top level must be a mapping");
  for (const auto &kv : root) {
    const std::string key = kv.first.as<std::string>();
    const std::string where = path + ": " + key;
    if (!kv.second.IsScalar()) throw config_error(where, "must be a scalar");
    const std::string value = kv.second.as<std::string>();
    if (key == "state_dir") {
      if (value.empty()) throw config_error(where, "must not be empty");
      cfg.state_dir = value;
    } else if (key == "max_share_per_owner") {
      cfg.policy.max_share_ppm = share_ppm(parse_number(value, where), where);
    } else if (key == "waiter_ttl_s") {
      cfg.policy.waiter_ttl_ms = positive_ms(parse_number(value, where), 1000, where, true);
    } else if (key == "lock_timeout_ms") {
      cfg.lock_timeout_ms = positive_ms(parse_number(value, where), 1, where, false);
    } else if (key == "max_duration_s") {
      cfg.max_duration_ms = positive_ms(parse_number(value, where), 1000, where, false);
    } else if (key == "device_types") {
      cfg.device_types = parse_device_types(value, where);
    } else {
      throw config_error(where, "unknown key (known: state_dir, max_share_per_owner, "
                                "waiter_ttl_s, lock_timeout_ms, max_duration_s, device_types)");
    }
  }
}
#endif

}  // namespace

const char *process_env(const char *name) { return std::getenv(name); }

DeviceTypes parse_device_types(const std::string &value, const std::string &key) {
  if (value == "auto") return DeviceTypes::kAuto;
  if (value == "gpu") return DeviceTypes::kGpu;
  if (value == "cpu") return DeviceTypes::kCpu;
  if (value == "all") return DeviceTypes::kAll;
  throw config_error(key, "expected auto, gpu, cpu or all, got '" + value + "'");
}

const char *device_types_name(DeviceTypes t) {
  switch (t) {
    case DeviceTypes::kAuto: return "auto";
    case DeviceTypes::kGpu: return "gpu";
    case DeviceTypes::kCpu: return "cpu";
    case DeviceTypes::kAll: return "all";
  }
  return "auto";
}

std::string default_state_dir(const EnvLookup &env) {
  // Partitions describe running GPU work, which never survives a reboot, so a runtime
  // directory (tmpfs on systemd hosts) is the right home: stale state vanishes with the boot.
  const char *xdg = env("XDG_RUNTIME_DIR");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/chronos";
  if (::geteuid() == 0) return "/run/chronos";
  return "/tmp/chronos-" + std::to_string(::getuid());
}

Config load_config(const std::string &state_dir, const std::string &config_path,
                   const EnvLookup &env) {
  Config cfg;
  std::string path = config_path;
  if (path.empty()) {
    // A named file must exist; the system-wide default is read only when present.
    const char *from_env = env("CHRONOS_CONFIG");
    if (from_env != nullptr && *from_env != '\0') {
      path = from_env;
    } else if (file_exists(kDefaultConfigPath)) {
      path = kDefaultConfigPath;
    }
  }
  if (!path.empty()) {
    if (!file_exists(path)) throw config_error(path, "config file does not exist");
#if CHRONOS_HAVE_YAML
    apply_yaml(cfg, path);
    cfg.config_path = path;
#else
    throw config_error(path, "this Chronos was built without yaml-cpp, so it cannot read a "
                             "config file; remove it or rebuild with libyaml-cpp-dev");
#endif
  }
  if (const char *v = env("CHRONOS_MAX_SHARE")) {
    cfg.policy.max_share_ppm = share_ppm(parse_number(v, "CHRONOS_MAX_SHARE"), "CHRONOS_MAX_SHARE");
  }
  if (const char *v = env("CHRONOS_DEVICE_TYPES")) {
    cfg.device_types = parse_device_types(v, "CHRONOS_DEVICE_TYPES");
  }
  if (const char *v = env("CHRONOS_LOCK_TIMEOUT_MS")) {
    cfg.lock_timeout_ms =
        positive_ms(parse_number(v, "CHRONOS_LOCK_TIMEOUT_MS"), 1, "CHRONOS_LOCK_TIMEOUT_MS", false);
  }
  const char *env_dir = env("CHRONOS_STATE_DIR");
  if (!state_dir.empty()) {
    cfg.state_dir = state_dir;
  } else if (env_dir != nullptr && *env_dir != '\0') {
    cfg.state_dir = env_dir;
  } else if (cfg.state_dir.empty()) {
    cfg.state_dir = default_state_dir(env);
  }
  return cfg;
}

}  // namespace chronos
