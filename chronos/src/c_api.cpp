// The C ABI (chronos.h). Every entry point catches everything: no exception crosses it.
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "chronos.h"
#include "engine.hpp"
#include "json.hpp"
#include "status.hpp"

struct chronos_handle {
  std::unique_ptr<chronos::Engine> engine;
};

namespace chronos {

const char *status_name(Status s) {
  switch (s) {
    case Status::kOk: return "OK";
    case Status::kInternal: return "INTERNAL";
    case Status::kInvalidArgument: return "INVALID_ARGUMENT";
    case Status::kNotFound: return "NOT_FOUND";
    case Status::kNoCapacity: return "NO_CAPACITY";
    case Status::kFairShare: return "FAIR_SHARE";
    case Status::kStateCorrupt: return "STATE_CORRUPT";
    case Status::kLockTimeout: return "LOCK_TIMEOUT";
    case Status::kIo: return "IO";
    case Status::kNoDevice: return "NO_DEVICE";
    case Status::kConfig: return "CONFIG";
    case Status::kBufferTooSmall: return "BUFFER_TOO_SMALL";
    case Status::kWouldBlock: return "WOULD_BLOCK";
    case Status::kPermissionDenied: return "PERMISSION_DENIED";
  }
  return "INTERNAL";
}

namespace {

// Per thread, like errno: concurrent calls never see each other's messages.
thread_local std::string t_last_error;

int set_error(Status s, const std::string &message) {
  t_last_error = message;
  return static_cast<int>(s);
}

// Copies json (with its NUL) into buf or reports the size needed.
int deliver(const std::string &json, char *buf, size_t buf_len, size_t *needed) {
  const size_t need = json.size() + 1;
  if (needed != nullptr) *needed = need;
  if (buf == nullptr || buf_len < need) {
    return set_error(Status::kBufferTooSmall, "buffer of " + std::to_string(buf_len) +
                                                  " bytes is too small: " + std::to_string(need) +
                                                  " bytes needed");
  }
  std::memcpy(buf, json.c_str(), need);
  return CHRONOS_OK;
}

// Records the failure and, when the buffer allows, writes it as JSON (message shortened if
// needed) so callers on another thread still learn the reason.
int fail(Status s, const std::string &message, int64_t earliest, char *buf, size_t buf_len,
         size_t *needed) {
  t_last_error = message;
  if (needed != nullptr) *needed = 0;
  if (buf != nullptr && buf_len > 0) {
    std::string msg = message;
    std::string json = error_json(static_cast<int>(s), status_name(s), msg, earliest);
    while (json.size() + 1 > buf_len && !msg.empty()) {
      const size_t excess = json.size() + 1 - buf_len;
      msg = excess + 3 < msg.size() ? msg.substr(0, msg.size() - excess - 3) + "..." : "";
      json = error_json(static_cast<int>(s), status_name(s), msg, earliest);
    }
    if (json.size() + 1 <= buf_len) {
      std::memcpy(buf, json.c_str(), json.size() + 1);
      if (needed != nullptr) *needed = json.size() + 1;
    } else {
      buf[0] = '\0';
    }
  }
  return static_cast<int>(s);
}

template <typename F>
int guarded(chronos_t *h, char *buf, size_t buf_len, size_t *needed, F &&produce) {
  try {
    t_last_error.clear();
    if (h == nullptr || !h->engine) {
      return fail(Status::kInvalidArgument, "handle is NULL (call chronos_init first)", kNoTime,
                  buf, buf_len, needed);
    }
    return deliver(produce(*h->engine), buf, buf_len, needed);
  } catch (const Error &e) {
    return fail(e.status(), e.what(), e.earliest_fit_ms(), buf, buf_len, needed);
  } catch (const std::bad_alloc &) {
    return fail(Status::kInternal, "out of memory", kNoTime, buf, buf_len, needed);
  } catch (const std::exception &e) {
    return fail(Status::kInternal, std::string("internal error: ") + e.what(), kNoTime, buf,
                buf_len, needed);
  } catch (...) {
    return fail(Status::kInternal, "internal error: unknown exception", kNoTime, buf, buf_len,
                needed);
  }
}

std::string str_or_empty(const char *s) { return s == nullptr ? std::string() : std::string(s); }

}  // namespace
}  // namespace chronos

using chronos::Engine;
using chronos::Error;
using chronos::Status;

