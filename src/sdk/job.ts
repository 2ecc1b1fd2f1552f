/**
 * The handle of one submitted job: follow its logs, wait for it, fetch its
 * result, cancel it.
 * @module
 */
import { CumulusRpcError } from "./errors.ts";
import { abortableSleep, type RetryOptions, retryUnavailable, type RpcConnection } from "./rpc.ts";
import { isTerminalState, type JobEvent, type JobRecord, type LogLine } from "./types.ts";
import { eventFromWire, jobFromWire, type WireMessage } from "./wire.ts";

/** Options of {@link Job.watch}. */
export interface WatchOptions {
  /** Deliver only lines with a sequence number above this (default 0: everything). */
  afterSeq?: number;
  /** Keep streaming until the job ends (default true); false stops after the backlog. */
  follow?: boolean;
  /** Only state changes, no log lines. */
  noLogs?: boolean;
  /** Stops the stream; the iterator then throws the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@link Job.logs}. */
export type LogsOptions = Omit<WatchOptions, "noLogs">;

/** Reconnection behaviour of a job's streams. */
export interface ReconnectOptions {
  /** Give up when the orchestrator stays unreachable this long (ms). */
  reconnectTimeoutMs: number;
}

const MAX_BACKOFF_MS = 2000;

/**
 * A job on the orchestrator. Obtained from {@link CumulusClient.submit} or
 * {@link CumulusClient.job}; holds only the id, so it is cheap to create.
 * @example
 * const job = await client.submit({ command: ["python3", "train.py"] });
 * for await (const line of job.logs()) console.log(line.text);
 * const final = await job.wait();
 * console.log(final.state, final.exitCode);
 */
export class Job {
  /** The job id (`j-` + 12 hex characters). */
  readonly id: string;
  readonly #rpc: RpcConnection;
  readonly #reconnect: ReconnectOptions;

  /** Wraps an existing job id; use {@link CumulusClient.job} rather than this. */
  constructor(id: string, rpc: RpcConnection, reconnect: ReconnectOptions) {
    this.id = id;
    this.#rpc = rpc;
    this.#reconnect = reconnect;
  }

  #retry(): RetryOptions {
    return { timeoutMs: this.#reconnect.reconnectTimeoutMs, reached: () => this.#rpc.reached };
  }

