// The ledger: partitions and waiting owners, and the pure rules over them (admission, fair
// share, expiry, earliest fit). No I/O here: the engine loads a State under the file lock,
// applies these functions and writes it back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

/** Fractions are kept in parts per million so sums are exact integers (no float drift). */
constexpr uint32_t kWholePpm = 1000000;

/** One partition of a device. */
struct Partition {
  std::string id;
  uint32_t device = 0;
  uint32_t ppm = 0;  ///< memory fraction in parts per million, 1..kWholePpm
  int64_t start_ms = 0;
  int64_t expires_ms = 0;
  std::string owner;
  std::string job_id;  ///< empty when none
  uint64_t memory_bytes = 0;  ///< ppm of the device's memory, fixed at creation (0 if unknown)
  int64_t uid = -1;  ///< effective uid of the creating process; -1 when unknown (older files)
};

/** An owner whose last request for a device was refused; counts as "waiting" until until_ms. */
struct Waiter {
  std::string owner;
  uint32_t device = 0;
  uint32_t ppm = 0;
  int64_t until_ms = 0;
};

/** Everything shared between processes. */
struct State {
  std::vector<Partition> partitions;  ///< in creation order
  std::vector<Waiter> waiters;
};

/** Admission and fair-share settings. */
struct Policy {
  /** Most an owner may hold on one device while another owner holds or waits there. */
  uint32_t max_share_ppm = 750000;
  /** How long a refused request keeps its owner counted as waiting. */
  int64_t waiter_ttl_ms = 30000;
};

/** A request for a new partition (already validated for syntax). */
struct Request {
  uint32_t device = 0;
  uint32_t ppm = 0;
  int64_t duration_ms = 0;
  std::string owner;
  std::string job_id;
};

/** Result of an admission check. */
struct Admission {
  enum class Verdict { kAdmit, kNoCapacity, kFairShare };
  Verdict verdict = Verdict::kAdmit;
  std::string reason;              ///< empty when admitted
  int64_t earliest_fit_ms = -1;    ///< when refused: first time it would fit if nothing changes
};

/** Converts a fraction (0, 1] to ppm, rounding to nearest; 0 when it rounds to nothing. */
uint32_t fraction_to_ppm(double fraction);

/** Fraction for display, e.g. 500000 -> 0.5. */
double ppm_to_fraction(uint32_t ppm);

/** Removes partitions and waiters whose time has come (expiry <= now); returns the partitions. */
std::vector<Partition> reclaim_expired(State &state, int64_t now_ms);

/** Sum of ppm held on a device. */
uint64_t allocated_ppm(const State &state, uint32_t device);

/** Sum of ppm an owner holds on a device. */
uint64_t owner_ppm(const State &state, uint32_t device, const std::string &owner);

/** True when another owner holds a partition on the device or is waiting for it. */
bool others_present(const State &state, uint32_t device, const std::string &owner);

/** Live partition created for this job id, or nullptr. */
const Partition *find_by_job(const State &state, const std::string &job_id);

/** Decides whether the request fits now; when it does not, says why and when it could. */
Admission admit(const State &state, const Request &request, const Policy &policy,
                int64_t now_ms);

/** Records (or refreshes) the requester of a refused request as waiting. */
void note_waiter(State &state, const Request &request, const Policy &policy, int64_t now_ms);

/** Drops the owner's waiter entry for the device (its request was admitted). */
void clear_waiter(State &state, uint32_t device, const std::string &owner);

/** Checks the ledger invariants; returns "" or the first violation. */
std::string check_invariants(const State &state);

}  // namespace chronos
