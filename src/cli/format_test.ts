import assert from "node:assert/strict";
import type { JobRecord } from "../sdk/mod.ts";
import {
  displayCommand,
  escapeTerminal,
  formatAge,
  formatDuration,
  formatJobs,
  formatTable,
  formatWorkers,
  jobJson,
  jobRow,
  truncate,
} from "./format.ts";

Deno.test("formatTable aligns columns with three spaces and no trailing blanks", () => {
  const out = formatTable(["ID", "STATE", "EXIT"], [
    ["j-1", "RUNNING", "-"],
    ["j-222222", "FAILED", "3"],
  ]);
  assert.equal(
    out,
    "ID         STATE     EXIT\n" +
      "j-1        RUNNING   -\n" +
      "j-222222   FAILED    3\n",
  );
});

Deno.test("formatTable counts code points, not UTF-16 units", () => {
  const out = formatTable(["NAME", "X"], [["🚀", "a"], ["bb", "b"]]);
  assert.equal(out, "NAME   X\n🚀      a\nbb     b\n");
});

const ages: Array<[number, string]> = [
  [0, "0s"],
  [59_999, "59s"],
  [60_000, "1m"],
  [3_599_000, "59m"],
  [3_600_000, "1h"],
  [47 * 3_600_000, "47h"],
  [48 * 3_600_000, "2d"],
  [-5, "0s"],
];
for (const [ms, want] of ages) {
  Deno.test(`formatAge(${ms}) = ${want}`, () => assert.equal(formatAge(ms), want));
}

const durations: Array<[number, string]> = [
  [0, "0.0s"],
  [420, "0.4s"],
  [9_949, "9.9s"],
  [12_000, "12s"],
  [185_000, "3m05s"],
  [7_620_000, "2h07m"],
];
for (const [ms, want] of durations) {
  Deno.test(`formatDuration(${ms}) = ${want}`, () => assert.equal(formatDuration(ms), want));
}

Deno.test("truncate and displayCommand", () => {
  assert.equal(truncate("abcdef", 4), "abc…");
  assert.equal(truncate("abc", 4), "abc");
  assert.equal(displayCommand(["sh", "-c", "echo hi; exit 3"]), 'sh -c "echo hi; exit 3"');
});

function job(over: Partial<JobRecord>): JobRecord {
  return {
    id: "j-0123456789ab",
    spec: {
      image: "img",
      command: ["sh", "-c", "echo hello; exit 3"],
      function: new Uint8Array([1, 2, 3]),
      env: {},
      gpuMemory: 0.25,
      gpuMemorySize: "",
      duration: 3600,
      gpuCount: 1,
      constraints: [],
      retry: { resume: false, maxAttempts: 1, resumeOnExpiry: false },
      checkpoint: { s3Prefix: "" },
      user: "ada",
      name: "",
      workdir: "",
      resultRetention: 604800,
      cpu: 4,
      memory: "4294967296B",
      imageUser: false,
    },
    state: "FAILED",
    exitCode: 3,
    reason: "",
    createdAtMs: 1_000,
    startedAtMs: 2_000,
    finishedAtMs: 14_000,
    attempts: 1,
    nodeId: "n1",
    serviceId: "s1",
    logSeq: 1,
    hasResult: false,
    bundleBytes: 0,
    functionBytes: 0,
    resultRemovedAtMs: null,
    lastCheckpoint: null,
    partitionIds: [],
    gpuDevices: [],
    reasonCode: "",
    ...over,
  };
}

