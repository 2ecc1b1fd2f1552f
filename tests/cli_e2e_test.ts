/**
 * End-to-end tests of the `cumulus` CLI: the real CLI as a subprocess
 * (`deno run -A main.ts ...`) against a real orchestrator on the local
 * Docker Swarm (tests/helpers/stack.ts).
 */
import assert from "node:assert/strict";
import {
  JOB_IMAGE,
  type Stack,
  startStack,
  SWARM_SOCKET,
  TEST_ADMIN_TOKEN,
  TEST_ADMIN_USER,
} from "./helpers/stack.ts";

/** The CLI runs as user "e2e" (an admin token) on the stacks withStack makes. */
const e2eTokens = new WeakMap<Stack, string>();

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;
const CONFIG = new URL("deno.json", ROOT).pathname;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cliCommand(
  stack: Stack,
  args: string[],
  cwd: string,
  piped = true,
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    cwd,
    env: {
      ...stack.env,
      NO_COLOR: "1",
      CUMULUS_TOKEN: e2eTokens.get(stack) ?? stack.token ?? TEST_ADMIN_TOKEN,
      ...env,
    },
    stdin: "null",
    stdout: piped ? "piped" : "null",
    stderr: piped ? "piped" : "null",
  });
}

/** Runs the CLI to completion. */
async function cli(
  stack: Stack,
  args: string[],
  cwd = Deno.cwd(),
  env: Record<string, string> = {},
): Promise<CliResult> {
  const out = await cliCommand(stack, args, cwd, true, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

interface JsonJob {
  id: string;
  state: string;
  exitCode: number | null;
  reason: string;
  spec: { user: string; gpuMemory: number; duration: number; image: string };
}

async function jobsJson(stack: Stack): Promise<JsonJob[]> {
  const r = await cli(stack, ["jobs", "--all", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function waitForState(stack: Stack, id: string, state: string, ms = 30_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const job = (await jobsJson(stack)).find((j) => j.id === id);
    if (job?.state === state) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`job ${id} did not reach ${state} within ${ms} ms`);
}

async function withStack(fn: (stack: Stack, dir: string) => Promise<void>): Promise<void> {
  const stack = await startStack();
  const dir = await Deno.makeTempDir({ prefix: "cumulus-cli-e2e-" });
  try {
    e2eTokens.set(stack, await stack.createToken("e2e", { admin: true }));
    await fn(stack, dir);
  } finally {
    await stack.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The one-line error contract: exactly one line on stderr, starting "cumulus: ". */
function assertOneErrorLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${stderr}`);
  assert.match(lines[0], /^cumulus: /);
  return lines[0];
}

Deno.test({
  name: "run -- sh -c 'echo hello; exit 3' prints hello, exits 3, and the job is FAILED with 3",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const r = await cli(stack, ["run", "--", "sh", "-c", "echo hello; exit 3"], dir);
      assert.equal(r.stdout, "hello\n");
      assert.equal(r.code, 3, r.stderr);
      // No progress without a terminal, and nothing else on stderr.
      assert.equal(r.stderr, "");
      const jobs = await jobsJson(stack);
      assert.equal(jobs.length, 1);
      assert.equal(jobs[0].state, "FAILED");
      assert.equal(jobs[0].exitCode, 3);
      assert.equal(jobs[0].spec.gpuMemory, 0.25);
      assert.equal(jobs[0].spec.duration, 3600);
      assert.equal(jobs[0].spec.user, "e2e");
      const table = await cli(stack, ["jobs"]);
      assert.match(
        table.stdout,
        /^ID\s+NAME\s+STATE\s+EXIT\s+ATTEMPTS\s+USER\s+AGE\s+DURATION\s+COMMAND\n/,
      );
      assert.match(table.stdout, new RegExp(`${jobs[0].id}\\s+-\\s+FAILED\\s+3\\s+1/3\\s+e2e\\s`));
    }),
});

Deno.test({
  name: "run streams stderr to stderr, exits 0 on success, and shows progress with --progress",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      await Deno.writeTextFile(`${dir}/.cumulusignore`, "*\n");
      const r = await cli(
        stack,
        ["run", "--progress", "--name", "two-streams", "--", "sh", "-c", "echo out; echo err >&2"],
        dir,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "out\n");
      assert.match(r.stderr, /^err$/m);
      assert.match(r.stderr, /^Packing /m);
      assert.match(r.stderr, /^Submitted job j-[0-9a-f]{12}, waiting for a worker$/m);
    }),
});

Deno.test({
  name: "run --gpu-memory 1.5 prints one line naming gpu_memory, exits 1 and creates no job",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      // Above 1, gpu_memory counts whole GPUs: 1.5 is neither a fraction nor a count.
      const r = await cli(stack, ["run", "--gpu-memory", "1.5", "--", "true"], dir);
      assert.equal(r.code, 1);
      const line = assertOneErrorLine(r.stderr);
      assert.match(line, /gpu_memory/);
      assert.match(line, /\[INVALID_ARGUMENT\]$/);
      assert.equal(r.stdout, "");
      for (
        const args of [
          ["--duration", "0"],
          ["--duration", "-5"],
          ["--gpu-memory", "0"],
          ["--gpus", "9"],
          ["--gpus", "2", "--gpu-memory", "0.5"],
        ]
      ) {
        const bad = await cli(stack, ["run", ...args, "--", "true"], dir);
        assert.equal(bad.code, 1, args.join(" "));
        assert.match(assertOneErrorLine(bad.stderr), /spec\.(duration|gpu_memory|gpu_count): /);
      }
      assert.deepEqual(await jobsJson(stack), []);
    }),
});

Deno.test({
  name: "logs of an unknown job id prints a NOT_FOUND line and exits 1",
  ...opts,
  fn: () =>
    withStack(async (stack) => {
      for (const args of [["logs", "j-000000000000"], ["logs", "-f", "j-000000000000"]]) {
        const r = await cli(stack, args);
        assert.equal(r.code, 1);
        assert.match(assertOneErrorLine(r.stderr), /j-000000000000.*\[NOT_FOUND\]$/);
      }
      const k = await cli(stack, ["kill", "j-000000000000"]);
      assert.equal(k.code, 1);
      assert.match(assertOneErrorLine(k.stderr), /\[NOT_FOUND\]$/);
    }),
});

Deno.test({
  name: "kill of a running 30 s job makes it CANCELLED",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const sub = await cli(stack, ["run", "--detach", "--", "sh", "-c", "echo up; sleep 30"], dir);
      assert.equal(sub.code, 0, sub.stderr);
      const id = sub.stdout.trim();
      assert.match(id, /^j-[0-9a-f]{12}$/);
      await waitForState(stack, id, "RUNNING");
      const t0 = performance.now();
      const k = await cli(stack, ["kill", id]);
      assert.equal(k.code, 0, k.stderr);
      assert.equal(k.stdout, `${id} CANCELLED\n`);
      assert.ok(performance.now() - t0 < 10_000);
      const job = (await jobsJson(stack)).find((j) => j.id === id);
      assert.equal(job?.state, "CANCELLED");
      // Killing it again is an error line, not a crash.
      const again = await cli(stack, ["kill", id]);
      assert.equal(again.code, 1);
      assertOneErrorLine(again.stderr);
      // logs of the cancelled job print what it wrote and exit 0.
      const logs = await cli(stack, ["logs", id]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.equal(logs.stdout, "up\n");
    }),
});

Deno.test({
  name: "Ctrl-C once cancels the job: run exits 130 and the job is CANCELLED",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const child = cliCommand(
        stack,
        ["run", "--name", "interrupt-me", "--", "sh", "-c", "echo ready; sleep 30"],
        dir,
      ).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("ready\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert.equal(seen, "ready\n");
      child.kill("SIGINT");
      const [status, stderr] = await Promise.all([
        child.status,
        new Response(child.stderr).text(),
        (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })(),
      ]);
      assert.equal(status.code, 130, stderr);
      assert.match(stderr, /^cumulus: job j-[0-9a-f]{12} was cancelled/m);
      const job = (await jobsJson(stack)).find((j) => j.state === "CANCELLED");
      assert.ok(job, "no CANCELLED job");
    }),
});

Deno.test({
  name: "bundle: a file from the current directory is visible to the job, an ignored one is not",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      await Deno.writeTextFile(`${dir}/data.txt`, "payload-42\n");
      await Deno.writeTextFile(`${dir}/secret.txt`, "must not travel\n");
      await Deno.writeTextFile(`${dir}/.gitignore`, "secret.txt\n");
      await Deno.mkdir(`${dir}/sub`);
      await Deno.writeTextFile(`${dir}/sub/notes.md`, "nested\n");
      await Deno.writeTextFile(`${dir}/.cumulusignore`, "*.md\n");
      const r = await cli(stack, [
        "run",
        "--",
        "sh",
        "-c",
        "cat data.txt; for f in secret.txt sub/notes.md; do test -e $f && echo LEAK $f; done; echo end",
      ], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "payload-42\nend\n");
    }),
});

Deno.test({
  name: "a bundle over --max-bundle-size is one line with size, limit and largest file; no job",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      await Deno.writeFile(`${dir}/weights.bin`, crypto.getRandomValues(new Uint8Array(60_000)));
      const r = await cli(stack, ["run", "--max-bundle-size", "20K", "--", "true"], dir);
      assert.equal(r.code, 1);
      const line = assertOneErrorLine(r.stderr);
      assert.match(line, /bundle too large/);
      assert.match(line, /limit of 20\.0 KiB/);
      assert.match(line, /weights\.bin \(58\.6 KiB\)/);
      assert.deepEqual(await jobsJson(stack), []);
    }),
});

Deno.test({
  name: "run --json prints only the final job record on stdout; output goes to stderr",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const r = await cli(stack, ["run", "--json", "--", "sh", "-c", "echo hi; exit 4"], dir);
      assert.equal(r.code, 4, r.stderr);
      const job = JSON.parse(r.stdout) as JsonJob;
      assert.equal(job.state, "FAILED");
      assert.equal(job.exitCode, 4);
      assert.match(r.stderr, /^hi$/m);
    }),
});

Deno.test({
  name: "logs -f follows a running job to its end; --after skips lines; --json gives objects",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const sub = await cli(stack, [
        "run",
        "--detach",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done",
      ], dir);
      assert.equal(sub.code, 0, sub.stderr);
      const id = sub.stdout.trim();
      const f = await cli(stack, ["logs", "-f", id]);
      assert.equal(f.code, 0, f.stderr);
      assert.equal(f.stdout, "line 1\nline 2\nline 3\nline 4\nline 5\n");
      const after = await cli(stack, ["logs", "--after", "3", id]);
      assert.equal(after.stdout, "line 4\nline 5\n");
      const json = await cli(stack, ["logs", "--json", id]);
      const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => l.seq), [1, 2, 3, 4, 5]);
      assert.equal(lines[0].stream, "stdout");
      assert.equal(lines[0].text, "line 1");
    }),
});

Deno.test({
  name:
    "run --max-attempts, --resume-on-expiry and --result-retention reach the job; bad values are refused",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const sub = await cli(stack, [
        "run",
        "--detach",
        "--json",
        "--max-attempts",
        "4",
        "--resume-on-expiry",
        "--result-retention",
        "2h",
        "--",
        "true",
      ], dir);
      assert.equal(sub.code, 0, sub.stderr);
      const job = JSON.parse(sub.stdout);
      assert.deepEqual(job.spec.retry, { resume: true, maxAttempts: 4, resumeOnExpiry: true });
      assert.equal(job.spec.resultRetention, 7200);
      const one = await cli(stack, [
        "run",
        "--max-attempts",
        "1",
        "--resume-on-expiry",
        "--",
        "true",
      ], dir);
      assert.equal(one.code, 1);
      assert.match(one.stderr, /spec\.retry\.resume_on_expiry/);
      const zero = await cli(stack, ["run", "--max-attempts", "0", "--", "true"], dir);
      assert.equal(zero.code, 2);
      assert.match(zero.stderr, /--max-attempts/);
    }),
});

Deno.test({
  name: "jobs filters by state and user; workers lists the local Swarm node",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      assert.equal((await cli(stack, ["run", "--", "true"], dir)).code, 0);
      // Bob's own token: the job is his (a --user flag would be ignored).
      const bob = { CUMULUS_TOKEN: await stack.createToken("bob") };
      assert.equal((await cli(stack, ["run", "--", "false"], dir, bob)).code, 1);
      const failed = await cli(stack, ["jobs", "--json", "--state", "failed"]);
      assert.deepEqual(JSON.parse(failed.stdout).map((j: JsonJob) => j.spec.user), ["bob"]);
      const mine = await cli(stack, ["jobs", "--json", "--user", "e2e"]);
      assert.deepEqual(JSON.parse(mine.stdout).map((j: JsonJob) => j.state), ["SUCCEEDED"]);
      const one = await cli(stack, ["jobs", "--json", "--limit", "1"]);
      assert.equal(JSON.parse(one.stdout).length, 1);
      const w = await cli(stack, ["workers", "--json"]);
      assert.equal(w.code, 0, w.stderr);
      const workers = JSON.parse(w.stdout) as { state: string; hostname: string }[];
      assert.ok(workers.length >= 1);
      assert.ok(workers.some((x) => x.state === "ready"));
      const table = await cli(stack, ["workers"]);
      assert.match(table.stdout, /^ID\s+HOSTNAME\s+STATE\s+AVAILABILITY\s+ROLE\s+JOBS/);
      assert.ok(table.stdout.includes(workers[0].hostname));
    }),
});

Deno.test({
  name: "an image that does not exist ends in one clear error line and a non-zero exit",
  ...opts,
  fn: () =>
    withStack(async (stack, dir) => {
      const r = await cli(
        stack,
        ["run", "--image", "cumulus-no-such-image:never", "--", "true"],
        dir,
      );
      assert.notEqual(r.code, 0);
      const line = assertOneErrorLine(r.stderr);
      assert.match(line, /cumulus-no-such-image|image/);
    }),
});

Deno.test({
  name: "an orchestrator that is not there is one error line and exit 1",
  ...opts,
  fn: async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const url = `127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
    l.close();
    const fake = { env: { CUMULUS_ORCHESTRATOR_URL: url } } as unknown as Stack;
    const r = await cli(fake, ["jobs"]);
    assert.equal(r.code, 1);
    assert.match(assertOneErrorLine(r.stderr), /cannot reach the orchestrator/);
  },
});

/** `cumulus orchestrator` as a real process, so it can be SIGKILLed. */
function spawnOrchestrator(port: number, dataDir: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, MAIN, "orchestrator"],
    cwd: dataDir,
    env: {
      ORCHESTRATOR_PORT: String(port),
      ORCHESTRATOR_METRICS_PORT: "0",
      SWARM_MANAGER: SWARM_SOCKET,
      CUMULUS_DATA_DIR: `${dataDir}/data`,
      CUMULUS_JOB_IMAGE: JOB_IMAGE,
      CUMULUS_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      CUMULUS_ADMIN_USER: TEST_ADMIN_USER,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function waitServing(stack: Stack, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await cli(stack, ["workers", "--json"])).code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("orchestrator did not start");
}

Deno.test({
  name: "logs -f shows every line exactly once across an orchestrator SIGKILL and restart",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cumulus-cli-restart-" });
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const target = { env: { CUMULUS_ORCHESTRATOR_URL: `127.0.0.1:${port}` } } as unknown as Stack;
    let orch = spawnOrchestrator(port, dir);
    let id = "";
    try {
      await waitServing(target);
      const sub = await cli(target, [
        "run",
        "--detach",
        "--",
        "sh",
        "-c",
        "i=1; while [ $i -le 50 ]; do echo n$i; i=$((i+1)); sleep 0.1; done",
      ], dir);
      assert.equal(sub.code, 0, sub.stderr);
      id = sub.stdout.trim();
      const follower = cliCommand(target, ["logs", "-f", id], dir).spawn();
      const reader = follower.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("n10\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      orch.kill("SIGKILL");
      await orch.status;
      await new Promise((r) => setTimeout(r, 500));
      orch = spawnOrchestrator(port, dir);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const [status, stderr] = await Promise.all([
        follower.status,
        new Response(follower.stderr).text(),
      ]);
      assert.equal(status.code, 0, stderr);
      assert.equal(out, Array.from({ length: 50 }, (_, i) => `n${i + 1}\n`).join(""));
      const job = (await jobsJson(target)).find((j) => j.id === id);
      assert.equal(job?.state, "SUCCEEDED");
    } finally {
      orch.kill("SIGTERM");
      await orch.status;
      if (id) {
        // Only if the test failed half-way can the job's service be left over.
        await new Deno.Command("docker", {
          args: ["service", "rm", `cumulus-${id}`],
          env: { DOCKER_HOST: `unix://${SWARM_SOCKET}` },
          stdout: "null",
          stderr: "null",
        }).output().catch(() => {});
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
