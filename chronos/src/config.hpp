// Configuration: built-in defaults, an optional YAML file (yaml-cpp), then environment
// overrides, then explicit arguments. Invalid values fail fast with the key and the reason.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ledger.hpp"

namespace chronos {

/** Which OpenCL devices Chronos manages. */
enum class DeviceTypes { kAuto, kGpu, kCpu, kAll };

/** Validated settings. */
struct Config {
  std::string state_dir;
  Policy policy;
  int64_t lock_timeout_ms = 10000;
  DeviceTypes device_types = DeviceTypes::kAuto;
  int64_t max_duration_ms = 365LL * 24 * 3600 * 1000;
  std::string config_path;  ///< the file that was read, "" when none
};

/** Reads an environment variable; returns nullptr when unset. Injected for tests. */
using EnvLookup = std::function<const char *(const char *)>;

/** The process environment. */
const char *process_env(const char *name);

/**
 * Resolves the configuration. state_dir/config_path may be "" (use env and defaults).
 * Throws Error(kConfig) naming the key on an invalid value or an unreadable file.
 */
Config load_config(const std::string &state_dir, const std::string &config_path,
                   const EnvLookup &env = process_env);

/** Default state directory when nothing names one (see docs/chronos.md). */
std::string default_state_dir(const EnvLookup &env);

/** Parses "auto|gpu|cpu|all"; throws Error(kConfig). */
DeviceTypes parse_device_types(const std::string &value, const std::string &key);

/** Name of a DeviceTypes value. */
const char *device_types_name(DeviceTypes t);

}  // namespace chronos