  /**
   * The current job record (GetJob). Throws NOT_FOUND for an unknown id.
   * Rides out an orchestrator restart (UNAVAILABLE is retried with backoff
   * for `reconnectTimeoutMs`).
   */
  async status(): Promise<JobRecord> {
    return jobFromWire(
      await retryUnavailable(() => this.#rpc.unary("GetJob", { jobId: this.id }), this.#retry()),
    );
  }

  /**
   * Cancels the job (CancelJob) and returns its record after the cancellation.
   * Never repeated on UNAVAILABLE: the first call may have cancelled the job
   * already, so look at {@link Job.status} before trying again.
   */
  async cancel(): Promise<JobRecord> {
    const res = await this.#rpc.unary("CancelJob", { jobId: this.id });
    return jobFromWire((res.job ?? {}) as WireMessage);
  }

  /**
   * Streams the job's state changes and log lines (WatchJob). The first event
   * carries the job record. If the connection drops (UNAVAILABLE, e.g. the
   * orchestrator restarts) the stream reconnects by itself and resumes after
   * the last line it delivered, so no line is lost or repeated; it gives up
   * with UNAVAILABLE after `reconnectTimeoutMs` without the orchestrator.
   * An orchestrator that cannot be reached at all fails the first call.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<JobEvent, void, undefined> {
    const follow = options.follow ?? true;
    const signal = options.signal;
    let afterSeq = options.afterSeq ?? 0;
    let last: JobRecord | null = null;
    let downSince: number | null = null;
    let backoff = 100;
    // Reconnecting makes sense only once the orchestrator answered: one that
    // is unreachable from the start is reported at once.
    let everConnected = this.#rpc.reached;
    while (true) {
      signal?.throwIfAborted();
      let failure: CumulusRpcError;
      const call = await this.#rpc.serverStream("WatchJob", {
        jobId: this.id,
        afterSeq,
        noLogs: options.noLogs ?? false,
        noFollow: !follow,
      }).catch((err) => {
        throw this.#rpc.error(err);
      });
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        for await (const message of call) {
          everConnected = true;
          this.#rpc.markReached();
          downSince = null;
          backoff = 100;
          const event = eventFromWire(message as WireMessage);
          // Lines at or below the resume point were already delivered
          // before a reconnect: dropping them keeps delivery exactly-once.
          const lines = event.lines.filter((l: LogLine) => l.seq > afterSeq);
          if (lines.length > 0) afterSeq = lines[lines.length - 1].seq;
          if (event.job) last = event.job;
          if (lines.length > 0 || event.job) yield { lines, job: event.job };
        }
        if (!follow || (last && isTerminalState(last.state))) return;
        // A clean end before the job finished means the server went away
        // (e.g. a graceful restart): resume like after a dropped connection.
        failure = new CumulusRpcError("UNAVAILABLE", "the log stream ended before the job did");
      } catch (err) {
        signal?.throwIfAborted();
        failure = this.#rpc.error(err);
        if (failure.code !== "UNAVAILABLE" || !everConnected) throw failure;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        call.cancel();
      }
      downSince ??= Date.now();
      if (Date.now() - downSince > this.#reconnect.reconnectTimeoutMs) throw failure;
      await abortableSleep(Math.min(backoff, this.#reconnect.reconnectTimeoutMs), signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /**
   * Iterates over the job's log lines, in order, each exactly once. By
   * default follows the job until it ends; `{ follow: false }` stops after
   * the lines stored so far; `{ afterSeq: n }` starts after line n.
   * @example
   * for await (const line of job.logs({ afterSeq: 100 })) {
   *   (line.stream === "stderr" ? console.error : console.log)(line.text);
   * }
   */
  async *logs(options: LogsOptions = {}): AsyncGenerator<LogLine, void, undefined> {
    for await (const event of this.watch({ ...options, noLogs: false })) {
      yield* event.lines;
    }
  }

  /**
   * Waits until the job is in a final state (SUCCEEDED, FAILED, CANCELLED,
   * EXPIRED) and returns its record. Survives orchestrator restarts like
   * {@link Job.watch}.
   */
  async wait(options: { signal?: AbortSignal } = {}): Promise<JobRecord> {
    let last: JobRecord | null = null;
    for await (const event of this.watch({ noLogs: true, follow: true, signal: options.signal })) {
      if (event.job) last = event.job;
      if (last && isTerminalState(last.state)) return last;
    }
    // The stream ended on a terminal state it had already reported.
    return last ?? await this.status();
  }

  /**
   * The job's result bytes (GetResult), e.g. a pickled Python return value,
   * or null when the job stored none. Throws NOT_FOUND when the result was
   * removed after its retention (the message says so).
   */
  async result(): Promise<Uint8Array | null> {
    let parts: Uint8Array[] = [];
    let total = 0;
    let messages = 0;
    // A stream cut by a restart is read again from the start.
    const read = async () => {
      parts = [];
      total = 0;
      messages = 0;
      try {
        const call = await this.#rpc.serverStream("GetResult", { jobId: this.id });
        for await (const message of call) {
          messages++;
          const data = (message as WireMessage).data;
          if (data instanceof Uint8Array && data.length > 0) {
            parts.push(new Uint8Array(data));
            total += data.length;
          }
        }
      } catch (err) {
        throw this.#rpc.error(err);
      }
    };
    try {
      await retryUnavailable(read, this.#retry());
    } catch (err) {
      const e = this.#rpc.error(err);
      if (e.code !== "NOT_FOUND") throw e;
      // NOT_FOUND means "no such job", "no result" or "removed": ask which.
      if ((await this.status()).resultRemovedAtMs !== null) throw e;
      return null;
    }
    if (messages === 0) return null;
    const out = new Uint8Array(total);
    let offset = 0;
    for (const p of parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }
}
