/**
 * Joined workers and their join tokens in the orchestrator's SQLite store
 * (the `workers` and `join_tokens` tables of jobs.db). A join token is kept
 * as its SHA-256 only; using it and storing the worker happen in one
 * transaction, so a token is spent exactly when a worker is stored.
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import { SqliteDb } from "./sqlite.ts";

/** A stored join token (never its text). */
export interface JoinTokenRecord {
  /** Public id (12 hex digits), the `<id>` in `cuj_<id>_<secret>`. */
  id: string;
  /** SHA-256 of the token text, hex. */
  hash: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms; 0 = not used yet. */
  usedAt: number;
  /** The worker that used it ("" = none). */
  usedBy: string;
}

/** What a stored worker is doing. */
export const WORKER_STATES = { active: "active", draining: "draining" } as const;
/** A stored worker's state. */
export type WorkerState = typeof WORKER_STATES[keyof typeof WORKER_STATES];

/** A worker that joined through a join token. */
export interface WorkerRecord {
  /** Unique name (the node's hostname or the operator's choice). */
  name: string;
  /** `user@host:port` of its agent over SSH. */
  sshTarget: string;
  /** Its SSH host key, `type base64` (pinned in known_hosts too). */
  hostKey: string;
  /** Epoch ms. */
  addedAt: number;
  state: WorkerState;
}

/** What a join decides, given the token and any worker of that name. */
export type JoinDecision =
  | { kind: "store"; worker: WorkerRecord }
  | { kind: "unchanged"; worker: WorkerRecord }
  | { kind: "refuse"; error: Error };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS join_tokens (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER NOT NULL DEFAULT 0,
  used_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS workers (
  name TEXT PRIMARY KEY,
  ssh_target TEXT NOT NULL,
  host_key TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'active'
);
`;

type Row = Record<string, SQLInputValue>;

function rowToToken(r: Row): JoinTokenRecord {
  return {
    id: String(r.id),
    hash: String(r.hash),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    usedAt: Number(r.used_at),
    usedBy: String(r.used_by),
  };
}

function rowToWorker(r: Row): WorkerRecord {
  return {
    name: String(r.name),
    sshTarget: String(r.ssh_target),
    hostKey: String(r.host_key),
    addedAt: Number(r.added_at),
    state: String(r.state) === "draining" ? "draining" : "active",
  };
}

/** The joined workers and join tokens of one orchestrator. */
export class WorkerStore {
  readonly #sql: SqliteDb;

  private constructor(sql: SqliteDb) {
    this.#sql = sql;
  }

  /**
   * Opens (creating the tables when needed) the worker tables of the SQLite
   * file at `path` (the job store's file; ":memory:" for tests).
   */
  static open(path: string): WorkerStore {
    return new WorkerStore(new SqliteDb(path, SCHEMA));
  }

  /** Closes the database. */
  close(): void {
    this.#sql.close();
  }

  /** Stores a new join token; returns whether it was stored (false: the id exists). */
  insertJoinToken(t: Omit<JoinTokenRecord, "usedAt" | "usedBy">): boolean {
    const res = this.#sql.prepare(
      "INSERT OR IGNORE INTO join_tokens (id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
    ).run(t.id, t.hash, t.createdAt, t.expiresAt);
    return Number(res.changes) === 1;
  }

  /** The join token with `id`, or null. */
  joinToken(id: string): JoinTokenRecord | null {
    const row = this.#sql.prepare("SELECT * FROM join_tokens WHERE id = ?").get(id) as
      | Row
      | undefined;
    return row ? rowToToken(row) : null;
  }

  /**
   * Joins a worker in one transaction: `decide` sees the token with
   * `tokenId` and the stored worker named `name` (each null when absent);
   * a "store" decision writes the worker and marks the token used by it at
   * `now`, "unchanged" and "refuse" write nothing.
   * @returns The decision taken.
   */
  join(
    tokenId: string,
    name: string,
    now: number,
    decide: (token: JoinTokenRecord | null, current: WorkerRecord | null) => JoinDecision,
  ): JoinDecision {
    return this.#sql.transaction(() => {
      const decision = decide(this.joinToken(tokenId), this.get(name));
      if (decision.kind === "store") {
        const w = decision.worker;
        this.#sql.prepare(
          `INSERT INTO workers (name, ssh_target, host_key, added_at, state) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET ssh_target = excluded.ssh_target,
             host_key = excluded.host_key, state = excluded.state`,
        ).run(w.name, w.sshTarget, w.hostKey, w.addedAt, w.state);
      }
      if (decision.kind !== "refuse") {
        this.#sql.prepare(
          "UPDATE join_tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at = 0",
        ).run(now, name, tokenId);
      }
      return decision;
    });
  }

  /** The worker named `name`, or null. */
  get(name: string): WorkerRecord | null {
    const row = this.#sql.prepare("SELECT * FROM workers WHERE name = ?").get(name) as
      | Row
      | undefined;
    return row ? rowToWorker(row) : null;
  }

  /** Every stored worker, by name. */
  list(): WorkerRecord[] {
    return (this.#sql.prepare("SELECT * FROM workers ORDER BY name").all() as Row[]).map(
      rowToWorker,
    );
  }

  /** Sets a worker's state; returns whether it exists. */
  setState(name: string, state: WorkerState): boolean {
    const res = this.#sql.prepare("UPDATE workers SET state = ? WHERE name = ?").run(state, name);
    return Number(res.changes) === 1;
  }

  /**
   * Forgets a worker and the join tokens it used (so its old join line no
   * longer registers it again); returns whether it existed.
   */
  remove(name: string): boolean {
    return this.#sql.transaction(() => {
      const res = this.#sql.prepare("DELETE FROM workers WHERE name = ?").run(name);
      this.#sql.prepare("DELETE FROM join_tokens WHERE used_by = ? AND used_at > 0").run(name);
      return Number(res.changes) === 1;
    });
  }
}
