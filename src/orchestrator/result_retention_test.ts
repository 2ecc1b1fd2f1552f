import assert from "node:assert/strict";
import { mockJob, mockLookup } from "../core/_mock.ts";
import { type JobSpec, type JobState, parseJobSpec } from "../core/mod.ts";
import { JobStore } from "../store/mod.ts";
import {
  type BundleFile,
  planBundleRemovals,
  planLeftoverFiles,
  planResultRemovals,
  resultFiles,
  resultRemovedMessage,
  ResultSweeper,
  type ResultSweeperDeps,
} from "./result_retention.ts";

const DAY = 86400;
const DEFAULT = 7 * DAY;

/** A real store file and results directory in a temp dir, and a clock the test moves. */
async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-results-" });
  await Deno.mkdir(`${dir}/results`);
  const store = JobStore.open(`${dir}/jobs.db`);
  const clock = { t: 1_000_000 };
  const logs: string[] = [];
  const deps: ResultSweeperDeps = {
    store,
    resultDir: `${dir}/results`,
    defaultRetention: DEFAULT,
    intervalMs: 0,
    now: () => clock.t,
    log: (m) => logs.push(m),
  };
  let n = 0;
  /** A job with a stored result that ends at `endAt` (null: still running). */
  const job = async (
    endAt: number | null,
    opts: { retention?: number; legacy?: boolean; end?: JobState } = {},
  ) => {
    const id = `j-${(++n).toString(16).padStart(12, "0")}`;
    const spec: JobSpec = parseJobSpec(
      {
        function: new Uint8Array([1]),
        gpuMemory: 0.5,
        duration: 60,
        resultRetention: opts.retention,
      },
      { defaultImage: "img", maxDuration: DAY, defaultMaxAttempts: 1, resultRetention: DEFAULT },
    );
    // A record stored before specs carried a retention.
    if (opts.legacy) delete spec.resultRetention;
    store.insert({ id, spec, token: "t", bundleBytes: 0, createdAt: 1 });
    store.transition(id, "QUEUED", "SCHEDULED", {}, 2);
    store.transition(id, "SCHEDULED", "RUNNING", {}, 3);
    const files = resultFiles(deps.resultDir, id);
    await Deno.writeTextFile(files.meta, JSON.stringify({ kind: "pickle", bytes: 3 }));
    await Deno.writeFile(files.data, new Uint8Array([7, 8, 9]));
    store.update(id, { hasResult: true });
    if (endAt !== null) store.transition(id, "RUNNING", opts.end ?? "SUCCEEDED", {}, endAt);
    return id;
  };
  const filesOf = async (id: string) => {
    const out: string[] = [];
    for await (const e of Deno.readDir(deps.resultDir)) if (e.name.startsWith(id)) out.push(e.name);
    return out.sort();
  };
  return {
    deps,
    store,
    clock,
    logs,
    job,
    filesOf,
    async [Symbol.asyncDispose]() {
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("a result past its retention is removed and recorded; the job stays", async () => {
  await using f = await fixture();
  const id = await f.job(f.clock.t);
  const sweeper = new ResultSweeper(f.deps);
  f.clock.t += DEFAULT * 1000 - 1;
  assert.deepEqual((await sweeper.sweep()).removed, [], "one ms before its retention is over");
  assert.deepEqual(await f.filesOf(id), [`${id}.bin`, `${id}.json`]);
  f.clock.t += 1;
  assert.deepEqual((await sweeper.sweep()).removed, [id]);
  assert.deepEqual(await f.filesOf(id), []);
  const after = f.store.mustGet(id);
  assert.equal(after.state, "SUCCEEDED");
  assert.equal(after.hasResult, true);
  assert.equal(after.resultRemovedAt, f.clock.t);
  assert.equal(
    resultRemovedMessage(after, DEFAULT),
    `result of job ${id} was removed after its retention of 7d`,
  );
  // Recorded once: the next sweep has nothing to do.
  f.clock.t += 1000;
  assert.deepEqual((await sweeper.sweep()).removed, []);
  assert.equal(f.store.mustGet(id).resultRemovedAt, f.clock.t - 1000);
});

Deno.test("a running job's result is never removed, however old", async () => {
  await using f = await fixture();
  const running = await f.job(null, { retention: 1 });
  f.clock.t += 365 * DAY * 1000;
  assert.deepEqual((await new ResultSweeper(f.deps).sweep()).removed, []);
  assert.deepEqual(await f.filesOf(running), [`${running}.bin`, `${running}.json`]);
  assert.equal(f.store.mustGet(running).resultRemovedAt, 0);
});

Deno.test("each job's own retention applies; 0 keeps forever; old records get the default", async () => {
  await using f = await fixture();
  const start = f.clock.t;
  const short = await f.job(start, { retention: 60 });
  const failed = await f.job(start, { retention: 60, end: "FAILED" });
  const legacyA = await f.job(start, { legacy: true });
  const legacyB = await f.job(start, { legacy: true, end: "CANCELLED" });
  const sweeper = new ResultSweeper({ ...f.deps, defaultRetention: 3600 });
  f.clock.t = start + 59_999;
  assert.deepEqual((await sweeper.sweep()).removed, []);
  f.clock.t = start + 60_000;
  assert.deepEqual((await sweeper.sweep()).removed.sort(), [short, failed].sort());
  f.clock.t = start + 3_600_000;
  assert.deepEqual((await sweeper.sweep()).removed.sort(), [legacyA, legacyB].sort());

  // With result_retention 0, a record without its own retention is kept forever.
  const kept = await f.job(start, { legacy: true });
  f.clock.t = start + 1000 * DAY * 1000;
  const keepAll = new ResultSweeper({ ...f.deps, defaultRetention: 0 });
  assert.deepEqual((await keepAll.sweep()).removed, []);
  assert.deepEqual(await f.filesOf(kept), [`${kept}.bin`, `${kept}.json`]);
});

Deno.test("a spec may shorten the retention, not exceed it; 0 asks for the default", () => {
  const limits = { defaultImage: "i", maxDuration: 60, defaultMaxAttempts: 1 };
  const parse = (asked: number | undefined, limit: number) =>
    parseJobSpec({ command: ["true"], gpuMemory: 1, duration: 1, resultRetention: asked }, {
      ...limits,
      resultRetention: limit,
    }).resultRetention;
  assert.equal(parse(undefined, DEFAULT), DEFAULT);
  assert.equal(parse(0, DEFAULT), DEFAULT);
  assert.equal(parse(90, DEFAULT), 90);
  assert.equal(parse(30 * DAY, 0), 30 * DAY, "no limit when results are kept forever");
  assert.throws(() => parse(DEFAULT + 1, DEFAULT), /spec.result_retention.*at most 604800/);
  assert.throws(() => parse(-1, DEFAULT), /spec.result_retention/);
});

Deno.test("start sweeps at once (leftover files too), then every interval until stopped", async () => {
  await using f = await fixture();
  const old = await f.job(f.clock.t - DEFAULT * 1000);
  // A removal recorded before a crash that left the files behind.
  const crashed = await f.job(f.clock.t - 10);
  f.store.markResultRemoved(crashed, f.clock.t);
  const later = await f.job(f.clock.t, { retention: 5 });
  const sweeper = new ResultSweeper({ ...f.deps, intervalMs: 20 });
  const first = await sweeper.start();
  try {
    assert.deepEqual(first, { removed: [old], leftovers: 2, bundles: 0 });
    assert.deepEqual(await f.filesOf(crashed), []);
    assert.deepEqual(await f.filesOf(later), [`${later}.bin`, `${later}.json`]);
    f.clock.t += 5000;
    const until = Date.now() + 5000;
    // The sweep records the removal first, then deletes the files: wait for both.
    while (
      (f.store.mustGet(later).resultRemovedAt === 0 || (await f.filesOf(later)).length > 0) &&
      Date.now() < until
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(f.store.mustGet(later).resultRemovedAt, f.clock.t, "a periodic sweep removed it");
    assert.deepEqual(await f.filesOf(later), []);
  } finally {
    await sweeper.stop();
  }
  const id = await f.job(f.clock.t, { retention: 1 });
  f.clock.t += 1000;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(f.store.mustGet(id).resultRemovedAt, 0, "no sweep after stop");
  assert.ok(
    f.logs.some((l) => /removed 1 result\(s\).*2 leftover file/.test(l)),
    f.logs.join("\n"),
  );
});

Deno.test("bundles go once their job has ended; a running job's and a fresh orphan's stay", async () => {
  await using f = await fixture();
  const bundleDir = `${f.deps.resultDir}/../bundles`;
  await Deno.mkdir(bundleDir);
  // The orphan check compares file times with the clock: run it on real time.
  f.clock.t = Date.now();
  const ended = await f.job(f.clock.t);
  const running = await f.job(null);
  const orphanOld = "j-0000000000aa";
  const orphanNew = "j-0000000000bb";
  for (const id of [ended, running, orphanOld, orphanNew]) {
    await Deno.writeFile(`${bundleDir}/${id}.tar.gz`, new Uint8Array([1, 2, 3]));
  }
  await Deno.writeTextFile(`${bundleDir}/notes.txt`, "not a bundle");
  // One orphan from an hour and a minute ago, one from just now.
  await Deno.utime(`${bundleDir}/${orphanOld}.tar.gz`, new Date(), new Date(f.clock.t - 3_660_000));
  const sweeper = new ResultSweeper({ ...f.deps, bundleDir });
  const report = await sweeper.sweep();
  assert.equal(report.bundles, 2);
  const left = [];
  for await (const e of Deno.readDir(bundleDir)) left.push(e.name);
  assert.deepEqual(left.sort(), [`${orphanNew}.tar.gz`, `${running}.tar.gz`, "notes.txt"].sort());
  assert.ok(f.logs.some((l) => l.includes("removed 2 bundle(s)")));
  // The ended job's result is untouched (its retention is not over).
  assert.equal((await f.filesOf(ended)).length, 2);
});

// The planners, as tables: ids end in their row's letter.
const J = (c: string) => `j-00000000000${c}`;
const HOUR = 3600_000;

type Stored = Parameters<typeof planResultRemovals>[0][number];
function stored(c: string, state: JobState, finishedAt: number, retention?: number): Stored {
  return { id: J(c), state, finishedAt, resultRetention: retention };
}

const removalCases: Array<[string, Stored[], number, string[]]> = [
  ["nothing stored: nothing", [], 10_000_000, []],
  ["over at exactly its retention", [stored("a", "SUCCEEDED", 0, 60)], 60_000, [J("a")]],
  ["kept one ms before", [stored("a", "SUCCEEDED", 0, 60)], 59_999, []],
  [
    "every terminal state",
    [
      stored("a", "FAILED", 0, 1),
      stored("b", "CANCELLED", 0, 1),
      stored("c", "EXPIRED", 0, 1),
    ],
    1000,
    [J("a"), J("b"), J("c")],
  ],
  [
    "a job that has not ended keeps it, however old",
    [
      stored("a", "RUNNING", 0, 1),
      stored("b", "RESUMING", 0, 1),
    ],
    1e12,
    [],
  ],
  [
    "no retention of its own: the default (7d) applies",
    [stored("a", "SUCCEEDED", 0)],
    DEFAULT *
    1000,
    [J("a")],
  ],
  ["its own retention of 0 keeps it forever", [stored("a", "SUCCEEDED", 0, 0)], 1e12, []],
  [
    "its own retention wins over the default",
    [stored("a", "SUCCEEDED", 0, DEFAULT * 2)],
    DEFAULT *
    1000,
    [],
  ],
  ["input order is kept", [stored("b", "SUCCEEDED", 0, 1), stored("a", "FAILED", 0, 1)], 1000, [
    J("b"),
    J("a"),
  ]],
];

for (const [name, rows, now, want] of removalCases) {
  Deno.test(`planResultRemovals: ${name}`, () => {
    assert.deepEqual(planResultRemovals(rows, now, DEFAULT), want);
  });
}

Deno.test("planResultRemovals: a default of 0 keeps results without their own retention", () => {
  assert.deepEqual(planResultRemovals([stored("a", "SUCCEEDED", 0)], 1e12, 0), []);
});

const removedJob = (c: string) => mockJob({ id: J(c), state: "SUCCEEDED", resultRemovedAt: 5 });
const keptJob = (c: string) => mockJob({ id: J(c), state: "SUCCEEDED", resultRemovedAt: 0 });

const leftoverCases: Array<[string, string[], ReturnType<typeof mockJob>[], string[], string[]]> = [
  [
    "files of a result recorded as removed go",
    [`${J("a")}.bin`, `${J("a")}.json`],
    [
      removedJob("a"),
    ],
    [],
    [`${J("a")}.bin`, `${J("a")}.json`],
  ],
  ["files of a kept result stay", [`${J("a")}.bin`], [keptJob("a")], [], []],
  ["files of a job the store does not know stay", [`${J("a")}.bin`], [], [], []],
  ["files this sweep removed are not counted again", [`${J("a")}.bin`], [removedJob("a")], [
    J("a"),
  ], []],
  ["other files stay", [`${J("a")}.tmp`, "notes.txt", `x${J("a")}.bin`], [removedJob("a")], [], []],
];

for (const [name, names, jobs, skip, want] of leftoverCases) {
  Deno.test(`planLeftoverFiles: ${name}`, () => {
    assert.deepEqual(planLeftoverFiles(names, mockLookup(...jobs), new Set(skip)), want);
  });
}

const NOW = 10 * HOUR;
const bundle = (c: string, ageMs: number | null): BundleFile => ({
  name: `${J(c)}.tar.gz`,
  mtimeMs: ageMs === null ? null : NOW - ageMs,
});

const bundleCases: Array<[string, BundleFile[], ReturnType<typeof mockJob>[], string[]]> = [
  ["an ended job's bundle goes, however fresh", [bundle("a", 0)], [keptJob("a")], [
    `${J("a")}.tar.gz`,
  ]],
  ["a running job's bundle stays, however old", [bundle("a", 5 * HOUR)], [
    mockJob({ id: J("a"), state: "RUNNING" }),
  ], []],
  ["a queued job's bundle stays", [bundle("a", 5 * HOUR)], [
    mockJob({ id: J("a"), state: "QUEUED" }),
  ], []],
  ["an orphan an hour old goes", [bundle("a", HOUR)], [], [`${J("a")}.tar.gz`]],
  [
    "a fresher orphan stays (its submit may not have recorded the job yet)",
    [
      bundle("a", HOUR - 1),
    ],
    [],
    [],
  ],
  ["an orphan of unknown age stays", [bundle("a", null)], [], []],
  [
    "files that are no bundle stay",
    [
      { name: "notes.txt", mtimeMs: 0 },
      { name: `${J("a")}.tar`, mtimeMs: 0 },
    ],
    [],
    [],
  ],
];

for (const [name, files, jobs, want] of bundleCases) {
  Deno.test(`planBundleRemovals: ${name}`, () => {
    assert.deepEqual(planBundleRemovals(files, mockLookup(...jobs), NOW), want);
  });
}
