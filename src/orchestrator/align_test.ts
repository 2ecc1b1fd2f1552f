import assert from "node:assert/strict";
import type { DockerFrame } from "../swarm/mod.ts";
import { Aligner } from "./align.ts";

const f = (i: number, text = `l${i}`): DockerFrame => ({
  stream: "stdout",
  ts: `t${i}`,
  timeMs: i * 100,
  text,
});

Deno.test("nothing stored: every frame is new", () => {
  const a = new Aligner(null);
  assert.deepEqual(a.feed([f(1), f(2)]).map((x) => x.ts), ["t1", "t2"]);
});

Deno.test("replayed frames up to the stored tail are skipped, across batches", () => {
  const a = new Aligner({
    seq: 3,
    stream: "stdout",
    origin: { kind: "docker", ts: "t3" },
    text: "l3",
  }, 300);
  assert.deepEqual(a.feed([f(1), f(2)]), []);
  assert.deepEqual(a.feed([f(3), f(4)]).map((x) => x.ts), ["t4"]);
  assert.deepEqual(a.feed([f(5)]).map((x) => x.ts), ["t5"]);
  assert.equal(a.gaveUp, false);
});

Deno.test("a line equal in text but not in timestamp is not a match", () => {
  const a = new Aligner({
    seq: 1,
    stream: "stdout",
    origin: { kind: "docker", ts: "t2" },
    text: "same",
  }, 200);
  assert.deepEqual(a.feed([f(1, "same"), f(2, "same"), f(3, "same")]).map((x) => x.ts), ["t3"]);
});

Deno.test("when the stored tail never reappears, alignment gives up past the slack", () => {
  const a = new Aligner({
    seq: 1,
    stream: "stdout",
    origin: { kind: "docker", ts: "gone" },
    text: "x",
  }, 100);
  assert.deepEqual(a.feed([f(2)]), []);
  assert.deepEqual(a.feed([f(30), f(31)]).map((x) => x.ts), ["t30", "t31"]);
  assert.equal(a.gaveUp, true);
});
