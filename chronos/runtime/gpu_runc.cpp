#include "gpu_runc.hpp"

#include <algorithm>
#include <set>
#include <tuple>

#include "ids.hpp"

namespace chronos {
namespace runtime {
namespace {

constexpr const char *kGrantsFlag = "cumulus-grants";
constexpr const char *kRuntimeFlag = "cumulus-runc";
constexpr const char *kJobIdVar = "CUMULUS_JOB_ID";
constexpr uint32_t kDeviceFileMode = 0666;

// runc 1.x global flags that take a value; any other flag before the subcommand is a switch.
const std::set<std::string> &global_value_flags() {
  static const std::set<std::string> flags{"log", "log-format", "root", "criu", "rootless"};
  return flags;
}

// Flags of `runc create` / `runc run` that take a value (bundle included).
const std::set<std::string> &create_value_flags() {
  static const std::set<std::string> flags{"bundle",       "b",           "console-socket",
                                           "pid-file",     "preserve-fds", "pidfd-socket"};
  return flags;
}

/** A command-line flag split Go-style: one or two dashes, the name, then an optional "=value". */
struct Flag {
  std::string name;
  bool has_value = false;
  std::string value;
};

bool split_flag(const std::string &arg, Flag &out) {
  if (arg.size() < 2 || arg[0] != '-' || arg == "--") return false;
  const size_t start = arg[1] == '-' ? 2 : 1;
  const size_t eq = arg.find('=', start);
  out.name = arg.substr(start, eq == std::string::npos ? std::string::npos : eq - start);
  out.has_value = eq != std::string::npos;
  out.value = out.has_value ? arg.substr(eq + 1) : "";
  return !out.name.empty();
}

// The value of a flag that takes one: after '=' or in the next argument (consumed).
std::string flag_value(const Flag &flag, const std::vector<std::string> &args, size_t &i) {
  if (flag.has_value) return flag.value;
  if (i + 1 < args.size()) return args[++i];
  return "";
}

std::string in_quotes(const std::string &s) { return "'" + s + "'"; }

std::string join(const std::vector<std::string> &items, const char *sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

bool starts_with(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// ---- grant parsing ----

const Json &member(const Json &obj, const char *key, const std::string &where) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw Refusal(where + "." + key + ": missing");
  return *it;
}

std::string string_member(const Json &obj, const char *key, const std::string &where) {
  const Json &v = member(obj, key, where);
  if (!v.is_string()) throw Refusal(where + "." + key + ": not a string, got " + v.dump());
  return v.get<std::string>();
}

bool bool_member(const Json &obj, const char *key, bool fallback, const std::string &where) {
  const auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_boolean()) {
    throw Refusal(where + "." + key + ": not a boolean, got " + it->dump());
  }
  return it->get<bool>();
}

// An optional array member; null stands for absent.
const Json *array_member(const Json &obj, const char *key, const std::string &where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  if (!it->is_array()) throw Refusal(where + "." + key + ": not an array, got " + it->dump());
  return &*it;
}

const Json *object_member(const Json &obj, const char *key, const std::string &where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  if (!it->is_object()) throw Refusal(where + "." + key + ": not an object, got " + it->dump());
  return &*it;
}

// Paths reach runc as mount sources/destinations and device nodes: absolute, no NUL, no "..".
std::string absolute_path(const Json &obj, const char *key, const std::string &where) {
  const std::string p = string_member(obj, key, where);
  const std::vector<std::string> parts = split(p, '/');
  bool dotdot = false;
  for (const std::string &part : parts) dotdot = dotdot || part == "..";
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos || dotdot) {
    throw Refusal(where + "." + key + ": not an absolute path without '..', got " + in_quotes(p));
  }
  return p;
}

void check_env_name(const std::string &name, const std::string &where) {
  if (name.empty() || name.find('=') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Refusal(where + ": not an environment variable name, got " + in_quotes(name));
  }
}

// ---- config.json helpers ----

// The config's child `key` as an object/array, created when absent.
Json &child(Json &parent, const char *key, Json::value_t type, const std::string &where) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) {
    parent[key] = Json(type);
    return parent[key];
  }
  if (it->type() != type) {
    throw Refusal("config.json: " + where + ": not an " +
                  (type == Json::value_t::array ? "array" : "object") + ", got " +
                  it->type_name());
  }
  return *it;
}

