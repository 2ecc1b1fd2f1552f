import assert from "node:assert/strict";
import { Chronos, CHRONOS_STATUS, ChronosError, resolveLibraryPath } from "./mod.ts";

/**
 * Opens Chronos on the real library with a fresh state directory; removes it afterwards.
 * `tmpfs` puts the directory on /dev/shm (memory-backed, so the synchronous fast path applies);
 * the default temp directory is disk-backed here, so calls take the worker-thread path.
 */
async function withChronos(
  fn: (c: Chronos, stateDir: string) => Promise<void>,
  opts: { tmpfs?: boolean; fastPath?: boolean } = {},
): Promise<void> {
  const stateDir = await Deno.makeTempDir({
    prefix: "chronos-ffi-",
    dir: opts.tmpfs ? "/dev/shm" : undefined,
  });
  const chronos = Chronos.open({ stateDir, fastPath: opts.fastPath });
  try {
    await fn(chronos, stateDir);
  } finally {
    chronos.close();
    await Deno.remove(stateDir, { recursive: true });
  }
}

async function refusal(p: Promise<unknown>): Promise<ChronosError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ChronosError, `expected ChronosError, got ${err}`);
    return err;
  }
  assert.fail("the call succeeded");
}

Deno.test("the library loads and reports its version", () => {
  const chronos = Chronos.open({ stateDir: "/nonexistent/never-touched" });
  try {
    assert.match(chronos.version(), /^\d+\.\d+\.\d+$/);
    assert.match(chronos.libraryPath, /libchronos\.so$/);
  } finally {
    chronos.close();
  }
});

Deno.test("OpenCL devices are discovered through FFI", async () => {
  await withChronos(async (c) => {
    const devices = await c.devices();
    assert.ok(devices.length >= 1);
    assert.equal(devices[0].index, 0);
    assert.ok(devices[0].name.length > 0);
    assert.ok(devices[0].totalMemoryBytes > 0);
    assert.equal(await c.deviceCount(), devices.length);
  });
});

for (
  const [where, opts] of [
    ["disk-backed state", {}],
    ["tmpfs state (synchronous fast path)", { tmpfs: true }],
    ["tmpfs state, fast path off", { tmpfs: true, fastPath: false }],
  ] as const
) {
  Deno.test(`create, list and release a partition (${where})`, async () => {
    await withChronos(async (c) => {
      await c.deviceCount(); // discovered first, so the fast path can apply to create

      const p = await c.create({
        device: 0,
        memory: 0.5,
        duration: 60,
        owner: "alice",
        jobId: "j-1",
      });
      assert.match(p.id, /^p-[0-9a-f]{12}$/);
      assert.equal(p.memory, 0.5);
      assert.equal(p.owner, "alice");
      assert.equal(p.jobId, "j-1");
      assert.equal(p.existing, false);
      assert.equal(p.expiresAtMs - p.startMs, 60_000);
      const l = await c.list();
      assert.deepEqual(l.partitions.map((x) => x.id), [p.id]);
      assert.ok(l.partitions[0].remainingS > 59 && l.partitions[0].remainingS <= 60);
      const s = await c.stats();
      assert.equal(s.devices[0].allocated, 0.5);
      assert.equal(s.devices[0].owners.alice, 0.5);
      assert.equal((await c.release(p.id)).id, p.id);
      assert.equal((await c.list()).partitions.length, 0);
    }, opts);
  });
}

Deno.test("a refusal is a ChronosError with the earliest fit time", async () => {
  await withChronos(async (c) => {
    const first = await c.create({ device: 0, memory: 0.5, duration: 60 });
    assert.equal(first.owner, "anonymous");
    const err = await refusal(c.create({ device: 0, memory: 0.6, duration: 60 }));
    assert.equal(err.chronosCode, "NO_CAPACITY");
    assert.equal(err.code, "RESOURCE_EXHAUSTED");
    assert.equal(err.status, 4);
    assert.equal(err.earliestFitMs, first.expiresAtMs);
    assert.match(err.message, /device 0 has 0\.5 free, requested 0\.6/);
  });
});

