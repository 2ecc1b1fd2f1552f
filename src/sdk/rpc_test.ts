import assert from "node:assert/strict";
import { CumulusRpcError } from "./errors.ts";
import { retryDelayMs, retryUnavailable } from "./rpc.ts";

Deno.test("retryDelayMs() doubles from 100 ms to 2 s and stops at the budget", () => {
  const table: [number, number, number, number | null][] = [
    [1, 0, 60_000, 100],
    [2, 100, 60_000, 200],
    [5, 1000, 60_000, 1600],
    [6, 3000, 60_000, 2000],
    [40, 10_000, 60_000, 2000],
    [3, 59_900, 60_000, 100],
    [3, 60_000, 60_000, null],
    [1, 0, 0, null],
  ];
  for (const [failures, elapsed, budget, want] of table) {
    assert.equal(retryDelayMs(failures, elapsed, budget), want, `${failures} ${elapsed} ${budget}`);
  }
});

Deno.test("retryUnavailable() repeats UNAVAILABLE only once the orchestrator was reached", async () => {
  let calls = 0;
  const flaky = () => {
    calls++;
    return calls <= 2
      ? Promise.reject(new CumulusRpcError("UNAVAILABLE", "restarting"))
      : Promise.resolve("ok");
  };
  assert.equal(await retryUnavailable(flaky, { timeoutMs: 5000, reached: () => true }), "ok");
  assert.equal(calls, 3);

  calls = 0;
  await assert.rejects(
    retryUnavailable(flaky, { timeoutMs: 5000, reached: () => false }),
    (e: CumulusRpcError) => e.code === "UNAVAILABLE",
  );
  assert.equal(calls, 1);

  calls = 0;
  const notFound = () => {
    calls++;
    return Promise.reject(new CumulusRpcError("NOT_FOUND", "no such job"));
  };
  await assert.rejects(retryUnavailable(notFound, { timeoutMs: 5000, reached: () => true }));
  assert.equal(calls, 1);
});

Deno.test("retryUnavailable() gives up after its budget", async () => {
  let calls = 0;
  const down = () => {
    calls++;
    return Promise.reject(new CumulusRpcError("UNAVAILABLE", "down"));
  };
  const started = Date.now();
  await assert.rejects(retryUnavailable(down, { timeoutMs: 400, reached: () => true }));
  const took = Date.now() - started;
  assert.ok(took >= 350 && took < 1500, `took ${took} ms`);
  assert.ok(calls >= 3 && calls <= 6, `${calls} calls`);
});
