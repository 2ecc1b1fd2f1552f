/**
 * Fault test (issue 14, item 3): the Docker engine is stopped and started
 * again (as scripts/lib/docker_engine.sh starts it) under three running jobs
 * of a real orchestrator process — a command printing numbered lines, a
 * PyTorch job checkpointing to L1, and a command that mostly sleeps. Each job
 * is resumed and SUCCEEDS (the PyTorch one from its checkpoint), or ends with
 * a reason saying why; none stays RUNNING; the orchestrator keeps running and
 * runs a new job on the restarted engine. The jobs run on their own network
 * (the default `job_network`), whose copy the restart leaves stale on the node
 * (moby/moby#37087): a task rejected for it makes the orchestrator make the
 * network again, and no job fails for it. The engine is always left running
 * with the Swarm active and the node ready.
 *
 * It restarts the engine every other test uses: run it only under
 * `flock /tmp/cumulus-docker.lock` (the README test command serializes the
 * Docker-heavy tests).
 */
import assert from "node:assert/strict";
import { CumulusClient, type JobRecord, type JobSpecInput, packBundle } from "../src/sdk/mod.ts";
import {
  removeLeftovers,
  startDockerEngine,
  stopDockerEngine,
  until,
  waitSwarmHealthy,
} from "./helpers/faults.ts";
import { freePort, spawnOrchestrator } from "./helpers/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FIXTURE = new URL("./fixtures/train_ckpt/", import.meta.url).pathname;
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"];
const LINES = 160;

Deno.test({
  name:
    "Docker engine restarted under 3 running jobs: each resumes or ends with a reason, none hangs",
  ...opts,
  fn: async () => {
    const t0 = Date.now();
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-fault-docker-" });
    const proc = await spawnOrchestrator(dataDir, freePort(), { CUMULUS_STOP_GRACE_PERIOD: "2" });
    let exited = false;
    proc.status.then(() => exited = true);
    const c = new CumulusClient(proc.url);
    const submit = async (command: string[], extra: Partial<JobSpecInput> = {}) =>
      (await c.submit({ command, gpuMemory: 0.5, duration: 600, ...extra }, {
        bundle: command[0] === "python3" ? (await packBundle(FIXTURE)).bytes : undefined,
      })).id;
    let engineDown = false;
    try {
      const ids = {
        lines: await submit([
          "sh",
          "-c",
          `for i in $(seq 1 ${LINES}); do echo line-$i; sleep 0.25; done`,
        ]),
        train: await submit(["python3", "train.py"], {
          env: { STEPS: "800", EVERY: "25", STEP_DELAY: "0.05" },
        }),
        sleeper: await submit(["sh", "-c", "echo sleeping; sleep 40; echo woke"]),
      };
      // Each job's lines and every state it went through (with its reason).
      const logs = new Map<string, string[]>();
      const states = new Map<string, JobRecord[]>();
      const watches = Object.entries(ids).map(async ([name, id]) => {
        const lines: string[] = [];
        const seen: JobRecord[] = [];
        logs.set(name, lines);
        states.set(name, seen);
        for await (const ev of c.job(id).watch()) {
          lines.push(...ev.lines.map((l) => l.text));
          if (ev.job) seen.push(ev.job);
        }
      });
      // Every job running, the PyTorch one past its first checkpoint.
      await until("the jobs to run", () => {
        const has = (name: string, re: RegExp) => logs.get(name)!.some((t) => re.test(t));
        return Promise.resolve(
          has("lines", /^line-8$/) && has("train", /^step \d+ loss/) && has("sleeper", /^sleeping$/)
            ? true
            : null,
        );
      }, 180_000);

      engineDown = true;
      const stoppedAt = Date.now();
      await stopDockerEngine();
      const stopS = (Date.now() - stoppedAt) / 1000;
      await startDockerEngine();
      await waitSwarmHealthy();
      engineDown = false;
      const backS = (Date.now() - stoppedAt) / 1000;

      // None stays RUNNING: every job reaches a final state, within bounds.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(watches),
        new Promise<never>((_, reject) =>
          timer = setTimeout(() => {
            // Say which job hung, in what state, and what the orchestrator said.
            const last = [...states].map(([n, s]) =>
              `${n}: ${s.at(-1)?.state} ${s.at(-1)?.reason}`
            );
            reject(
              new Error(
                `a job did not end within 300 s (${last.join("; ")})\n${
                  proc.stderr().slice(-6000)
                }`,
              ),
            );
          }, 300_000)
        ),
      ]);
      clearTimeout(timer);
      const summary: string[] = [];
      for (const [name, id] of Object.entries(ids)) {
        const job = await c.getJob(id);
        const resumed = states.get(name)!.filter((j) => j.state === "RESUMING");
        summary.push(
          `${name} ${job.state} after ${job.attempts} attempt(s)` +
            (job.reason ? ` (${job.reason})` : "") +
            resumed.map((j) => ` [RESUMING: ${j.reason}]`).join(""),
        );
        assert.ok(TERMINAL.includes(job.state), `${name}: ${job.state}`);
        // A node's stale copy of the jobs' network (moby/moby#37087) is made again, never fatal.
        assert.doesNotMatch(job.reason, /network \w+ exists/, summary.join("; "));
        if (job.state !== "SUCCEEDED") {
          assert.notEqual(job.reason, "", `${name} ended ${job.state} with no reason`);
          continue;
        }
        assert.ok(
          job.attempts >= 2,
          `${name} SUCCEEDED in one attempt: the engine restart did not reach it`,
        );
        assert.ok(resumed.length > 0 && resumed.every((j) => j.reason !== ""), summary.join("; "));
        const texts = logs.get(name)!;
        if (name === "train") {
          assert.ok(
            texts.some((t) => /^restored step \d+ from l1$/.test(t)),
            `the PyTorch job did not restore from L1: ${
              texts.filter((t) => !t.startsWith("step")).join(" | ")
            }`,
          );
          assert.ok(texts.some((t) => t.startsWith("FINAL ")));
        }
        if (name === "lines") assert.equal(texts.filter((t) => t === `line-${LINES}`).length, 1);
        if (name === "sleeper") assert.ok(texts.includes("woke"));
      }

      // The orchestrator lives on and uses the restarted engine.
      assert.equal(exited, false, `the orchestrator exited:\n${proc.stderr().slice(-3000)}`);
      // Its jobs were on their own network: they dialled Docker's bridge gateway, not loopback.
      const dial = /jobs dial (?:grpcs?:\/\/)?([\d.]+):\d+/.exec(proc.stderr());
      assert.ok(dial && !dial[1].startsWith("127."), `jobs dialled ${dial?.[1]}`);
      const after = c.job(await submit(["sh", "-c", "echo after-restart"]));
      const lines: string[] = [];
      for await (const l of after.logs()) lines.push(l.text);
      const job = await after.wait();
      assert.equal(job.state, "SUCCEEDED", job.reason);
      assert.deepEqual(lines, ["after-restart"]);
      console.log(
        `engine stopped in ${stopS.toFixed(1)} s, Swarm healthy again ${
          backS.toFixed(1)
        } s after ` +
          `the stop; ${summary.join("; ")}; test ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
    } finally {
      // Whatever happened, the engine runs and the Swarm is healthy for the tests after this one.
      if (engineDown) {
        await startDockerEngine();
        await waitSwarmHealthy();
      }
      c.close();
      proc.child.kill("SIGTERM");
      await proc.status;
      await removeLeftovers(dataDir);
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
