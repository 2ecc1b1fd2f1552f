#include "device.hpp"

#include <CL/cl.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <vector>

#include "cl_raii.hpp"
#include "status.hpp"

namespace chronos {
namespace {

struct RawDevice {
  cl_device_id id;
  DeviceInfo info;
};

std::string platform_string(cl_platform_id p, cl_platform_info what) {
  size_t size = 0;
  if (clGetPlatformInfo(p, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return "";
  std::vector<char> buf(size);
  if (clGetPlatformInfo(p, what, size, buf.data(), nullptr) != CL_SUCCESS) return "";
  return std::string(buf.data());
}

std::string device_string(cl_device_id d, cl_device_info what) {
  size_t size = 0;
  if (clGetDeviceInfo(d, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return "";
  std::vector<char> buf(size);
  if (clGetDeviceInfo(d, what, size, buf.data(), nullptr) != CL_SUCCESS) return "";
  return std::string(buf.data());
}

// Vendor extension queries. The Khronos headers here define only AMD's; NVIDIA's values come from
// its cl_nv_device_attribute_query specification. Spelled out so any header version builds.
constexpr cl_device_info kNvPciBusId = 0x4008;
constexpr cl_device_info kNvPciSlotId = 0x4009;
constexpr cl_device_info kNvPciDomainId = 0x400A;
constexpr cl_device_info kAmdTopology = 0x4037;

bool device_uint(cl_device_id d, cl_device_info what, uint32_t &out) {
  cl_uint v = 0;
  if (clGetDeviceInfo(d, what, sizeof v, &v, nullptr) != CL_SUCCESS) return false;
  out = v;
  return true;
}

// "" whenever the driver does not say: the agent then treats the device as unmapped.
std::string pci_bus_id_of(cl_device_id d) {
  const std::string extensions = device_string(d, CL_DEVICE_EXTENSIONS);
  if (has_cl_extension(extensions, "cl_nv_device_attribute_query")) {
    uint32_t bus = 0;
    uint32_t slot = 0;
    if (!device_uint(d, kNvPciBusId, bus) || !device_uint(d, kNvPciSlotId, slot)) return "";
    uint32_t domain = 0;
    // Older drivers lack the domain query; their GPUs all sit in domain 0.
    if (!device_uint(d, kNvPciDomainId, domain)) domain = 0;
    return nvidia_pci_bus_id(domain, bus, slot);
  }
  if (has_cl_extension(extensions, "cl_amd_device_attribute_query")) {
    uint8_t raw[kAmdTopologyBytes] = {};
    if (clGetDeviceInfo(d, kAmdTopology, sizeof raw, raw, nullptr) != CL_SUCCESS) return "";
    return amd_topology_pci_bus_id(raw);
  }
  return "";
}

const char *type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "GPU";
  if (t & CL_DEVICE_TYPE_CPU) return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCELERATOR";
  return "OTHER";
}

// One discovery at a time per process: ICD loaders and drivers (PoCL here) may set themselves up
// on the first platform query and are not safe to enter concurrently (8 threads, each with its
// own handle, crashed PoCL). Discovery is rare and cached per handle, so a global lock is cheap.
std::mutex &discovery_mutex() {
  static std::mutex mu;
  return mu;
}

std::vector<RawDevice> enumerate(DeviceTypes types) {
  std::lock_guard<std::mutex> guard(discovery_mutex());
  cl_uint n_platforms = 0;
  const cl_int rc = clGetPlatformIDs(0, nullptr, &n_platforms);
  if (rc != CL_SUCCESS || n_platforms == 0) {
    throw Error(Status::kNoDevice,
                "no OpenCL platform found (error " + std::to_string(rc) +
                    "); install an ICD such as pocl-opencl-icd or the NVIDIA driver's, "
                    "listed in /etc/OpenCL/vendors");
  }
  std::vector<cl_platform_id> platforms(n_platforms);
  if (clGetPlatformIDs(n_platforms, platforms.data(), nullptr) != CL_SUCCESS) {
    throw Error(Status::kNoDevice, "clGetPlatformIDs failed");
  }
  std::vector<RawDevice> all;
  for (cl_platform_id p : platforms) {
    cl_uint n = 0;
    // A platform with no devices (or a broken ICD) is skipped, not fatal: others may work.
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &n) != CL_SUCCESS || n == 0) continue;
    std::vector<cl_device_id> ids(n);
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, n, ids.data(), nullptr) != CL_SUCCESS) continue;
    const std::string pname = platform_string(p, CL_PLATFORM_NAME);
    for (cl_device_id d : ids) {
      cl_device_type t = 0;
      cl_ulong mem = 0;
      cl_bool available = CL_FALSE;
      if (clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, nullptr) != CL_SUCCESS) continue;
      if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, nullptr) != CL_SUCCESS) {
        continue;
      }
      if (clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof available, &available, nullptr) !=
              CL_SUCCESS ||
          available != CL_TRUE) {
        continue;
      }
      RawDevice raw;
      raw.id = d;
      raw.info.name = device_string(d, CL_DEVICE_NAME);
      raw.info.vendor = device_string(d, CL_DEVICE_VENDOR);
      raw.info.platform = pname;
      raw.info.type = type_name(t);
      raw.info.driver_version = device_string(d, CL_DRIVER_VERSION);
      raw.info.opencl_version = device_string(d, CL_DEVICE_VERSION);
      raw.info.total_memory_bytes = mem;
      raw.info.pci_bus_id = pci_bus_id_of(d);
      all.push_back(raw);
    }
  }
  bool any_gpu = false;
  for (const RawDevice &r : all) any_gpu = any_gpu || r.info.type == "GPU";
  std::vector<RawDevice> chosen;
  for (const RawDevice &r : all) {
    bool keep = false;
    switch (types) {
      case DeviceTypes::kAuto: keep = any_gpu ? r.info.type == "GPU" : true; break;
      case DeviceTypes::kGpu: keep = r.info.type == "GPU"; break;
      case DeviceTypes::kCpu: keep = r.info.type == "CPU"; break;
      case DeviceTypes::kAll: keep = true; break;
    }
    if (keep) {
      chosen.push_back(r);
      chosen.back().info.index = static_cast<uint32_t>(chosen.size() - 1);
    }
  }
  if (chosen.empty()) {
    throw Error(Status::kNoDevice, std::string("OpenCL lists no available device of type '") +
                                       device_types_name(types) + "' (found " +
                                       std::to_string(all.size()) + " of other types)");
  }
  return chosen;
}

}  // namespace

