/**
 * The agent's expiry daemon (`cumulus-agent serve`): when a job's partition reaches its expiry
 * time, stop the job's container(s) on this host (SIGTERM, a grace period for a final
 * checkpoint, then SIGKILL) and release the partition.
 *
 * It keeps no state of its own, so it survives being killed at any point: Chronos's state file
 * is the truth. Chronos reclaims expired partitions on every call (anyone's `list`, `create`...),
 * so the daemon remembers, in memory only, the partitions it saw on its last look: one that has
 * vanished past its expiry time expired, whoever reclaimed it. Its own `reap` catches those that
 * expired while it was down and nobody else had reclaimed. A container whose partition expired
 * and was reclaimed by someone else while the daemon was down is not seen here; the
 * orchestrator's reconciliation (a service without a partition) stops it.
 * @module
 */
import { pause } from "../core/mod.ts";
import { ChronosError, type Partition, type PartitionList } from "./chronos.ts";
import { grantJobId } from "./grants.ts";

/** The Chronos calls the daemon makes (a {@link Chronos} handle satisfies it). */
export interface PartitionStore {
  /** Live partitions; reclaims expired ones as a side effect. */
  list(): Promise<PartitionList>;
  /** Reclaims expired partitions now and returns them. */
  reap(): Promise<PartitionList>;
  /** Releases a partition; throws ChronosError NOT_FOUND when it is gone. */
  release(id: string): Promise<Partition>;
}

/** Stops the containers of a job on this host. */
export interface JobContainers {
  /**
   * Stops every running container labelled with the job id (SIGTERM, then SIGKILL after
   * `graceS`) and returns their (short) ids; an empty list when none runs here.
   */
  stopJob(jobId: string, graceS: number): Promise<string[]>;
}

/** Settings of {@link ExpiryDaemon}. */
export interface ExpiryDaemonOptions {
  /** Seconds between SIGTERM and SIGKILL. */
  graceS: number;
  /** Longest pause between two looks at the partitions, ms. */
  intervalMs: number;
  /** Writes one log line (no trailing newline). */
  log(line: string): void;
  /** Tries at stopping a job's containers when the engine fails (default 10). */
  stopAttempts?: number;
  /** Pause between those tries, ms (default 1000). */
  retryPauseMs?: number;
  /** Clock, epoch ms; injectable for tests. */
  now?: () => number;
}

/**
 * Enforces partition expiry on one worker. Call {@link ExpiryDaemon.run} with an AbortSignal;
 * {@link ExpiryDaemon.tick} does one pass (for tests).
 * @example
 * const daemon = new ExpiryDaemon(chronos, containers, { graceS: 10, intervalMs: 500, log });
 * await daemon.run(controller.signal);
 */
export class ExpiryDaemon {
  #store: PartitionStore;
  #containers: JobContainers;
  #opts: ExpiryDaemonOptions;
  #now: () => number;
  /** Partitions seen on the last look, by id (memory only). */
  #known = new Map<string, Partition>();
  /** Expiries being enforced, by job id. */
  #handling = new Map<string, Promise<void>>();

  /** Creates the daemon; nothing runs until {@link ExpiryDaemon.run} or a tick. */
  constructor(store: PartitionStore, containers: JobContainers, opts: ExpiryDaemonOptions) {
    this.#store = store;
    this.#containers = containers;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Expiries still being enforced (their containers are stopping). */
  get pending(): number {
    return this.#handling.size;
  }

  /** Waits until every expiry started so far is enforced. */
  async settle(): Promise<void> {
    while (this.#handling.size > 0) await Promise.all([...this.#handling.values()]);
  }

  /**
   * One look: reap, list, and start enforcing every job partition that expired since the last
   * look. Returns the ms until the nearest known expiry (Infinity when none).
   */
  async tick(): Promise<number> {
    const reaped = await this.#store.reap();
    const { nowMs, partitions } = await this.#store.list();
    const expired = new Map<string, Partition>();
    for (const p of reaped.partitions) expired.set(p.id, p);
    const live = new Set(partitions.map((p) => p.id));
    for (const p of this.#known.values()) {
      // Gone and past its expiry: it expired, or was released within the last interval before
      // it (then the job is ending anyway). Gone before its expiry: released by its owner.
      if (!live.has(p.id) && p.expiresAtMs <= nowMs) expired.set(p.id, p);
    }
    this.#known = new Map(partitions.map((p) => [p.id, p]));
    // A job that holds a live partition again (placed anew under a new lease) is alive.
    // A whole-GPU group's members ("J:g<k>") belong to job J: its container is labelled J.
    const liveJobs = new Set(partitions.map((p) => grantJobId(p.jobId)));
    for (const p of expired.values()) {
      const job = grantJobId(p.jobId);
      if (job === "" || liveJobs.has(job) || this.#handling.has(job)) continue;
      const work = this.#enforce(p, job).finally(() => this.#handling.delete(job));
      this.#handling.set(job, work);
    }
    let next = Infinity;
    for (const p of partitions) next = Math.min(next, p.expiresAtMs - this.#now());
    return next;
  }

  async #enforce(p: Partition, job: string): Promise<void> {
    const { graceS, log } = this.#opts;
    const late = Math.max(0, this.#now() - p.expiresAtMs);
    log(
      `expired ${p.id} (job ${p.jobId}, owner ${p.owner}, ${late} ms ago): stopping the job's ` +
        `containers, SIGTERM then SIGKILL after ${graceS} s`,
    );
    const t0 = this.#now();
    // The engine may be restarting: retry for a while (memory only; a restarted daemon relies
    // on the orchestrator's reconciliation for what it no longer sees).
    const attempts = this.#opts.stopAttempts ?? 10;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const stopped = await this.#containers.stopJob(job, graceS);
        log(
          stopped.length === 0
            ? `job ${job}: no running container on this host`
            : `job ${job}: stopped ${stopped.join(", ")} in ${this.#now() - t0} ms`,
        );
        break;
      } catch (err) {
        const last = attempt === attempts;
        log(
          `job ${job}: stopping its containers failed (attempt ${attempt}/${attempts}` +
            `${last ? ", giving up" : ""}): ${(err as Error).message}`,
        );
        if (!last) await pause(this.#opts.retryPauseMs ?? 1_000);
      }
    }
    try {
      await this.#store.release(p.id);
      log(`released ${p.id} (job ${p.jobId})`);
    } catch (err) {
      if (err instanceof ChronosError && err.chronosCode === "NOT_FOUND") {
        log(`${p.id} (job ${p.jobId}) was already reclaimed by Chronos`);
      } else {
        log(`releasing ${p.id} failed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Looks at the partitions every `intervalMs` (sooner when an expiry is nearer) until `signal`
   * aborts. A failing look is logged and retried; it never ends the loop.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { intervalMs, log } = this.#opts;
    let lastError = "";
    while (!signal.aborted) {
      let wait = intervalMs;
      try {
        const next = await this.tick();
        wait = Math.max(5, Math.min(intervalMs, next + 5));
        lastError = "";
      } catch (err) {
        const message = (err as Error).message;
        if (message !== lastError) log(`looking at partitions failed: ${message}`);
        lastError = message;
      }
      await pause(wait, signal);
    }
  }
}