// process.env as a list of strings, or nullptr when the config has none or another shape.
const Json *env_of(const Json &config) {
  if (!config.is_object()) return nullptr;
  const auto process = config.find("process");
  if (process == config.end() || !process->is_object()) return nullptr;
  const auto env = process->find("env");
  if (env == process->end() || !env->is_array()) return nullptr;
  for (const Json &e : *env) {
    if (!e.is_string()) return nullptr;
  }
  return &*env;
}

bool env_lookup(const Json &env, const std::string &name, std::string &value) {
  bool found = false;
  const std::string prefix = name + "=";
  for (const Json &e : env) {
    const std::string &s = e.get_ref<const std::string &>();
    if (starts_with(s, prefix)) {
      value = s.substr(prefix.size());
      found = true;
    }
  }
  return found;
}

// Inserting a key into an ordered_json object may move its other members, so the helpers
// below look their path up afresh instead of keeping references across insertions.

// process.env of `config`, created when absent; every entry must be a string.
Json &env_array(Json &config) {
  Json &process = child(config, "process", Json::value_t::object, "process");
  Json &env = child(process, "env", Json::value_t::array, "process.env");
  for (const Json &e : env) {
    if (!e.is_string()) throw Refusal("config.json: process.env: not a string, got " + e.dump());
  }
  return env;
}

/** Replaces every `name=` entry by one `name=value` where the first stood, else appends it. */
void set_env(Json &config, const std::string &name, const std::string &value) {
  Json &env = env_array(config);
  const std::string prefix = name + "=";
  Json out = Json::array();
  bool placed = false;
  for (const Json &e : env) {
    const std::string &s = e.get_ref<const std::string &>();
    if (!starts_with(s, prefix)) {
      out.push_back(e);
    } else if (!placed) {
      out.push_back(prefix + value);
      placed = true;
    }
  }
  if (!placed) out.push_back(prefix + value);
  env = std::move(out);
}

// Device nodes (linux.devices) and the cgroup rules that let the job open them.
void add_devices(Json &config, const std::vector<Grant> &grants, const StatFn &stat_fn) {
  bool any = false;
  for (const Grant &g : grants) any = any || !g.devices.empty();
  if (!any) return;
  Json &linux_json = child(config, "linux", Json::value_t::object, "linux");
  child(linux_json, "devices", Json::value_t::array, "linux.devices");
  Json &resources_init = child(linux_json, "resources", Json::value_t::object, "linux.resources");
  child(resources_init, "devices", Json::value_t::array, "linux.resources.devices");
  // No key is inserted below, so these references stay valid.
  Json &devices = linux_json["devices"];
  Json &rules = linux_json["resources"]["devices"];
  std::set<std::string> paths;
  for (const Json &d : devices) {
    if (d.is_object() && d.contains("path") && d["path"].is_string()) {
      paths.insert(d["path"].get<std::string>());
    }
  }
  std::set<std::tuple<char, uint32_t, uint32_t>> allowed;
  for (const Grant &g : grants) {
    for (const GrantDevice &dev : g.devices) {
      const DeviceNode node = stat_fn(dev.host_path);
      const std::string type(1, node.type);
      // A node the config has already (docker --device) is not created twice: runc would fail.
      if (paths.insert(dev.path).second) {
        Json entry = Json::object();
        entry["path"] = dev.path;
        entry["type"] = type;
        entry["major"] = node.major;
        entry["minor"] = node.minor;
        entry["fileMode"] = kDeviceFileMode;
        entry["uid"] = 0;
        entry["gid"] = 0;
        devices.push_back(std::move(entry));
      }
      if (allowed.insert(std::make_tuple(node.type, node.major, node.minor)).second) {
        Json rule = Json::object();
        rule["allow"] = true;
        rule["type"] = type;
        rule["major"] = node.major;
        rule["minor"] = node.minor;
        rule["access"] = "rwm";
        rules.push_back(std::move(rule));
      }
    }
  }
}

