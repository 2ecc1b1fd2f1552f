// chronos_bench: create+release latency through the C ABI (the baseline for the FFI and CLI
// numbers in bench/chronos_bench.ts). Prints one JSON object with percentiles in microseconds.
//   chronos_bench [--iterations N] [--warmup N] [--state-dir DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chronos.h"

namespace {

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

bool extract_id(const char *json, char *id, size_t id_len) {
  const char *at = std::strstr(json, "\"id\":\"");
  if (at == nullptr) return false;
  at += 6;
  const char *end = std::strchr(at, '"');
  if (end == nullptr || static_cast<size_t>(end - at) >= id_len) return false;
  std::memcpy(id, at, static_cast<size_t>(end - at));
  id[end - at] = '\0';
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  long iterations = 2000;
  long warmup = 100;
  const char *state_dir = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--iterations") == 0) {
      iterations = std::strtol(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--warmup") == 0) {
      warmup = std::strtol(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--state-dir") == 0) {
      state_dir = argv[i + 1];
    } else {
      std::fprintf(stderr, "chronos_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (iterations < 1 || warmup < 0) {
    std::fprintf(stderr, "chronos_bench: --iterations must be >= 1 and --warmup >= 0\n");
    return 2;
  }
  using clock = std::chrono::steady_clock;
  chronos_t *h = chronos_init(state_dir, nullptr);
  if (h == nullptr) {
    std::fprintf(stderr, "chronos_bench: init failed: %s\n", chronos_last_error());
    return 1;
  }
  // One-time OpenCL discovery, reported separately from the steady-state latency.
  const auto t0 = clock::now();
  uint32_t count = 0;
  if (chronos_device_count(h, &count) != CHRONOS_OK) {
    std::fprintf(stderr, "chronos_bench: %s\n", chronos_last_error());
    chronos_shutdown(h);
    return 1;
  }
  const double init_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();

  char buf[CHRONOS_PARTITION_JSON_MAX];
  char id[64];
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(iterations));
  for (long i = 0; i < warmup + iterations; ++i) {
    const auto start = clock::now();
    int rc = chronos_create(h, 0, 0.25, 60, "bench", nullptr, buf, sizeof buf, nullptr);
    if (rc != CHRONOS_OK || !extract_id(buf, id, sizeof id)) {
      std::fprintf(stderr, "chronos_bench: create failed (%d): %s\n", rc, chronos_last_error());
      chronos_shutdown(h);
      return 1;
    }
    rc = chronos_release(h, id, nullptr, 0, nullptr);
    if (rc != CHRONOS_OK) {
      std::fprintf(stderr, "chronos_bench: release failed (%d): %s\n", rc, chronos_last_error());
      chronos_shutdown(h);
      return 1;
    }
    const double us = std::chrono::duration<double, std::micro>(clock::now() - start).count();
    if (i >= warmup) samples.push_back(us);
  }
  double sum = 0;
  for (double s : samples) sum += s;
  std::printf(
      "{\"path\":\"c_abi\",\"iterations\":%ld,\"init_ms\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"mean_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f,\"devices\":%u}\n",
      iterations, init_ms, percentile(samples, 0.50), percentile(samples, 0.99),
      sum / static_cast<double>(samples.size()), percentile(samples, 0.0),
      percentile(samples, 1.0), count);
  chronos_shutdown(h);
  return 0;
}
