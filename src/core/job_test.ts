import assert from "node:assert/strict";
import { InvalidArgumentError, parseJobSpec, parseMemorySize } from "./mod.ts";

const limits = { defaultImage: "img", maxDuration: 3600, defaultMaxAttempts: 1 };

Deno.test("memory sizes parse in binary and decimal units", () => {
  const cases: Array<[string, number]> = [
    ["20GiB", 20 * 1024 ** 3],
    ["512 MiB", 512 * 1024 ** 2],
    ["1.5GB", 1.5e9],
    ["4096B", 4096],
  ];
  for (const [text, bytes] of cases) assert.equal(parseMemorySize(text), bytes, text);
  for (const bad of ["20", "20gb", "-1GiB", "0GiB", "GiB", "1e3GiB"]) {
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
