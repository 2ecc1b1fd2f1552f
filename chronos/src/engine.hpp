// The engine: one Chronos instance = configuration + device list + shared state file + clock.
// Every operation is one locked transaction on the state file that first reclaims whatever
// has expired, so all processes on the host see one truth.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "clock.hpp"
#include "config.hpp"
#include "device.hpp"
#include "ledger.hpp"
#include "state_store.hpp"

namespace chronos {

/** The effective uid of this process. */
int64_t effective_uid();

/**
 * Whether `caller` may act on `p`: root may act on any partition, anyone on one whose creator is
 * unknown (a state file written before uids were recorded), others only on their own.
 */
bool may_act_on(const Partition &p, int64_t caller);

/** A partition with the time of the call: created, existing (repeated job id) or released. */
struct PartitionOutcome {
  Partition partition;
  bool existing = false;
  int64_t now_ms = 0;
};

/** A snapshot of live partitions. */
struct ListOutcome {
  int64_t now_ms = 0;
  std::vector<Partition> partitions;
};

/** Devices with the live state and the policy. */
struct StatsOutcome {
  int64_t now_ms = 0;
  std::vector<DeviceInfo> devices;
  State state;
};

/** Thread-safe; each call locks the state file for its own duration. */
class Engine {
 public:
  /** `caller_uid` tells who is calling (the process's effective uid unless a test says). */
  Engine(Config config, DeviceSource devices, Clock clock = system_now_ms,
         std::function<void()> after_temp_written = nullptr,
         std::function<int64_t()> caller_uid = effective_uid);

  const Config &config() const { return config_; }
  const StateStore &store() const { return store_; }

  /**
   * The managed devices; discovered on first call and then cached. With `nowait`, throws
   * Error(kWouldBlock) instead of running the (slow) first discovery.
   */
  std::vector<DeviceInfo> devices(bool nowait = false);

  /**
   * Creates a partition (see chronos_create). Throws Error: kInvalidArgument for bad values,
   * kNoCapacity / kFairShare (with earliest_fit_ms) when refused; with `nowait`, kWouldBlock
   * (nothing changed) when it would have to wait for the lock, the disk or OpenCL.
   */
  PartitionOutcome create(uint32_t device, double memory, double duration_s,
                          const std::string &owner, const std::string &job_id,
                          bool nowait = false);

  /**
   * Releases a live partition; throws Error(kNotFound) when there is none with that id, and
   * Error(kPermissionDenied) when a caller other than root did not create it.
   */
  PartitionOutcome release(const std::string &id, bool nowait = false);

  /** Live partitions, oldest first. */
  ListOutcome list();

  /** Devices plus the live state. */
  StatsOutcome stats();

  /** Reclaims expired partitions now; returns what this call reclaimed. */
  ListOutcome reap();

  /** See StateStore::repair. */
  RepairOutcome repair();

 private:
  Config config_;
  DeviceSource source_;
  Clock clock_;
  std::function<int64_t()> caller_uid_;
  StateStore store_;
  std::mutex devices_mu_;
  bool devices_loaded_ = false;
  std::vector<DeviceInfo> devices_;
};

/** JSON renderings used by the C ABI, the CLI and the agent. */
std::string create_json(const PartitionOutcome &c);  // includes "existing"
std::string partition_json(const Partition &p, int64_t now_ms);
std::string list_json(const ListOutcome &l, const char *array_key = "partitions");
std::string stats_json(const StatsOutcome &s, const Config &config);
std::string device_json(const DeviceInfo &d);
std::string repair_json(const RepairOutcome &r);

}  // namespace chronos
