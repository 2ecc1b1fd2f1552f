/**
 * End-to-end tests of the TypeScript SDK (src/sdk/mod.ts) against a real
 * orchestrator on the local Docker Swarm (tests/helpers/stack.ts).
 */
import assert from "node:assert/strict";
import {
  CumulusClient,
  CumulusRpcError,
  type JobSpecInput,
  type LogLine,
  packBundle,
} from "../src/sdk/mod.ts";
import { type Stack, startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function withClient(
  fn: (client: CumulusClient, stack: Stack) => Promise<void>,
  stackOptions: Parameters<typeof startStack>[0] = {},
): Promise<void> {
  const stack = await startStack(stackOptions);
  const client = new CumulusClient(stack.url);
  try {
    await fn(client, stack);
  } finally {
    client.close();
    await stack.stop();
  }
}

function rpcError(code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CumulusRpcError, String(err));
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    assert.ok(!err.message.includes("\n"));
    return true;
  };
}

async function collect(it: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of it) out.push(l);
  return out;
}

Deno.test({
  name: "submit, logs, wait, status: lines in order with streams, FAILED with exit 3",
  ...opts,
  fn: () =>
    withClient(async (admin, stack) => {
      // The job belongs to the token's user, "sdk".
      const client = new CumulusClient(stack.url, { token: await stack.createToken("sdk") });
      try {
        const job = await client.submit({
          command: ["sh", "-c", "echo one; echo two >&2; echo three; exit 3"],
          name: "sdk-basic",
          env: { GREETING: "hi" },
        });
        assert.match(job.id, /^j-[0-9a-f]{12}$/);
        const lines = await collect(job.logs());
        assert.deepEqual(lines.map((l) => l.seq), [1, 2, 3]);
        assert.deepEqual(lines.map((l) => l.text).sort(), ["one", "three", "two"]);
        assert.equal(lines.find((l) => l.text === "two")?.stream, "stderr");
        assert.ok(lines.every((l) => l.timeMs > 0));
        const final = await job.wait();
        assert.equal(final.state, "FAILED");
        assert.equal(final.exitCode, 3);
        const status = await job.status();
        assert.equal(status.state, "FAILED");
        assert.equal(status.spec.name, "sdk-basic");
        assert.equal(status.spec.user, "sdk");
        assert.equal(status.spec.env.GREETING, "hi");
        assert.equal(status.spec.gpuMemory, 0.25);
        assert.ok(status.finishedAtMs! >= status.startedAtMs!);
        assert.equal(await job.result(), null);
        const again = await collect(job.logs({ afterSeq: 1, follow: false }));
        assert.deepEqual(again.map((l) => l.seq), [2, 3]);
        const got = await client.getJob(job.id);
        assert.equal(got.id, job.id);
        // An admin sees the job, but not its env values (those go to the owner only).
        assert.notEqual((await admin.getJob(job.id)).spec.env.GREETING, "hi");
      } finally {
        client.close();
      }
    }),
});

const badSpecs: Array<[string, JobSpecInput, RegExp]> = [
  ["gpu_memory > 1, not whole", { command: ["true"], gpuMemory: 2.5 }, /^spec\.gpu_memory: /],
  ["9 whole GPUs", { command: ["true"], gpuCount: 9 }, /^spec\.gpu_count: /],
  [
    "a fraction of 2 GPUs",
    { command: ["true"], gpuCount: 2, gpuMemory: 0.5 },
    /^spec\.gpu_count: /,
  ],
  ["gpu_memory = 0", { command: ["true"], gpuMemory: 0 }, /^spec\.gpu_memory: /],
  ["gpu_memory < 0", { command: ["true"], gpuMemory: -0.5 }, /^spec\.gpu_memory: /],
  ["duration = 0", { command: ["true"], duration: 0 }, /^spec\.duration: /],
  ["duration < 0", { command: ["true"], duration: -1 }, /^spec\.duration: /],
  ["empty command", { command: [] }, /^spec\.command: /],
];

Deno.test({
  name: "bad specs get INVALID_ARGUMENT naming the field, and no job is created",
  ...opts,
  fn: () =>
    withClient(async (client) => {
      for (const [what, spec, msg] of badSpecs) {
        await assert.rejects(
          client.submit(spec, { bundle: new Uint8Array(200_000) }),
          rpcError("INVALID_ARGUMENT", msg),
          what,
        );
      }
      assert.deepEqual((await client.listJobs()).jobs, []);
    }),
});

