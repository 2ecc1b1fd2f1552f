// OpenCL device discovery. Chronos manages one device list per host, in a stable order:
// platforms as the ICD loader lists them, devices in platform order. With device_types "auto"
// it manages every GPU when there is one, and otherwise every other device (CPU devices such as
// PoCL's), so the same code runs on a GPU worker and on a CPU-only test host.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.hpp"

namespace chronos {

/** One managed device. */
struct DeviceInfo {
  uint32_t index = 0;
  std::string name;
  std::string vendor;
  std::string platform;
  std::string type;  ///< "GPU", "CPU", "ACCELERATOR" or "OTHER"
  std::string driver_version;
  std::string opencl_version;
  uint64_t total_memory_bytes = 0;
};

/** Produces the device list (OpenCL in production, a fixed list in pure-logic tests). */
using DeviceSource = std::function<std::vector<DeviceInfo>()>;

/** Discovers devices over every OpenCL platform; throws Error(kNoDevice) when none is usable. */
std::vector<DeviceInfo> discover_opencl_devices(DeviceTypes types);

/** A DeviceSource over OpenCL. */
DeviceSource opencl_device_source(DeviceTypes types);

/** What probe_device() measured. */
struct ProbeResult {
  bool ok = false;
  std::string detail;  ///< what failed, or a summary
};

/**
 * Proves a device works end to end: creates a context and a queue, writes `bytes` to a device
 * buffer and reads them back. All OpenCL objects are RAII-owned.
 */
ProbeResult probe_device(DeviceTypes types, uint32_t index, size_t bytes);

}  // namespace chronos
