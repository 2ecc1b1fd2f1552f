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
  /// PCI address as sysfs names it ("0000:19:00.0", lowercase hex), so the agent can match the
  /// device to /sys/bus/pci and nvidia-smi; "" when the vendor's OpenCL does not report it.
  std::string pci_bus_id;
};

/**
 * Formats a PCI address like sysfs: 4+ hex digits of domain, then 2 of bus, 2 of device and 1
 * of function ("0000:19:00.0"). Returns "" when a part is out of range for PCI (bus > 0xff,
 * device > 0x1f, function > 7).
 */
std::string format_pci_bus_id(uint32_t domain, uint32_t bus, uint32_t device, uint32_t function);

/**
 * The PCI address from NVIDIA's cl_nv_device_attribute_query values: `slot` is the PCI device
 * number (seen on the H100 machine: bus 0, slot 6 for nvidia-smi's 00000000:00:06.0), and a GPU
 * is function 0. "" when a value is out of PCI's range.
 */
std::string nvidia_pci_bus_id(uint32_t domain, uint32_t bus, uint32_t slot);

/** Size of AMD's cl_device_topology_amd union (CL_DEVICE_TOPOLOGY_AMD). */
constexpr size_t kAmdTopologyBytes = 24;

/**
 * The PCI address from the raw bytes of AMD's cl_device_topology_amd: a cl_uint type (1 =
 * PCIe), 17 unused bytes, then bus, device and function as single bytes. AMD reports no PCI
 * domain, so it is 0. Returns "" for any other topology type.
 */
std::string amd_topology_pci_bus_id(const uint8_t (&raw)[kAmdTopologyBytes]);

/** True when the space-separated OpenCL extension list names `extension` exactly. */
bool has_cl_extension(const std::string &extensions, const std::string &extension);

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