Deno.test({
  name: "unknown job ids get NOT_FOUND from every call",
  ...opts,
  fn: () =>
    withClient(async (client) => {
      const ghost = client.job("j-000000000000");
      await assert.rejects(ghost.status(), rpcError("NOT_FOUND", /j-000000000000/));
      await assert.rejects(ghost.cancel(), rpcError("NOT_FOUND"));
      await assert.rejects(ghost.wait(), rpcError("NOT_FOUND"));
      await assert.rejects(collect(ghost.logs()), rpcError("NOT_FOUND"));
      await assert.rejects(ghost.result(), rpcError("NOT_FOUND"));
    }),
});

Deno.test({
  name: "cancel makes a running job CANCELLED; wait returns it; a second cancel is refused",
  ...opts,
  fn: () =>
    withClient(async (client) => {
      const job = await client.submit({ command: ["sh", "-c", "echo up; sleep 30"] });
      const it = job.logs()[Symbol.asyncIterator]();
      assert.equal((await it.next()).value?.text, "up");
      const cancelled = await job.cancel();
      assert.equal(cancelled.state, "CANCELLED");
      assert.equal((await it.next()).done, true);
      assert.equal((await job.wait()).state, "CANCELLED");
      await assert.rejects(job.cancel(), rpcError("FAILED_PRECONDITION"));
    }),
});

Deno.test({
  name: "listJobs filters by state and user and pages with a token",
  ...opts,
  fn: () =>
    withClient(async (client, stack) => {
      const ann = new CumulusClient(stack.url, { token: await stack.createToken("ann") });
      const ben = new CumulusClient(stack.url, { token: await stack.createToken("ben") });
      const a = await ann.submit({ command: ["true"] });
      const b = await ben.submit({ command: ["false"] });
      const c = await ann.submit({ command: ["true"] });
      await Promise.all([a.wait(), b.wait(), c.wait()]);
      ann.close();
      ben.close();
      const anns = await client.listJobs({ user: "ann" });
      // Newest first, like the `cumulus jobs` table.
      assert.deepEqual(anns.jobs.map((j) => j.id), [c.id, a.id]);
      const failed = await client.listJobs({ states: ["FAILED"] });
      assert.deepEqual(failed.jobs.map((j) => j.id), [b.id]);
      const first = await client.listJobs({ pageSize: 2 });
      assert.equal(first.jobs.length, 2);
      assert.notEqual(first.nextPageToken, "");
      const second = await client.listJobs({ pageSize: 2, pageToken: first.nextPageToken });
      assert.deepEqual(
        [...first.jobs, ...second.jobs].map((j) => j.id).sort(),
        [a.id, b.id, c.id].sort(),
      );
      const workers = await client.listWorkers();
      assert.ok(workers.some((w) => w.state === "ready"));
    }),
});

