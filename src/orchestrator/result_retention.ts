/**
 * Result retention: a job's result (`<id>.bin` and `<id>.json` in the data
 * dir's results directory) is kept for the job's retention after the job
 * ends, then removed by a periodic sweep. The removal is recorded on the job
 * first (it keeps its record and `hasResult`), so GetResult can say why the
 * result is gone; a result of a job that has not ended is never touched.
 *
 * The same sweep removes job bundles (`<id>.tar.gz`) once their job has
 * ended: only a job's attempts fetch its bundle, and an ended job has no
 * attempt left. A bundle without a job record is removed only when it is
 * older than an hour (a submit moves the bundle in just before it records
 * the job).
 *
 * Each sweep reads, decides with a pure planner ({@link planResultRemovals},
 * {@link planLeftoverFiles}, {@link planBundleRemovals}; table-driven tests
 * beside), then applies the plan.
 * @module
 */
import { formatSeconds, isTerminal, type JobRecord, type JobSpec } from "../core/mod.ts";
import type { JobStore } from "../store/mod.ts";

/** An ended job whose result is still stored, as the store lists it. */
type StoredResult = ReturnType<JobStore["storedResults"]>[number];

/** What the sweeper uses, injected. */
export interface ResultSweeperDeps {
  store: JobStore;
  /** Directory of stored results. */
  resultDir: string;
  /** Directory of job bundles; bundles are not swept when absent. */
  bundleDir?: string;
  /**
   * The orchestrator's result_retention in seconds (0 = forever), for jobs
   * stored before specs carried their own.
   */
  defaultRetention: number;
  /** Milliseconds between sweeps (0 = only the one at start). */
  intervalMs: number;
  now: () => number;
  log: (msg: string) => void;
}

/** What one sweep did. */
export interface ResultSweepReport {
  /** Jobs whose result was removed. */
  removed: string[];
  /** Files left behind by an earlier removal (a crash between recording and removing) removed now. */
  leftovers: number;
  /** Bundles of ended jobs (or of no job, over an hour old) removed. */
  bundles: number;
}

/** Age past which a bundle with no job record is an orphan. */
const ORPHAN_BUNDLE_MS = 3600_000;
const BUNDLE_FILE_RE = /^(j-[0-9a-f]{12})\.tar\.gz$/;

/** The retention in seconds that applies to `spec` (0 = forever). */
export function retentionOf(
  spec: Pick<JobSpec, "resultRetention">,
  defaultRetention: number,
): number {
  return spec.resultRetention ?? defaultRetention;
}

/**
 * The GetResult message for a job whose result the sweep removed.
 * @example
 * resultRemovedMessage(job, 604800); // "result of job j-… was removed after its retention of 7d"
 */
export function resultRemovedMessage(job: JobRecord, defaultRetention: number): string {
  const retention = retentionOf(job.spec, defaultRetention);
  return `result of job ${job.id} was removed after its retention of ${formatSeconds(retention)}`;
}

/** The files of one job's result. */
export function resultFiles(resultDir: string, jobId: string): { data: string; meta: string } {
  return { data: `${resultDir}/${jobId}.bin`, meta: `${resultDir}/${jobId}.json` };
}

const RESULT_FILE_RE = /^(j-[0-9a-f]{12})\.(bin|json)$/;

/** Reads one job record (the store's `get`, or a map in tests); null when unknown. */
export type RecordLookup = (
  id: string,
) => Pick<JobRecord, "state" | "resultRemovedAt"> | null;

/**
 * The jobs whose result goes now: ended, with a retention (their own, else
 * `defaultRetention`; 0 = forever) that is over at `now`. Input order is kept.
 * @example
 * planResultRemovals([{ id, state: "SUCCEEDED", finishedAt: 0, resultRetention: 60 }], 60_000, 0);
 * // → [id]
 */
export function planResultRemovals(
  stored: readonly StoredResult[],
  now: number,
  defaultRetention: number,
): string[] {
  return stored.filter((r) => {
    if (!isTerminal(r.state)) return false;
    const retention = r.resultRetention ?? defaultRetention;
    return retention > 0 && r.finishedAt + retention * 1000 <= now;
  }).map((r) => r.id);
}

/**
 * The result files (names in the results directory) whose removal is already
 * recorded on their job: what a crash between recording and deleting leaves.
 * Files of jobs in `skip` (this sweep removed them) and other files stay.
 */
export function planLeftoverFiles(
  names: readonly string[],
  jobOf: RecordLookup,
  skip: ReadonlySet<string>,
): string[] {
  return names.filter((name) => {
    const m = RESULT_FILE_RE.exec(name);
    if (!m || skip.has(m[1])) return false;
    return (jobOf(m[1])?.resultRemovedAt ?? 0) > 0;
  });
}

