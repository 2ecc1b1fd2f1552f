/**
 * SQLite job store (node:sqlite, WAL). The only code that writes SQL. Every
 * state change is a compare-and-set on the current state, so two actors can
 * never both move a job, and illegal transitions are refused.
 * @module
 */
import type { SQLInputValue, StatementSync } from "node:sqlite";
import { SqliteDb } from "./sqlite.ts";
import {
  type CheckpointMark,
  type CheckpointTier,
  FailedPreconditionError,
  isTerminal,
  type JobRecord,
  type JobSpec,
  type JobState,
  NotFoundError,
  type ReasonCode,
  TRANSITIONS,
} from "../core/mod.ts";

/** Fields that may change together with a transition or on their own. */
export interface JobPatch {
  exitCode?: number | null;
  reason?: string;
  startedAt?: number | null;
  finishedAt?: number | null;
  attempts?: number;
  nodeId?: string;
  serviceId?: string;
  hasResult?: boolean;
  partitionId?: string;
  gpuDevice?: number;
  /** Every partition of the attempt, in GPU order (stored comma-joined). */
  partitionIds?: string[];
  /** Every placed device, in GPU order (stored comma-joined). */
  gpuDevices?: number[];
  reasonCode?: ReasonCode;
  deadlineMs?: number;
  resultRemovedAt?: number;
}

/** An ended job whose result is still stored, as {@link JobStore.storedResults} lists it. */
export interface StoredResult {
  id: string;
  state: JobState;
  /** When the job ended, epoch ms. */
  finishedAt: number;
  /** The spec's result retention in seconds, or undefined for records older than it. */
  resultRetention: number | undefined;
}

/** Filters and paging for {@link JobStore.list}. */
export interface ListQuery {
  /** Only these states (empty = any). */
  states?: JobState[];
  /** Only this user. */
  user?: string;
  /** Page size. */
  limit: number;
  /** Return jobs submitted before this seq (newest first paging); 0 = from the newest. */
  beforeSeq?: number;
}

/** A new job as {@link JobStore.insert} takes it. */
export interface NewJob {
  id: string;
  spec: JobSpec;
  token: string;
  bundleBytes: number;
  createdAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  user TEXT NOT NULL,
  spec TEXT NOT NULL,
  function BLOB,
  state TEXT NOT NULL,
  exit_code INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  node_id TEXT NOT NULL DEFAULT '',
  service_id TEXT NOT NULL DEFAULT '',
  token TEXT NOT NULL,
  bundle_bytes INTEGER NOT NULL DEFAULT 0,
  has_result INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user);
CREATE TABLE IF NOT EXISTS job_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  from_state TEXT NOT NULL,
  to_state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events(job_id);
