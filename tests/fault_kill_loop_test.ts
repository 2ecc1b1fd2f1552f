/**
 * Fault test (issue 14, item 3): a real orchestrator under the real
 * supervisor (`main.ts supervise`, as `cumulus up` runs it) is SIGKILLed 20
 * times at random moments while 10 jobs run — 5 commands printing numbered
 * lines (their logs come through Docker) and 5 Python `client.run` functions
 * printing numbered lines and checkpointing through `cumulus.checkpoint`
 * (their logs, checkpoint reports and results come through the Runtime
 * service). The supervisor restarts it each time. Every job ends SUCCEEDED,
 * every line is there exactly once and in order (followed through the
 * TypeScript SDK across the restarts, printed by `client.run`, and in the
 * final log), and each `client.run` returns its exact value once.
 *
 * The supervisor gives up after 5 crashes in a row that each came within
 * 10 s of their start (src/cli/supervise.ts). The kills keep to that rule as
 * an operator's real crashes would: 13 quick kills (0.5–8.5 s after a start,
 * some before it listens) and 7 after 10.5–11.5 s, in a random order with at
 * most 2 quick ones in a row.
 */
import assert from "node:assert/strict";
import { QUICK_CRASH_MS, readCrashes } from "../src/cli/supervise.ts";
import { CumulusClient, type LogLine } from "../src/sdk/mod.ts";
import { signalPid, startSupervisedOrchestrator, until } from "./helpers/faults.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const KILLS = 20;
const JOBS = 5; // of each kind
/** Lines per job, one every 0.25 s: the jobs outlast the kill loop (~145 s). */
const LINES = 720;
const TICK_S = 0.25;

// One client.run per process: its job's output goes to this process's stdout.
const SCRIPT = `
import sys
from cumulus import CumulusClient

def work(k, n):
    import time
    from cumulus import checkpoint
    start, total = 0, 0
    restored = checkpoint.restore()
    if restored is not None:
        start, total = restored.state["i"], restored.state["total"]
    for i in range(start + 1, n + 1):
        print(f"fn{k} line-{i}", flush=True)
        total += i * k
        if i % 40 == 0:
            checkpoint.save({"i": i, "total": total}, i)
        time.sleep(${TICK_S})
    return f"fn{k} total={total}"

k = int(sys.argv[2])
with CumulusClient(sys.argv[1]) as client:
    value = client.run(work, k, ${LINES}, duration=900, job_name=f"fault-fn{k}")
print(f"RESULT {value}", flush=True)
`;

const lines = (prefix: string) =>
  Array.from({ length: LINES }, (_, i) => `${prefix} line-${i + 1}`);
const fnValue = (k: number) => `fn${k} total=${(k * LINES * (LINES + 1)) / 2}`;
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** 13 quick and 7 late kills in a random order, never 3 quick in a row. */
function killPlan(): boolean[] {
  for (;;) {
    const plan = Array.from({ length: KILLS }, (_, i) => i < 13);
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    if (!plan.some((q, i) => q && plan[i + 1] && plan[i + 2])) return plan;
  }
}

