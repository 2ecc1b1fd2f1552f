import assert from "node:assert/strict";
import { RegistryError, startRegistry, trustRegistry } from "./mod.ts";

const HAVE_BINARY = await Deno.stat("/usr/bin/docker-registry").then(() => true, () => false);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: "startRegistry() serves the registry API over TLS until stop()",
  ignore: !HAVE_BINARY,
  fn: async () => {
    const dataDir = await Deno.makeTempDir();
    const addr = `127.0.0.1:${freePort()}`;
    const reg = await startRegistry({ addr, dataDir });
    try {
      const client = Deno.createHttpClient({ caCerts: [reg.caPem] });
      const res = await fetch(`https://${addr}/v2/`, { client });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      client.close();
    } finally {
      await reg.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
    const again = await Deno.connect({ hostname: "127.0.0.1", port: Number(addr.split(":")[1]) })
      .then((c) => (c.close(), true), () => false);
    assert.equal(again, false, "the port is still open after stop()");
  },
});

Deno.test("startRegistry() says why when the binary is missing", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      startRegistry({ addr: `127.0.0.1:${freePort()}`, dataDir, binary: "/nonexistent/reg" }),
      (err: unknown) => err instanceof RegistryError && /docker-registry/.test(err.message),
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("trustRegistry() writes the CA where engines look, and removes it", async () => {
  const certsDir = await Deno.makeTempDir();
  try {
    const undo = await trustRegistry("198.18.0.1:5000", "PEM", certsDir);
    assert.equal(await Deno.readTextFile(`${certsDir}/198.18.0.1:5000/ca.crt`), "PEM");
    await undo();
    await assert.rejects(Deno.stat(`${certsDir}/198.18.0.1:5000`));
  } finally {
    await Deno.remove(certsDir, { recursive: true });
  }
});
