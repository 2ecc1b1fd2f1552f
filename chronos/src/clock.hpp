// Time source. Partitions expire on wall-clock time (epoch milliseconds) because several
// processes share one state file; tests inject a manual clock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace chronos {

/** Returns "now" in Unix epoch milliseconds. */
using Clock = std::function<int64_t()>;

/** The real wall clock. */
inline int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace chronos
