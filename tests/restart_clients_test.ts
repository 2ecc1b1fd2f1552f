/**
 * Clients ride out an orchestrator restart (issue 14, item 1): a real
 * orchestrator process is SIGKILLed and started again on the same port and
 * data dir while a Python `client.run` (which also follows the log), a
 * TypeScript log follower and `cumulus logs -f` watch one job. The function
 * returns its value, and every follower sees every line exactly once.
 */
import assert from "node:assert/strict";
import { CumulusClient, type LogLine } from "../src/sdk/mod.ts";
import { waitFor } from "./helpers/client.ts";
import { freePort, spawnOrchestrator } from "./helpers/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const N = 50;

// A function of ~5 s printing numbered lines, run with client.run.
const SCRIPT = `
import sys
from cumulus import CumulusClient

def work(n):
    import time
    for i in range(1, n + 1):
        print(f"n={i}", flush=True)
        time.sleep(0.1)
    return n * n

with CumulusClient(sys.argv[1]) as client:
    value = client.run(work, ${N}, duration=600, job_name="restart-run")
print(f"RESULT={value}", flush=True)
`;

const expected = Array.from({ length: N }, (_, i) => `n=${i + 1}`);

Deno.test({
  name: "a SIGKILLed and restarted orchestrator: client.run returns, followers see each line once",
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-restart-clients-" });
    const port = freePort();
    let proc = await spawnOrchestrator(dataDir, port);
    const client = new CumulusClient(proc.url);
    const py = new Deno.Command(PYTHON, {
      args: ["-c", SCRIPT, proc.url],
      env: { PYTHONPATH: `${ROOT}src/sdk/python` },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pyOut = py.output();
    let cli: Deno.ChildProcess | null = null;
    try {
      const jobId = await waitFor(
        "the job",
        async () => {
          const { jobs } = await client.listJobs();
          return jobs.find((j) => j.spec.name === "restart-run")?.id ?? "";
        },
        (id) => id !== "",
        30_000,
      );
      cli = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "logs", "-f", jobId, "--url", proc.url],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const cliOut = cli.output();
      const seen: LogLine[] = [];
      const following = (async () => {
        for await (const line of client.job(jobId).logs()) seen.push(line);
      })();
      await waitFor("10 lines", () => Promise.resolve(seen.length), (n) => n >= 10, 60_000);
      proc.child.kill("SIGKILL");
      await proc.status;
      const atKill = seen.length;
      await new Promise((r) => setTimeout(r, 1500));
      proc = await spawnOrchestrator(dataDir, port);
      await following;
      assert.ok(atKill < N, "the job ended before the kill; the test proved nothing");
      assert.deepEqual(seen.map((l) => l.text), expected);
      assert.deepEqual(seen.map((l) => l.seq), expected.map((_, i) => i + 1));

      const out = await pyOut;
      const pyText = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.deepEqual(pyText.trimEnd().split("\n"), [...expected, `RESULT=${N * N}`]);

      const c = await cliOut;
      cli = null;
      assert.equal(c.code, 0, new TextDecoder().decode(c.stderr));
      assert.deepEqual(new TextDecoder().decode(c.stdout).trimEnd().split("\n"), expected);
      assert.equal((await client.getJob(jobId)).state, "SUCCEEDED");
    } finally {
      client.close();
      try {
        py.kill("SIGKILL");
      } catch { /* ended */ }
      try {
        cli?.kill("SIGKILL");
      } catch { /* ended */ }
      proc.child.kill("SIGTERM");
      await proc.status;
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
