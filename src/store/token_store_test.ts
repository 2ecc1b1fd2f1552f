import assert from "node:assert/strict";
import { TokenStore } from "./token_store.ts";

function rec(id: string, user: string, admin = false) {
  return { id, user, admin, hash: `h-${id}`, createdAt: 1000, expiresAt: 0 };
}

Deno.test("TokenStore keeps tokens; an id is stored once", () => {
  const s = TokenStore.open(":memory:");
  try {
    assert.ok(s.insert(rec("aaaaaaaaaaaa", "ann", true)));
    assert.ok(!s.insert(rec("aaaaaaaaaaaa", "someone-else")));
    assert.deepEqual(s.get("aaaaaaaaaaaa"), { ...rec("aaaaaaaaaaaa", "ann", true), revokedAt: 0 });
    assert.equal(s.get("bbbbbbbbbbbb"), null);
    assert.equal(s.count(), 1);
  } finally {
    s.close();
  }
});

Deno.test("TokenStore.revoke() takes an id, else a user name, and revokes once", () => {
  const s = TokenStore.open(":memory:");
  try {
    s.insert(rec("aaaaaaaaaaaa", "ann"));
    s.insert(rec("bbbbbbbbbbbb", "ann"));
    s.insert(rec("cccccccccccc", "ben"));
    assert.deepEqual(s.revoke("cccccccccccc", 5).map((t) => t.id), ["cccccccccccc"]);
    assert.equal(s.get("cccccccccccc")!.revokedAt, 5);
    assert.deepEqual(s.revoke("cccccccccccc", 6), []);
    assert.equal(s.get("cccccccccccc")!.revokedAt, 5);
    assert.deepEqual(s.revoke("ann", 7).map((t) => t.id).sort(), ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
    assert.deepEqual(s.revoke("nobody", 8), []);
    assert.ok(s.list().every((t) => t.revokedAt > 0));
  } finally {
    s.close();
  }
});
