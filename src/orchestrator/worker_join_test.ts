import assert from "node:assert/strict";
import { newJoinToken, parseJoinToken } from "../core/mod.ts";
import type { JoinTokenRecord, WorkerRecord } from "../store/mod.ts";
import { decideJoin } from "./worker_join.ts";

const t = newJoinToken();
const parsed = parseJoinToken(t.token)!;
const NOW = 10_000;
const req = { name: "w1", sshTarget: "cumulus@10.0.0.2:22", hostKey: "ssh-ed25519 AAAA" };

function token(over: Partial<JoinTokenRecord> = {}): JoinTokenRecord {
  return {
    id: t.id,
    hash: t.hash,
    createdAt: 0,
    expiresAt: NOW + 1,
    usedAt: 0,
    usedBy: "",
    ...over,
  };
}

function worker(over: Partial<WorkerRecord> = {}): WorkerRecord {
  return {
    name: "w1",
    sshTarget: req.sshTarget,
    hostKey: req.hostKey,
    addedAt: 5,
    state: "active",
    ...over,
  };
}

Deno.test("decideJoin() stores, keeps or refuses a join", () => {
  const table: [string, JoinTokenRecord | null, WorkerRecord | null, string, RegExp | null][] = [
    ["a fresh token stores a new worker", token(), null, "store", null],
    ["an unknown token", null, null, "refuse", /^invalid join token/],
    ["a wrong secret", token({ hash: "0".repeat(64) }), null, "refuse", /^invalid join token/],
    ["an expired token", token({ expiresAt: NOW }), null, "refuse", /expired at 1970/],
    ["a token used by another", token({ usedAt: 1, usedBy: "w2" }), null, "refuse", /already used/],
    ["the same join again", token({ usedAt: 1, usedBy: "w1" }), worker(), "unchanged", null],
    [
      "the same join after expiry",
      token({ usedAt: 1, usedBy: "w1", expiresAt: 1 }),
      worker(),
      "unchanged",
      null,
    ],
    [
      "a used token, the name since re-keyed",
      token({ usedAt: 1, usedBy: "w1" }),
      worker({ hostKey: "ssh-ed25519 BBBB" }),
      "refuse",
      /already used/,
    ],
    ["a new token, same worker", token(), worker(), "unchanged", null],
    [
      "a new token, new address",
      token(),
      worker({ sshTarget: "cumulus@10.0.0.9:22" }),
      "store",
      null,
    ],
    [
      "a new token, another host key",
      token(),
      worker({ hostKey: "ssh-ed25519 BBBB" }),
      "refuse",
      /another host key: run `cumulus worker remove w1` first/,
    ],
  ];
  for (const [name, tok, cur, kind, re] of table) {
    const d = decideJoin(parsed, tok, cur, req, NOW);
    assert.equal(d.kind, kind, name);
    if (d.kind === "refuse") assert.match(d.error.message, re!, name);
  }
});

Deno.test("decideJoin() refusals are UNAUTHENTICATED but for a re-keyed name", () => {
  const code = (tok: JoinTokenRecord | null, cur: WorkerRecord | null) => {
    const d = decideJoin(parsed, tok, cur, req, NOW);
    return d.kind === "refuse" ? (d.error as { code?: string }).code : d.kind;
  };
  assert.equal(code(null, null), "UNAUTHENTICATED");
  assert.equal(code(token({ expiresAt: 0 }), null), "UNAUTHENTICATED");
  assert.equal(code(token(), worker({ hostKey: "x y" })), "FAILED_PRECONDITION");
});

Deno.test("decideJoin() keeps a re-joined worker's first added_at and makes it active", () => {
  const d = decideJoin(
    parsed,
    token(),
    worker({ sshTarget: "cumulus@h:22", state: "draining" }),
    req,
    NOW,
  );
  assert.deepEqual(d, { kind: "store", worker: { ...worker(), addedAt: 5, state: "active" } });
  const fresh = decideJoin(parsed, token(), null, req, NOW);
  assert.deepEqual(fresh, { kind: "store", worker: { ...worker(), addedAt: NOW } });
});
