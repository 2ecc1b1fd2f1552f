/**
 * Images reach a worker without a public registry: a real registry process
 * (Debian's docker-registry) on the manager's bridge address, the real engine
 * pushing the job image to it, and a second Swarm node (a network namespace
 * with its own engine, tests/helpers/second_node.ts) that does not hold the
 * image and pulls it on first use. The registry's store is kept between runs
 * in REGISTRY_CACHE (as the second node's data root is), so a push after the
 * first run finds the layers there; the node always pulls. And the registry an
 * orchestrator runs itself (config `registry_serve`), across a crash.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { MANAGER_ADDR, startSecondNode } from "./helpers/second_node.ts";
import { JOB_IMAGE, startStack } from "./helpers/stack.ts";
import {
  registryPidFile,
  startRegistry,
  stopLeftRegistry,
  trustRegistry,
} from "../src/registry/mod.ts";
import { processAlive } from "../src/core/mod.ts";
import { CumulusClient } from "../src/sdk/mod.ts";
import { removeLeftovers, removePushedTags } from "./helpers/faults.ts";
import { spawnOrchestrator } from "./helpers/process.ts";

/** A small local image (what the job image is built on). */
const SMALL_IMAGE = Deno.env.get("CUMULUS_BASE_IMAGE") ?? "cumulus-base:bookworm";

/** Data dir of the test registry (its store survives runs; its CA and port do not matter). */
const REGISTRY_CACHE = "/var/lib/cumulus-test-registry";

function freePort(host: string): number {
  const l = Deno.listen({ hostname: host, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: "a node without the job image pulls it from the manager's registry and runs the job",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const reg = await startRegistry({
      addr: `${MANAGER_ADDR}:${freePort(MANAGER_ADDR)}`,
      dataDir: REGISTRY_CACHE,
    });
    // Both engines (the manager's and the second node's) read this machine's certs.d.
    const untrust = await trustRegistry(reg.addr, reg.caPem);
    const orchLog: string[] = [];
    let imageId = "";
    let node: Awaited<ReturnType<typeof startSecondNode>> | null = null;
    let stack: Awaited<ReturnType<typeof startStack>> | null = null;
    let c: TestClient | null = null;
    try {
      node = await startSecondNode([], { noImages: true });
      imageId = await managerImageId(JOB_IMAGE);
      assert.equal(
        await node.docker(["image", "inspect", "-f", "{{.Id}}", imageId]).catch(() => null),
        null,
        "the second node holds the job image before the test",
      );
      stack = await startStack({
        host: MANAGER_ADDR,
        env: { CUMULUS_REGISTRY: reg.addr },
        log: (m) => {
          orchLog.push(m);
          if (Deno.env.get("CUMULUS_TEST_VERBOSE")) console.error(`[orch] ${m}`);
        },
      });
      c = new TestClient(stack.url);
      const pinned = [`node.id==${node.nodeId}`];

      const client = c;
      /** Submits `command` on the second node; resolves with its id and ms from submit to RUNNING. */
      const runOnNode = async (command: string[]) => {
        const submitted = performance.now();
        const id = await client.submit(spec(command, { constraints: pinned }));
        await waitFor(
          "the job to run",
          () => client.getJob(id),
          (j) => j.state !== "QUEUED" && j.state !== "SCHEDULED",
          150_000,
        );
        return { id, ms: performance.now() - submitted };
      };
      const { id, ms: runningMs } = await runOnNode(["sh", "-c", "echo pulled and ran"]);
      const { lines, job } = await c.watchAll(id, { deadlineMs: 60_000 });
      assert.equal(job.state, "SUCCEEDED", job.reason);
      assert.equal(job.nodeId, node.nodeId);
      assert.ok(lines.some((l) => l.text === "pulled and ran"));
      // The node's engine pulled it: it holds the manager's image now.
      assert.equal(await node.docker(["image", "inspect", "-f", "{{.Id}}", imageId]), imageId);
      const digests = await node.docker([
        "image",
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        imageId,
      ]);
      assert.ok(digests.includes(`${reg.addr}/cumulus-job@sha256:`), digests);
      // Progress was logged with bytes.
      assert.ok(
        orchLog.some((m) => /pushed in [\d.]+ s to .*B of .*B/.test(m)),
        orchLog.join("\n"),
      );
      // Same-run baseline: the node holds the image now, nothing is pushed or pulled.
      const again = await runOnNode(["true"]);
      assert.equal((await c.watchAll(again.id, { deadlineMs: 60_000 })).job.state, "SUCCEEDED");
      console.log(
        `registry: submit -> RUNNING on the fresh node ${(runningMs / 1000).toFixed(1)} s, ` +
          `with the image there ${(again.ms / 1000).toFixed(1)} s ` +
          `(push: ${orchLog.find((m) => m.includes("pushed in")) ?? "?"})`,
      );

      // An image the registry lacks: the job fails, saying so.
      const missing = `${reg.addr}/cumulus-missing:1`;
      const bad = await c.submit(spec(["true"], { image: missing, constraints: pinned }));
      const failed = await waitFor(
        "the job to fail",
        () => client.getJob(bad),
        (j) => j.state === "FAILED",
        30_000,
      );
      assert.match(failed.reason, new RegExp(`image ${missing} not found in registry ${reg.addr}`));
    } finally {
      c?.close();
      await stack?.stop();
      await node?.stop();
      await untrust();
      await reg.stop();
      // The tag the push made (the port changes every run).
      await removePushedTags(reg.addr);
    }
  },
});

