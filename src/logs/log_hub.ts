/**
 * Keeps one {@link JobLog} per job, opened on first use, so every writer and
 * watcher of a job shares the same sequence numbers and wake-ups. Logs of
 * ended jobs that nobody asked for a while are let go (each holds up to
 * 48 MiB of encoded tail): a later reader opens the file again.
 * @module
 */
import { JobLog, type JobLogOptions } from "./job_log.ts";

/** Options of {@link LogHub}. */
export interface LogHubOptions {
  /** Clock, epoch ms. @default Date.now */
  now?: () => number;
  /**
   * A complete log (its job ended) not asked for in this many ms is let go.
   * @default 300_000
   */
  idleMs?: number;
  /** Bytes kept per job log ({@link JobLogOptions.maxBytes}). @default Infinity */
  maxLogBytes?: number;
}

/** How often, at most, {@link LogHub.get} looks for idle logs. */
const SWEEP_EVERY_MS = 60_000;

/** Registry of open job logs under one directory. */
export class LogHub {
  #dir: string;
  #now: () => number;
  #idleMs: number;
  #logOptions: JobLogOptions;
  #logs = new Map<string, { log: Promise<JobLog>; usedAt: number; opened?: JobLog }>();
  #sweptAt: number;

  /** Creates a hub storing `<dir>/<jobId>.log`. */
  constructor(dir: string, opts: LogHubOptions = {}) {
    this.#dir = dir;
    this.#now = opts.now ?? Date.now;
    this.#idleMs = opts.idleMs ?? 300_000;
    this.#logOptions = { maxBytes: opts.maxLogBytes };
    this.#sweptAt = this.#now();
  }

  /** Logs held open now. */
  get size(): number {
    return this.#logs.size;
  }

  /** The log of `jobId`, opened (and recovered) on first use. */
  get(jobId: string): Promise<JobLog> {
    const now = this.#now();
    if (now - this.#sweptAt >= SWEEP_EVERY_MS) this.evictIdle();
    let entry = this.#logs.get(jobId);
    if (!entry) {
      const log = JobLog.open(`${this.#dir}/${jobId}.log`, this.#logOptions);
      const made = { log, usedAt: now } as {
        log: Promise<JobLog>;
        usedAt: number;
        opened?: JobLog;
      };
      log.then((l) => made.opened = l, () => this.#logs.delete(jobId));
      this.#logs.set(jobId, made);
      entry = made;
    }
    entry.usedAt = now;
    return entry.log;
  }

  /**
   * Lets go of complete logs not asked for in `idleMs` (whoever still holds
   * one keeps using it: a complete log holds no file and takes no more lines).
   * Returns how many went.
   */
  evictIdle(): number {
    const now = this.#now();
    this.#sweptAt = now;
    let evicted = 0;
    for (const [jobId, e] of this.#logs) {
      if (e.opened?.complete && now - e.usedAt >= this.#idleMs) {
        this.#logs.delete(jobId);
        evicted++;
      }
    }
    return evicted;
  }

  /** Flushes and closes every open log (on shutdown). */
  async closeAll(): Promise<void> {
    for (const e of this.#logs.values()) {
      try {
        (await e.log).close();
      } catch {
        // A log that failed to open has nothing to flush.
      }
    }
  }
}