Deno.test("bad arguments and unknown ids map to Cumulus error codes", async () => {
  await withChronos(async (c) => {
    for (const memory of [-0.5, 0, 1.5, NaN]) {
      const err = await refusal(c.create({ device: 0, memory, duration: 60 }));
      assert.equal(err.code, "INVALID_ARGUMENT", `memory ${memory}`);
    }
    let err = await refusal(c.create({ device: 99, memory: 0.1, duration: 60 }));
    assert.match(err.message, /unknown device 99/);
    err = await refusal(c.create({ device: 0, memory: 0.1, duration: 60, owner: "a b" }));
    assert.equal(err.code, "INVALID_ARGUMENT");
    err = await refusal(c.release("p-ffffffffffff"));
    assert.equal(err.code, "NOT_FOUND");
    err = await refusal(c.release(""));
    assert.equal(err.code, "INVALID_ARGUMENT");
  });
});

Deno.test("a repeated job id returns the existing partition", async () => {
  await withChronos(async (c) => {
    const a = await c.create({ device: 0, memory: 0.3, duration: 60, jobId: "j-42" });
    const b = await c.create({ device: 0, memory: 0.9, duration: 5, jobId: "j-42" });
    assert.equal(b.id, a.id);
    assert.equal(b.existing, true);
    assert.equal((await c.list()).partitions.length, 1);
  });
});

Deno.test("concurrent nonblocking creates never over-allocate a device", async () => {
  await withChronos(async (c) => {
    const results = await Promise.allSettled(
      Array.from(
        { length: 24 },
        () => c.create({ device: 0, memory: 0.1, duration: 60, owner: "u" }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) =>
      r.status === "rejected" && (r.reason as ChronosError).chronosCode === "NO_CAPACITY"
    );
    assert.equal(ok.length, 10);
    assert.equal(refused.length, 14);
    const stats = await c.stats();
    assert.equal(stats.devices[0].allocated, 1);
  });
});

Deno.test("lists larger than the first buffer are read in full", async () => {
  await withChronos(async (c) => {
    for (let i = 0; i < 500; i++) {
      await c.create({ device: 0, memory: 0.001, duration: 600, owner: "many" });
    }
    const l = await c.list();
    assert.equal(l.partitions.length, 500);
    assert.ok(JSON.stringify(l).length > 64 * 1024);
  });
});

Deno.test("expired partitions are reaped and reported once", async () => {
  await withChronos(async (c) => {
    const short = await c.create({ device: 0, memory: 0.2, duration: 0.05 });
    await c.create({ device: 0, memory: 0.2, duration: 600 });
    // Wait for real time to pass the 50 ms expiry (the clock is the system's through FFI).
    await new Promise((r) => setTimeout(r, Math.max(0, short.expiresAtMs - Date.now()) + 20));
    const r = await c.reap();
    assert.deepEqual(r.partitions.map((p) => p.id), [short.id]);
    assert.equal((await c.reap()).partitions.length, 0);
    assert.equal((await c.list()).partitions.length, 1);
  });
});

Deno.test("a corrupt state file is refused, then repaired", async () => {
  await withChronos(async (c, dir) => {
    await c.create({ device: 0, memory: 0.5, duration: 60 });
    const text = await Deno.readTextFile(`${dir}/state.v1`);
    await Deno.writeTextFile(`${dir}/state.v1`, text.slice(0, text.length - 4));
    const err = await refusal(c.list());
    assert.equal(err.chronosCode, "STATE_CORRUPT");
    assert.match(err.message, /is corrupt/);
    const r = await c.repair();
    assert.equal(r.repaired, true);
    assert.equal(r.kept, 1);
    assert.equal((await c.list()).partitions.length, 1);
  });
});

Deno.test("close waits for calls in flight and then refuses new ones", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "chronos-ffi-" });
  try {
    const c = Chronos.open({ stateDir });
    const pending = c.list();
    c.close();
    assert.equal((await pending).partitions.length, 0);
    const err = await refusal(c.list());
    assert.match(err.message, /closed/);
    c.close();
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("a bad config file fails open() with the path and reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chronos-ffi-" });
  try {
    await Deno.writeTextFile(`${dir}/c.yaml`, "max_share_per_owner: 7\n");
    assert.throws(
      () => Chronos.open({ stateDir: dir, configPath: `${dir}/c.yaml` }),
      (e: unknown) =>
        e instanceof ChronosError && e.chronosCode === "CONFIG" &&
        /max_share_per_owner/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the library is found via CUMULUS_CHRONOS_PATH, beside the executable, or the build", () => {
  const files = new Set(["/opt/chronos/libchronos.so", "/usr/local/bin/libchronos.so"]);
  const exists = (p: string) => files.has(p);
  assert.equal(
    resolveLibraryPath({ chronosPath: "/opt/chronos/", execPath: "/x/deno", exists }),
    "/opt/chronos/libchronos.so",
  );
  assert.equal(
    resolveLibraryPath({ execPath: "/usr/local/bin/cumulus", exists }),
    "/usr/local/bin/libchronos.so",
  );
  assert.throws(
    () => resolveLibraryPath({ chronosPath: "/missing", execPath: "/x/deno", exists }),
    /CUMULUS_CHRONOS_PATH is \/missing, but \/missing\/libchronos\.so does not exist/,
  );
  const dev = resolveLibraryPath({
    execPath: "/x/deno",
    exists: (p) => p.endsWith("/chronos/build/libchronos.so"),
  });
  assert.match(dev, /\/chronos\/build\/libchronos\.so$/);
  assert.throws(
    () => resolveLibraryPath({ execPath: "/x/deno", exists: () => false }),
    /not found/,
  );
});

