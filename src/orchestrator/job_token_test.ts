import assert from "node:assert/strict";
import { attemptToken, checkAttemptToken } from "./job_token.ts";

Deno.test("attemptToken(): one token per attempt, none equal to the secret or each other", () => {
  const secret = "a".repeat(48);
  const tokens = [1, 2, 3].map((a) => attemptToken(secret, a));
  assert.equal(new Set([...tokens, secret]).size, 4);
  for (const t of tokens) assert.match(t, /^[0-9a-f]{64}$/);
  assert.equal(attemptToken(secret, 2), tokens[1], "deterministic");
  assert.notEqual(attemptToken("b".repeat(48), 1), tokens[0], "keyed by the secret");
});

Deno.test("checkAttemptToken(): only the current attempt's token (or the bare secret) passes", () => {
  const secret = "c".repeat(48);
  assert.deepEqual(checkAttemptToken(attemptToken(secret, 3), secret, 3), { ok: true });
  assert.deepEqual(checkAttemptToken(secret, secret, 3), { ok: true });
  assert.deepEqual(checkAttemptToken(attemptToken(secret, 2), secret, 3), {
    ok: false,
    earlierAttempt: 2,
  });
  assert.deepEqual(checkAttemptToken(attemptToken(secret, 4), secret, 3), {
    ok: false,
    earlierAttempt: null,
  });
  assert.deepEqual(checkAttemptToken("", secret, 1), { ok: false, earlierAttempt: null });
  assert.deepEqual(checkAttemptToken(attemptToken("d".repeat(48), 1), secret, 1), {
    ok: false,
    earlierAttempt: null,
  });
});
