// The I/O half of cumulus-gpu-runc: grant files (with their ownership checks), device nodes,
// the atomic config.json rewrite, finding runc and reporting a refusal where Docker shows it.
// Tested with real files in chronos/tests/test_gpu_runc.cpp; main.cpp only strings these
// together and execs the downstream runtime.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "gpu_runc.hpp"

namespace chronos {
namespace runtime {

/** Largest grant or config file the wrapper reads (a grant is well under 4 KiB). */
constexpr size_t kMaxFileBytes = 16u << 20;

/**
 * Reads the grants of `partition_ids` from `dir` (`<id>.json` each). A grant must be a regular
 * file (not a symbolic link), owned by `owner_uid` (the wrapper's euid: root on a worker) and
 * writable by nobody else.
 * @returns one grant per id, in the same order; empty when none of the files exists (a worker
 * without device access, or a job without a GPU)
 * @throws Refusal when some grants exist and others are missing, or a file fails the checks
 * or does not parse.
 */
std::vector<Grant> load_grants(const std::string &dir,
                               const std::vector<std::string> &partition_ids, uid_t owner_uid);

/** stat(2) of a host device node (symbolic links followed). @throws Refusal if not a device. */
DeviceNode stat_device(const std::string &host_path);

/**
 * Replaces `path` with `text` atomically (a temporary file in the same directory, then
 * rename), keeping the file's permission bits.
 * @throws Refusal on any I/O error; the temporary file is removed.
 */
void write_file_atomically(const std::string &path, const std::string &text);

/**
 * The first executable `runc` in the ':'-separated `search_path` that is not this executable
 * (a wrapper installed as `runc` must not exec itself).
 * @throws Refusal when there is none.
 */
std::string find_runc(const std::string &search_path);

/** What prepare_bundle() did to config.json. */
enum class BundleOutcome {
  kUntouched,  ///< not a job container, no grants, or a config runc will judge itself
  kRewritten,  ///< grants applied, or NVIDIA_VISIBLE_DEVICES=void set
};

/**
 * For `create`/`run`: reads `<bundle>/config.json` and, for a Cumulus job container, applies its
 * partitions' grants and rewrites the file. Other containers' files are not written at all.
 * @throws Refusal as inspect_config(), load_grants() and apply_grants() do.
 */
BundleOutcome prepare_bundle(const Invocation &inv);

/**
 * Prints "cumulus-gpu-runc: <message>" on stderr and, when runc was given `--log`, appends the
 * same as an error entry in runc's log format: containerd's shim reads that file to explain a
 * failed create, so `docker service ps` shows the reason.
 */
void report_refusal(const Invocation &inv, const std::string &message);

}  // namespace runtime
}  // namespace chronos
