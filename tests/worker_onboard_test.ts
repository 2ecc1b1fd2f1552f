/**
 * Issue 17 end to end: a second machine (a network namespace with its own
 * Docker engine and no images, tests/helpers/second_node.ts, plus an sshd of
 * its own on 198.18.0.2:22) becomes a worker through the line `cumulus
 * worker add` prints and nothing else: the agent installs itself and
 * libchronos.so into a prefix, registers, authorises the orchestrator's key,
 * joins the swarm and starts its daemon under the bundled supervisor. A job
 * placed there by a constraint pulls the job image from the manager's
 * registry and runs; the time from the line to RUNNING is printed (the
 * figure in docs/BENCHMARKS.md). A second run changes nothing; a spent or
 * expired token is refused and changes nothing. `drain --now` moves a
 * checkpointing job to the manager node, which resumes it from S3; `remove`
 * leaves no node, pinned key, partition or stored join state behind.
 * Needs this tree's libchronos.so (chronos/build, or CUMULUS_CHRONOS_PATH):
 * the root daemon and the login share the Chronos state directory.
 * @module
 */
import assert from "node:assert/strict";
import { CumulusClient, packBundle } from "../src/sdk/mod.ts";
import { WorkerStore } from "../src/store/mod.ts";
import { startRegistry, trustRegistry } from "../src/registry/mod.ts";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { removePushedTags } from "./helpers/faults.ts";
import { startS3 } from "./helpers/s3.ts";
import { MANAGER_ADDR, NODE_ADDR, startSecondNode } from "./helpers/second_node.ts";
import { startStack } from "./helpers/stack.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
/** Data dir of the test registry (kept between runs, as in tests/registry_test.ts: warm store). */
const REGISTRY_CACHE = "/var/lib/cumulus-test-registry";
const FIXTURE = `${ROOT}/tests/fixtures/train_ckpt/`;
/** A node label only this test sets: the checkpointing job goes where it is. */
const CKPT_LABEL = "cumulus-test.onboard";
/** The worker's SSH login, created by the join and removed by the test. */
const USER = "cumulus-t17";
/** libchronos.so to install: the one this run's agents load. */
const CHRONOS_LIB = `${
  Deno.env.get("CUMULUS_CHRONOS_PATH") ?? `${ROOT}/chronos/build`
}/libchronos.so`;

function freePort(host: string): number {
  const l = Deno.listen({ hostname: host, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout).trim(), stderr: dec.decode(out.stderr) };
}

async function keygen(path: string): Promise<void> {
  const r = await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", path]);
  assert.equal(r.code, 0, r.stderr);
}

/** The worker's sshd: 198.18.0.2:22 inside the namespace, keys the join writes. */
async function sshdConfig(dir: string): Promise<string> {
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const cfg = `${dir}/sshd_config`;
  await Deno.writeTextFile(
    cfg,
    [
      "Port 22",
      `ListenAddress ${NODE_ADDR}`,
      `HostKey ${dir}/ssh_host_ed25519_key`,
      `PidFile ${dir}/sshd.pid`,
      // Debian's defaults: the login's own ~/.ssh/authorized_keys, its modes checked.
      "AuthorizedKeysFile .ssh/authorized_keys",
      "PermitRootLogin forced-commands-only",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      // As Debian's own sshd: a system user made by useradd has no password ("!"), which
      // sshd without PAM takes for a locked account.
      "UsePAM yes",
      "StrictModes yes",
      "MaxStartups 64",
      "",
    ].join("\n"),
  );
  return cfg;
}

function finalOf(lines: Array<{ text: string }>): string {
  const l = lines.find((x) => x.text.startsWith("FINAL "));
  assert.ok(l, `no FINAL line in: ${lines.slice(-5).map((x) => x.text).join(" | ")}`);
  return l.text.slice(6);
}

