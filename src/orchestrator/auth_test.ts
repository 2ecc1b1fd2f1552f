import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { newToken, UnauthenticatedError } from "../core/mod.ts";
import type { TokenRecord } from "../store/mod.ts";
import { bearerToken, checkToken } from "./auth.ts";

const t = newToken();
const base: TokenRecord = {
  id: t.id,
  user: "ann",
  admin: false,
  hash: t.hash,
  createdAt: 0,
  expiresAt: 0,
  revokedAt: 0,
};

Deno.test("checkToken() accepts a live token and names its user", () => {
  assert.deepEqual(checkToken(t.token, () => base, 10), {
    user: "ann",
    admin: false,
    tokenId: t.id,
  });
  assert.equal(checkToken(t.token, () => ({ ...base, expiresAt: 11 }), 10).user, "ann");
});

Deno.test("checkToken() refuses wrong, unknown, revoked and expired tokens", () => {
  const other = newToken();
  const cases: Array<[string, string, TokenRecord | null, RegExp]> = [
    ["malformed", "secret", base, /^invalid token: run `cumulus login`/],
    ["unknown id", t.token, null, /^invalid token/],
    ["wrong secret, same id", `cu_${t.id}_${other.token.slice(16)}`, base, /^invalid token/],
    ["revoked", t.token, { ...base, revokedAt: 5 }, /was revoked: run `cumulus login`/],
    ["expired", t.token, { ...base, expiresAt: 10 }, /expired at .*: run `cumulus login`/],
  ];
  for (const [name, text, rec, msg] of cases) {
    assert.throws(
      () => checkToken(text, () => rec, 10),
      (e: unknown) => e instanceof UnauthenticatedError && msg.test(e.message),
      name,
    );
  }
});

Deno.test("bearerToken() reads `authorization: Bearer T` and nothing else", () => {
  const md = (v?: string) => {
    const m = new grpc.Metadata();
    if (v !== undefined) m.set("authorization", v);
    return m;
  };
  assert.equal(bearerToken(md(`Bearer ${t.token}`)), t.token);
  assert.equal(bearerToken(md(`bearer ${t.token}`)), t.token);
  assert.equal(bearerToken(md()), "");
  assert.equal(bearerToken(md(t.token)), "");
  assert.equal(bearerToken(md("Basic abc")), "");
});
