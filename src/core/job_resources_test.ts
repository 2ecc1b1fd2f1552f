import assert from "node:assert/strict";
import { type JobResourceLimits, parseJobResources } from "./job_resources.ts";
import { parseJobSpec } from "./job.ts";

const limits: JobResourceLimits = {
  cpuDefault: 4,
  cpuMax: 16,
  memoryDefault: 4 * 1024 ** 3,
  memoryMax: 64 * 1024 ** 3,
  allowImageUser: false,
};

Deno.test("parseJobResources() fills the operator's defaults", () => {
  assert.deepEqual(parseJobResources({}, limits), { cpu: 4, memoryBytes: 4 * 1024 ** 3 });
  assert.deepEqual(parseJobResources({ cpu: 0, memory: "" }, limits), {
    cpu: 4,
    memoryBytes: 4 * 1024 ** 3,
  });
});

Deno.test("parseJobResources() takes fractional cores and the one size grammar", () => {
  assert.deepEqual(parseJobResources({ cpu: 0.5, memory: "512MiB" }, limits), {
    cpu: 0.5,
    memoryBytes: 512 * 1024 ** 2,
  });
  assert.equal(parseJobResources({ memory: "8G" }, limits).memoryBytes, 8 * 1024 ** 3);
  assert.equal(parseJobResources({ memory: "1.5GB" }, limits).memoryBytes, 1_500_000_000);
});

Deno.test("parseJobResources() refuses values past the maxima, naming the field and the key", () => {
  const cases: Array<[Parameters<typeof parseJobResources>[0], RegExp]> = [
    [
      { cpu: 17 },
      /^spec\.cpu: must be at most 16 cores \(the orchestrator's job_cpu_max\), got 17$/,
    ],
    [{ cpu: -1 }, /^spec\.cpu: must be a number of cores > 0, got -1$/],
    [{ cpu: NaN }, /^spec\.cpu: /],
    [{ cpu: 0.001 }, /^spec\.cpu: must be at least 0\.01 cores/],
    [
      { memory: "65GiB" },
      /^spec\.memory: must be at most 64\.0 GiB \(the orchestrator's job_memory_max\), got 65GiB$/,
    ],
    [{ memory: "lots" }, /^spec\.memory: expected a size like "8GiB"/],
    [{ memory: "1MiB" }, /^spec\.memory: must be at least 32\.0 MiB/],
    [{ imageUser: true }, /^spec\.image_user: .*allow_image_user is off/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parseJobResources(raw, limits), (err: Error) => {
      assert.equal((err as { code?: string }).code, "INVALID_ARGUMENT");
      assert.match(err.message, message);
      return true;
    }, JSON.stringify(raw));
  }
});

Deno.test("parseJobResources() keeps the image's user only where the operator allows it", () => {
  const allowed = { ...limits, allowImageUser: true };
  assert.equal(parseJobResources({ imageUser: true }, allowed).imageUser, true);
  assert.equal(parseJobResources({ imageUser: false }, allowed).imageUser, undefined);
});

Deno.test("parseJobSpec() resolves resources only when the orchestrator gives limits", () => {
  const base = { defaultImage: "img", maxDuration: 3600, defaultMaxAttempts: 1 };
  const raw = { command: ["x"], gpuMemory: 0.5, duration: 1, cpu: 2, memory: "1GiB" };
  const spec = parseJobSpec(raw, { ...base, resources: limits });
  assert.equal(spec.cpu, 2);
  assert.equal(spec.memoryBytes, 1024 ** 3);
  const none = parseJobSpec(raw, base);
  assert.equal(none.cpu, undefined);
  assert.equal(none.memoryBytes, undefined);
});