namespace {

int create_impl(chronos_t *handle, uint32_t device, double memory, double duration_s,
                const char *owner, const char *job_id, char *buf, size_t buf_len, size_t *needed,
                bool nowait) {
  if (buf == nullptr || buf_len < CHRONOS_PARTITION_JSON_MAX) {
    // Checked first: a created partition whose id the caller cannot read would leak.
    if (needed != nullptr) *needed = CHRONOS_PARTITION_JSON_MAX;
    return chronos::set_error(Status::kBufferTooSmall,
                              "chronos_create needs a buffer of at least " +
                                  std::to_string(CHRONOS_PARTITION_JSON_MAX) + " bytes");
  }
  return chronos::guarded(handle, buf, buf_len, needed, [&](Engine &e) {
    return chronos::create_json(e.create(device, memory, duration_s, chronos::str_or_empty(owner),
                                         chronos::str_or_empty(job_id), nowait));
  });
}

int release_impl(chronos_t *handle, const char *partition_id, char *buf, size_t buf_len,
                 size_t *needed, bool nowait) {
  const bool want_output = buf != nullptr;
  char unused[1];
  return chronos::guarded(handle, want_output ? buf : unused,
                          want_output ? buf_len : sizeof unused, needed, [&](Engine &e) {
                            const chronos::PartitionOutcome r =
                                e.release(chronos::str_or_empty(partition_id), nowait);
                            return want_output ? chronos::partition_json(r.partition, r.now_ms)
                                               : std::string();
                          });
}

}  // namespace

extern "C" {

const char *chronos_version(void) { return CHRONOS_VERSION_STRING; }

const char *chronos_last_error(void) { return chronos::t_last_error.c_str(); }

chronos_t *chronos_init(const char *state_dir, const char *config_path) {
  try {
    chronos::t_last_error.clear();
    chronos::Config cfg =
        chronos::load_config(chronos::str_or_empty(state_dir), chronos::str_or_empty(config_path));
    auto h = std::make_unique<chronos_t>();
    const chronos::DeviceTypes types = cfg.device_types;
    h->engine = std::make_unique<Engine>(std::move(cfg), chronos::opencl_device_source(types));
    return h.release();
  } catch (const Error &e) {
    chronos::set_error(e.status(), e.what());
  } catch (const std::exception &e) {
    chronos::set_error(Status::kInternal, std::string("internal error: ") + e.what());
  } catch (...) {
    chronos::set_error(Status::kInternal, "internal error: unknown exception");
  }
  return nullptr;
}

void chronos_shutdown(chronos_t *handle) {
  // Re-owning the pointer is the one place a handle is destroyed.
  std::unique_ptr<chronos_t> owned(handle);
}

int chronos_device_count(chronos_t *handle, uint32_t *count) {
  char unused[1];
  size_t n = 0;
  const int rc = chronos::guarded(handle, unused, sizeof unused, nullptr, [&](Engine &e) {
    n = e.devices().size();
    return std::string();
  });
  if (rc == CHRONOS_OK && count != nullptr) *count = static_cast<uint32_t>(n);
  return rc;
}

int chronos_device_info(chronos_t *handle, uint32_t index, char *buf, size_t buf_len,
                        size_t *needed) {
  return chronos::guarded(handle, buf, buf_len, needed, [&](Engine &e) {
    const std::vector<chronos::DeviceInfo> devs = e.devices();
    if (index >= devs.size()) {
      throw Error(Status::kInvalidArgument, "unknown device " + std::to_string(index) + " (have " +
                                                std::to_string(devs.size()) + ")");
    }
    return chronos::device_json(devs[index]);
  });
}


int chronos_create(chronos_t *handle, uint32_t device, double memory, double duration_s,
                   const char *owner, const char *job_id, char *buf, size_t buf_len,
                   size_t *needed) {
  return create_impl(handle, device, memory, duration_s, owner, job_id, buf, buf_len, needed,
                     false);
}

int chronos_try_create(chronos_t *handle, uint32_t device, double memory, double duration_s,
                       const char *owner, const char *job_id, char *buf, size_t buf_len,
                       size_t *needed) {
  return create_impl(handle, device, memory, duration_s, owner, job_id, buf, buf_len, needed,
                     true);
}

int chronos_release(chronos_t *handle, const char *partition_id, char *buf, size_t buf_len,
                    size_t *needed) {
  return release_impl(handle, partition_id, buf, buf_len, needed, false);
}

int chronos_try_release(chronos_t *handle, const char *partition_id, char *buf, size_t buf_len,
                        size_t *needed) {
  return release_impl(handle, partition_id, buf, buf_len, needed, true);
}

int chronos_list(chronos_t *handle, char *buf, size_t buf_len, size_t *needed) {
  return chronos::guarded(handle, buf, buf_len, needed,
                          [&](Engine &e) { return chronos::list_json(e.list()); });
}

int chronos_stats(chronos_t *handle, char *buf, size_t buf_len, size_t *needed) {
  return chronos::guarded(handle, buf, buf_len, needed, [&](Engine &e) {
    return chronos::stats_json(e.stats(), e.config());
  });
}

int chronos_reap(chronos_t *handle, char *buf, size_t buf_len, size_t *needed) {
  return chronos::guarded(handle, buf, buf_len, needed,
                          [&](Engine &e) { return chronos::list_json(e.reap(), "reclaimed"); });
}

int chronos_repair(chronos_t *handle, char *buf, size_t buf_len, size_t *needed) {
  return chronos::guarded(handle, buf, buf_len, needed,
                          [&](Engine &e) { return chronos::repair_json(e.repair()); });
}

}  // extern "C"
