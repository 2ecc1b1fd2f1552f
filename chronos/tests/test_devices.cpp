// Real OpenCL: discovery over every platform and an end-to-end buffer round trip per device.
// Runs on PoCL's CPU device here and on the NVIDIA platform on the GPU machine.
#include <catch2/catch.hpp>

#include "device.hpp"
#include "status.hpp"

using namespace chronos;

TEST_CASE("OpenCL discovery finds at least one usable device", "[devices]") {
  const std::vector<DeviceInfo> devs = discover_opencl_devices(DeviceTypes::kAuto);
  REQUIRE_FALSE(devs.empty());
  for (size_t i = 0; i < devs.size(); ++i) {
    const DeviceInfo &d = devs[i];
    WARN("device " << i << ": " << d.name << " [" << d.type << ", " << d.platform << ", "
                   << (d.total_memory_bytes >> 20) << " MiB]");
    CHECK(d.index == i);
    CHECK_FALSE(d.name.empty());
    CHECK_FALSE(d.platform.empty());
    CHECK(d.total_memory_bytes > 0);
  }
}

TEST_CASE("auto mode prefers GPUs and falls back to other devices", "[devices]") {
  const std::vector<DeviceInfo> all = discover_opencl_devices(DeviceTypes::kAll);
  const std::vector<DeviceInfo> chosen = discover_opencl_devices(DeviceTypes::kAuto);
  size_t gpus = 0;
  for (const DeviceInfo &d : all) gpus += d.type == "GPU" ? 1 : 0;
  if (gpus > 0) {
    CHECK(chosen.size() == gpus);
    for (const DeviceInfo &d : chosen) CHECK(d.type == "GPU");
    CHECK(discover_opencl_devices(DeviceTypes::kGpu).size() == gpus);
  } else {
    CHECK(chosen.size() == all.size());
    try {
      discover_opencl_devices(DeviceTypes::kGpu);
      FAIL("a host without GPUs reported one");
    } catch (const Error &e) {
      CHECK(e.status() == Status::kNoDevice);
      CHECK_THAT(e.what(), Catch::Contains("no available device of type 'gpu'"));
    }
  }
}

TEST_CASE("every managed device round-trips a buffer through OpenCL", "[devices]") {
  const std::vector<DeviceInfo> devs = discover_opencl_devices(DeviceTypes::kAuto);
  for (uint32_t i = 0; i < devs.size(); ++i) {
    const ProbeResult r = probe_device(DeviceTypes::kAuto, i, 4u << 20);
    INFO(r.detail);
    CHECK(r.ok);
  }
  try {
    probe_device(DeviceTypes::kAuto, static_cast<uint32_t>(devs.size()), 16);
    FAIL("probe accepted an unknown device");
  } catch (const Error &e) {
    CHECK(e.status() == Status::kInvalidArgument);
  }
}
