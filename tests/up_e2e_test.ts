/**
 * Issue 8: `cumulus up` on a temp data dir and a free port starts the
 * embedded default for real (Swarm on this machine's engine, s3rver, the
 * orchestrator and the agent daemon as detached processes), runs the demo
 * through a removed container, and a second `up` reuses everything;
 * `cumulus down` stops the processes and keeps the data.
 */
import assert from "node:assert/strict";
import { CumulusClient, readCredentialsToken } from "../src/sdk/mod.ts";
import { freePort } from "./helpers/process.ts";
import { SWARM_SOCKET } from "./helpers/stack.ts";

const ROOT = new URL("../", import.meta.url).pathname;

interface Piece {
  status: string;
  pid?: number;
}

// Where `up` records its address and CA for clients (kept out of the real ~/.config).
const CONFIG_DIR = Deno.makeTempDirSync({ prefix: "cumulus-up-config-" });
/** The credentials file the CLI runs with (in the test's data dir, not the real home). */
const creds = { path: "" };

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    // No CUMULUS_TOKEN: as on a fresh machine, the CLI finds what `up` wrote.
    env: {
      SWARM_MANAGER: SWARM_SOCKET,
      CUMULUS_CONFIG_DIR: CONFIG_DIR,
      CUMULUS_CREDENTIALS: creds.path,
      CUMULUS_TOKEN: "",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function alive(pid: number): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`) !== "";
  } catch {
    return false;
  }
}

Deno.test({
  name: "cumulus up runs the demo through a container loss; up again reuses; down keeps data",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-up-test-" });
    creds.path = `${dataDir}/home/credentials`;
    const port = freePort();
    let jobId = "";
    try {
      const t0 = Date.now();
      const first = await cli(["up", "--port", String(port), "--data-dir", dataDir, "--json"]);
      const upSeconds = (Date.now() - t0) / 1000;
      assert.equal(first.code, 0, `up failed:\n${first.stderr}`);
      const report = JSON.parse(first.stdout);
      jobId = report.demo.jobId;
      // TLS with the CA up made in the data dir; clients here find both with no flag.
      assert.equal(report.url, `grpcs://127.0.0.1:${port}`);
      const caPem = await Deno.readTextFile(`${dataDir}/tls/ca.pem`);
      assert.equal((await Deno.stat(`${dataDir}/tls/server-key.pem`)).mode! & 0o777, 0o600);
      const jobs = await cli(["jobs", "--json"], { CUMULUS_ORCHESTRATOR_URL: "" });
      assert.equal(jobs.code, 0, jobs.stderr);
      assert.ok(JSON.stringify(JSON.parse(jobs.stdout)).includes(report.demo.jobId));
      assert.equal(report.demo.state, "SUCCEEDED");
      const orchLog = async () =>
        (await Deno.readTextFile(`${dataDir}/up/orchestrator.log`).catch(() => ""))
          .split("\n").filter((l) => l.includes(jobId)).join("\n");
      assert.equal(
        report.demo.attempts,
        2,
        `one interruption, one resumed attempt; the orchestrator's log:\n${await orchLog()}`,
      );
      assert.ok(report.demo.interruptedAtStep > 0);
      assert.match(report.demo.result, /^steps=300 loss=/);
      // The summary table: job, state, worker, partition ("-" when none), attempts, time.
      assert.match(report.demo.text, /JOB\s+STATE\s+WORKER\s+PARTITION\s+ATTEMPTS\s+TIME\n/);
      assert.match(
        report.demo.text,
        new RegExp(`${jobId}\\s+SUCCEEDED\\s+\\S+\\s+(p-[0-9a-f]+|-)\\s+2\\s+[\\d.]+ s`),
      );
      assert.equal(report.pieces.orchestrator.status, "started");
      assert.equal(report.pieces.s3rver.status, "started");
      assert.match(report.checkpoints, /L2 s3:\/\/cumulus-checkpoints/);
      assert.match(first.stderr, /orchestrator ready in [\d.]+ s/);
      assert.ok(upSeconds < 90, `up took ${upSeconds} s`);
      console.log(`up with the demo: ${upSeconds.toFixed(1)} s`);

      // `up` left an admin token where the CLI and SDKs look, readable by its
      // owner only (the `cumulus jobs` above found it, with no token given).
      assert.equal(report.credentials, creds.path);
      assert.equal((await Deno.stat(creds.path)).mode! & 0o777, 0o600);
      const token = readCredentialsToken(creds.path);

      // The resume, as the job's own log tells it: the second attempt
      // restored a checkpoint past step 0 and went on to the end.
      const client = new CumulusClient(report.url, { caPem, token });
      try {
        const lines: string[] = [];
        for await (const l of client.job(jobId).logs({ follow: false })) lines.push(l.text);
        const restored = lines.map((t) => /^restored step (\d+) from/.exec(t)).find((m) => m);
        assert.ok(restored, `no restore in the job's log:\n${lines.join("\n")}`);
        assert.ok(Number(restored[1]) > 0);
        assert.ok(Number(restored[1]) < 300, "it restored a checkpoint before the end");
        assert.ok(lines.some((t) => t.startsWith("step 300/300")));
      } finally {
        client.close();
      }
      // Jobs had a network of their own: they dialled the bridge gateway over TLS, not
      // loopback, and their checkpoints reached the S3 server (on loopback) through the
      // orchestrator's gate (job_s3_gate, which up turns on).
      const log = await Deno.readTextFile(`${dataDir}/up/orchestrator.log`);
      const dial = /jobs dial grpcs:\/\/([\d.]+):\d+/.exec(log);
      assert.ok(dial, `no "jobs dial" in the orchestrator log:\n${log}`);
      assert.ok(!dial[1].startsWith("127."), `jobs dialled ${dial[1]}`);
      const l2 = [...Deno.readDirSync(`${dataDir}/s3/cumulus-checkpoints`)].map((e) => e.name);
      assert.ok(l2.length > 0, "no checkpoint reached the S3 server");

      // Idempotent: the same processes are found and reused, no demo this time.
      const t1 = Date.now();
      const second = await cli([
        "up",
        "--port",
        String(port),
        "--data-dir",
        dataDir,
        "--json",
        "--no-demo",
      ]);
      assert.equal(second.code, 0, second.stderr);
      const again = JSON.parse(second.stdout);
      for (const name of ["orchestrator", "s3rver", "agent"]) {
        const before = report.pieces[name] as Piece;
        const now = again.pieces[name] as Piece;
        if (before.status === "skipped") continue;
        assert.equal(now.status, "reused", `${name} was not reused`);
        assert.equal(now.pid, before.pid);
      }
      console.log(`second up: ${((Date.now() - t1) / 1000).toFixed(1)} s`);

      // The orchestrator dies as Deno's HTTP/2 abort kills it: its supervisor restarts it at
      // once, clients only see a pause, no record is lost, and `cumulus status` tells it.
      const statusOf = async () => {
        const st = await cli(["status", "--data-dir", dataDir, "--json"]);
        assert.equal(st.code, 0, st.stderr);
        const pieces = JSON.parse(st.stdout).pieces as Array<
          {
            piece: string;
            childPid: number;
            restarts: number;
            lastCrash: { signal: string } | null;
          }
        >;
        return pieces.find((p) => p.piece === "orchestrator")!;
      };
      const orchBefore = await statusOf();
      assert.ok(alive(orchBefore.childPid), "status names the orchestrator's own pid");
      const tKill = Date.now();
      Deno.kill(orchBefore.childPid, "SIGABRT");
      const back = new CumulusClient(report.url, { caPem, token });
      try {
        let job = null;
        while (Date.now() - tKill < 60_000) {
          job = await back.getJob(jobId).catch(() => null);
          if (job) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(job?.state, "SUCCEEDED", "the restarted orchestrator kept the demo's record");
        console.log(
          `orchestrator back after a SIGABRT in ${((Date.now() - tKill) / 1000).toFixed(1)} s`,
        );
      } finally {
        back.close();
      }
      const orchAfter = await statusOf();
      assert.equal(orchAfter.restarts, 1);
      assert.equal(orchAfter.lastCrash?.signal, "SIGABRT");
      assert.notEqual(orchAfter.childPid, orchBefore.childPid);

      const pids = Object.values(report.pieces as Record<string, Piece>)
        .map((p) => p.pid).filter((p): p is number => p !== undefined);
      pids.push(orchAfter.childPid);
      assert.ok(pids.every(alive));
      const down = await cli(["down", "--data-dir", dataDir, "--json"]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(pids.filter(alive), [], "processes left running after down");
      await assert.rejects(Deno.stat(`${CONFIG_DIR}/up.json`), Deno.errors.NotFound);
      // The data stays: job records, logs, checkpoints in S3.
      await Deno.stat(`${dataDir}/jobs.db`);
      await Deno.stat(`${dataDir}/s3/cumulus-checkpoints`);
      // Down again: nothing to stop, still fine.
      const downAgain = await cli(["down", "--data-dir", dataDir, "--json"]);
      assert.equal(downAgain.code, 0);
      assert.deepEqual(JSON.parse(downAgain.stdout).stopped, {
        agent: null,
        orchestrator: null,
        s3rver: null,
      });
    } finally {
      await cli(["down", "--data-dir", dataDir]);
      // The demo job's checkpoint volume (user data that `down` keeps); its
      // container may still be going away, so try a few times.
      for (let i = 0; jobId && i < 20; i++) {
        const rm = await new Deno.Command("docker", {
          args: ["volume", "rm", "-f", `cumulus-ckpt-${jobId}`],
          env: { DOCKER_HOST: `unix://${SWARM_SOCKET}` },
          stdout: "null",
          stderr: "null",
        }).output();
        if (rm.success) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await Deno.remove(CONFIG_DIR, { recursive: true }).catch(() => {});
    }
  },
});