Deno.test({
  name:
    "one line makes a worker: installs, registers, joins, runs a job pulled from the registry; drain --now resumes on the manager; remove leaves nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await sh("userdel", ["-r", USER]); // a crashed run's
    const dir = await Deno.makeTempDir({ prefix: "cumulus-onboard-" });
    // The login reaches its agent, library and keys here.
    await Deno.chmod(dir, 0o755);
    const prefix = `${dir}/opt`;
    const stateDir = `${dir}/chronos`;
    const orchKey = `${dir}/orch_key`;
    await keygen(orchKey);
    await keygen(`${dir}/ssh_host_ed25519_key`);
    // The "downloaded" agent: an executable that runs this checkout's agent and says which
    // file it is (CUMULUS_AGENT_FILE), as a packaged agent does, so the join installs it.
    const agentFile = `${dir}/download/cumulus-agent`;
    await Deno.mkdir(`${dir}/download`);
    await Deno.writeTextFile(
      agentFile,
      `#!/bin/sh\nCUMULUS_AGENT_FILE="$0" exec ${Deno.execPath()} run -A ` +
        `--config ${ROOT}/deno.json ${ROOT}/src/agent/main.ts "$@"\n`,
      { mode: 0o755 },
    );
    const reg = await startRegistry({
      addr: `${MANAGER_ADDR}:${freePort(MANAGER_ADDR)}`,
      dataDir: REGISTRY_CACHE,
    });
    // The manager's engine trusts the registry (it pushes); the worker gets the CA from the join.
    const untrust = await trustRegistry(reg.addr, reg.caPem);
    const caFile = `${dir}/registry-ca.pem`;
    await Deno.writeTextFile(caFile, reg.caPem);
    let node: Awaited<ReturnType<typeof startSecondNode>> | null = null;
    let sshd: Deno.ChildProcess | null = null;
    let s3: Awaited<ReturnType<typeof startS3>> | null = null;
    let stack: Awaited<ReturnType<typeof startStack>> | null = null;
    let admin: CumulusClient | null = null;
    let c: TestClient | null = null;
    let db: WorkerStore | null = null;
    let manager = "";
    const orchLog: string[] = [];
    const supervisorPid = async () =>
      Number((await Deno.readTextFile(`${prefix}/run/agent.pid`).catch(() => "")).trim()) || 0;
    const managerDocker = (args: string[]) => sh("docker", args);
    try {
      node = await startSecondNode([], { join: false, noImages: true });
      sshd = node.spawn([
        "/usr/sbin/sshd",
        "-D",
        "-f",
        await sshdConfig(dir),
        "-E",
        `${dir}/sshd.log`,
      ]);
      s3 = await startS3(MANAGER_ADDR);
      stack = await startStack({
        host: MANAGER_ADDR,
        env: {
          ...s3.orchestratorEnv,
          SSH_KEY_PATH: orchKey,
          CUMULUS_REGISTRY: reg.addr,
          CUMULUS_REGISTRY_CA_FILE: caFile,
          // Partitions through each node's agent: the new node's over SSH, as its login.
          CUMULUS_GPU_PLACEMENT: "auto",
        },
        log: (m) => {
          orchLog.push(m);
          if (Deno.env.get("CUMULUS_TEST_VERBOSE")) console.error(`[orch] ${m}`);
        },
      });
      admin = new CumulusClient(stack.url, { token: stack.token });
      c = new TestClient(stack.url);
      db = WorkerStore.open(`${stack.dataDir}/jobs.db`);
      manager = (await managerDocker(["info", "--format", "{{.Swarm.NodeID}}"])).stdout;
      const before = (await managerDocker(["node", "ls", "-q"])).stdout.split("\n").sort();

      // On the manager: only `cumulus worker add`. On the worker: its line, plus the flags
      // that point the install at this test's temp paths (a real machine takes the defaults).
      const t = await admin.createJoinToken();
      const line = t.command.split(" ");
      assert.deepEqual(line.slice(0, 2), ["cumulus-agent", "join"]);
      const joinLine = (args: string[]) =>
        node!.exec([
          agentFile,
          ...args,
          "--name",
          "w-onboard",
          "--host-key",
          `${dir}/ssh_host_ed25519_key.pub`,
          "--user",
          USER,
          "--prefix",
          prefix,
          "--state-dir",
          stateDir,
          "--service-mode",
          "supervisor",
          "--chronos-lib",
          CHRONOS_LIB,
          "--grace",
          "2",
          // Both engines of this machine read /etc/docker/certs.d (trusted above for the
          // manager): the worker's copy goes to a directory of the test's to be checked.
          "--docker-certs-dir",
          `${dir}/certs.d`,
          // No GPU on this machine: the join must leave the engine's config alone (a test
          // path, so that a wrong write never reaches this machine's /etc/docker).
          "--docker-config",
          `${dir}/daemon.json`,
        ]);
      const started = performance.now();
      const first = await joinLine(line.slice(1));
      const joinedMs = performance.now() - started;
      assert.equal(first.code, 0, first.stderr + first.stdout);
      for (
        const step of [
          /join: docker: engine reachable/,
          new RegExp(
            `join: orchestrator: registered as w-onboard \\(ssh ${USER}@198\\.18\\.0\\.2:22, ` +
              "host key pinned\\)",
          ),
          new RegExp(`join: user: created the system user ${USER}`),
          /join: install: cumulus-agent installed at .*\/opt\/bin\/cumulus-agent/,
          /join: install: libchronos\.so installed at .*\/opt\/lib\/libchronos\.so/,
          /join: gpu: no GPU found: jobs run without device access/,
          /join: ssh: orchestrator key authorised in /,
          /join: registry: 198\.18\.0\.1:\d+: CA installed for the Docker engine /,
          /join: swarm: joined 198\.18\.0\.1:2377 as node \S+/,
          /join: daemon: wrote the supervisor and started the agent daemon \(supervisor pid \d+/,
        ]
      ) assert.match(first.stdout, step);
      assert.ok(!first.stdout.includes("SWMTKN"), "the Swarm token is not printed");
      // The CPU path: no runtime wrapper, no daemon.json, no engine restart.
      assert.ok(
        !(await Deno.lstat(`${dir}/daemon.json`).then(() => true, () => false)),
        "no daemon.json without a GPU",
      );
      assert.ok(
        !(await Deno.lstat(`${prefix}/bin/cumulus-gpu-runc`).then(() => true, () => false)),
        "no wrapper without a GPU",
      );
      assert.doesNotMatch(first.stdout, /restarting the Docker engine/);
      const nodeId = /as node (\S+)\n/.exec(first.stdout)![1];
      assert.deepEqual(
        (await managerDocker(["node", "ls", "-q"])).stdout.split("\n").sort(),
        [...before, nodeId].sort(),
      );
      const pid = await supervisorPid();
      assert.ok(pid > 0);
      assert.equal(
        (await Deno.readTextFile(`${dir}/certs.d/${reg.addr}/ca.crt`)).trim(),
        reg.caPem.trim(),
      );
      // Least privilege: the login has no docker group; the daemon (Docker's client) is root.
      assert.doesNotMatch((await sh("id", ["-nG", USER])).stdout, /\bdocker\b/);
      assert.match(await Deno.readTextFile(`/proc/${pid}/status`), /^Uid:\s+0\s/m);

      // As an operator would: `cumulus workers` shows the node with its agent answering (over
      // SSH, as the login); then a job placed there by a constraint, its image pulled from
      // the manager's registry.
      const listed = await waitFor(
        "the new node's agent to answer in cumulus workers",
        () => admin!.listWorkers(),
        (ws) => ws.some((w) => w.nodeId === nodeId && w.agent === "ok"),
        30_000,
      ).catch(async (err) => {
        console.error(await Deno.readTextFile(`${dir}/sshd.log`).catch(() => ""));
        throw err;
      });
      const listedMs = performance.now() - started;
      assert.ok(listed.length >= 2);
      const id = await c.submit(spec(["sh", "-c", "echo onboarded"], {
        constraints: [`node.id==${nodeId}`],
      }));
      await waitFor(
        "the first job to run on the new node",
        () => c!.getJob(id),
        (j) => !["QUEUED", "SCHEDULED"].includes(j.state),
        // A cold registry store (CI) adds the push, 75-92 s here.
        300_000,
      );
      const runningMs = performance.now() - started;
      const done = await c.watchAll(id, { deadlineMs: 60_000 });
      assert.equal(done.job.state, "SUCCEEDED", done.job.reason);
      assert.equal(done.job.nodeId, nodeId);
      assert.ok(done.lines.some((l) => l.text === "onboarded"));
      // The partition went through the login's forced command; the state stays the login's
      // although the root daemon shares it.
      const uid = Number((await sh("id", ["-u", USER])).stdout);
      for (const f of ["state.v1", "chronos.lock"]) {
        assert.equal((await Deno.stat(`${stateDir}/${f}`)).uid, uid, f);
      }
      const digests = await node.docker([
        "image",
        "ls",
        "--digests",
        "--format",
        "{{.Repository}}",
      ]);
      assert.ok(digests.includes(`${reg.addr}/cumulus-job`), digests);
      // The issue's bound, when the registry held the image already (a cold store adds the push).
      const push = orchLog.find((m) => m.includes("pushed in")) ?? "";
      const warm = /: 0 B of 0 B, (\d+)\/\1 layers/.test(push);
      if (warm) {
        assert.ok(runningMs < 60_000, `line -> RUNNING ${runningMs} ms with a warm registry`);
      }
      console.log(
        `onboard: join line ${(joinedMs / 1000).toFixed(1)} s, listed with its agent ` +
          `${(listedMs / 1000).toFixed(1)} s, line -> first job RUNNING on ` +
          `the new node ${(runningMs / 1000).toFixed(1)} s (image pulled from ${reg.addr}; ` +
          `push: ${orchLog.find((m) => m.includes("pushed in")) ?? "?"})`,
      );

      // The same line again: nothing changes.
      const home = (await sh("getent", ["passwd", USER])).stdout.split(":")[5];
      const keysFile = `${home}/.ssh/authorized_keys`;
      assert.equal((await Deno.stat(`${home}/.ssh`)).uid, (await Deno.stat(keysFile)).uid);
      const keysBefore = await Deno.readTextFile(keysFile);
      const again = await joinLine(line.slice(1));
      assert.equal(again.code, 0, again.stderr);
      for (
        const step of [
          /install: cumulus-agent already up to date/,
          /install: libchronos\.so already up to date/,
          /ssh: orchestrator key already authorised/,
          /registry: \S+: CA already trusted/,
          /swarm: already in a swarm as node \S+: skipped/,
          new RegExp(`daemon: already running under the supervisor \\(pid ${pid},`),
        ]
      ) assert.match(again.stdout, step);
      assert.equal(await supervisorPid(), pid);
      assert.equal(await Deno.readTextFile(keysFile), keysBefore);
      assert.equal(db.list().length, 1);
      // A spent token under another name, an expired one: refused, nothing changes.
      const reused = await node.exec([agentFile, ...line.slice(1), "--name", "w-other"]);
      assert.equal(reused.code, 14, reused.stderr);
      assert.match(reused.stderr, /already used: create a new one with `cumulus worker add`\n$/);
      const short = await admin.createJoinToken({ expiresS: 0.001 });
      await new Promise((r) => setTimeout(r, 20));
      const late = await node.exec([agentFile, ...short.command.split(" ").slice(1)]);
      assert.equal(late.code, 14, late.stderr);
      assert.deepEqual(db.list().map((w) => w.name), ["w-onboard"]);
      // The same name from a machine with another host key (reinstalled, or an impostor): refused
      // with a fresh token too, and the pinned key stays.
      await keygen(`${dir}/other_host_key`);
      const pinnedBefore = await Deno.readTextFile(`${stack.dataDir}/known_hosts`);
      const t3 = await admin.createJoinToken();
      const other = await node.exec([
        agentFile,
        ...t3.command.split(" ").slice(1),
        "--name",
        "w-onboard",
        "--host-key",
        `${dir}/other_host_key.pub`,
        "--agent-file",
        agentFile,
      ]);
      assert.equal(other.code, 13, other.stderr);
      assert.match(other.stderr, /already joined with another host key/);
      assert.equal(await Deno.readTextFile(`${stack.dataDir}/known_hosts`), pinnedBefore);

      // drain --now with a running checkpointing job: it resumes on the manager from S3.
      await managerDocker(["node", "update", "--label-add", `${CKPT_LABEL}=1`, nodeId]);
      const b = (await packBundle(FIXTURE)).bytes;
      const ckpt = await c.submit(
        spec(["python3", "train.py"], {
          env: { STEPS: "400", EVERY: "50", STEP_DELAY: "0.05" },
          constraints: [`node.labels.${CKPT_LABEL}==1`],
        }),
        b,
      );
      const seen: string[] = [];
      const watching = c.watchAll(ckpt, { onLine: (l) => seen.push(l.text), deadlineMs: 240_000 });
      await waitFor(
        "a checkpoint past step 150",
        () => Promise.resolve(seen),
        (s) =>
          s.some((x) => {
            const m = /^step (\d+) loss/.exec(x);
            return m !== null && Number(m[1]) >= 150;
          }),
        120_000,
      );
      assert.equal((await c.getJob(ckpt)).nodeId, nodeId);
      await managerDocker(["node", "update", "--label-add", `${CKPT_LABEL}=1`, manager]);
      assert.equal(await admin.drainWorker("w-onboard", { now: true }), nodeId);
      const { lines, job } = await watching;
      assert.equal(job.state, "SUCCEEDED", job.reason);
      assert.equal(job.nodeId, manager, "the job did not move to the manager node");
      assert.ok(job.attempts >= 2);
      const restored = lines.find((l) => l.text.startsWith("restored step "));
      assert.ok(restored, "nothing restored");
      assert.match(restored.text, / from l2$/);
      finalOf(lines);
      assert.equal(db.get("w-onboard")!.state, "draining");

      // remove: no node, no pinned key, no partition, no stored worker or join token.
      assert.equal(await admin.removeWorker("w-onboard"), nodeId);
      assert.deepEqual(
        (await managerDocker(["node", "ls", "-q"])).stdout.split("\n").sort(),
        before,
      );
      assert.equal(db.get("w-onboard"), null);
      assert.equal(await Deno.readTextFile(`${stack.dataDir}/known_hosts`), "");
      assert.equal(db.joinToken(t.token.split("_")[1]), null, "the used join token is forgotten");
      const parts = await sh(`${prefix}/bin/cumulus-agent`, ["partition", "list", "--json"], {
        CUMULUS_CHRONOS_PATH: `${prefix}/lib`,
        CHRONOS_STATE_DIR: stateDir,
      });
      assert.equal(parts.code, 0, parts.stderr);
      assert.deepEqual(JSON.parse(parts.stdout).partitions, [], parts.stdout);
      // Its old line no longer works.
      const old = await joinLine(line.slice(1));
      assert.equal(old.code, 14, old.stderr);
      assert.equal(db.list().length, 0);
    } finally {
      await managerDocker(["node", "update", "--label-rm", CKPT_LABEL, manager]).catch(() => {});
      const pid = await supervisorPid();
      if (pid > 0) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
      db?.close();
      admin?.close();
      c?.close();
      // The orchestrator's SSH sessions end with it; then the worker's sshd.
      await stack?.stop();
      if (sshd) {
        try {
          sshd.kill("SIGTERM");
        } catch { /* gone */ }
        await sshd.status;
      }
      await s3?.stop();
      await node?.stop();
      await untrust();
      await reg.stop();
      await removePushedTags(reg.addr);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await sh("userdel", ["-r", USER]);
    }
  },
});
