/**
 * Keeps one {@link JobLog} per job, opened on first use, so every writer and
 * watcher of a job shares the same sequence numbers and wake-ups.
 * @module
 */
import { JobLog } from "./job_log.ts";

/** Registry of open job logs under one directory. */
export class LogHub {
  #dir: string;
  #logs = new Map<string, Promise<JobLog>>();

  /** Creates a hub storing `<dir>/<jobId>.log`. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The log of `jobId`, opened (and recovered) on first use. */
  get(jobId: string): Promise<JobLog> {
    let p = this.#logs.get(jobId);
    if (!p) {
      p = JobLog.open(`${this.#dir}/${jobId}.log`);
      this.#logs.set(jobId, p);
      p.catch(() => this.#logs.delete(jobId));
    }
    return p;
  }

  /** Flushes and closes every open log (on shutdown). */
  async closeAll(): Promise<void> {
    for (const p of this.#logs.values()) {
      try {
        (await p).close();
      } catch {
        // A log that failed to open has nothing to flush.
      }
    }
  }
}
