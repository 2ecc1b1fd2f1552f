import assert from "node:assert/strict";
import { type JoinDecision, type WorkerRecord, WorkerStore } from "./worker_store.ts";

function worker(name: string, key = "ssh-ed25519 AAAA"): WorkerRecord {
  return { name, sshTarget: "cumulus@10.0.0.2:22", hostKey: key, addedAt: 5, state: "active" };
}

Deno.test("WorkerStore.join() stores the worker and spends the token in one step", () => {
  const s = WorkerStore.open(":memory:");
  try {
    assert.ok(s.insertJoinToken({ id: "aaaaaaaaaaaa", hash: "h", createdAt: 1, expiresAt: 100 }));
    assert.ok(!s.insertJoinToken({ id: "aaaaaaaaaaaa", hash: "x", createdAt: 1, expiresAt: 100 }));
    const seen: unknown[] = [];
    const d = s.join("aaaaaaaaaaaa", "w1", 7, (t, cur) => {
      seen.push(t?.usedAt, cur);
      return { kind: "store", worker: worker("w1") };
    });
    assert.equal(d.kind, "store");
    assert.deepEqual(seen, [0, null]);
    assert.deepEqual(s.get("w1"), worker("w1"));
    assert.deepEqual(s.joinToken("aaaaaaaaaaaa"), {
      id: "aaaaaaaaaaaa",
      hash: "h",
      createdAt: 1,
      expiresAt: 100,
      usedAt: 7,
      usedBy: "w1",
    });
  } finally {
    s.close();
  }
});

Deno.test("WorkerStore.join() writes nothing on refusal", () => {
  const s = WorkerStore.open(":memory:");
  try {
    s.insertJoinToken({ id: "aaaaaaaaaaaa", hash: "h", createdAt: 1, expiresAt: 100 });
    const refuse = (): JoinDecision => ({ kind: "refuse", error: new Error("no") });
    assert.equal(s.join("aaaaaaaaaaaa", "w1", 7, refuse).kind, "refuse");
    assert.equal(s.get("w1"), null);
    assert.equal(s.joinToken("aaaaaaaaaaaa")!.usedAt, 0);
    assert.throws(() =>
      s.join("aaaaaaaaaaaa", "w1", 7, () => {
        throw new Error("boom");
      }), /boom/);
    assert.deepEqual(s.list(), []);
  } finally {
    s.close();
  }
});

Deno.test("WorkerStore keeps state, lists by name, forgets on remove", () => {
  const s = WorkerStore.open(":memory:");
  try {
    for (const n of ["w2", "w1"]) {
      s.insertJoinToken({ id: `${n}aaaaaaaaaa`, hash: "h", createdAt: 1, expiresAt: 100 });
      s.join(`${n}aaaaaaaaaa`, n, 2, () => ({ kind: "store", worker: worker(n) }));
    }
    assert.deepEqual(s.list().map((w) => w.name), ["w1", "w2"]);
    assert.ok(s.setState("w1", "draining"));
    assert.equal(s.get("w1")!.state, "draining");
    assert.ok(!s.setState("nope", "draining"));
    s.insertJoinToken({ id: "unusedaaaaaa", hash: "h", createdAt: 1, expiresAt: 100 });
    assert.ok(s.remove("w1"));
    assert.ok(!s.remove("w1"));
    assert.deepEqual(s.list().map((w) => w.name), ["w2"]);
    // The token w1 used is forgotten with it; w2's and the unused one stay.
    assert.equal(s.joinToken("w1aaaaaaaaaa"), null);
    assert.notEqual(s.joinToken("w2aaaaaaaaaa"), null);
    assert.notEqual(s.joinToken("unusedaaaaaa"), null);
  } finally {
    s.close();
  }
});