`;

/** Columns added after the first schema: added in place to older stores. */
const MIGRATIONS: ReadonlyArray<[column: string, definition: string]> = [
  ["partition_id", "TEXT NOT NULL DEFAULT ''"],
  ["gpu_device", "INTEGER NOT NULL DEFAULT 0"],
  ["deadline_ms", "INTEGER NOT NULL DEFAULT 0"],
  // When the result was removed after its retention; 0 while it is kept.
  ["result_removed_at", "INTEGER NOT NULL DEFAULT 0"],
  // The newest reported checkpoint; ckpt_at = 0 means none.
  ["ckpt_step", "INTEGER NOT NULL DEFAULT 0"],
  ["ckpt_tier", "TEXT NOT NULL DEFAULT ''"],
  ["ckpt_at", "INTEGER NOT NULL DEFAULT 0"],
  // Whole-GPU jobs: every partition and device of the attempt, comma-joined.
  ["partition_ids", "TEXT NOT NULL DEFAULT ''"],
  ["gpu_devices", "TEXT NOT NULL DEFAULT ''"],
  ["reason_code", "TEXT NOT NULL DEFAULT ''"],
];

type Row = Record<string, SQLInputValue>;

const PATCH_COLUMNS: Record<keyof JobPatch, string> = {
  exitCode: "exit_code",
  reason: "reason",
  startedAt: "started_at",
  finishedAt: "finished_at",
  attempts: "attempts",
  nodeId: "node_id",
  serviceId: "service_id",
  hasResult: "has_result",
  partitionId: "partition_id",
  gpuDevice: "gpu_device",
  partitionIds: "partition_ids",
  gpuDevices: "gpu_devices",
  reasonCode: "reason_code",
  deadlineMs: "deadline_ms",
  resultRemovedAt: "result_removed_at",
};

function rowToJob(row: Row): JobRecord {
  const spec = JSON.parse(String(row.spec)) as Omit<JobSpec, "function">;
  const fn = row.function instanceof Uint8Array ? row.function : new Uint8Array();
  const listed = row.function_len !== undefined;
  return {
    id: String(row.id),
    seq: Number(row.seq),
    spec: { ...spec, function: fn },
    ...(listed ? { functionBytes: Number(row.function_len ?? 0) } : {}),
    state: String(row.state) as JobState,
    exitCode: row.exit_code === null ? null : Number(row.exit_code),
    reason: String(row.reason),
    createdAt: Number(row.created_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    attempts: Number(row.attempts),
    nodeId: String(row.node_id),
    serviceId: String(row.service_id),
    logSeq: 0,
    token: String(row.token),
    bundleBytes: Number(row.bundle_bytes),
    hasResult: Number(row.has_result) === 1,
    partitionId: String(row.partition_id ?? ""),
    gpuDevice: Number(row.gpu_device ?? 0),
    partitionIds: splitList(row.partition_ids),
    gpuDevices: splitList(row.gpu_devices).map(Number),
    reasonCode: String(row.reason_code ?? "") as ReasonCode,
    deadlineMs: Number(row.deadline_ms ?? 0),
    resultRemovedAt: Number(row.result_removed_at ?? 0),
    lastCheckpoint: Number(row.ckpt_at ?? 0) > 0
      ? {
        step: Number(row.ckpt_step),
        tier: String(row.ckpt_tier) as CheckpointTier,
        atMs: Number(row.ckpt_at),
      }
      : null,
  };
}

function splitList(value: SQLInputValue | undefined): string[] {
  const text = String(value ?? "");
  return text === "" ? [] : text.split(",");
}

function patchValue(key: keyof JobPatch, value: unknown): SQLInputValue {
  if (key === "hasResult") return value ? 1 : 0;
  if (key === "partitionIds" || key === "gpuDevices") return (value as unknown[]).join(",");
  return (value ?? null) as SQLInputValue;
}

/** Persistent job records and their transition history. */
export class JobStore {
  readonly #sql: SqliteDb;
  /** Every column but `function`, plus its length: what listings read. */
  #listColumns: string;

  private constructor(sql: SqliteDb, columns: string[]) {
    this.#sql = sql;
    this.#listColumns = [
      ...columns.filter((c) => c !== "function"),
      "length(function) AS function_len",
    ].join(", ");
  }

  /** Opens (creating when needed) the store at `path` (":memory:" for tests). */
  static open(path: string): JobStore {
    const sql = new SqliteDb(
      path,
      SCHEMA,
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
    );
    const db = sql.db;
    const have = new Set(
      (db.prepare("PRAGMA table_info(jobs)").all() as Row[]).map((r) => String(r.name)),
    );
    for (const [column, definition] of MIGRATIONS) {
      if (!have.has(column)) db.exec(`ALTER TABLE jobs ADD COLUMN ${column} ${definition}`);
    }
    const columns = (db.prepare("PRAGMA table_info(jobs)").all() as Row[]).map((r) =>
      String(r.name)
    );
    return new JobStore(sql, columns);
  }

  /** Closes the database. */
  close(): void {
    this.#sql.close();
  }

  /** Filters and patches make SQL from a bounded set of parts: each is prepared once. */
  #prepare(sql: string): StatementSync {
    return this.#sql.prepare(sql);
  }

  /** Inserts a QUEUED job; the whole record is written in one statement. */
  insert(job: NewJob): JobRecord {
    const { function: fn, ...rest } = job.spec;
    this.#prepare(
      `INSERT INTO jobs (id, user, spec, function, state, created_at, token, bundle_bytes)
       VALUES (?, ?, ?, ?, 'QUEUED', ?, ?, ?)`,
    ).run(
      job.id,
      job.spec.user,
      JSON.stringify(rest),
      fn.length > 0 ? fn : null,
      job.createdAt,
      job.token,
      job.bundleBytes,
    );
    return this.mustGet(job.id);
  }

  /** The job with `id`, or null. */
  get(id: string): JobRecord | null {
    const row = this.#prepare("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return row ? rowToJob(row) : null;
  }

  /** The job with `id`; throws NotFoundError. */
  mustGet(id: string): JobRecord {
    const job = this.get(id);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    return job;
  }

  /**
   * Moves a job from one of `from` to `to` and applies `patch`, atomically.
   * Throws FailedPreconditionError when the job is in another state or the
   * transition is not allowed.
   */
  transition(
    id: string,
    from: JobState | readonly JobState[],
    to: JobState,
    patch: JobPatch = {},
    now = Date.now(),
  ): JobRecord {
    const froms = typeof from === "string" ? [from] : from;
    const sets = ["state = ?"];
    const values: SQLInputValue[] = [to];
    if (isTerminal(to) && patch.finishedAt === undefined) patch = { ...patch, finishedAt: now };
    for (const [k, v] of Object.entries(patch)) {
      const key = k as keyof JobPatch;
      sets.push(`${PATCH_COLUMNS[key]} = ?`);
      values.push(patchValue(key, v));
    }
    const placeholders = froms.map(() => "?").join(", ");
    this.#sql.transaction(() => {
      const before = this.#prepare("SELECT state FROM jobs WHERE id = ?").get(id) as
        | Row
        | undefined;
      if (!before) throw new NotFoundError(`job ${id} not found`);
      const current = String(before.state) as JobState;
      if (froms.includes(current) && !TRANSITIONS[current].includes(to)) {
        throw new FailedPreconditionError(`illegal transition ${current} -> ${to}`);
      }
      const res = this.#prepare(
        `UPDATE jobs SET ${sets.join(", ")} WHERE id = ? AND state IN (${placeholders})`,
      ).run(...values, id, ...froms);
      if (Number(res.changes) !== 1) {
        throw new FailedPreconditionError(
          `job ${id} is ${before.state}, expected ${froms.join(" or ")}`,
        );
      }
      this.#prepare(
        "INSERT INTO job_events (job_id, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)",
      ).run(id, now, String(before.state), to, patch.reason ?? "");
    });
    return this.mustGet(id);
  }

  /** Updates fields that are not the state. */
  update(id: string, patch: JobPatch): JobRecord {
    const entries = Object.entries(patch);
    if (entries.length > 0) {
      const sets = entries.map(([k]) => `${PATCH_COLUMNS[k as keyof JobPatch]} = ?`);
      const values = entries.map(([k, v]) => patchValue(k as keyof JobPatch, v));
      const res = this.#prepare(`UPDATE jobs SET ${sets.join(", ")} WHERE id = ?`).run(
        ...values,
        id,
      );
      if (Number(res.changes) !== 1) throw new NotFoundError(`job ${id} not found`);
    }
    return this.mustGet(id);
  }

  /**
   * Records a checkpoint the job reported, unless a newer step is recorded
   * already (reports may arrive out of order: an L2 upload finishes after the
   * next L1 save). The same step again replaces the record ("l2" after "l1").
   * Returns the job; throws NotFoundError.
   */
  recordCheckpoint(id: string, mark: CheckpointMark): JobRecord {
    this.#prepare(
      `UPDATE jobs SET ckpt_step = ?, ckpt_tier = ?, ckpt_at = ?
       WHERE id = ? AND (ckpt_at = 0 OR ckpt_step <= ?)`,
    ).run(mark.step, mark.tier, mark.atMs, id, mark.step);
    return this.mustGet(id);
  }

  /**
   * Ended jobs whose result is still stored (not yet removed), oldest end
   * first. Reads neither the function nor anything else large.
   */
  storedResults(): StoredResult[] {
    const rows = this.#prepare(
      `SELECT id, state, finished_at, json_extract(spec, '$.resultRetention') AS retention
       FROM jobs WHERE has_result = 1 AND result_removed_at = 0 AND finished_at IS NOT NULL
       ORDER BY finished_at`,
    ).all() as Row[];
    return rows.map((r) => ({
      id: String(r.id),
      state: String(r.state) as JobState,
      finishedAt: Number(r.finished_at),
      resultRetention: r.retention === null ? undefined : Number(r.retention),
    }));
  }

  /**
   * Records that a job's result was removed at `at` (epoch ms), unless that
   * was recorded already or the job has not ended. Returns whether it was
   * recorded now.
   */
  markResultRemoved(id: string, at: number): boolean {
    const res = this.#prepare(
      `UPDATE jobs SET result_removed_at = ?
       WHERE id = ? AND result_removed_at = 0 AND finished_at IS NOT NULL`,
    ).run(at, id);
    return Number(res.changes) === 1;
  }

  /** Jobs newest first, filtered, one page at a time. */
  list(q: ListQuery): JobRecord[] {
    const where: string[] = [];
    const values: SQLInputValue[] = [];
    if (q.states && q.states.length > 0) {
      where.push(`state IN (${q.states.map(() => "?").join(", ")})`);
      values.push(...q.states);
    }
    if (q.user) {
      where.push("user = ?");
      values.push(q.user);
    }
    if (q.beforeSeq && q.beforeSeq > 0) {
      where.push("seq < ?");
      values.push(q.beforeSeq);
    }
    // A page of jobs never reads the pickled calls (up to MBs each): only their size.
    const sql = `SELECT ${this.#listColumns} FROM jobs ${
      where.length ? "WHERE " + where.join(" AND ") : ""
    }
      ORDER BY seq DESC LIMIT ?`;
    const rows = this.#prepare(sql).all(...values, q.limit) as Row[];
    return rows.map(rowToJob);
  }

  /** Jobs in any of `states`, oldest first (queue order). */
  inStates(states: readonly JobState[]): JobRecord[] {
    const rows = this.#prepare(
      `SELECT * FROM jobs WHERE state IN (${states.map(() => "?").join(", ")}) ORDER BY seq ASC`,
    ).all(...states) as Row[];
    return rows.map(rowToJob);
  }

  /**
   * Id, user and submission order of the jobs in `states`, oldest first:
   * enough to order a queue without reading specs or pickled functions.
   */
  queueEntries(states: readonly JobState[]): Array<{ id: string; user: string; seq: number }> {
    const rows = this.#prepare(
      `SELECT id, user, seq FROM jobs WHERE state IN (${
        states.map(() => "?").join(", ")
      }) ORDER BY seq ASC`,
    ).all(...states) as Row[];
    return rows.map((r) => ({ id: String(r.id), user: String(r.user), seq: Number(r.seq) }));
  }

  /** Number of QUEUED jobs of `user`. */
  countQueued(user: string): number {
    const row = this.#prepare(
      "SELECT COUNT(*) AS n FROM jobs WHERE state = 'QUEUED' AND user = ?",
    ).get(user) as Row;
    return Number(row.n);
  }

  /** Number of jobs per state. */
  countByState(): Partial<Record<JobState, number>> {
    const rows = this.#prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
      .all() as Row[];
    const out: Partial<Record<JobState, number>> = {};
    for (const r of rows) out[String(r.state) as JobState] = Number(r.n);
    return out;
  }

  /** Transition history of one job, oldest first. */
  events(
    id: string,
  ): Array<{ seq: number; at: number; from: JobState; to: JobState; reason: string }> {
    const rows = this.#prepare(
      "SELECT id, at, from_state, to_state, reason FROM job_events WHERE job_id = ? ORDER BY id",
    ).all(id) as Row[];
    return rows.map((r) => ({
      seq: Number(r.id),
      at: Number(r.at),
      from: String(r.from_state) as JobState,
      to: String(r.to_state) as JobState,
      reason: String(r.reason),
    }));
  }
}
