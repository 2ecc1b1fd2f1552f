// Status codes and the one exception type used inside Chronos. The C ABI (c_api.cpp) turns
// every Error into a status code; nothing else may escape the library.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "chronos.h"

namespace chronos {

/** Outcome of an operation; values equal the CHRONOS_* codes in chronos.h. */
enum class Status : int {
  kOk = CHRONOS_OK,
  kInternal = CHRONOS_E_INTERNAL,
  kInvalidArgument = CHRONOS_E_INVALID_ARGUMENT,
  kNotFound = CHRONOS_E_NOT_FOUND,
  kNoCapacity = CHRONOS_E_NO_CAPACITY,
  kFairShare = CHRONOS_E_FAIR_SHARE,
  kStateCorrupt = CHRONOS_E_STATE_CORRUPT,
  kLockTimeout = CHRONOS_E_LOCK_TIMEOUT,
  kIo = CHRONOS_E_IO,
  kNoDevice = CHRONOS_E_NO_DEVICE,
  kConfig = CHRONOS_E_CONFIG,
  kBufferTooSmall = CHRONOS_E_BUFFER_TOO_SMALL,
  kWouldBlock = CHRONOS_E_WOULD_BLOCK,
  kPermissionDenied = CHRONOS_E_PERMISSION_DENIED,
};

/** Stable upper-case name of a status ("NO_CAPACITY"), used in JSON errors. */
const char *status_name(Status s);

/** Marker for "no time known" in earliest-fit fields. */
constexpr int64_t kNoTime = -1;

/** A failure with a status code; refusals also carry the earliest time the request could fit. */
class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string &message, int64_t earliest_fit_ms = kNoTime)
      : std::runtime_error(message), status_(status), earliest_fit_ms_(earliest_fit_ms) {}
  Status status() const { return status_; }
  int64_t earliest_fit_ms() const { return earliest_fit_ms_; }

 private:
  Status status_;
  int64_t earliest_fit_ms_;
};

}  // namespace chronos
