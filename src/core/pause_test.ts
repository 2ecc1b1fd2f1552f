import assert from "node:assert/strict";
import { pause } from "./pause.ts";

Deno.test("pause() waits, ends at once on abort, and never rejects", async () => {
  const t0 = performance.now();
  await pause(30, new AbortController().signal);
  assert.ok(performance.now() - t0 >= 25);
  const ac = new AbortController();
  const p = pause(60_000, ac.signal);
  ac.abort(new Error("stop"));
  await p; // resolves, with no timer left behind (the test sanitizers would say)
  await pause(60_000, ac.signal); // already aborted: at once
});

Deno.test("pause() without a signal is a plain sleep", async () => {
  const t0 = performance.now();
  await pause(30);
  assert.ok(performance.now() - t0 >= 25);
});