Deno.test("formatJobs shows state, exit code, attempts, user, age and duration", () => {
  const base = job({});
  const out = formatJobs([
    base,
    job({ id: "j-ffffffffffff", state: "QUEUED", exitCode: null, startedAtMs: null }),
    job({
      id: "j-aaaaaaaaaaaa",
      state: "RUNNING",
      exitCode: null,
      attempts: 2,
      spec: { ...base.spec, retry: { resume: true, maxAttempts: 3, resumeOnExpiry: false } },
    }),
  ], 61_000);
  const lines = out.trimEnd().split("\n");
  assert.match(
    lines[0],
    /^ID\s+NAME\s+STATE\s+EXIT\s+ATTEMPTS\s+USER\s+AGE\s+DURATION\s+COMMAND$/,
  );
  assert.match(lines[1], /^j-0123456789ab\s+-\s+FAILED\s+3\s+1\s+ada\s+1m\s+12s\s+sh -c "echo/);
  assert.match(lines[2], /^j-ffffffffffff\s+-\s+QUEUED\s+-\s+1\s+ada\s+1m\s+-\s+sh/);
  assert.match(lines[3], /^j-aaaaaaaaaaaa\s+-\s+RUNNING\s+-\s+2\/3\s+ada\s/);
});

Deno.test("a function job shows as one by its functionBytes (the bytes are never sent back)", () => {
  const base = job({});
  const fn = job({
    functionBytes: 2_000_000,
    spec: { ...base.spec, command: [], function: new Uint8Array() },
  });
  const noFn = job({ spec: { ...base.spec, command: [], function: new Uint8Array() } });
  assert.equal(jobRow(fn, 61_000).at(-1), "(python function)");
  assert.equal(jobRow(noFn, 61_000).at(-1), "");
  assert.equal(jobJson(fn).functionBytes, 2_000_000);
});

Deno.test("jobJson encodes the pickled function as base64", () => {
  const j = jobJson(job({})) as { spec: { function: string }; exitCode: number };
  assert.equal(j.spec.function, "AQID");
  assert.equal(JSON.parse(JSON.stringify(j)).exitCode, 3);
});

Deno.test("workers table shows each device's share, its GPU, the device access and the agent state", () => {
  const base = {
    nodeId: "n1",
    hostname: "gpu-box",
    state: "ready",
    availability: "active",
    role: "worker",
    labels: { "gpu.count": "1", zone: "a" },
    address: "10.0.0.5",
    runningJobs: 2,
  };
  const table = formatWorkers([
    {
      ...base,
      agent: "ok",
      deviceAccess: "nvidia",
      gpus: [{
        index: 0,
        name: "H100",
        memoryBytes: 80 * 1024 ** 3,
        allocated: 0.5,
        free: 0.5,
        partitions: 1,
        uuid: "GPU-8f0c1d2e-aaaa-bbbb-cccc-0123456789ab",
        pciBusId: "0000:19:00.0",
        vendor: "nvidia",
      }],
    },
    {
      ...base,
      nodeId: "n2",
      agent: "ok",
      deviceAccess: "none",
      gpus: [{
        index: 0,
        name: "pthread-cpu",
        memoryBytes: 8 * 1024 ** 3,
        allocated: 0,
        free: 1,
        partitions: 0,
        uuid: "",
        pciBusId: "",
        vendor: "",
      }],
    },
    {
      ...base,
      nodeId: "n3",
      agent: "agent unreachable: connection refused",
      deviceAccess: "none",
      gpus: [],
    },
  ]);
  const [, ok, cpu, down] = table.trimEnd().split("\n");
  assert.match(
    ok,
    /\bok\s+nvidia\s+gpu0 80\.0 GiB 0\.50\/0\.50 \(1\) GPU-8f0c1d2e\s+10\.0\.0\.5\s+zone=a$/,
  );
  assert.match(cpu, /\bok\s+none \(no device access\)\s+gpu0 8\.0 GiB 0\.00\/1\.00 \(0\)\s+10/);
  assert.match(down, /agent unreachable: connection refused\s+-\s+-\s+10\.0\.0\.5/);
});

Deno.test("escapeTerminal shows control characters and bidi overrides as visible escapes", () => {
  assert.equal(escapeTerminal("a\x1b[2Jb"), "a\\x1b[2Jb");
  assert.equal(escapeTerminal("x\ny\tz\x07\x7f\x9b"), "x\\x0ay\\x09z\\x07\\x7f\\x9b");
  assert.equal(escapeTerminal("evil\u202egnp.exe"), "evil\\u202egnp.exe");
  assert.equal(escapeTerminal("café ✓ 名前"), "café ✓ 名前");
});

Deno.test("a job name with an escape sequence is printed escaped in the jobs table", () => {
  const out = formatJobs(
    [job({ spec: { ...job({}).spec, name: "x\x1b]0;pwned\x07\x1b[2J" } })],
    20_000,
  );
  assert.ok(!out.includes("\x1b") && !out.includes("\x07"), JSON.stringify(out));
  assert.match(out, /x\\x1b\]0;pwned\\x07\\x1b\[2J/);
});
