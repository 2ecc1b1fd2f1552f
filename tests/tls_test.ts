/**
 * Issue 16 (TLS): an orchestrator serving TLS with the CA and certificate `src/tls` makes.
 * The TypeScript SDK and the Python SDK reach it with the CA; a job's runtime reaches it
 * from its container (grpcs:// and the CA PEM in its env); plaintext clients and clients
 * trusting another CA are refused; a reachable plaintext bind needs `insecure`.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../src/config/mod.ts";
import { CumulusClient, CumulusRpcError, packBundle } from "../src/sdk/mod.ts";
import { ensureCertificates } from "../src/tls/mod.ts";
import { startStack } from "./helpers/stack.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Runs Python with this checkout's `cumulus` package; returns its stdout, asserting exit 0. */
async function python(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<string> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args,
    cwd,
    env: { ...env, PYTHONPATH: `${ROOT}src/sdk/python` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

Deno.test({
  name: "a TLS orchestrator serves both SDKs with its CA, and jobs' runtimes reach it over TLS",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const stack = await startStack({ tls: true });
    const dir = await Deno.makeTempDir({ prefix: "cumulus-tls-bundle-" });
    try {
      assert.match(stack.url, /^grpcs:\/\/127\.0\.0\.1:\d+$/);
      const caPem = await Deno.readTextFile(stack.caFile!);
      // A bundled command: the container's runtime fetches the bundle and streams the
      // log over grpcs:// with the CA PEM the orchestrator put in its env.
      await Deno.writeTextFile(`${dir}/hello.sh`, "echo over-tls $CUMULUS_ORCHESTRATOR_URL\n");
      const client = new CumulusClient(stack.url, { caPem });
      try {
        const job = await client.submit(
          { command: ["sh", "hello.sh"] },
          { bundle: (await packBundle(dir)).bytes },
        );
        const lines = (await collect(job.logs())).map((l) => l.text);
        assert.ok(lines.includes(`over-tls ${stack.url}`), lines.join("\n"));
        assert.equal((await job.wait()).state, "SUCCEEDED");
      } finally {
        client.close();
      }
      // The certificate names localhost too.
      const byName = new CumulusClient(`grpcs://localhost:${stack.port}`, { caPem });
      try {
        assert.ok((await byName.listJobs()).jobs.length >= 1);
      } finally {
        byName.close();
      }
      // The Python SDK: a function job, whose runtime fetches the function and reports
      // its result over TLS from the container; the client finds the CA in CUMULUS_CA_FILE.
      const out = await python(
        ["-c", "from cumulus import CumulusClient; print(CumulusClient().run(pow, 6, 2))"],
        stack.env,
        dir,
      );
      assert.equal(out.trim(), "36");
    } finally {
      await stack.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a TLS orchestrator refuses plaintext clients and clients that trust another CA",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const stack = await startStack({ tls: true });
    const other = await Deno.makeTempDir({ prefix: "cumulus-other-ca-" });
    try {
      const plain = new CumulusClient(`grpc://127.0.0.1:${stack.port}`, { connectTimeoutMs: 8000 });
      try {
        await assert.rejects(plain.listJobs(), (err: unknown) => {
          assert.ok(err instanceof CumulusRpcError);
          assert.equal(err.code, "UNAVAILABLE");
          return true;
        });
      } finally {
        plain.close();
      }
      const wrong = await ensureCertificates({ dir: other });
      const stranger = new CumulusClient(stack.url, {
        caPem: await Deno.readTextFile(wrong.paths.caCert),
        connectTimeoutMs: 8000,
      });
      try {
        await assert.rejects(stranger.listJobs(), (err: unknown) => {
          assert.ok(err instanceof CumulusRpcError);
          assert.equal(err.code, "UNAVAILABLE");
          assert.match(err.message, /TLS: .*CUMULUS_CA_FILE/);
          return true;
        });
      } finally {
        stranger.close();
      }
      // Python: the same refusals, with the same hint.
      const out = await python([
        "-c",
        `import sys
from cumulus import CumulusClient
from cumulus.errors import OrchestratorUnavailable
for url, ca in ((sys.argv[1], sys.argv[3]), (sys.argv[2], None)):
    try:
        CumulusClient(url, ca_file=ca, connect_timeout=8).job("j-none").status()
    except OrchestratorUnavailable as e:
        print("refused", "CUMULUS_CA_FILE" in str(e))
    except Exception as e:
        print("reached", type(e).__name__)`,
        stack.url,
        `127.0.0.1:${stack.port}`,
        wrong.paths.caCert,
      ]);
      assert.equal(out, "refused True\nrefused False\n");
    } finally {
      await stack.stop();
      await Deno.remove(other, { recursive: true });
    }
  },
});

Deno.test({
  name: "a non-loopback listen_host without TLS refuses to start; insecure starts and warns",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await assert.rejects(startStack({ host: "0.0.0.0", insecure: false }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /listen_host.*tls_cert and tls_key.*--insecure/);
      return true;
    });
    const lines: string[] = [];
    const stack = await startStack({ host: "0.0.0.0", insecure: true, log: (l) => lines.push(l) });
    try {
      assert.ok(
        lines.some((l) => /^WARNING: listen_host 0\.0\.0\.0 without TLS/.test(l)),
        lines.join("\n"),
      );
    } finally {
      await stack.stop();
    }
  },
});