Deno.test("a library that cannot be loaded gives a clear error", () => {
  assert.throws(
    () => Chronos.open({ libraryPath: "/nonexistent/libchronos.so" }),
    (e: unknown) =>
      e instanceof ChronosError && /cannot load \/nonexistent\/libchronos\.so/.test(e.message),
  );
});

Deno.test("a create waiting on a held lock leaves the event loop free", async () => {
  await withChronos(async (c, dir) => {
    await c.deviceCount();
    const lockFile = await Deno.open(`${dir}/chronos.lock`, { create: true, write: true });
    try {
      await lockFile.lock(true); // flock(2), the same lock Chronos takes
      const t0 = performance.now();
      let timerFired = 0;
      const unlock = new Promise<void>((resolve) =>
        setTimeout(async () => {
          timerFired = performance.now() - t0;
          await lockFile.unlock();
          resolve();
        }, 150)
      );
      const p = await c.create({ device: 0, memory: 0.5, duration: 60 });
      await unlock;
      // The timer ran while create waited on its worker thread, and create finished after it.
      assert.ok(timerFired >= 140, `timer fired after ${timerFired} ms`);
      assert.ok(performance.now() - t0 >= timerFired);
      assert.match(p.id, /^p-/);
    } finally {
      lockFile.close();
    }
  }, { tmpfs: true });
});

Deno.test("CHRONOS_STATUS lists chronos.h's status codes by number", async () => {
  const header = await Deno.readTextFile(
    new URL("../../chronos/include/chronos.h", import.meta.url),
  );
  const defined = [...header.matchAll(/^#define CHRONOS_(?:E_)?([A-Z_]+) (\d+)/gm)]
    .filter(([, name]) => name !== "PARTITION_JSON_MAX")
    .map(([, name, n]) => [Number(n), name] as const);
  assert.ok(defined.length >= 14, `only ${defined.length} statuses found`);
  for (const [n, name] of defined) assert.equal(CHRONOS_STATUS[n], name, `status ${n}`);
  assert.equal(CHRONOS_STATUS.length, defined.length);
});