// Bind mounts of host directories, read-only unless the grant marks them writable.
void add_mounts(Json &config, const std::vector<Grant> &grants) {
  std::set<std::string> destinations;
  for (const Grant &g : grants) {
    for (const GrantMount &m : g.mounts) {
      if (!destinations.insert(m.destination).second) continue;
      Json entry = Json::object();
      entry["destination"] = m.destination;
      entry["type"] = "bind";
      entry["source"] = m.source;
      entry["options"] = m.writable ? Json::array({"rbind", "nosuid"})
                                    : Json::array({"rbind", "ro", "nosuid"});
      child(config, "mounts", Json::value_t::array, "mounts").push_back(std::move(entry));
    }
  }
}

// Every grant's pathEnv directories once, in grant order, in front of the variable's value.
void prepend_paths(Json &config, const std::vector<Grant> &grants) {
  std::vector<std::pair<std::string, std::vector<std::string>>> merged;
  for (const Grant &g : grants) {
    for (const auto &kv : g.path_env) {
      auto at = std::find_if(merged.begin(), merged.end(),
                             [&](const std::pair<std::string, std::vector<std::string>> &m) {
                               return m.first == kv.first;
                             });
      if (at == merged.end()) {
        at = merged.emplace(merged.end(), kv.first, std::vector<std::string>());
      }
      for (const std::string &dir : kv.second) {
        if (std::find(at->second.begin(), at->second.end(), dir) == at->second.end()) {
          at->second.push_back(dir);
        }
      }
    }
  }
  for (const auto &m : merged) {
    if (m.second.empty()) continue;
    const std::string prefix = join(m.second, ":");
    std::string current;
    // An empty current value must not leave a trailing ':' (that would mean the working dir).
    const bool has = env_lookup(env_array(config), m.first, current) && !current.empty();
    set_env(config, m.first, has ? prefix + ":" + current : prefix);
  }
}

// MPS clients must share the IPC namespace of the MPS server, which runs on the host.
void drop_ipc_namespace(Json &config) {
  const auto linux_json = config.find("linux");
  if (linux_json == config.end() || !linux_json->is_object()) return;
  const auto ns = linux_json->find("namespaces");
  if (ns == linux_json->end() || !ns->is_array()) return;
  Json kept = Json::array();
  for (const Json &n : *ns) {
    if (!(n.is_object() && n.contains("type") && n["type"] == "ipc")) kept.push_back(n);
  }
  *ns = std::move(kept);
}

}  // namespace

Invocation parse_invocation(const std::vector<std::string> &args, const GetEnv &getenv_fn) {
  Invocation inv;
  bool grants_given = false;
  bool runtime_given = false;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string &arg = args[i];
    Flag flag;
    if (!split_flag(arg, flag)) {
      if (arg == "--") {
        inv.runtime_args.push_back(arg);
        continue;
      }
      break;  // the subcommand
    }
    if (flag.name == kGrantsFlag || flag.name == kRuntimeFlag) {
      const std::string value = flag_value(flag, args, i);
      if (value.empty()) throw Refusal("--" + flag.name + ": empty value, got " + in_quotes(arg));
      if (flag.name == kGrantsFlag) {
        inv.grants_dir = value;
        grants_given = true;
      } else {
        inv.runtime_path = value;
        runtime_given = true;
      }
      continue;
    }
    inv.runtime_args.push_back(arg);
    if (global_value_flags().count(flag.name) != 0) {
      const size_t before = i;
      const std::string value = flag_value(flag, args, i);
      if (i != before) inv.runtime_args.push_back(args[i]);
      if (flag.name == "log") inv.log_path = value;
      if (flag.name == "log-format") inv.log_format = value;
    }
  }
  if (i < args.size()) {
    inv.subcommand = args[i];
    for (size_t j = i; j < args.size(); ++j) inv.runtime_args.push_back(args[j]);
  }
  if (inv.reads_config()) {
    // Go's flag parsing, as runc uses it: flags end at "--" or the first positional (the id).
    for (size_t j = i + 1; j < args.size(); ++j) {
      Flag flag;
      if (!split_flag(args[j], flag)) break;
      if (create_value_flags().count(flag.name) == 0) continue;
      const std::string value = flag_value(flag, args, j);
      if ((flag.name == "bundle" || flag.name == "b") && !value.empty()) inv.bundle = value;
    }
  }
  if (!grants_given) {
    const char *env = getenv_fn("CUMULUS_GPU_GRANTS_DIR");
    inv.grants_dir = env != nullptr && *env != '\0' ? env : kDefaultGrantsDir;
  }
  if (!runtime_given) {
    const char *env = getenv_fn("CUMULUS_GPU_RUNC");
    inv.runtime_path = env != nullptr ? env : "";
  }
  return inv;
}

