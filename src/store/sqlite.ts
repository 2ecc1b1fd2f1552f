/**
 * One SQLite connection of a store (the job, token and worker stores share
 * the data dir's jobs.db, each through its own connection): pragmas and schema
 * on open, prepared statements cached by their SQL text, and transactions
 * that take the write lock up front.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";

/** Most statements kept prepared; past it the cache starts again (a backstop). */
const MAX_STATEMENTS = 256;

/** A store's connection. */
export class SqliteDb {
  /** The connection itself (schema migrations, PRAGMA reads). */
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();

  /**
   * Opens `path` (":memory:" for tests), runs `pragmas` (a busy timeout of 5 s is always
   * set: the stores write the same file), then `schema` (idempotent `CREATE … IF NOT EXISTS`).
   */
  constructor(path: string, schema: string, pragmas = "") {
    this.db = new DatabaseSync(path);
    this.db.exec(`PRAGMA busy_timeout = 5000; ${pragmas}`);
    this.db.exec(schema);
  }

  /** The prepared statement for `sql`: preparing costs more than running a small query. */
  prepare(sql: string): StatementSync {
    let stmt = this.#stmts.get(sql);
    if (!stmt) {
      if (this.#stmts.size >= MAX_STATEMENTS) this.#stmts.clear();
      stmt = this.db.prepare(sql);
      this.#stmts.set(sql, stmt);
    }
    return stmt;
  }

  /** Runs `fn` in a transaction that holds the write lock from its start (BEGIN IMMEDIATE). */
  transaction<T>(fn: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw err;
    }
  }

  /** Closes the connection. */
  close(): void {
    this.#stmts.clear();
    this.db.close();
  }
}
