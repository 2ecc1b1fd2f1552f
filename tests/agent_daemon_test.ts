/**
 * The agent's expiry daemon (`cumulus-agent serve`) as a real process, with the real
 * libchronos.so, a real Docker engine and real containers labelled `cumulus.job=<id>`.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
// The same defaults as tests/helpers/stack.ts (not imported: it pulls in the orchestrator).
const JOB_IMAGE = Deno.env.get("CUMULUS_JOB_IMAGE") ?? "cumulus-job:latest";
const DOCKER_HOST = Deno.env.get("DOCKER_HOST") ?? "unix:///run/cumulus-docker.sock";
const CHRONOS_CLI = `${ROOT}chronos/build/chronos_cli`;
const GRACE_S = 2;
/** A job that ignores SIGTERM, so only the SIGKILL after the grace period stops it. */
const STUBBORN = ["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"];

interface Daemon {
  child: Deno.ChildProcess;
  output: () => string;
  done: Promise<void>;
}

async function startDaemon(stateDir: string): Promise<Daemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}src/agent/main.ts`,
      "serve",
      "--grace",
      String(GRACE_S),
      "--interval",
      "250",
    ],
    env: { CHRONOS_STATE_DIR: stateDir, DOCKER_HOST },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += dec.decode(chunk);
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {});
  const deadline = Date.now() + 20_000;
  while (!text.includes("cumulus-agent serve: pid")) {
    if (Date.now() > deadline) throw new Error(`daemon did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => text, done };
}

async function cmd(
  program: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(program, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

const docker = (args: string[]) => cmd("docker", ["--host", DOCKER_HOST, ...args]);

async function createPartition(stateDir: string, jobId: string, durationS: number) {
  const out = await cmd(CHRONOS_CLI, [
    "create",
    "0",
    "0.2",
    String(durationS),
    "--owner",
    "daemon-test",
    "--job",
    jobId,
    "--json",
  ], { CHRONOS_STATE_DIR: stateDir });
  return JSON.parse(out) as { id: string; start_ms: number; expires_at_ms: number };
}

async function running(container: string): Promise<boolean> {
  return (await docker(["inspect", "-f", "{{.State.Running}}", container])).trim() === "true";
}

async function finishedAtMs(container: string): Promise<number> {
  return Date.parse((await docker(["inspect", "-f", "{{.State.FinishedAt}}", container])).trim());
}

async function waitUntil(what: string, timeoutMs: number, ok: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function withRig(fn: (stateDir: string, tag: string) => Promise<void>): Promise<void> {
  const stateDir = await Deno.makeTempDir({ prefix: "cumulus-daemon-" });
  const tag = `daemon-test-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await fn(stateDir, tag);
  } finally {
    const ids = (await docker(["ps", "-aq", "--filter", `label=cumulus.test=${tag}`])).trim();
    if (ids !== "") await docker(["rm", "-f", ...ids.split("\n")]);
    await Deno.remove(stateDir, { recursive: true });
  }
}

async function runJobContainer(
  tag: string,
  jobId: string,
  command = ["sleep", "60"],
): Promise<string> {
  return (await docker([
    "run",
    "-d",
    "--label",
    `cumulus.job=${jobId}`,
    "--label",
    `cumulus.test=${tag}`,
    JOB_IMAGE,
    ...command,
  ])).trim();
}

Deno.test("the daemon stops an expired job's container within duration + grace + 2 s and releases it", async () => {
  await withRig(async (stateDir, tag) => {
    const daemon = await startDaemon(stateDir);
    try {
      const jobId = `${tag}-a`;
      const p = await createPartition(stateDir, jobId, 5);
      const container = await runJobContainer(tag, jobId, STUBBORN);
      // A container of another job must be left alone.
      const bystander = await runJobContainer(tag, `${tag}-other`);
      const bound = 5_000 + GRACE_S * 1_000 + 2_000;
      await waitUntil(
        "the container to stop",
        bound + 3_000,
        async () => !(await running(container)),
      );
      const stoppedAfter = (await finishedAtMs(container)) - p.start_ms;
      console.log(`stopped ${stoppedAfter} ms after the partition started (bound ${bound} ms)`);
      assert.ok(stoppedAfter <= bound, `stopped after ${stoppedAfter} ms`);
      const graceEnd = 5_000 + GRACE_S * 1_000;
      assert.ok(stoppedAfter >= graceEnd - 300, `SIGKILL before the grace: ${stoppedAfter} ms`);
      const list = JSON.parse(
        await cmd(CHRONOS_CLI, ["list", "--json"], { CHRONOS_STATE_DIR: stateDir }),
      );
      assert.deepEqual(list.partitions, []);
      assert.equal(await running(bystander), true);
      await waitUntil(
        "the release log line",
        5_000,
        () => Promise.resolve(/released p-|already reclaimed/.test(daemon.output())),
      );
      const log = daemon.output();
      assert.match(log, new RegExp(`expired ${p.id} \\(job ${jobId}`));
      assert.match(log, new RegExp(`job ${jobId}: stopped ${container.slice(0, 12)}`));
    } finally {
      daemon.child.kill("SIGTERM");
      const status = await daemon.child.status;
      await daemon.done;
      assert.equal(status.code, 0, daemon.output());
    }
  });
});

Deno.test("SIGKILLing the daemon at a random point and restarting it leaks no partition or container", async () => {
  await withRig(async (stateDir, tag) => {
    let daemon = await startDaemon(stateDir);
    const jobs = [3, 4, 5].map((d) => ({ id: `${tag}-${d}`, duration: d }));
    const containers: string[] = [];
    for (const j of jobs) {
      await createPartition(stateDir, j.id, j.duration);
      containers.push(await runJobContainer(tag, j.id, STUBBORN));
    }
    // Kill somewhere between before the first expiry and during the last grace period.
    const killAt = 2_000 + Math.random() * 4_500;
    console.log(`SIGKILL after ${killAt.toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, killAt));
    daemon.child.kill("SIGKILL");
    await daemon.child.status;
    await daemon.done;
    await new Promise((r) => setTimeout(r, 300));
    daemon = await startDaemon(stateDir);
    try {
      await waitUntil("every container to stop", 15_000, async () => {
        for (const c of containers) if (await running(c)) return false;
        return true;
      });
      const list = JSON.parse(
        await cmd(CHRONOS_CLI, ["list", "--json"], { CHRONOS_STATE_DIR: stateDir }),
      );
      assert.deepEqual(list.partitions, []);
    } finally {
      daemon.child.kill("SIGTERM");
      assert.equal((await daemon.child.status).code, 0);
      await daemon.done;
    }
  });
});
