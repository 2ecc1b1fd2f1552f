import assert from "node:assert/strict";
import type { JobRecord, JobState } from "../sdk/mod.ts";
import { UsageError } from "./args.ts";
import { exitCodeOfJob, parseRunOptions } from "./run.ts";

const noEnv = (_: string) => undefined;

Deno.test("run defaults: gpu memory 0.25, duration 3600, empty image, bundle on", () => {
  const o = parseRunOptions({}, ["true"], noEnv);
  assert.equal(o.spec.gpuMemory, 0.25);
  assert.equal(o.spec.duration, 3600);
  assert.equal(o.spec.image, "");
  assert.equal(o.bundle, true);
  assert.equal(o.maxBundleBytes, 100 * 1024 * 1024);
  assert.equal(o.spec.user, "");
});

Deno.test("run flags become the spec", () => {
  const env = (k: string) => ({ HOME: "/home/ada", USER: "ada" } as Record<string, string>)[k];
  const o = parseRunOptions(
    {
      image: "cumulus-job:latest",
      "gpu-memory": "0.5",
      duration: "10m",
      env: ["A=1", "B=x=y", "HOME"],
      constraint: ["node.role==worker"],
      name: "n",
      "no-bundle": true,
      detach: true,
      "max-bundle-size": "1M",
    },
    ["python3", "x.py"],
    env,
  );
  assert.deepEqual(o.spec, {
    image: "cumulus-job:latest",
    command: ["python3", "x.py"],
    env: { A: "1", B: "x=y", HOME: "/home/ada" },
    gpuMemory: 0.5,
    duration: 600,
    constraints: ["node.role==worker"],
    name: "n",
    user: "ada",
    workdir: "",
  });
  assert.equal(o.bundle, false);
  assert.equal(o.detach, true);
  assert.equal(o.maxBundleBytes, 1024 * 1024);
});

Deno.test("run leaves out-of-range numbers to the server but rejects non-numbers", () => {
  assert.equal(parseRunOptions({ "gpu-memory": "2" }, ["true"], noEnv).spec.gpuMemory, 2);
  assert.throws(
    () => parseRunOptions({ "gpu-memory": "lots" }, ["true"], noEnv),
    /--gpu-memory: not a number/,
  );
});

Deno.test("--gpus N asks N whole GPUs, without the default fraction", () => {
  const whole = parseRunOptions({ gpus: "2" }, ["true"], noEnv).spec;
  assert.equal(whole.gpuCount, 2);
  assert.equal(whole.gpuMemory, undefined);
  // A fraction with a count goes as given: the orchestrator refuses it, naming the field.
  const both = parseRunOptions({ gpus: "2", "gpu-memory": "0.5" }, ["true"], noEnv).spec;
  assert.deepEqual([both.gpuCount, both.gpuMemory], [2, 0.5]);
  assert.equal(parseRunOptions({}, ["true"], noEnv).spec.gpuCount, undefined);
  assert.throws(
    () => parseRunOptions({ gpus: "two" }, ["true"], noEnv),
    /--gpus: expected a whole/,
  );
  assert.throws(() => parseRunOptions({ gpus: "1.5" }, ["true"], noEnv), UsageError);
});

Deno.test("run usage errors: no command, bad --env", () => {
  assert.throws(() => parseRunOptions({}, [], noEnv), UsageError);
  assert.throws(() => parseRunOptions({ env: ["=1"] }, ["true"], noEnv), /--env: expected/);
  assert.throws(() => parseRunOptions({ env: ["NOPE"] }, ["true"], noEnv), /not set here/);
});

Deno.test("--user beats CUMULUS_USER beats USER", () => {
  const env = (k: string) => ({ CUMULUS_USER: "cu", USER: "u" } as Record<string, string>)[k];
  assert.equal(parseRunOptions({}, ["true"], env).spec.user, "cu");
  assert.equal(parseRunOptions({ user: "x" }, ["true"], env).spec.user, "x");
});

function ended(state: JobState, exitCode: number | null): JobRecord {
  return { state, exitCode } as JobRecord;
}

const codes: Array<[JobState, number | null, number]> = [
  ["SUCCEEDED", 0, 0],
  ["SUCCEEDED", null, 0],
  ["FAILED", 3, 3],
  ["FAILED", null, 1],
  ["FAILED", 0, 1],
  ["FAILED", 300, 1],
  ["CANCELLED", null, 130],
  ["CANCELLED", 137, 130],
  ["EXPIRED", null, 124],
];
for (const [state, exit, want] of codes) {
  Deno.test(`exitCodeOfJob(${state}, exit ${exit}) = ${want}`, () => {
    assert.equal(exitCodeOfJob(ended(state, exit)), want);
  });
}

Deno.test("--gpu-memory takes a fraction or an absolute size", () => {
  const frac = parseRunOptions({ "gpu-memory": "0.5" }, ["true"], noEnv).spec;
  assert.equal(frac.gpuMemory, 0.5);
  assert.equal(frac.gpuMemorySize, undefined);
  const size = parseRunOptions({ "gpu-memory": " 20GiB " }, ["true"], noEnv).spec;
  assert.equal(size.gpuMemorySize, "20GiB");
  assert.equal(size.gpuMemory, undefined);
});

Deno.test("retry and retention flags are sent only when given, and checked for form", () => {
  const plain = parseRunOptions({}, ["true"], noEnv).spec;
  assert.equal(plain.retry, undefined);
  assert.equal(plain.resultRetention, undefined);
  const resume = parseRunOptions({ "resume-on-expiry": true }, ["true"], noEnv).spec;
  assert.deepEqual(resume.retry, { resume: true, maxAttempts: 0, resumeOnExpiry: true });
  const attempts = parseRunOptions({ "max-attempts": "5" }, ["true"], noEnv).spec;
  assert.deepEqual(attempts.retry, { resume: true, maxAttempts: 5, resumeOnExpiry: false });
  assert.equal(
    parseRunOptions({ "result-retention": "12h" }, ["true"], noEnv).spec.resultRetention,
    43_200,
  );
  assert.throws(() => parseRunOptions({ "max-attempts": "0" }, ["true"], noEnv), /--max-attempts/);
  assert.throws(() => parseRunOptions({ "max-attempts": "x" }, ["true"], noEnv), /--max-attempts/);
  assert.throws(
    () => parseRunOptions({ "result-retention": "soon" }, ["true"], noEnv),
    /--result-retention/,
  );
});

Deno.test("--cpu, --memory and --image-user reach the spec; absent, the orchestrator decides", () => {
  const o = parseRunOptions({ cpu: "0.5", memory: "512M", "image-user": true }, ["true"], noEnv);
  assert.equal(o.spec.cpu, 0.5);
  assert.equal(o.spec.memory, `${512 * 1024 ** 2}B`);
  assert.equal(o.spec.imageUser, true);
  const none = parseRunOptions({}, ["true"], noEnv).spec;
  assert.equal(none.cpu, undefined);
  assert.equal(none.memory, undefined);
  assert.equal(none.imageUser, undefined);
  assert.throws(
    () => parseRunOptions({ memory: "lots" }, ["true"], noEnv),
    /--memory: expected a size/,
  );
  assert.throws(() => parseRunOptions({ cpu: "two" }, ["true"], noEnv), /--cpu/);
});
