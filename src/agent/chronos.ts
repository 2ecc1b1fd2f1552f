/**
 * Deno FFI binding to libchronos.so (chronos/include/chronos.h): GPU time-sharing partitions.
 *
 * Every call that may wait on the state file's lock (or on OpenCL discovery, or on a disk) is
 * declared `nonblocking`, so it runs on a worker thread and never stalls the event loop. Create
 * and release first try `chronos_try_*`, synchronous calls that never wait (they return
 * WOULD_BLOCK instead, having changed nothing); only then do they hop to a worker thread. The hop
 * costs more than the whole uncontended operation on a memory-backed state directory (see
 * docs/chronos.md), so the common case stays fast and the waiting case stays off the event loop.
 * Results come back as JSON in caller-owned buffers and are parsed here, once, into the
 * camel-cased types below.
 * @module
 */
import { CumulusError, type ErrorCode } from "../core/mod.ts";

/** Symbols of chronos.h. Pointer-sized arguments use "buffer" so Uint8Arrays pass directly. */
const SYMBOLS = {
  chronos_version: { parameters: [], result: "pointer" },
  chronos_last_error: { parameters: [], result: "pointer" },
  chronos_init: { parameters: ["buffer", "buffer"], result: "pointer" },
  chronos_shutdown: { parameters: ["pointer"], result: "void" },
  chronos_device_count: { parameters: ["pointer", "buffer"], result: "i32", nonblocking: true },
  chronos_device_info: {
    parameters: ["pointer", "u32", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  chronos_create: {
    parameters: ["pointer", "u32", "f64", "f64", "buffer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  chronos_release: {
    parameters: ["pointer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // Never wait (see chronos.h), so they are safe to call on the event loop.
  chronos_try_create: {
    parameters: ["pointer", "u32", "f64", "f64", "buffer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
  },
  chronos_try_release: {
    parameters: ["pointer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
  },
  chronos_list: {
    parameters: ["pointer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  chronos_stats: {
    parameters: ["pointer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  chronos_reap: {
    parameters: ["pointer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  chronos_repair: {
    parameters: ["pointer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
} as const;

type ChronosSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Status names of chronos.h, indexed by their numeric code. */
export const CHRONOS_STATUS = [
  "OK",
  "INTERNAL",
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "NO_CAPACITY",
  "FAIR_SHARE",
  "STATE_CORRUPT",
  "LOCK_TIMEOUT",
  "IO",
  "NO_DEVICE",
  "CONFIG",
  "BUFFER_TOO_SMALL",
  "WOULD_BLOCK",
  "PERMISSION_DENIED",
] as const;

/** A Chronos status name, e.g. `"NO_CAPACITY"`. */
export type ChronosStatus = typeof CHRONOS_STATUS[number];

// The numeric statuses this file branches on, named (chronos.h's CHRONOS_OK, …).
const OK = CHRONOS_STATUS.indexOf("OK");
const BUFFER_TOO_SMALL = CHRONOS_STATUS.indexOf("BUFFER_TOO_SMALL");
const WOULD_BLOCK = CHRONOS_STATUS.indexOf("WOULD_BLOCK");

/** Size that always holds one partition or one error (CHRONOS_PARTITION_JSON_MAX is 1024). */
const PARTITION_BUFFER = 4096;
/** First size tried for lists; grown to what the library asks for. */
const LIST_BUFFER = 64 * 1024;

/** How each Chronos status maps onto the gRPC-named codes the rest of Cumulus uses. */
const GRPC_CODE: Record<ChronosStatus, ErrorCode> = {
  OK: "INTERNAL",
  INTERNAL: "INTERNAL",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  NOT_FOUND: "NOT_FOUND",
  NO_CAPACITY: "RESOURCE_EXHAUSTED",
  FAIR_SHARE: "RESOURCE_EXHAUSTED",
  STATE_CORRUPT: "FAILED_PRECONDITION",
  LOCK_TIMEOUT: "UNAVAILABLE",
  IO: "UNAVAILABLE",
  NO_DEVICE: "UNAVAILABLE",
  CONFIG: "FAILED_PRECONDITION",
  BUFFER_TOO_SMALL: "INTERNAL",
  WOULD_BLOCK: "UNAVAILABLE",
  PERMISSION_DENIED: "PERMISSION_DENIED",
};

/**
 * A failed Chronos call. `code` is the Cumulus (gRPC-named) code; `chronosCode` and `status`
 * are Chronos's own (also chronos_cli's exit code). Refusals carry `earliestFitMs`.
 */
export class ChronosError extends CumulusError {
  /** Chronos status name, e.g. `"NO_CAPACITY"`. */
  readonly chronosCode: ChronosStatus;
  /** Numeric status (chronos.h), equal to chronos_cli's exit code. */
  readonly status: number;
  /** For NO_CAPACITY / FAIR_SHARE: epoch ms when the request would fit if nothing changes. */
  readonly earliestFitMs: number | null;
  /** Creates the error from a Chronos status and message. */
  constructor(status: number, message: string, earliestFitMs: number | null = null) {
    const name: ChronosStatus = CHRONOS_STATUS[status] ?? "INTERNAL";
    super(GRPC_CODE[name], message);
    this.name = "ChronosError";
    this.chronosCode = name;
    this.status = status;
    this.earliestFitMs = earliestFitMs;
  }
}

/** One OpenCL device Chronos manages. */
export interface DeviceInfo {
  /** Chronos device index (0-based). */
  index: number;
  /** Device name as OpenCL reports it. */
  name: string;
  /** Vendor as OpenCL reports it. */
  vendor: string;
  /** OpenCL platform name. */
  platform: string;
  /** "GPU", "CPU", "ACCELERATOR" or "OTHER". */
  type: string;
  /** OpenCL driver version. */
  driverVersion: string;
  /** OpenCL version the device supports. */
  openclVersion: string;
  /** Global memory of the device in bytes. */
  totalMemoryBytes: number;
  /**
   * PCI address as sysfs writes it ("0000:19:00.0", lower-case hex), read through the vendor's
   * OpenCL extension (NVIDIA, AMD); "" when the device reports none (PoCL's CPU device).
   */
  pciBusId: string;
}

/** A live (or just released) partition. */
export interface Partition {
  /** "p-" + 12 hex digits. */
  id: string;
  /** Device index. */
  device: number;
  /** Fraction of the device's memory, 0 < f <= 1. */
  memory: number;
  /** Bytes of the device this partition holds. */
  memoryBytes: number;
  /** User name of the holder. */
  owner: string;
  /** "" when the partition has no job. */
  jobId: string;
  /** Creation time, epoch ms. */
  startMs: number;
  /** Expiry time, epoch ms. */
  expiresAtMs: number;
  /** Lifetime in seconds. */
  durationS: number;
  /** Seconds left at the time of the call. */
  remainingS: number;
}

/** Result of {@link Chronos.create}: `existing` is true when the job id already had one. */
export interface CreatedPartition extends Partition {
  /** True when this is the live partition of a repeated job id. */
  existing: boolean;
}

/** Live partitions at `nowMs`. */
export interface PartitionList {
  /** Time of the call, epoch ms. */
  nowMs: number;
  /** Live partitions, oldest first. */
  partitions: Partition[];
}

/** A device with its allocation. */
export interface DeviceStats {
  /** Chronos device index (0-based). */
  index: number;
  /** Device name as OpenCL reports it. */
  name: string;
  /** Vendor as OpenCL reports it. */
  vendor: string;
  /** OpenCL platform name. */
  platform: string;
  /** "GPU", "CPU", "ACCELERATOR" or "OTHER". */
  type: string;
  /** Global memory of the device in bytes. */
  totalMemoryBytes: number;
  /** Sum of the fractions held. */
  allocated: number;
  /** 1 − allocated. */
  free: number;
  /** Bytes not reserved by any partition. */
  freeMemoryBytes: number;
  /** Number of live partitions (in stats: on this device or in total). */
  partitions: number;
  /** Fraction held per owner. */
  owners: Record<string, number>;
}

/** An owner whose last request was refused and who counts as waiting (fair share). */
export interface Waiter {
  /** User name of the holder. */
  owner: string;
  /** Device index. */
  device: number;
  /** Fraction of the device's memory, 0 < f <= 1. */
  memory: number;
  /** Counts as waiting until this time, epoch ms. */
  untilMs: number;
}

/** Everything `chronos_stats` reports. */
export interface ChronosStats {
  /** Library version. */
  version: string;
  /** Time of the call, epoch ms. */
  nowMs: number;
  /** State directory in use. */
  stateDir: string;
  /** Config file that was read ("" when none). */
  configPath: string;
  /** Fair-share and locking settings in force. */
  policy: {
    /** Most an owner may hold on a device while others hold or wait. */
    maxSharePerOwner: number;
    /** How long a refused owner counts as waiting. */
    waiterTtlS: number;
    /** How long a call waits for a live lock holder. */
    lockTimeoutMs: number;
    /** "auto", "gpu", "cpu" or "all". */
    deviceTypes: string;
  };
  /** Every managed device with its allocation. */
  devices: DeviceStats[];
  /** Number of live partitions (in stats: on this device or in total). */
  partitions: number;
  /** Owners currently counted as waiting. */
  waiting: Waiter[];
}

/** What {@link Chronos.repair} did. */
export interface RepairResult {
  /** False when the file was fine and nothing was done. */
  repaired: boolean;
  /** Records kept. */
  kept?: number;
  /** Records dropped as malformed or over-allocating. */
  dropped?: number;
  /** Where the damaged file was kept. */
  movedTo?: string;
}

/** Parameters of {@link Chronos.create}. */
export interface CreateRequest {
  /** Device index. */
  device: number;
  /** Fraction of the device's memory, 0 < f <= 1. */
  memory: number;
  /** Lifetime in seconds. */
  duration: number;
  /** User name; "anonymous" when omitted. */
  owner?: string;
  /** Job id; a live partition for the same id is returned instead of a new one. */
  jobId?: string;
}

/** Where to find the library and which state to use. */
export interface ChronosOptions {
  /** Full path of libchronos.so; default {@link resolveLibraryPath}. */
  libraryPath?: string;
  /** State directory; default CHRONOS_STATE_DIR, then Chronos's built-in default. */
  stateDir?: string;
  /** YAML config file; default CHRONOS_CONFIG, then /etc/chronos/config.yaml if present. */
  configPath?: string;
  /**
   * Try the never-waiting synchronous call before hopping to a worker thread (default true).
   * False always hops, as every call that may wait must.
   */
  fastPath?: boolean;
}

/** Inputs of {@link resolveLibraryPath}, injectable for tests. */
export interface LibraryLocation {
  /** Value of CUMULUS_CHRONOS_PATH (a directory), if set. */
  chronosPath?: string;
  /** Path of the running executable (Deno.execPath()). */
  execPath: string;
  /** Returns true when a file exists. */
  exists: (path: string) => boolean;
}

const LIBRARY_NAME = "libchronos.so";

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Finds libchronos.so: in CUMULUS_CHRONOS_PATH when set (and only there, so a wrong setting
 * fails loudly), else next to the executable (a packaged agent), else chronos/build of this
 * checkout (development).
 * @example
 * resolveLibraryPath({ execPath: Deno.execPath(), exists: () => true });
 */
export function resolveLibraryPath(where: LibraryLocation): string {
  if (where.chronosPath) {
    const path = `${where.chronosPath.replace(/\/+$/, "")}/${LIBRARY_NAME}`;
    if (!where.exists(path)) {
      throw new ChronosError(
        9,
        `CUMULUS_CHRONOS_PATH is ${where.chronosPath}, but ${path} does not exist`,
      );
    }
    return path;
  }
  const beside = `${dirname(where.execPath)}/${LIBRARY_NAME}`;
  if (where.exists(beside)) return beside;
  const dev = new URL(`../../chronos/build/${LIBRARY_NAME}`, import.meta.url);
  if (dev.protocol === "file:" && where.exists(dev.pathname)) return dev.pathname;
  throw new ChronosError(
    9,
    `${LIBRARY_NAME} not found: set CUMULUS_CHRONOS_PATH to its directory, put it next to ` +
      `${where.execPath}, or build it with \`bash chronos/build.sh release\``,
  );
}

/** The default location, from the process environment. */
export function defaultLibraryPath(): string {
  return resolveLibraryPath({
    chronosPath: Deno.env.get("CUMULUS_CHRONOS_PATH"),
    execPath: Deno.execPath(),
    exists: fileExists,
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** NUL-terminated UTF-8 for a `const char *` argument; null passes NULL. */
function cString(s: string | undefined): Uint8Array<ArrayBuffer> | null {
  if (s === undefined || s === "") return null;
  if (s.includes("\0")) throw new ChronosError(2, "strings passed to Chronos must not contain NUL");
  const bytes = new Uint8Array(encoder.encode(s).length + 1);
  encoder.encodeInto(s, bytes);
  return bytes;
}

function readCString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return decoder.decode(end < 0 ? buf : buf.subarray(0, end));
}

// deno-lint-ignore no-explicit-any
type Raw = any;

function toPartition(r: Raw): Partition {
  return {
    id: String(r.id),
    device: Number(r.device),
    memory: Number(r.memory),
    memoryBytes: Number(r.memory_bytes),
    owner: String(r.owner),
    jobId: String(r.job_id ?? ""),
    startMs: Number(r.start_ms),
    expiresAtMs: Number(r.expires_at_ms),
    durationS: Number(r.duration_s),
    remainingS: Number(r.remaining_s),
  };
}

function toDevice(r: Raw): DeviceInfo {
  return {
    index: Number(r.index),
    name: String(r.name),
    vendor: String(r.vendor),
    platform: String(r.platform),
    type: String(r.type),
    driverVersion: String(r.driver_version ?? ""),
    openclVersion: String(r.opencl_version ?? ""),
    totalMemoryBytes: Number(r.total_memory_bytes),
    // "" for devices without a PCI address (PoCL) and from libraries older than the field.
    pciBusId: String(r.pci_bus_id ?? ""),
  };
}

function toStats(r: Raw): ChronosStats {
  return {
    version: String(r.version),
    nowMs: Number(r.now_ms),
    stateDir: String(r.state_dir),
    configPath: String(r.config_path),
    policy: {
      maxSharePerOwner: Number(r.policy.max_share_per_owner),
      waiterTtlS: Number(r.policy.waiter_ttl_s),
      lockTimeoutMs: Number(r.policy.lock_timeout_ms),
      deviceTypes: String(r.policy.device_types),
    },
    devices: (r.devices as Raw[]).map((d) => ({
      index: Number(d.index),
      name: String(d.name),
      vendor: String(d.vendor),
      platform: String(d.platform),
      type: String(d.type),
      totalMemoryBytes: Number(d.total_memory_bytes),
      allocated: Number(d.allocated),
      free: Number(d.free),
      freeMemoryBytes: Number(d.free_memory_bytes),
      partitions: Number(d.partitions),
      owners: Object.fromEntries(
        Object.entries(d.owners as Record<string, unknown>).map(([k, v]) => [k, Number(v)]),
      ),
    })),
    partitions: Number(r.partitions),
    waiting: (r.waiting as Raw[]).map((w) => ({
      owner: String(w.owner),
      device: Number(w.device),
      memory: Number(w.memory),
      untilMs: Number(w.until_ms),
    })),
  };
}

/**
 * An open Chronos handle over libchronos.so. Close it with {@link Chronos.close} (or `using`).
 * @example
 * const chronos = Chronos.open({ stateDir: "/run/chronos" });
 * try {
 *   const p = await chronos.create({ device: 0, memory: 0.5, duration: 60, owner: "alice" });
 *   await chronos.release(p.id);
 * } finally {
 *   chronos.close();
 * }
 */
export class Chronos implements Disposable {
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #sym: ChronosSymbols;
  #handle: Deno.PointerObject | null;
  #inflight = 0;
  #closing = false;
  #fastPath: boolean;
  /** Path of the loaded library. */
  readonly libraryPath: string;

  private constructor(
    lib: Deno.DynamicLibrary<typeof SYMBOLS>,
    handle: Deno.PointerObject,
    path: string,
    fastPath: boolean,
  ) {
    this.#fastPath = fastPath;
    this.#lib = lib;
    this.#sym = lib.symbols;
    this.#handle = handle;
    this.libraryPath = path;
  }

  /**
   * Loads the library and opens a handle. Cheap: OpenCL devices are discovered on first need.
   * Throws {@link ChronosError} (NO_DEVICE when the library is missing, CONFIG for bad config).
   */
  static open(options: ChronosOptions = {}): Chronos {
    const path = options.libraryPath ?? defaultLibraryPath();
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (err) {
      throw new ChronosError(9, `cannot load ${path}: ${(err as Error).message}`);
    }
    const handle = lib.symbols.chronos_init(
      cString(options.stateDir),
      cString(options.configPath),
    );
    if (handle === null) {
      // chronos_init is a synchronous call, so the thread-local last error is ours.
      const message = Chronos.#lastError(lib.symbols);
      lib.close();
      throw new ChronosError(message.startsWith("invalid configuration") ? 10 : 1, message);
    }
    return new Chronos(lib, handle, path, options.fastPath ?? true);
  }

  static #lastError(sym: ChronosSymbols): string {
    const p = sym.chronos_last_error();
    return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
  }

  /** Library version, e.g. "0.1.0". */
  version(): string {
    const p = this.#sym.chronos_version();
    return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
  }

  #live(): Deno.PointerObject {
    if (this.#handle === null || this.#closing) {
      throw new ChronosError(2, "this Chronos handle is closed");
    }
    return this.#handle;
  }

  /** Runs one native call, keeping the handle alive until it returns (see close()). */
  async #call<T>(fn: (h: Deno.PointerObject) => Promise<T>): Promise<T> {
    const h = this.#live();
    this.#inflight++;
    try {
      return await fn(h);
    } finally {
      this.#inflight--;
      if (this.#closing && this.#inflight === 0) this.#destroy();
    }
  }

  /** Turns a non-zero status into a ChronosError, reading the error JSON the call wrote. */
  #fail(status: number, buf: Uint8Array | null): never {
    if (buf !== null && buf[0] === 0x7b /* { */) {
      try {
        const e = JSON.parse(readCString(buf)).error;
        throw new ChronosError(
          Number(e.status),
          String(e.message),
          e.earliest_fit_ms === undefined ? null : Number(e.earliest_fit_ms),
        );
      } catch (err) {
        if (err instanceof ChronosError) throw err;
      }
    }
    throw new ChronosError(status, `Chronos call failed with status ${CHRONOS_STATUS[status]}`);
  }

  /** Calls a `(handle, buf, len, needed)` function, growing the buffer until the JSON fits. */
  async #json(
    call: (
      h: Deno.PointerObject,
      buf: Uint8Array<ArrayBuffer>,
      len: bigint,
      needed: Uint8Array<ArrayBuffer>,
    ) => Promise<number>,
    initial: number,
  ): Promise<Raw> {
    let size = initial;
    for (let attempt = 0; attempt < 8; attempt++) {
      const buf = new Uint8Array(size);
      const needed = new BigUint64Array(1);
      const status = await this.#call((h) =>
        call(h, buf, BigInt(size), new Uint8Array(needed.buffer))
      );
      if (status === OK) return JSON.parse(readCString(buf));
      if (status !== BUFFER_TOO_SMALL) this.#fail(status, buf);
      // The state may have grown between calls; leave headroom.
      size = Math.max(Number(needed[0]) + 4096, size * 2);
    }
    throw new ChronosError(BUFFER_TOO_SMALL, "Chronos output kept outgrowing its buffer");
  }

  /** Number of managed devices (discovers OpenCL devices on first use). */
  async deviceCount(): Promise<number> {
    const out = new Uint32Array(1);
    const status = await this.#call((h) =>
      this.#sym.chronos_device_count(h, new Uint8Array(out.buffer))
    );
    if (status !== OK) {
      // The reason is in this call's thread-local error, which we cannot read from here;
      // device_info fails the same way and writes it into a buffer.
      await this.#json((h, b, l, nd) => this.#sym.chronos_device_info(h, 0, b, l, nd), 4096);
      throw new ChronosError(status, `cannot list devices: ${CHRONOS_STATUS[status]}`);
    }
    return out[0];
  }

  /** Every managed device. */
  async devices(): Promise<DeviceInfo[]> {
    const n = await this.deviceCount();
    const out: DeviceInfo[] = [];
    for (let i = 0; i < n; i++) {
      out.push(toDevice(
        await this.#json(
          (h, b, l, nd) => this.#sym.chronos_device_info(h, i, b, l, nd),
          PARTITION_BUFFER,
        ),
      ));
    }
    return out;
  }

  /**
   * Creates a partition, or returns the live one of the same job id. Throws ChronosError:
   * INVALID_ARGUMENT, NO_CAPACITY / FAIR_SHARE (with earliestFitMs), ...
   */
  async create(req: CreateRequest): Promise<CreatedPartition> {
    if (!Number.isInteger(req.device) || req.device < 0 || req.device > 0xffffffff) {
      throw new ChronosError(2, `device must be a non-negative integer, got ${req.device}`);
    }
    const owner = cString(req.owner);
    const job = cString(req.jobId);
    const raw = this.#tryNow((b, l) =>
      this.#sym.chronos_try_create(
        this.#live(),
        req.device,
        req.memory,
        req.duration,
        owner,
        job,
        b,
        l,
        null,
      )
    ) ?? await this.#json(
      (h, b, l, nd) =>
        this.#sym.chronos_create(h, req.device, req.memory, req.duration, owner, job, b, l, nd),
      PARTITION_BUFFER,
    );
    return { ...toPartition(raw), existing: raw.existing === true };
  }

  /** Releases a live partition; NOT_FOUND when it was released or has expired. */
  async release(id: string): Promise<Partition> {
    const cid = cString(id);
    const raw =
      this.#tryNow((b, l) => this.#sym.chronos_try_release(this.#live(), cid, b, l, null)) ??
        await this.#json(
          (h, b, l, nd) => this.#sym.chronos_release(h, cid, b, l, nd),
          PARTITION_BUFFER,
        );
    return toPartition(raw);
  }

  /**
   * Runs a never-waiting `chronos_try_*` call on this thread. Returns the parsed result, or
   * undefined when the call would have had to wait (then nothing changed and the caller hops to
   * a worker thread). Other failures throw as usual.
   */
  #tryNow(call: (buf: Uint8Array<ArrayBuffer>, len: bigint) => number): Raw | undefined {
    if (!this.#fastPath) return undefined;
    const buf = new Uint8Array(PARTITION_BUFFER);
    const status = call(buf, BigInt(buf.length));
    if (status === OK) return JSON.parse(readCString(buf));
    if (status === WOULD_BLOCK) return undefined;
    this.#fail(status, buf);
  }

  /** Live partitions, oldest first. */
  async list(): Promise<PartitionList> {
    const raw = await this.#json(
      (h, b, l, nd) => this.#sym.chronos_list(h, b, l, nd),
      LIST_BUFFER,
    );
    return { nowMs: Number(raw.now_ms), partitions: (raw.partitions as Raw[]).map(toPartition) };
  }

  /** Devices with their allocation, the policy and waiting owners. */
  async stats(): Promise<ChronosStats> {
    return toStats(
      await this.#json((h, b, l, nd) => this.#sym.chronos_stats(h, b, l, nd), LIST_BUFFER),
    );
  }

  /** Reclaims expired partitions now and returns them (for the agent's expiry loop). */
  async reap(): Promise<PartitionList> {
    const raw = await this.#json(
      (h, b, l, nd) => this.#sym.chronos_reap(h, b, l, nd),
      LIST_BUFFER,
    );
    return { nowMs: Number(raw.now_ms), partitions: (raw.reclaimed as Raw[]).map(toPartition) };
  }

  /** Salvages a corrupt state file (see chronos_repair). */
  async repair(): Promise<RepairResult> {
    const raw = await this.#json(
      (h, b, l, nd) => this.#sym.chronos_repair(h, b, l, nd),
      PARTITION_BUFFER,
    );
    return raw.repaired
      ? {
        repaired: true,
        kept: Number(raw.kept),
        dropped: Number(raw.dropped),
        movedTo: String(raw.moved_to),
      }
      : { repaired: false };
  }

  /**
   * Closes the handle and unloads the library. Idempotent. Calls still running finish first:
   * the library is unloaded when the last of them returns, never under a native thread.
   */
  close(): void {
    if (this.#handle === null || this.#closing) return;
    this.#closing = true;
    if (this.#inflight === 0) this.#destroy();
  }

  #destroy(): void {
    if (this.#handle === null) return;
    this.#sym.chronos_shutdown(this.#handle);
    this.#handle = null;
    this.#lib.close();
  }

  /** Same as {@link Chronos.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
