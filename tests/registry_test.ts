/**
 * Images reach a worker without a public registry: a real registry process
 * (Debian's docker-registry) on the manager's bridge address, the real engine
 * pushing the job image to it, and a second Swarm node (a network namespace
 * with its own engine, tests/helpers/second_node.ts) that does not hold the
 * image and pulls it on first use. The registry's store is kept between runs
 * in REGISTRY_CACHE (as the second node's data root is), so a push after the
 * first run finds the layers there; the node always pulls.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { MANAGER_ADDR, startSecondNode } from "./helpers/second_node.ts";
import { JOB_IMAGE, startStack } from "./helpers/stack.ts";
import { startRegistry, trustRegistry } from "../src/registry/mod.ts";

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
      const tags = await managerDocker([
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        `${reg.addr}/cumulus-job`,
      ]);
      for (const t of (tags ?? "").split("\n").filter(Boolean)) {
        await managerDocker(["image", "rm", t]);
      }
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
