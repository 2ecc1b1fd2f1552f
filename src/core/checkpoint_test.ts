import assert from "node:assert/strict";
import { InvalidArgumentError } from "./errors.ts";
import { MAX_CHECKPOINT_STEP, parseCheckpointReport } from "./checkpoint.ts";

Deno.test("a valid report is stamped with the orchestrator's time", () => {
  assert.deepEqual(parseCheckpointReport({ step: 100, tier: "l2", location: "s3://b/k" }, 7), {
    step: 100,
    tier: "l2",
    atMs: 7,
  });
  assert.deepEqual(parseCheckpointReport({ step: "0", tier: "l1" }, 1), {
    step: 0,
    tier: "l1",
    atMs: 1,
  });
  assert.equal(
    parseCheckpointReport({ step: MAX_CHECKPOINT_STEP - 1, tier: "l1" }, 1).step,
    MAX_CHECKPOINT_STEP - 1,
  );
});

Deno.test("bad steps, tiers and locations are INVALID_ARGUMENT naming the field", () => {
  const bad: Array<[Parameters<typeof parseCheckpointReport>[0], string]> = [
    [{ step: MAX_CHECKPOINT_STEP, tier: "l1" }, "step"],
    [{ step: -1, tier: "l1" }, "step"],
    [{ step: 1.5, tier: "l1" }, "step"],
    [{ step: "18446744073709551615", tier: "l1" }, "step"],
    [{ step: 1, tier: "" }, "tier"],
    [{ step: 1, tier: "L1" }, "tier"],
    [{ step: 1, tier: "l3" }, "tier"],
    [{ step: 1, tier: "l1", location: "x".repeat(1025) }, "location"],
  ];
  for (const [raw, field] of bad) {
    assert.throws(
      () => parseCheckpointReport(raw, 1),
      (err) => err instanceof InvalidArgumentError && err.message.startsWith(`${field}:`),
      JSON.stringify(raw).slice(0, 80),
    );
  }
});
