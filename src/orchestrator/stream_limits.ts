/**
 * Per-connection and server-wide bounds on what clients may hold open: the
 * gRPC server's message sizes and HTTP/2 stream limit, and a count of the
 * long-lived streams (WatchJob, StreamLogs) that refuses one past its limit
 * with RESOURCE_EXHAUSTED naming the config key. A WatchJob stream costs the
 * orchestrator memory and event-loop time for as long as it is open (issue 14:
 * 2,000 of them took it to 2.3 GB, with health answering in 3.6–10 s).
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import { ResourceExhaustedError } from "../core/mod.ts";
import { toRpcError } from "../rpc/mod.ts";

/**
 * Largest request message the orchestrator accepts. Clients send bundles,
 * results and checkpoints in chunks of at most 1 MiB, and a job spec is
 * bounded far below this (src/core/job.ts), so only a hostile or broken
 * client gets grpc-js's RESOURCE_EXHAUSTED "Received message larger than max".
 */
export const MAX_REQUEST_MESSAGE_BYTES = 8 * 1024 * 1024;

/**
 * Largest reply message the orchestrator sends: the receive limit of every
 * Cumulus client (src/sdk/rpc.ts, src/sdk/python/cumulus/_rpc.py and
 * runtime.py), so the server refuses a reply no client would take, with
 * RESOURCE_EXHAUSTED "Sent message larger than max", before sending it.
 */
export const MAX_REPLY_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * Most bytes of jobs one ListJobs page carries (an upper estimate, see
 * {@link listedJobBytes}). A job's argv may hold 128 KiB and its env names
 * 64 KiB (src/core/job.ts), so a full page of 1,000 such jobs would be about
 * 190 MiB, past {@link MAX_REPLY_MESSAGE_BYTES}; a page is cut short instead,
 * with a page token for the rest.
 */
export const MAX_LIST_PAGE_BYTES = 16 * 1024 * 1024;

/**
 * An upper estimate of the bytes one listed job takes on the wire: its text
 * fields at 3 bytes per UTF-16 unit (UTF-8's worst case), env values as the
 * short placeholder listings send, plus 1 KiB for the fixed fields.
 */
export function listedJobBytes(
  spec: {
    image: string;
    command: readonly string[];
    env: Readonly<Record<string, string>>;
    constraints: readonly string[];
    name: string;
    user: string;
    workdir: string;
    s3Prefix: string;
  },
): number {
  let units = spec.image.length + spec.name.length + spec.user.length + spec.workdir.length +
    spec.s3Prefix.length;
  for (const a of spec.command) units += a.length + 2;
  for (const c of spec.constraints) units += c.length + 2;
  for (const k of Object.keys(spec.env)) units += k.length + 16;
  return 3 * units + 1024;
}

/**
 * The longest head of `items` whose sizes sum to at most `budget` (always at
 * least one item, so paging advances).
 */
export function cutToBudget<T>(items: readonly T[], sizeOf: (t: T) => number, budget: number): T[] {
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    total += sizeOf(items[i]);
    if (total > budget && i > 0) return items.slice(0, i);
  }
  return items.slice();
}

/**
 * grpc-js server options carrying the message-size and per-connection bounds.
 * Past `maxStreamsPerConnection` calls on one connection, grpc-js and grpcio
 * clients queue the next call until one ends (measured with both: no error),
 * so one connection cannot hold more, and a well-behaved client only waits.
 * @param maxStreamsPerConnection HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
 * @returns Options to merge into `new grpc.Server(...)`.
 */
export function boundedServerOptions(maxStreamsPerConnection: number): grpc.ServerOptions {
  return {
    "grpc.max_receive_message_length": MAX_REQUEST_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_REPLY_MESSAGE_BYTES,
    "grpc.max_concurrent_streams": maxStreamsPerConnection,
  };
}

/** The bound on one method's open streams. */
export interface StreamBound {
  /** Streams of this method open at once. */
  max: number;
  /** The config key that sets it, named in the error. */
  key: string;
  /**
   * Streams of this method one caller may hold at once (callers told apart
   * by {@link StreamLimiterOptions.callerOf}), so that one user cannot take
   * the whole `max`.
   */
  perCaller?: { max: number; key: string };
}