Deno.test({
  name: "a packed bundle reaches the job's working directory",
  ...opts,
  fn: () =>
    withClient(async (client) => {
      const dir = await Deno.makeTempDir({ prefix: "cumulus-sdk-e2e-" });
      try {
        await Deno.writeTextFile(`${dir}/data.txt`, "from the bundle\n");
        await Deno.writeTextFile(`${dir}/.cumulusignore`, "skip.txt\n");
        await Deno.writeTextFile(`${dir}/skip.txt`, "no\n");
        const bundle = await packBundle(dir);
        let sent = 0;
        const job = await client.submit(
          { command: ["sh", "-c", "cat data.txt; test -e skip.txt && echo LEAK; true"] },
          { bundle: bundle.bytes, onProgress: (p) => (sent = p.sentBytes) },
        );
        assert.equal(sent, bundle.bytes.length);
        const lines = await collect(job.logs());
        assert.deepEqual(lines.map((l) => l.text), ["from the bundle"]);
        const final = await job.wait();
        assert.equal(final.state, "SUCCEEDED");
        assert.equal(final.bundleBytes, bundle.bytes.length);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }),
});

Deno.test({
  name: "a bundle over the orchestrator's limit gets RESOURCE_EXHAUSTED and no job",
  ...opts,
  fn: () =>
    withClient(async (client) => {
      async function* stream() {
        for (let i = 0; i < 10; i++) yield new Uint8Array(100_000);
      }
      await assert.rejects(
        client.submit({ command: ["true"] }, { bundle: stream() }),
        rpcError("RESOURCE_EXHAUSTED"),
      );
      assert.deepEqual((await client.listJobs()).jobs, []);
      // The orchestrator keeps serving.
      const ok = await client.submit({ command: ["true"] }, { bundle: new Uint8Array(1000) });
      assert.ok(ok.id);
    }, { env: { CUMULUS_MAX_BUNDLE_BYTES: "500000" } }),
});

Deno.test({
  name: "a client that aborts mid-upload creates no job and the orchestrator keeps serving",
  ...opts,
  fn: () =>
    withClient(async (client) => {
      const ctl = new AbortController();
      async function* slow() {
        for (let i = 0; i < 100; i++) {
          if (i === 5) ctl.abort(new Error("user gave up"));
          yield new Uint8Array(64 * 1024);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await assert.rejects(
        client.submit({ command: ["true"] }, { bundle: slow(), signal: ctl.signal }),
        /user gave up/,
      );
      // Give the server a moment to see the cancelled stream.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual((await client.listJobs()).jobs, []);
      const job = await client.submit({ command: ["true"] });
      assert.equal((await job.wait()).state, "SUCCEEDED");
    }),
});

/**
 * A real TCP proxy in front of the orchestrator whose connections the test
 * can cut, to make the SDK see UNAVAILABLE mid-stream.
 */
function startProxy(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let refuse = false;
  const pipe = async (a: Deno.Conn, b: Deno.Conn) => {
    try {
      await a.readable.pipeTo(b.writable);
    } catch {
      // Cut by the test.
    }
  };
  const serving = (async () => {
    for await (const down of listener) {
      if (refuse) {
        down.close();
        continue;
      }
      const up = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.add(down).add(up);
      Promise.all([pipe(down, up), pipe(up, down)]).finally(() => {
        for (const c of [down, up]) {
          conns.delete(c);
          try {
            c.close();
          } catch { /* already closed */ }
        }
      });
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    /** Drops every open connection and refuses new ones for `ms`. */
    async cut(ms: number) {
      refuse = true;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await new Promise((r) => setTimeout(r, ms));
      refuse = false;
    },
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await serving.catch(() => {});
    },
  };
}

Deno.test({
  name: "logs() survives dropped connections: every line exactly once, in order",
  ...opts,
  fn: () =>
    withClient(async (direct, stack) => {
      const proxy = startProxy(stack.port);
      const client = new CumulusClient(`127.0.0.1:${proxy.port}`);
      try {
        const job = await client.submit({
          command: [
            "sh",
            "-c",
            "i=1; while [ $i -le 40 ]; do echo n$i; i=$((i+1)); sleep 0.1; done",
          ],
        });
        const seen: LogLine[] = [];
        let cuts = 0;
        for await (const line of job.logs()) {
          seen.push(line);
          if (line.seq === 5 || line.seq === 20) {
            cuts++;
            await proxy.cut(700);
          }
        }
        assert.equal(cuts, 2);
        assert.deepEqual(seen.map((l) => l.seq), Array.from({ length: 40 }, (_, i) => i + 1));
        assert.deepEqual(
          seen.map((l) => l.text),
          Array.from({ length: 40 }, (_, i) => `n${i + 1}`),
        );
        assert.equal((await direct.getJob(job.id)).state, "SUCCEEDED");
      } finally {
        client.close();
        await proxy.close();
      }
    }),
});

Deno.test({
  name: "the SDK is importable by URL with no install and no import map",
  ...opts,
  fn: () =>
    withClient(async (_client, stack) => {
      const sdkDir = new URL("../src/sdk/", import.meta.url);
      // A plain HTTP file server for src/sdk only: anything the SDK imports
      // from outside that folder would fail to load.
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
        const path = new URL(req.url).pathname.replace(/^\/+/, "");
        if (!/^[a-z_]+\.ts$/.test(path)) return new Response("not found", { status: 404 });
        try {
          const body = await Deno.readFile(new URL(path, sdkDir));
          return new Response(body, { headers: { "content-type": "application/typescript" } });
        } catch {
          return new Response("not found", { status: 404 });
        }
      });
      const host = `127.0.0.1:${server.addr.port}`;
      const dir = await Deno.makeTempDir({ prefix: "cumulus-url-import-" });
      try {
        await Deno.writeTextFile(
          `${dir}/use_sdk.ts`,
          `import { CumulusClient } from "http://${host}/mod.ts";
const client = new CumulusClient(Deno.args[0]);
const job = await client.submit({ command: ["sh", "-c", "echo via-url"] });
for await (const line of job.logs()) console.log(line.text);
console.log((await job.wait()).state);
client.close();
`,
        );
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--quiet",
            "--no-config",
            `--allow-import=${host}`,
            "--allow-net",
            "--allow-env",
            "--allow-read",
            "--allow-sys",
            `${dir}/use_sdk.ts`,
            stack.url,
          ],
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, stderr);
        assert.equal(new TextDecoder().decode(out.stdout), "via-url\nSUCCEEDED\n");
      } finally {
        await server.shutdown();
        await Deno.remove(dir, { recursive: true });
      }
    }),
});
