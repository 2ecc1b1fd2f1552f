import assert from "node:assert/strict";
import { eventFromWire, jobFromWire, specToWire } from "./wire.ts";

Deno.test("specToWire fills the SDK defaults and sends an empty image", () => {
  const w = specToWire({ command: ["true"] });
  assert.equal(w.image, "");
  assert.equal(w.gpuMemory, 0.25);
  assert.equal(w.duration, 3600);
  assert.deepEqual(w.command, ["true"]);
});

Deno.test("specToWire keeps explicit (even invalid) values for the server to judge", () => {
  const w = specToWire({ command: ["true"], gpuMemory: 0, duration: -1, image: "img:1" });
  assert.equal(w.gpuMemory, 0);
  assert.equal(w.duration, -1);
  assert.equal(w.image, "img:1");
});

Deno.test("jobFromWire maps absent exit code and zero times to null", () => {
  const j = jobFromWire({
    id: "j-0123456789ab",
    state: "QUEUED",
    hasExitCode: false,
    exitCode: 0,
    createdAtMs: 5,
    startedAtMs: 0,
    finishedAtMs: 0,
    spec: { command: ["a"], env: { K: "V" } },
  });
  assert.equal(j.exitCode, null);
  assert.equal(j.startedAtMs, null);
  assert.equal(j.finishedAtMs, null);
  assert.equal(j.createdAtMs, 5);
  assert.deepEqual(j.spec.env, { K: "V" });
});

Deno.test("jobFromWire keeps exit code 0 when present", () => {
  const j = jobFromWire({ state: "SUCCEEDED", hasExitCode: true, exitCode: 0, finishedAtMs: 9 });
  assert.equal(j.exitCode, 0);
  assert.equal(j.finishedAtMs, 9);
});

Deno.test("eventFromWire lower-cases streams and keeps a missing job null", () => {
  const e = eventFromWire({
    lines: [{ seq: 1, stream: "STDERR", text: "x", timeMs: 3 }, { seq: 2, stream: "STDOUT" }],
    job: null,
  });
  assert.deepEqual(e.lines.map((l) => l.stream), ["stderr", "stdout"]);
  assert.equal(e.job, null);
});

Deno.test("specToWire sends an absolute GPU memory size instead of the default fraction", () => {
  const w = specToWire({ command: ["true"], gpuMemorySize: "20GiB" });
  assert.equal(w.gpuMemorySize, "20GiB");
  assert.equal(w.gpuMemory, 0);
  assert.equal(specToWire({ command: ["true"] }).gpuMemorySize, "");
});