std::string format_pci_bus_id(uint32_t domain, uint32_t bus, uint32_t device, uint32_t function) {
  if (bus > 0xFF || device > 0x1F || function > 7) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, device, function);
  return buf;
}

std::string nvidia_pci_bus_id(uint32_t domain, uint32_t bus, uint32_t slot) {
  // GPUs are function 0 of their PCI device; the slot id is the device number.
  return format_pci_bus_id(domain, bus, slot, 0);
}

std::string amd_topology_pci_bus_id(const uint8_t (&raw)[kAmdTopologyBytes]) {
  uint32_t type = 0;
  std::memcpy(&type, raw, sizeof type);
  constexpr uint32_t kTopologyPcie = 1;  // CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD
  if (type != kTopologyPcie) return "";
  // Layout: cl_uint type, cl_char unused[17], then cl_char bus, device, function.
  return format_pci_bus_id(0, raw[21], raw[22], raw[23]);
}

bool has_cl_extension(const std::string &extensions, const std::string &extension) {
  std::istringstream words(extensions);
  std::string word;
  while (words >> word) {
    if (word == extension) return true;
  }
  return false;
}

std::vector<DeviceInfo> discover_opencl_devices(DeviceTypes types) {
  std::vector<DeviceInfo> out;
  for (const RawDevice &r : enumerate(types)) out.push_back(r.info);
  return out;
}

DeviceSource opencl_device_source(DeviceTypes types) {
  return [types] { return discover_opencl_devices(types); };
}

ProbeResult probe_device(DeviceTypes types, uint32_t index, size_t bytes) {
  ProbeResult r;
  const std::vector<RawDevice> devices = enumerate(types);
  if (index >= devices.size()) {
    throw Error(Status::kInvalidArgument, "unknown device " + std::to_string(index) + " (have " +
                                              std::to_string(devices.size()) + ")");
  }
  cl_device_id dev = devices[index].id;
  cl_int err = CL_SUCCESS;
  ClContext ctx(clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &err));
  if (!ctx || err != CL_SUCCESS) {
    r.detail = "clCreateContext failed: " + std::to_string(err);
    return r;
  }
  ClQueue queue(clCreateCommandQueue(ctx.get(), dev, 0, &err));
  if (!queue || err != CL_SUCCESS) {
    r.detail = "clCreateCommandQueue failed: " + std::to_string(err);
    return r;
  }
  ClMem mem(clCreateBuffer(ctx.get(), CL_MEM_READ_WRITE, bytes, nullptr, &err));
  if (!mem || err != CL_SUCCESS) {
    r.detail = "clCreateBuffer(" + std::to_string(bytes) + ") failed: " + std::to_string(err);
    return r;
  }
  std::vector<unsigned char> out(bytes);
  std::vector<unsigned char> back(bytes, 0);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<unsigned char>((i * 131u + 7u) & 0xFF);
  err = clEnqueueWriteBuffer(queue.get(), mem.get(), CL_TRUE, 0, bytes, out.data(), 0, nullptr,
                             nullptr);
  if (err != CL_SUCCESS) {
    r.detail = "clEnqueueWriteBuffer failed: " + std::to_string(err);
    return r;
  }
  err = clEnqueueReadBuffer(queue.get(), mem.get(), CL_TRUE, 0, bytes, back.data(), 0, nullptr,
                            nullptr);
  if (err != CL_SUCCESS) {
    r.detail = "clEnqueueReadBuffer failed: " + std::to_string(err);
    return r;
  }
  if (back != out) {
    r.detail = "data read back differs from data written";
    return r;
  }
  r.ok = true;
  r.detail = "wrote and read back " + std::to_string(bytes) + " bytes on " +
             devices[index].info.name;
  return r;
}

}  // namespace chronos