/** What {@link StreamLimiter} tells its owner. */
export interface StreamLimiterOptions {
  /** Called for every refused call (metrics). */
  onRefused?: (method: string) => void;
  /** Diagnostic logger; refusals are logged at most once per `logEveryMs`. */
  log?: (msg: string) => void;
  /** @default 10000 */
  logEveryMs?: number;
  /** Who holds a call, for the per-caller bounds ("" or null: not counted per caller). */
  callerOf?: (call: object) => string | null;
}

/** A grpc-js server call: any stream kind carries these events. */
type AnyCall =
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Counts open streams per method and refuses one past its bound.
 * @example
 * const limiter = new StreamLimiter({ WatchJob: { max: 1000, key: "max_watch_streams" } });
 * server.addService(def, limiter.wrap(cumulusHandlers(deps)));
 */
export class StreamLimiter {
  readonly #bounds: Readonly<Record<string, StreamBound>>;
  readonly #open = new Map<string, number>();
  /** Open streams by method and caller (`method\0caller`). */
  readonly #byCaller = new Map<string, number>();
  readonly #opts: StreamLimiterOptions;
  readonly #refusedSinceLog = new Map<string, number>();
  readonly #lastLog = new Map<string, number>();

  /** Creates a limiter for the methods named in `bounds`. */
  constructor(bounds: Readonly<Record<string, StreamBound>>, opts: StreamLimiterOptions = {}) {
    this.#bounds = bounds;
    this.#opts = opts;
  }

  /** Streams of `method` open now. */
  open(method: string): number {
    return this.#open.get(method) ?? 0;
  }

  /**
   * Wraps the bounded methods of a service implementation; others pass through.
   * A refused call ends at once with RESOURCE_EXHAUSTED; an admitted one frees
   * its place when it ends, fails or is cancelled (client gone included).
   */
  wrap(handlers: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    const out: grpc.UntypedServiceImplementation = { ...handlers };
    for (const [method, bound] of Object.entries(this.#bounds)) {
      const inner = handlers[method] as
        | ((call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => unknown)
        | undefined;
      if (!inner) continue;
      // A client stream (an upload) answers through `cb` and holds its place until it does.
      out[method] = (call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => {
        const n = this.open(method);
        const caller = bound.perCaller ? this.#opts.callerOf?.(call) || "" : "";
        const callerKey = `${method}\u0000${caller}`;
        const mine = caller ? this.#byCaller.get(callerKey) ?? 0 : 0;
        let refusal = "";
        if (n >= bound.max) {
          refusal = `${method}: ${bound.max} streams are open, the most the orchestrator serves ` +
            `at once (${bound.key}); close one or retry later`;
        } else if (caller && bound.perCaller && mine >= bound.perCaller.max) {
          refusal = `${method}: ${caller} holds ${mine} streams open, the most one user may ` +
            `(${bound.perCaller.key}); close one or retry later`;
        }
        if (refusal) {
          this.#refuse(method, bound);
          const err = toRpcError(new ResourceExhaustedError(refusal));
          if (cb) cb(err);
          else call.emit("error", err);
          return;
        }
        this.#open.set(method, n + 1);
        if (caller) this.#byCaller.set(callerKey, mine + 1);
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          this.#open.set(method, this.open(method) - 1);
          if (!caller) return;
          const left = (this.#byCaller.get(callerKey) ?? 1) - 1;
          if (left > 0) this.#byCaller.set(callerKey, left);
          else this.#byCaller.delete(callerKey);
        };
        if (cb) {
          call.once("cancelled", release);
          return inner(call, (err, value, ...rest) => {
            release();
            cb(err, value, ...rest);
          });
        }
        // A stream ends one of these ways; whichever comes first frees its place.
        for (const ev of ["close", "finish", "cancelled", "error"]) call.once(ev, release);
        return inner(call);
      };
    }
    return out;
  }

  #refuse(method: string, bound: StreamBound): void {
    this.#opts.onRefused?.(method);
    const refused = (this.#refusedSinceLog.get(method) ?? 0) + 1;
    this.#refusedSinceLog.set(method, refused);
    const now = performance.now();
    // Under a flood, one line per interval, not one per call.
    if (now - (this.#lastLog.get(method) ?? -Infinity) < (this.#opts.logEveryMs ?? 10_000)) return;
    this.#opts.log?.(`${method}: refused ${refused} stream(s) past ${bound.key} = ${bound.max}`);
    this.#lastLog.set(method, now);
    this.#refusedSinceLog.set(method, 0);
  }
}