bool is_nvidia_runtime(const std::string &runtime_path) {
  const size_t slash = runtime_path.rfind('/');
  const std::string base =
      slash == std::string::npos ? runtime_path : runtime_path.substr(slash + 1);
  return base == "nvidia-container-runtime";
}

Grant parse_grant(const std::string &text, const std::string &file_partition_id) {
  const std::string where = "grant " + file_partition_id;
  Json doc;
  try {
    doc = Json::parse(text);
  } catch (const Json::exception &e) {
    throw Refusal(where + ": not valid json, got " + e.what());
  }
  if (!doc.is_object()) throw Refusal(where + ": not a json object, got " + doc.type_name());
  const Json &version = member(doc, "version", where);
  if (!version.is_number_integer() || version.get<int64_t>() != kGrantVersion) {
    throw Refusal(where + ".version: unsupported, got " + version.dump());
  }
  Grant g;
  g.job_id = string_member(doc, "jobId", where);
  if (g.job_id.empty()) throw Refusal(where + ".jobId: empty, got ''");
  g.partition_id = string_member(doc, "partitionId", where);
  if (g.partition_id != file_partition_id) {
    throw Refusal(where + ".partitionId: differs from the file name, got " +
                  in_quotes(g.partition_id));
  }
  const Json &gpu = member(doc, "gpu", where);
  if (!gpu.is_object()) throw Refusal(where + ".gpu: not an object, got " + gpu.dump());
  const std::string gwhere = where + ".gpu";
  g.vendor = string_member(gpu, "vendor", gwhere);
  if (g.vendor != "nvidia" && g.vendor != "amd" && g.vendor != "intel") {
    throw Refusal(gwhere + ".vendor: not nvidia, amd or intel, got " + in_quotes(g.vendor));
  }
  const Json &index = member(gpu, "index", gwhere);
  if (!index.is_number_integer() || index.get<int64_t>() < 0 ||
      index.get<int64_t>() > static_cast<int64_t>(UINT32_MAX)) {
    throw Refusal(gwhere + ".index: not a device index, got " + index.dump());
  }
  g.index = static_cast<uint32_t>(index.get<int64_t>());
  g.uuid = string_member(gpu, "uuid", gwhere);
  if (g.uuid.find(',') != std::string::npos) {
    throw Refusal(gwhere + ".uuid: contains ',', got " + in_quotes(g.uuid));
  }
  const auto bus = gpu.find("pciBusId");
  if (bus != gpu.end() && !bus->is_null()) g.pci_bus_id = string_member(gpu, "pciBusId", gwhere);

  if (const Json *devices = array_member(doc, "devices", where)) {
    for (size_t k = 0; k < devices->size(); ++k) {
      const Json &d = (*devices)[k];
      const std::string dwhere = where + ".devices[" + std::to_string(k) + "]";
      if (!d.is_object()) throw Refusal(dwhere + ": not an object, got " + d.dump());
      GrantDevice dev;
      dev.path = absolute_path(d, "path", dwhere);
      const auto host = d.find("hostPath");
      dev.host_path = host == d.end() || host->is_null() ? dev.path
                                                          : absolute_path(d, "hostPath", dwhere);
      g.devices.push_back(dev);
    }
  }
  if (const Json *mounts = array_member(doc, "mounts", where)) {
    for (size_t k = 0; k < mounts->size(); ++k) {
      const Json &m = (*mounts)[k];
      const std::string mwhere = where + ".mounts[" + std::to_string(k) + "]";
      if (!m.is_object()) throw Refusal(mwhere + ": not an object, got " + m.dump());
      GrantMount mount;
      mount.source = absolute_path(m, "source", mwhere);
      mount.destination = absolute_path(m, "destination", mwhere);
      mount.writable = bool_member(m, "writable", false, mwhere);
      g.mounts.push_back(mount);
    }
  }
  if (const Json *env = object_member(doc, "env", where)) {
    for (auto it = env->begin(); it != env->end(); ++it) {
      const std::string ewhere = where + ".env." + it.key();
      check_env_name(it.key(), where + ".env");
      if (!it.value().is_string()) {
        throw Refusal(ewhere + ": not a string, got " + it.value().dump());
      }
      g.env.emplace_back(it.key(), it.value().get<std::string>());
    }
  }
  if (const Json *path_env = object_member(doc, "pathEnv", where)) {
    for (auto it = path_env->begin(); it != path_env->end(); ++it) {
      const std::string pwhere = where + ".pathEnv." + it.key();
      check_env_name(it.key(), where + ".pathEnv");
      if (!it.value().is_array()) {
        throw Refusal(pwhere + ": not an array, got " + it.value().dump());
      }
      std::vector<std::string> dirs;
      for (const Json &d : it.value()) {
        // An empty entry would put the working directory on PATH or LD_LIBRARY_PATH.
        if (!d.is_string() || d.get<std::string>().empty() ||
            d.get<std::string>().find(':') != std::string::npos) {
          throw Refusal(pwhere + ": entries must be non-empty and without ':', got " + d.dump());
        }
        dirs.push_back(d.get<std::string>());
      }
      g.path_env.emplace_back(it.key(), dirs);
    }
  }
  g.host_ipc = bool_member(doc, "hostIpc", false, where);
  return g;
}

