/**
 * User tokens in the orchestrator's SQLite store (the `tokens` table of
 * jobs.db). Only a token's SHA-256 is stored; the text is shown once, when
 * it is created.
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import { SqliteDb } from "./sqlite.ts";

/** A stored token, as listings show it (never its secret). */
export interface TokenRecord {
  /** Public id (12 hex digits), the `<id>` in `cu_<id>_<secret>`. */
  id: string;
  user: string;
  admin: boolean;
  /** SHA-256 of the token text, hex. */
  hash: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; 0 = never expires. */
  expiresAt: number;
  /** Epoch ms; 0 = not revoked. */
  revokedAt: number;
}

/** A token to store, as {@link TokenStore.insert} takes it. */
export type NewToken = Omit<TokenRecord, "revokedAt">;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user);
`;

type Row = Record<string, SQLInputValue>;

function rowToToken(r: Row): TokenRecord {
  return {
    id: String(r.id),
    user: String(r.user),
    admin: Number(r.admin) === 1,
    hash: String(r.hash),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    revokedAt: Number(r.revoked_at),
  };
}

/** The user tokens of one orchestrator. */
export class TokenStore {
  readonly #sql: SqliteDb;

  private constructor(sql: SqliteDb) {
    this.#sql = sql;
  }

  /**
   * Opens (creating the table when needed) the token table of the SQLite
   * file at `path` (the job store's file; ":memory:" for tests).
   */
  static open(path: string): TokenStore {
    return new TokenStore(new SqliteDb(path, SCHEMA));
  }

  /** Closes the database. */
  close(): void {
    this.#sql.close();
  }

  /** Stores a new token; returns whether it was stored (false: the id exists). */
  insert(t: NewToken): boolean {
    const res = this.#sql.prepare(
      `INSERT OR IGNORE INTO tokens (id, user, admin, hash, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(t.id, t.user, t.admin ? 1 : 0, t.hash, t.createdAt, t.expiresAt);
    return Number(res.changes) === 1;
  }

  /** The token with `id`, or null. */
  get(id: string): TokenRecord | null {
    const row = this.#sql.prepare("SELECT * FROM tokens WHERE id = ?").get(id) as Row | undefined;
    return row ? rowToToken(row) : null;
  }

  /** Every token, oldest first (revoked ones included). */
  list(): TokenRecord[] {
    return (this.#sql.prepare("SELECT * FROM tokens ORDER BY created_at, id").all() as Row[]).map(
      rowToToken,
    );
  }

  /** Number of stored tokens (revoked ones included). */
  count(): number {
    const row = this.#sql.prepare("SELECT COUNT(*) AS n FROM tokens").get() as Row;
    return Number(row.n);
  }

  /**
   * Revokes the token with id `idOrUser`, else every token of the user
   * `idOrUser`, at `now`. Returns the tokens revoked now.
   */
  revoke(idOrUser: string, now: number): TokenRecord[] {
    return this.#sql.transaction(() => {
      let rows = this.#sql.prepare("SELECT * FROM tokens WHERE id = ? AND revoked_at = 0")
        .all(idOrUser) as Row[];
      if (rows.length === 0 && !this.get(idOrUser)) {
        rows = this.#sql.prepare("SELECT * FROM tokens WHERE user = ? AND revoked_at = 0")
          .all(idOrUser) as Row[];
      }
      const stmt = this.#sql.prepare("UPDATE tokens SET revoked_at = ? WHERE id = ?");
      for (const r of rows) stmt.run(now, String(r.id));
      return rows.map((r) => ({ ...rowToToken(r), revokedAt: now }));
    });
  }
}