/** A file in the bundle directory, with its modification time (null when unknown). */
export interface BundleFile {
  name: string;
  mtimeMs: number | null;
}

/**
 * The bundles to remove: those of ended jobs, and those of no job whose file
 * is over an hour old at `now`. A running job's bundle, a fresh orphan (its
 * submit may not have recorded the job yet), one of unknown age and files
 * that are no bundle stay.
 */
export function planBundleRemovals(
  files: readonly BundleFile[],
  jobOf: RecordLookup,
  now: number,
): string[] {
  return files.filter((f) => {
    const m = BUNDLE_FILE_RE.exec(f.name);
    if (!m) return false;
    const job = jobOf(m[1]);
    if (job) return isTerminal(job.state);
    return f.mtimeMs !== null && now - f.mtimeMs >= ORPHAN_BUNDLE_MS;
  }).map((f) => f.name);
}

async function removeIfThere(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names;
}

/** Removes results past their retention, once at start and then periodically. */
export class ResultSweeper {
  #d: ResultSweeperDeps;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running: Promise<unknown> | null = null;
  #closed = false;

  /** Creates the sweeper; nothing runs before {@link start} or {@link sweep}. */
  constructor(deps: ResultSweeperDeps) {
    this.#d = deps;
  }

  /**
   * Removes the result of every ended job whose retention is over: records
   * the removal on the job, then deletes its files. With `leftovers`, also
   * deletes files of results recorded as removed earlier (what a crash
   * between the two steps leaves).
   */
  async sweep(opts: { leftovers?: boolean } = {}): Promise<ResultSweepReport> {
    const now = this.#d.now();
    const store = this.#d.store;
    const jobOf: RecordLookup = (id) => store.get(id);
    const removed: string[] = [];
    for (const id of planResultRemovals(store.storedResults(), now, this.#d.defaultRetention)) {
      // Recorded first (compare-and-set), so GetResult can say why the files are gone.
      if (!store.markResultRemoved(id, now)) continue;
      const files = resultFiles(this.#d.resultDir, id);
      await removeIfThere(files.data);
      await removeIfThere(files.meta);
      removed.push(id);
    }
    let leftovers = 0;
    if (opts.leftovers) {
      const names = await namesIn(this.#d.resultDir);
      for (const name of planLeftoverFiles(names, jobOf, new Set(removed))) {
        if (await removeIfThere(`${this.#d.resultDir}/${name}`)) leftovers++;
      }
    }
    if (removed.length > 0 || leftovers > 0) {
      this.#d.log(
        `result retention: removed ${removed.length} result(s) past their retention` +
          (leftovers > 0 ? `, ${leftovers} leftover file(s)` : ""),
      );
    }
    const bundles = await this.#sweepBundles(now, jobOf);
    if (bundles > 0) this.#d.log(`bundle cleanup: removed ${bundles} bundle(s) of ended jobs`);
    return { removed, leftovers, bundles };
  }

  async #sweepBundles(now: number, jobOf: RecordLookup): Promise<number> {
    const dir = this.#d.bundleDir;
    if (!dir) return 0;
    const files: BundleFile[] = [];
    for (const name of await namesIn(dir)) {
      const st = await Deno.stat(`${dir}/${name}`).catch(() => null);
      files.push({ name, mtimeMs: st?.mtime?.getTime() ?? null });
    }
    let n = 0;
    for (const name of planBundleRemovals(files, jobOf, now)) {
      if (await removeIfThere(`${dir}/${name}`)) n++;
    }
    return n;
  }

  /** Sweeps now (leftovers included), then every `intervalMs` until {@link stop}. */
  async start(): Promise<ResultSweepReport> {
    const report = await this.#guarded({ leftovers: true });
    this.#schedule();
    return report;
  }

  /** Stops the periodic sweeps and waits for one in progress. */
  async stop(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  async #guarded(opts: { leftovers?: boolean }): Promise<ResultSweepReport> {
    const run = this.sweep(opts).catch((err) => {
      this.#d.log(`result retention: sweep failed: ${(err as Error).message}`);
      return { removed: [], leftovers: 0, bundles: 0 };
    });
    this.#running = run;
    try {
      return await run;
    } finally {
      this.#running = null;
    }
  }

  #schedule(): void {
    if (this.#closed || this.#d.intervalMs <= 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#guarded({}).finally(() => this.#schedule());
    }, this.#d.intervalMs);
  }
}