/** Runs the docker CLI against the manager's engine; null when it fails. */
async function managerDocker(args: string[]): Promise<string | null> {
  const out = await new Deno.Command("docker", { args, stdout: "piped", stderr: "null" }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
}

/** The manager's id for `ref`. */
async function managerImageId(ref: string): Promise<string> {
  const id = await managerDocker(["image", "inspect", "-f", "{{.Id}}", ref]);
  if (!id) throw new Error(`${ref} is not on the manager (scripts/bootstrap.sh builds it)`);
  return id;
}

Deno.test({
  name: "registry_serve: the orchestrator runs the registry itself, pushes a job's image there, " +
    "and after a SIGKILL its next run stops the registry left behind and serves again",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-own-registry-" });
    const addr = `127.0.0.1:${freePort("127.0.0.1")}`;
    const env = { CUMULUS_REGISTRY: addr, CUMULUS_REGISTRY_SERVE: "true" };
    const port = freePort("127.0.0.1");
    let proc = await spawnOrchestrator(dataDir, port, env);
    const client = () => new CumulusClient(proc.url);
    // A small image (the job image's base): what the orchestrator pushes is the job's image.
    const runOne = async (text: string) => {
      const c = client();
      try {
        const job = c.job(
          (await c.submit({ command: ["sh", "-c", `echo ${text}`], image: SMALL_IMAGE })).id,
        );
        const lines: string[] = [];
        for await (const l of job.logs()) lines.push(l.text);
        const done = await job.wait();
        assert.equal(done.state, "SUCCEEDED", done.reason);
        assert.deepEqual(lines, [text]);
      } finally {
        c.close();
      }
    };
    try {
      const pidFile = registryPidFile(dataDir);
      const firstPid = Number((await Deno.readTextFile(pidFile)).trim());
      assert.match(proc.stderr(), new RegExp(`serving the job image registry on ${addr}`));
      await runOne("through-own-registry");
      assert.match(proc.stderr(), new RegExp(`pushed in [\\d.]+ s to ${addr}`), proc.stderr());
      // The CA reached this machine's engines, and the join answer's CA file exists.
      await Deno.stat(`/etc/docker/certs.d/${addr}/ca.crt`);
      await Deno.stat(`${dataDir}/registry/tls/ca.pem`);

      // Killed as a crash kills it: the registry child stays, holding the port.
      proc.child.kill("SIGKILL");
      await proc.status;
      (await Deno.connect({ hostname: "127.0.0.1", port: Number(addr.split(":")[1]) })).close();
      proc = await spawnOrchestrator(dataDir, port, env);
      assert.match(proc.stderr(), new RegExp(`stopped the registry \\(pid ${firstPid}\\)`));
      const secondPid = Number((await Deno.readTextFile(pidFile)).trim());
      assert.notEqual(secondPid, firstPid);
      await runOne("after-restart");

      // A clean stop takes the registry down with it.
      proc.child.kill("SIGTERM");
      await proc.status;
      await assert.rejects(Deno.stat(pidFile));
      assert.ok(
        !processAlive(secondPid),
        `registry pid ${secondPid} still runs after the orchestrator stopped`,
      );
    } finally {
      try {
        proc.child.kill("SIGTERM");
      } catch {
        // Ended already.
      }
      await proc.status;
      await stopLeftRegistry(dataDir);
      await Deno.remove(`/etc/docker/certs.d/${addr}`, { recursive: true }).catch(() => {});
      await removePushedTags(addr);
      await removeLeftovers(dataDir);
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
