import assert from "node:assert/strict";
import { hashToken, newToken, parseToken, requireToken, sameHash } from "./token.ts";

Deno.test("newToken() makes cu_<id>_<secret> tokens that parseToken() reads back", () => {
  const t = newToken();
  assert.match(t.token, /^cu_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(parseToken(t.token), { id: t.id, hash: t.hash });
  assert.equal(t.hash, hashToken(t.token));
  assert.notEqual(newToken().token, t.token);
});

Deno.test("parseToken() refuses anything but the token grammar", () => {
  const good = newToken().token;
  for (
    const bad of ["", "cu_", good + "x", good.slice(1), good.replace("cu_", "cx_"), ` ${good}`]
  ) {
    assert.equal(parseToken(bad), null, bad);
  }
  assert.throws(
    () => requireToken("CUMULUS_ADMIN_TOKEN", "secret"),
    /^InvalidArgumentError: CUMULUS_ADMIN_TOKEN: /,
  );
});

Deno.test("sameHash() compares whole hashes", () => {
  const h = hashToken("a");
  assert.ok(sameHash(h, hashToken("a")));
  assert.ok(!sameHash(h, hashToken("b")));
  assert.ok(!sameHash(h, h.slice(1)));
});
