// cumulus-gpu-runc: an OCI runtime wrapper registered as Docker's default runtime on GPU workers.
// On `create`/`run` of a Cumulus job container it applies the agent's grant files (the GPU
// devices, cgroup device rules, driver mounts and environment of the job's partitions) to the
// bundle's config.json, then execs runc. Every other call, and every other container, reaches
// runc untouched.
//
// This header is the pure part (argv, grants, config rewrite), unit-tested without runc; the
// file reading, the atomic rewrite and the exec live in runtime_io.hpp and main.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace chronos {
namespace runtime {

/** OCI config JSON; ordered so a rewritten config.json keeps its keys in their original order. */
using Json = nlohmann::ordered_json;

/** Grants directory when neither `--cumulus-grants` nor CUMULUS_GPU_GRANTS_DIR names one. */
constexpr const char *kDefaultGrantsDir = "/run/cumulus/gpu-grants";

/** Directories searched, in order, for `runc` when no downstream runtime is named. */
constexpr const char *kRuncSearchPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Grant file format version this wrapper reads. */
constexpr int kGrantVersion = 1;

/**
 * Why the wrapper refuses to start a container. `what()` is one line, `field: reason, got X`,
 * which main prints after "cumulus-gpu-runc: " before exiting non-zero, so the Swarm task fails
 * visibly instead of starting without its GPU.
 */
class Refusal : public std::runtime_error {
 public:
  explicit Refusal(const std::string &message) : std::runtime_error(message) {}
};

/** What the wrapper makes of its argv. */
struct Invocation {
  /** Arguments for the downstream runtime (without argv[0]); wrapper-only flags removed. */
  std::vector<std::string> runtime_args;
  /** From `--cumulus-grants=DIR`, else CUMULUS_GPU_GRANTS_DIR, else kDefaultGrantsDir. */
  std::string grants_dir;
  /** From `--cumulus-runc=PATH`, else CUMULUS_GPU_RUNC; "" means search kRuncSearchPath. */
  std::string runtime_path;
  /** runc's subcommand ("create", "start", ...); "" when argv names none (e.g. `--version`). */
  std::string subcommand;
  /** The bundle directory of `create`/`run` (`--bundle`/`-b`), "." when not given. */
  std::string bundle = ".";
  /** runc's global `--log` file, where containerd's shim looks for the reason of a failure. */
  std::string log_path;
  /** runc's global `--log-format` ("text" or "json"). */
  std::string log_format;

  /** True for the subcommands that read config.json (`create`, `run`). */
  bool reads_config() const { return subcommand == "create" || subcommand == "run"; }
};

/** Looks up an environment variable; nullptr when unset (getenv's contract). */
using GetEnv = std::function<const char *(const char *name)>;

/**
 * Parses the wrapper's argv (without argv[0]): runc's global flags, the subcommand and its
 * flags. Wrapper-only flags are recognised before the subcommand only.
 * @throws Refusal when a wrapper flag has an empty value.
 */
Invocation parse_invocation(const std::vector<std::string> &args, const GetEnv &getenv_fn);

/** True when the downstream runtime is NVIDIA's (by file name), which injects GPUs by env. */
bool is_nvidia_runtime(const std::string &runtime_path);

/** A device node a grant hands to the container. */
struct GrantDevice {
  /** Path inside the container, e.g. "/dev/nvidia0". */
  std::string path;
  /** Node on the host whose type and numbers are used; `path` when the grant names none. */
  std::string host_path;
};

/** A host directory a grant bind-mounts into the container. */
struct GrantMount {
  std::string source;
  std::string destination;
  /** Only MPS's pipe directory is writable (its clients write to the pipes). */
  bool writable = false;
};

/** One partition's grant file, as the agent writes it (version 1). */
struct Grant {
  std::string job_id;
  std::string partition_id;
  /** "nvidia", "amd" or "intel". */
  std::string vendor;
  uint32_t index = 0;
  /** "GPU-…" on NVIDIA; may be "" elsewhere. */
  std::string uuid;
  std::string pci_bus_id;
  std::vector<GrantDevice> devices;
  std::vector<GrantMount> mounts;
  /** Variables set in the container, in the file's order. */
  std::vector<std::pair<std::string, std::string>> env;
  /** Directories prepended to a ':'-separated variable, in the file's order. */
  std::vector<std::pair<std::string, std::vector<std::string>>> path_env;
  /** Drop the container's IPC namespace (MPS clients must share the server's). */
  bool host_ipc = false;
};

/**
 * Parses and validates a grant file's text.
 * @param text the file's content
 * @param file_partition_id the partition id the file is named after
 * @throws Refusal when the text is not a valid version-1 grant or names another partition.
 */
Grant parse_grant(const std::string &text, const std::string &file_partition_id);

/** What a container's config.json asks of the wrapper. */
struct JobRequest {
  /** True when `process.env` carries CUMULUS_JOB_ID: only such containers are ever modified. */
  bool is_job = false;
  std::string job_id;
  /** From CUMULUS_PARTITION_IDS, else CUMULUS_PARTITION_ID; every id validated. */
  std::vector<std::string> partition_ids;
};

/**
 * Decides whether config.json belongs to a Cumulus job and which partitions it names.
 * A config that is not valid JSON, or whose `process.env` is not a list of strings, is a job's
 * only when its text mentions CUMULUS_JOB_ID; anything else is left to runc to judge.
 * @param text config.json's content
 * @param config receives the parsed config when it is valid JSON
 * @throws Refusal for a job container whose config is malformed or names a malformed or
 * repeated partition id.
 */
JobRequest inspect_config(const std::string &text, Json &config);

/** Type and numbers of a device node on the host. */
struct DeviceNode {
  /** 'c' (character) or 'b' (block), as OCI's linux.devices[].type. */
  char type = 'c';
  uint32_t major = 0;
  uint32_t minor = 0;
};

/** Stats a host device node; throws Refusal when it is missing or not a device. */
using StatFn = std::function<DeviceNode(const std::string &host_path)>;

/** Settings of apply_grants() that come from the invocation, not the config. */
struct ApplyOptions {
  /** The downstream runtime is nvidia-container-runtime (see is_nvidia_runtime()). */
  bool nvidia_runtime = false;
};

/**
 * Returns `config` with the grants applied, in order: device nodes (linux.devices) with their
 * cgroup allow rules (linux.resources.devices), read-only bind mounts, env, pathEnv (prepended),
 * hostIpc (drops the ipc namespace); then CUDA_VISIBLE_DEVICES=0..N-1 and NVIDIA_VISIBLE_DEVICES
 * and CUMULUS_GPU_UUIDS listing the grants' UUIDs. A device path or mount destination named by
 * several grants is added once. With no grants the config is returned as it is, except that
 * NVIDIA_VISIBLE_DEVICES becomes "void" when the downstream runtime is NVIDIA's, so an image's
 * NVIDIA_VISIBLE_DEVICES=all cannot hand the job every GPU.
 * @param job_id the container's CUMULUS_JOB_ID; every grant must carry it
 * @throws Refusal when a grant belongs to another job, a device node is unusable or the config's
 * shape is not OCI's.
 */
Json apply_grants(const Json &config, const std::string &job_id, const std::vector<Grant> &grants,
                  const StatFn &stat_fn, const ApplyOptions &options);

}  // namespace runtime
}  // namespace chronos