JobRequest inspect_config(const std::string &text, Json &config) {
  const bool mentions_job = text.find(kJobIdVar) != std::string::npos;
  JobRequest req;
  try {
    config = Json::parse(text);
  } catch (const Json::exception &e) {
    if (mentions_job) throw Refusal(std::string("config.json: not valid json, got ") + e.what());
    return req;  // not ours to judge: runc reports its own error
  }
  const Json *env = env_of(config);
  if (env == nullptr) {
    if (mentions_job) {
      throw Refusal("config.json: process.env: not a list of strings in a job container, got " +
                    std::string(config.is_object() ? "another shape" : config.type_name()));
    }
    return req;
  }
  req.is_job = env_lookup(*env, kJobIdVar, req.job_id);
  if (!req.is_job) return req;
  std::string ids;
  if (!env_lookup(*env, "CUMULUS_PARTITION_IDS", ids) || ids.empty()) {
    env_lookup(*env, "CUMULUS_PARTITION_ID", ids);
  }
  if (ids.empty()) return req;
  std::set<std::string> seen;
  for (const std::string &id : split(ids, ',')) {
    if (!valid_partition_id(id)) {
      throw Refusal("CUMULUS_PARTITION_IDS: malformed partition id, got " + in_quotes(id));
    }
    if (!seen.insert(id).second) {
      throw Refusal("CUMULUS_PARTITION_IDS: repeated partition id, got " + in_quotes(id));
    }
    req.partition_ids.push_back(id);
  }
  return req;
}

Json apply_grants(const Json &config, const std::string &job_id, const std::vector<Grant> &grants,
                  const StatFn &stat_fn, const ApplyOptions &options) {
  for (const Grant &g : grants) {
    if (g.job_id != job_id) {
      throw Refusal("grant " + g.partition_id + ".jobId: belongs to another job than " +
                    in_quotes(job_id) + ", got " + in_quotes(g.job_id));
    }
  }
  Json out = config;
  if (!out.is_object()) {
    throw Refusal(std::string("config.json: not an object, got ") + out.type_name());
  }
  if (grants.empty()) {
    if (options.nvidia_runtime) set_env(out, "NVIDIA_VISIBLE_DEVICES", "void");
    return out;
  }
  add_devices(out, grants, stat_fn);
  add_mounts(out, grants);
  for (const Grant &g : grants) {
    for (const auto &kv : g.env) set_env(out, kv.first, kv.second);
  }
  prepend_paths(out, grants);
  bool host_ipc = false;
  for (const Grant &g : grants) host_ipc = host_ipc || g.host_ipc;
  if (host_ipc) drop_ipc_namespace(out);

  std::vector<std::string> ordinals;
  std::vector<std::string> uuids;
  for (size_t k = 0; k < grants.size(); ++k) {
    ordinals.push_back(std::to_string(k));
    uuids.push_back(grants[k].uuid);
  }
  set_env(out, "CUDA_VISIBLE_DEVICES", join(ordinals, ","));
  set_env(out, "NVIDIA_VISIBLE_DEVICES", join(uuids, ","));
  set_env(out, "CUMULUS_GPU_UUIDS", join(uuids, ","));
  return out;
}

}  // namespace runtime
}  // namespace chronos
