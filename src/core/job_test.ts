import assert from "node:assert/strict";
import {
  devicesOf,
  InvalidArgumentError,
  isImageReference,
  isInfrastructure,
  parseJobSpec,
  parseMemorySize,
  parseS3Prefix,
  partitionsOf,
  REASON_CODES,
  wantsWholeGpus,
} from "./mod.ts";

const limits = { defaultImage: "img", maxDuration: 3600, defaultMaxAttempts: 1 };

Deno.test("memory sizes parse in binary and decimal units", () => {
  const cases: Array<[string, number]> = [
    ["20GiB", 20 * 1024 ** 3],
    ["512 MiB", 512 * 1024 ** 2],
    ["1.5GB", 1.5e9],
    ["4096B", 4096],
    ["20gb", 20e9],
    ["20G", 20 * 1024 ** 3],
  ];
  for (const [text, bytes] of cases) assert.equal(parseMemorySize(text), bytes, text);
  for (const bad of ["20", "-1GiB", "0GiB", "GiB", "1e3GiB"]) {
    assert.throws(() => parseMemorySize(bad), InvalidArgumentError, bad);
  }
});

Deno.test("a spec takes gpu_memory or gpu_memory_size, never both, and names the field", () => {
  const sized = parseJobSpec({ command: ["x"], gpuMemorySize: "20GiB", duration: 1 }, limits);
  assert.equal(sized.gpuMemoryBytes, 20 * 1024 ** 3);
  assert.equal(sized.gpuMemory, 0);
  const frac = parseJobSpec({ command: ["x"], gpuMemory: 0.5, duration: 1 }, limits);
  assert.equal(frac.gpuMemoryBytes, undefined);
  assert.throws(
    () =>
      parseJobSpec({ command: ["x"], gpuMemory: 0.5, gpuMemorySize: "1GiB", duration: 1 }, limits),
    /spec\.gpu_memory_size: give either/,
  );
  assert.throws(
    () => parseJobSpec({ command: ["x"], gpuMemorySize: "big", duration: 1 }, limits),
    /spec\.gpu_memory_size: expected a size/,
  );
  assert.throws(() => parseJobSpec({ command: ["x"], duration: 1 }, limits), /spec\.gpu_memory:/);
});

Deno.test("a spec asks a fraction of one GPU or 1..8 whole GPUs", () => {
  const cases: Array<[string, { gpuMemory?: number; gpuCount?: number }, [number, number]]> = [
    ["a fraction", { gpuMemory: 0.25 }, [0.25, 1]],
    ["a fraction with count 1", { gpuMemory: 0.5, gpuCount: 1 }, [0.5, 1]],
    ["gpu_memory 1 is one whole GPU", { gpuMemory: 1 }, [1, 1]],
    ["gpu_memory 4 is four whole GPUs", { gpuMemory: 4 }, [1, 4]],
    ["gpu_count alone", { gpuCount: 2 }, [1, 2]],
    ["gpu_count 1 alone", { gpuCount: 1 }, [1, 1]],
    ["count and the same whole memory", { gpuMemory: 8, gpuCount: 8 }, [1, 8]],
    ["gpu_memory 1 with a count, as records read back", { gpuMemory: 1, gpuCount: 4 }, [1, 4]],
  ];
  for (const [name, gpu, [memory, count]] of cases) {
    const s = parseJobSpec({ command: ["x"], duration: 1, ...gpu }, limits);
    assert.deepEqual([s.gpuMemory, s.gpuCount], [memory, count], name);
    assert.equal(wantsWholeGpus(s), memory === 1, name);
  }
  const bad: Array<[string, { gpuMemory?: number; gpuCount?: number }, RegExp]> = [
    ["nothing asked", {}, /spec\.gpu_memory: /],
    ["a fraction of two GPUs", { gpuMemory: 0.5, gpuCount: 2 }, /spec\.gpu_count: a fraction/],
    ["not whole above 1", { gpuMemory: 1.5 }, /spec\.gpu_memory: above 1/],
    ["nine GPUs", { gpuCount: 9 }, /spec\.gpu_count: must be 1\.\.8/],
    ["nine GPUs as memory", { gpuMemory: 9 }, /spec\.gpu_memory: above 1/],
    ["two counts that disagree", { gpuMemory: 2, gpuCount: 4 }, /spec\.gpu_count: gpu_memory 2/],
    ["negative", { gpuMemory: -1 }, /spec\.gpu_memory: /],
    ["a half GPU count", { gpuCount: 1.5 }, /spec\.gpu_count: /],
  ];
  for (const [name, gpu, re] of bad) {
    assert.throws(() => parseJobSpec({ command: ["x"], duration: 1, ...gpu }, limits), re, name);
  }
  assert.throws(
    () =>
      parseJobSpec({ command: ["x"], duration: 1, gpuMemorySize: "20GiB", gpuCount: 2 }, limits),
    /spec\.gpu_count: gpu_memory_size is a share of one GPU/,
  );
});

