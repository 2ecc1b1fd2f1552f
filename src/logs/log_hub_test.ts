import assert from "node:assert/strict";
import { LogHub } from "./log_hub.ts";

const line = (text: string) => ({
  stream: "stdout" as const,
  origin: { kind: "marker" as const },
  timeMs: 1,
  text,
});

Deno.test("LogHub lets go of a complete log nobody asked for, and reopens it from its file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-loghub-" });
  let now = 1_000_000;
  const hub = new LogHub(dir, { now: () => now, idleMs: 300_000 });
  try {
    const ended = await hub.get("j-ended");
    ended.append(line("first"));
    ended.append(line("second"));
    ended.markComplete();
    const running = await hub.get("j-running");
    running.append(line("still going"));
    assert.equal(hub.size, 2);
    // Not idle long enough: both stay.
    now += 299_000;
    assert.equal(hub.evictIdle(), 0);
    // Past the idle time: the ended job's log goes, the running one (not complete) stays.
    now += 2_000;
    assert.equal(hub.evictIdle(), 1);
    assert.equal(hub.size, 1);
    assert.equal(await hub.get("j-running"), running);
    // Asked for again: a new instance reads the same lines from the file.
    const again = await hub.get("j-ended");
    assert.notEqual(again, ended);
    assert.deepEqual((await again.read(0, 10)).map((l) => [l.seq, l.text]), [
      [1, "first"],
      [2, "second"],
    ]);
    running.markComplete();
  } finally {
    await hub.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LogHub.get() sweeps idle logs by itself at most once a minute", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-loghub-" });
  let now = 0;
  const hub = new LogHub(dir, { now: () => now, idleMs: 1_000 });
  try {
    for (let i = 0; i < 5; i++) (await hub.get(`j-${i}`)).markComplete();
    now += 30_000;
    await hub.get("j-x");
    assert.equal(hub.size, 6, "no sweep within the minute");
    now += 31_000;
    (await hub.get("j-y")).markComplete();
    assert.equal(hub.size, 2, "the five idle ended logs went; j-x (not complete) and j-y stay");
  } finally {
    await hub.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
});
