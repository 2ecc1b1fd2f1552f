import assert from "node:assert/strict";
import { SqliteDb } from "./sqlite.ts";

Deno.test("SqliteDb: a transaction commits what it wrote, or rolls all of it back on a throw", () => {
  const sql = new SqliteDb(":memory:", "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)");
  try {
    const count = () =>
      Number((sql.prepare("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n);
    assert.equal(
      sql.transaction(() => sql.prepare("INSERT INTO t VALUES (?)").run("a").changes),
      1,
    );
    assert.throws(() =>
      sql.transaction(() => {
        sql.prepare("INSERT INTO t VALUES (?)").run("b");
        sql.prepare("INSERT INTO t VALUES (?)").run("a"); // duplicate key: the whole write goes
      })
    );
    assert.equal(count(), 1);
    assert.equal(sql.prepare("SELECT 1"), sql.prepare("SELECT 1"), "prepared once, reused");
  } finally {
    sql.close();
  }
});
