/*
 * chronos.h: the C ABI of Chronos, GPU time-sharing over OpenCL.
 *
 * This header is the only boundary of libchronos.so (used by the Cumulus agent through
 * Deno.dlopen). Plain types only, caller-owned buffers, an int status on every call and
 * chronos_last_error() for the message. No C++ exception ever crosses it.
 *
 * Model: a partition is (device index, memory fraction 0 < f <= 1, duration, owner, optional job
 * id) with an id ("p-" + 12 hex digits), a start and an expiry time. The fractions on one device
 * never sum above 1.0. Expired partitions are reclaimed on every call. State is shared by every
 * process on the host through a state file under CHRONOS_STATE_DIR guarded by flock(2).
 * See docs/chronos.md for the fair-share policy, the state file and the exit codes.
 *
 * Threads: a handle may be used from several threads at once; every call takes the state file
 * lock itself. chronos_last_error() is per thread (like errno); calls that fill a buffer also
 * write their error into it as JSON, so a caller on another thread (Deno's nonblocking FFI calls)
 * still gets the reason. After fork(), open a new handle in the child.
 */
#ifndef CHRONOS_H
#define CHRONOS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CHRONOS_API __attribute__((visibility("default")))
#else
#define CHRONOS_API
#endif

/* Status codes. chronos_cli exits with the same numbers. */
#define CHRONOS_OK 0
#define CHRONOS_E_INTERNAL 1          /* a bug or an unexpected failure */
#define CHRONOS_E_INVALID_ARGUMENT 2  /* bad value: fraction, duration, device, owner, id syntax */
#define CHRONOS_E_NOT_FOUND 3         /* no live partition with that id */
#define CHRONOS_E_NO_CAPACITY 4       /* the device has too little free memory now */
#define CHRONOS_E_FAIR_SHARE 5        /* the owner would exceed its share while others hold/wait */
#define CHRONOS_E_STATE_CORRUPT 6     /* the state file is damaged; see chronos_repair() */
#define CHRONOS_E_LOCK_TIMEOUT 7      /* another live process held the lock too long */
#define CHRONOS_E_IO 8                /* the state directory or file could not be used */
#define CHRONOS_E_NO_DEVICE 9         /* OpenCL found no usable device */
#define CHRONOS_E_CONFIG 10           /* the config file or an environment override is invalid */
#define CHRONOS_E_BUFFER_TOO_SMALL 11 /* *needed holds the size required, including the NUL */
#define CHRONOS_E_WOULD_BLOCK 12      /* chronos_try_*: the call would have to wait; nothing changed */
#define CHRONOS_E_PERMISSION_DENIED 13 /* the partition was made by another uid (non-root callers) */

/* A buffer of this size always holds one partition (create/release) or one error. */
#define CHRONOS_PARTITION_JSON_MAX 1024

/* Opaque handle. */
typedef struct chronos_handle chronos_t;

/* Library version, e.g. "0.1.0". Static storage. */
CHRONOS_API const char *chronos_version(void);

/* Message of the last failed call on this thread ("" if none). Valid until the next call on
 * this thread. */
CHRONOS_API const char *chronos_last_error(void);

/* Opens Chronos. state_dir and config_path may be NULL or "" for the defaults
 * (CHRONOS_STATE_DIR, CHRONOS_CONFIG, then built-in defaults; see docs/chronos.md).
 * Fast: OpenCL devices are discovered on first need. Returns NULL on failure
 * (chronos_last_error() says why). */
CHRONOS_API chronos_t *chronos_init(const char *state_dir, const char *config_path);

/* Closes a handle from chronos_init(); NULL is ignored. Partitions stay in the state file. */
CHRONOS_API void chronos_shutdown(chronos_t *handle);

/* Number of devices Chronos manages (discovers OpenCL devices on first use). */
CHRONOS_API int chronos_device_count(chronos_t *handle, uint32_t *count);

/* Every call below writes NUL-terminated JSON into buf (buf_len bytes). If buf is too small it
 * returns CHRONOS_E_BUFFER_TOO_SMALL and, when needed is not NULL, stores the size required
 * (including the NUL) in *needed; it also stores the size written on success. On any other
 * failure it writes {"error":{"code":"NO_CAPACITY","status":4,"message":"...",
 * "earliest_fit_ms":...}} when the buffer is large enough (earliest_fit_ms only for refusals). */

/* One device: {"index":0,"name":...,"vendor":...,"platform":...,"type":"GPU",
 * "total_memory_bytes":...}. */
CHRONOS_API int chronos_device_info(chronos_t *handle, uint32_t index, char *buf, size_t buf_len,
                                    size_t *needed);

/* Creates a partition of `memory` (0 < f <= 1) of device `device` for `duration_s` seconds.
 * owner may be NULL/"" ("anonymous"); job_id may be NULL/"". If job_id names a live partition,
 * that partition is returned instead of a new one ("existing":true): retries are idempotent.
 * buf must hold CHRONOS_PARTITION_JSON_MAX bytes; this is checked before anything changes.
 * On a refusal (NO_CAPACITY, FAIR_SHARE) the error JSON carries earliest_fit_ms. */
CHRONOS_API int chronos_create(chronos_t *handle, uint32_t device, double memory,
                               double duration_s, const char *owner, const char *job_id, char *buf,
                               size_t buf_len, size_t *needed);

/* Releases a live partition by id and writes it as JSON. buf may be NULL (buf_len 0).
 * A caller that is not root may release only partitions its own effective uid created (each
 * partition records its creator's uid); another's answers CHRONOS_E_PERMISSION_DENIED, as does
 * a create whose job_id names another uid's live partition. */
CHRONOS_API int chronos_release(chronos_t *handle, const char *partition_id, char *buf,
                                size_t buf_len, size_t *needed);

/* Like chronos_create / chronos_release, but never wait: they return CHRONOS_E_WOULD_BLOCK,
 * having changed nothing, when the call would have to wait for the state file's lock (another
 * caller holds it), for the disk (the state directory is not memory-backed, so fsync may take
 * milliseconds) or for OpenCL (devices not discovered yet on this handle). An event loop can
 * call these synchronously and fall back to the waiting variants on another thread. */
CHRONOS_API int chronos_try_create(chronos_t *handle, uint32_t device, double memory,
                                   double duration_s, const char *owner, const char *job_id,
                                   char *buf, size_t buf_len, size_t *needed);
CHRONOS_API int chronos_try_release(chronos_t *handle, const char *partition_id, char *buf,
                                    size_t buf_len, size_t *needed);

/* {"now_ms":...,"partitions":[{...,"remaining_s":...}]}, oldest first. */
CHRONOS_API int chronos_list(chronos_t *handle, char *buf, size_t buf_len, size_t *needed);

/* Devices with their allocation, the policy and the waiting owners. */
CHRONOS_API int chronos_stats(chronos_t *handle, char *buf, size_t buf_len, size_t *needed);

/* Reclaims expired partitions now: {"now_ms":...,"reclaimed":[...]} (what this call freed). */
CHRONOS_API int chronos_reap(chronos_t *handle, char *buf, size_t buf_len, size_t *needed);

/* Recovers a corrupt state file: moves it aside (kept for inspection) and keeps every record
 * that is still well formed and fits. {"repaired":true,"kept":N,"dropped":M,"moved_to":...};
 * {"repaired":false} when the file was fine. */
CHRONOS_API int chronos_repair(chronos_t *handle, char *buf, size_t buf_len, size_t *needed);

#ifdef __cplusplus
}
#endif

#endif /* CHRONOS_H */
