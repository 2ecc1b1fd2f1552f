import assert from "node:assert/strict";
import { CumulusClient, rechunk } from "./client.ts";
import { CumulusRpcError } from "./errors.ts";

async function collect(src: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of src) out.push(new Uint8Array(c));
  return out;
}

async function* pieces(sizes: number[]): AsyncGenerator<Uint8Array> {
  let n = 0;
  for (const s of sizes) {
    yield Uint8Array.from({ length: s }, () => n++ & 0xff);
  }
}

Deno.test("rechunk cuts streams into full chunks and keeps every byte in order", async () => {
  const chunks = await collect(rechunk(pieces([3, 10, 1, 0, 7]), 4));
  assert.deepEqual(chunks.map((c) => c.length), [4, 4, 4, 4, 4, 1]);
  const flat = chunks.flatMap((c) => [...c]);
  assert.deepEqual(flat, Array.from({ length: 21 }, (_, i) => i));
});

Deno.test("rechunk slices a Uint8Array without copying the tail wrong", async () => {
  const bytes = Uint8Array.from({ length: 10 }, (_, i) => i);
  const chunks = await collect(rechunk(bytes, 4));
  assert.deepEqual(chunks.map((c) => [...c]), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("a refused address fails at once with UNAVAILABLE naming the address", async () => {
  const port = freePort();
  const client = new CumulusClient(`127.0.0.1:${port}`);
  const t0 = performance.now();
  try {
    await assert.rejects(client.listJobs(), (err: unknown) => {
      assert.ok(err instanceof CumulusRpcError);
      assert.equal(err.code, "UNAVAILABLE");
      assert.match(
        err.message,
        new RegExp(`cannot reach the orchestrator at 127\\.0\\.0\\.1:${port}`),
      );
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  } finally {
    client.close();
  }
  assert.ok(performance.now() - t0 < 5000);
});

Deno.test("an address that accepts TCP but never speaks gRPC fails within 5 s by default", async () => {
  // A real listener that never answers: the kernel completes the TCP
  // handshake, so only the client's own deadline can end the wait.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  const client = new CumulusClient(`127.0.0.1:${port}`);
  const t0 = performance.now();
  try {
    await assert.rejects(client.listWorkers(), (err: unknown) => {
      assert.ok(err instanceof CumulusRpcError);
      assert.ok(["UNAVAILABLE", "DEADLINE_EXCEEDED"].includes(err.code), err.code);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
    assert.ok(performance.now() - t0 < 5000, `took ${performance.now() - t0} ms`);
  } finally {
    client.close();
    listener.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }
});

Deno.test("the default address is used with no argument and no env", () => {
  const saved = Deno.env.get("CUMULUS_ORCHESTRATOR_URL");
  Deno.env.delete("CUMULUS_ORCHESTRATOR_URL");
  try {
    const c = new CumulusClient();
    assert.equal(c.url, "127.0.0.1:50051");
    c.close();
    Deno.env.set("CUMULUS_ORCHESTRATOR_URL", "grpc://example.invalid:7");
    const d = new CumulusClient();
    assert.equal(d.url, "example.invalid:7");
    d.close();
  } finally {
    if (saved === undefined) Deno.env.delete("CUMULUS_ORCHESTRATOR_URL");
    else Deno.env.set("CUMULUS_ORCHESTRATOR_URL", saved);
  }
});