Deno.test({
  name:
    "20 SIGKILLs of a supervised orchestrator under 10 jobs: all SUCCEEDED, each line and result once",
  ...opts,
  fn: async () => {
    const t0 = Date.now();
    const orch = await startSupervisedOrchestrator({ MAX_CONCURRENT_JOBS: String(2 * JOBS) });
    const client = new CumulusClient(orch.url);
    const pys: Deno.ChildProcess[] = [];
    try {
      // The Python client.run jobs are submitted by their own processes; the
      // commands through the TypeScript SDK. All before the first kill:
      // SubmitJob is never repeated by a client, by design.
      const pyOuts = [];
      for (let k = 1; k <= JOBS; k++) {
        const py = new Deno.Command(PYTHON, {
          args: ["-c", SCRIPT, orch.url, String(k)],
          env: { PYTHONPATH: `${ROOT}src/sdk/python` },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        pys.push(py);
        pyOuts.push(py.output());
      }
      const ids = new Map<string, string>(); // prefix → job id
      for (let k = 1; k <= JOBS; k++) {
        const job = await client.submit({
          command: [
            "sh",
            "-c",
            `for i in $(seq 1 ${LINES}); do echo cmd${k} line-$i; sleep ${TICK_S}; done`,
          ],
          gpuMemory: 0.5,
          duration: 900,
          name: `fault-cmd${k}`,
        });
        ids.set(`cmd${k}`, job.id);
      }
      await until("the 5 client.run jobs", async () => {
        const { jobs } = await client.listJobs();
        for (const j of jobs) {
          const m = /^fault-(fn\d)$/.exec(j.spec.name);
          if (m) ids.set(m[1], j.id);
        }
        return ids.size === 2 * JOBS ? true : null;
      }, 60_000);

      const followed = new Map<string, LogLine[]>();
      const following = [...ids].map(async ([prefix, id]) => {
        const seen: LogLine[] = [];
        followed.set(prefix, seen);
        for await (const line of client.job(id).logs()) seen.push(line);
      });
      await until(
        "every job to print",
        () => Promise.resolve([...followed.values()].every((s) => s.length >= 4) ? true : null),
        120_000,
      );

      // The kill loop.
      const killedAfterMs: number[] = [];
      const plan = killPlan();
      for (let k = 0; k < KILLS; k++) {
        const state = await until("the supervisor to start the orchestrator", async () => {
          const s = await orch.state();
          return s !== null && s.restarts === k ? s : null;
        }, 60_000);
        const at = Date.parse(state.childSince) +
          (plan[k]
            ? rand(500, QUICK_CRASH_MS - 1500)
            : rand(QUICK_CRASH_MS + 500, QUICK_CRASH_MS + 1500));
        await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
        assert.ok(signalPid(state.childPid, "SIGKILL"), `orchestrator pid ${state.childPid} gone`);
        killedAfterMs.push(Date.now() - Date.parse(state.childSince));
      }
      const lastKillAt = Date.now();
      const loopS = (lastKillAt - t0) / 1000;

      await Promise.race([
        Promise.all(following),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("the followers did not end in 180 s")), 180_000)
        ),
      ]);
      const outs = await Promise.all(pyOuts);

      // The supervisor saw every kill, restarted each time, and still runs.
      const crashes = await readCrashes(orch.runDir, "orchestrator");
      assert.equal(crashes.length, KILLS, (await orch.log()).slice(-3000));
      assert.ok(crashes.every((c) => c.signal === "SIGKILL"));
      const last = await until("the last restart", async () => {
        const s = await orch.state();
        return s !== null && s.restarts === KILLS ? s : null;
      }, 60_000);
      assert.ok(signalPid(last.supervisorPid, "SIGCONT"), "the supervisor gave up");

      let endedAfterLoop = 0;
      for (const [prefix, id] of ids) {
        const want = lines(prefix);
        const job = await client.getJob(id);
        assert.equal(job.state, "SUCCEEDED", `${prefix} (${id}): ${job.state} ${job.reason}`);
        if ((job.finishedAtMs ?? 0) > lastKillAt) endedAfterLoop++;
        const live = followed.get(prefix)!.filter((l) => l.text.startsWith(`${prefix} `));
        assert.deepEqual(live.map((l) => l.text), want, `${prefix}: followed log`);
        const final: LogLine[] = [];
        for await (const l of client.job(id).logs({ follow: false })) final.push(l);
        const seqs = final.map((l) => l.seq);
        assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${prefix}: sequence numbers`);
        assert.deepEqual(
          final.filter((l) => l.text.startsWith(`${prefix} `)).map((l) => l.text),
          want,
          `${prefix}: final log`,
        );
      }
      for (let k = 1; k <= JOBS; k++) {
        const out = outs[k - 1];
        const stdout = new TextDecoder().decode(out.stdout).trimEnd().split("\n");
        assert.equal(out.code, 0, `fn${k}: ${new TextDecoder().decode(out.stderr)}`);
        assert.deepEqual(stdout, [...lines(`fn${k}`), `RESULT ${fnValue(k)}`], `fn${k}: stdout`);
      }
      console.log(
        `${KILLS} kills after ${
          killedAfterMs.map((ms) => (ms / 1000).toFixed(1)).join(" ")
        } s of each run; kill loop ended at ${loopS.toFixed(0)} s, ${endedAfterLoop} of ` +
          `${ids.size} jobs ended after it; whole test ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
      assert.equal(endedAfterLoop, ids.size, "a job ended before the last kill");
    } finally {
      client.close();
      for (const py of pys) signalPid(py.pid, "SIGKILL");
      await orch.stop();
    }
  },
});