Deno.test("partitionsOf() and devicesOf() read groups and single-partition records alike", () => {
  assert.deepEqual(partitionsOf({ partitionId: "", partitionIds: [] }), []);
  assert.deepEqual(partitionsOf({ partitionId: "p-1" }), ["p-1"]);
  assert.deepEqual(partitionsOf({ partitionId: "p-1", partitionIds: ["p-1", "p-2"] }), [
    "p-1",
    "p-2",
  ]);
  assert.deepEqual(devicesOf({ gpuDevice: 3 }), [3]);
  assert.deepEqual(devicesOf({ gpuDevice: 0, gpuDevices: [0, 2] }), [0, 2]);
});

Deno.test("resume_on_expiry is opt-in and needs more than one attempt", () => {
  const base = { command: ["x"], gpuMemory: 0.5, duration: 1 };
  assert.equal(parseJobSpec(base, limits).resumeOnExpiry, undefined);
  assert.equal(
    parseJobSpec({ ...base, retry: { maxAttempts: 3, resumeOnExpiry: true } }, limits)
      .resumeOnExpiry,
    true,
  );
  // The default attempts count when the spec says 0.
  assert.equal(
    parseJobSpec(
      { ...base, retry: { resumeOnExpiry: true } },
      { ...limits, defaultMaxAttempts: 2 },
    ).resumeOnExpiry,
    true,
  );
  assert.throws(
    () => parseJobSpec({ ...base, retry: { maxAttempts: 1, resumeOnExpiry: true } }, limits),
    /spec\.retry\.resume_on_expiry: needs max_attempts > 1/,
  );
  assert.throws(
    () => parseJobSpec({ ...base, retry: { resumeOnExpiry: true } }, limits),
    InvalidArgumentError,
  );
});

Deno.test("isImageReference() follows Docker's reference grammar and refuses path tricks", () => {
  const good = [
    "cumulus-job:latest",
    "cumulus-job",
    "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
    "localhost:5000/team/train:v1",
    "registry.example.com/a_b/c__d/e-f:TAG_1.0",
    "[::1]:5000/img",
    `ghcr.io/org/img@sha256:${"a".repeat(64)}`,
    `img:tag@sha256:${"0".repeat(64)}`,
    `sha256:${"f".repeat(64)}`,
  ];
  for (const ref of good) assert.ok(isImageReference(ref), ref);
  const bad = [
    "../../info",
    "x/../../containers/json",
    "%2e%2e/%2e%2e/info",
    "..",
    "img/../other",
    "Upper/Case",
    "img:tag:tag",
    "img?x=1",
    "img#frag",
    "/abs",
    "img/",
    "img:",
    "a b",
    "img@sha256:short",
    "x".repeat(256),
  ];
  for (const ref of bad) assert.ok(!isImageReference(ref), ref);
  assert.throws(
    () =>
      parseJobSpec({ command: ["x"], gpuMemory: 0.5, duration: 1, image: "../../info" }, limits),
    /spec\.image: not a valid image reference/,
  );
});

Deno.test("a spec's env and command are bounded in size, and env values refuse NUL bytes", () => {
  const base = { command: ["x"], gpuMemory: 0.5, duration: 1 };
  assert.ok(parseJobSpec({ ...base, env: { A: "x".repeat(60_000) } }, limits));
  assert.throws(
    () => parseJobSpec({ ...base, env: { A: "x".repeat(7.5 * 1024 * 1024) } }, limits),
    /spec\.env: must be at most 65536 bytes in all/,
  );
  assert.throws(
    () => parseJobSpec({ ...base, env: { A: "a\0b" } }, limits),
    /spec\.env: A: values must not contain NUL bytes/,
  );
  assert.throws(
    () => parseJobSpec({ ...base, command: ["echo", "y".repeat(200_000)] }, limits),
    /spec\.command: must be at most 131072 bytes/,
  );
});

Deno.test("checkpoint S3 prefixes: safe segments pass, anything that climbs or breaks keys fails", () => {
  for (const ok of ["", "cumulus", "team-a/runs", "a.b_c-d/1/2"]) {
    assert.equal(parseS3Prefix(ok), ok);
  }
  for (
    const bad of [
      "../other",
      "a/../b",
      "/abs",
      "trail/",
      "a//b",
      ".",
      "a b",
      "a\nb",
      "x".repeat(257),
    ]
  ) {
    assert.throws(() => parseS3Prefix(bad), InvalidArgumentError, JSON.stringify(bad));
  }
  assert.throws(
    () =>
      parseJobSpec({
        command: ["x"],
        gpuMemory: 0.5,
        duration: 1,
        checkpoint: { s3Prefix: "../victim" },
      }, limits),
    /spec\.checkpoint\.s3_prefix/,
  );
});

Deno.test("isInfrastructure: the codes of a job that did not end by itself, and only those", () => {
  const infrastructure = Object.values(REASON_CODES).filter((c) => isInfrastructure(c)).sort();
  assert.deepEqual(infrastructure, [
    "KILLED",
    "MPS_FAULT",
    "NETWORK_STALE",
    "SERVICE_REMOVED",
    "TASK_FAILED",
    "TASK_LOST",
  ]);
  assert.equal(isInfrastructure(""), false);
});
