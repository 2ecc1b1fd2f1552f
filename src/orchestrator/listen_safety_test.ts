import assert from "node:assert/strict";
import { ConfigError } from "../config/mod.ts";
import { assertSafeListen, isLoopbackHost } from "./listen_safety.ts";

const plain = { tlsCert: "", tlsKey: "", insecure: false };
const tls = { tlsCert: "/etc/cumulus/server.pem", tlsKey: "/etc/cumulus/server-key.pem" };

Deno.test("assertSafeListen() allows loopback without TLS, and anything with TLS", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
    assert.deepEqual(assertSafeListen({ ...plain, listenHost: host }), { warning: null }, host);
  }
  for (const host of ["0.0.0.0", "10.0.0.5", "::"]) {
    assert.deepEqual(
      assertSafeListen({ ...tls, insecure: false, listenHost: host }),
      { warning: null },
      host,
    );
  }
});

Deno.test("assertSafeListen() refuses a reachable plaintext bind, naming the fix", () => {
  for (const host of ["0.0.0.0", "10.0.0.5", "::", "gpu-box"]) {
    assert.throws(
      () => assertSafeListen({ ...plain, listenHost: host }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.key, "listen_host");
        assert.match(err.message, /tls_cert and tls_key/);
        assert.match(err.message, /--insecure/);
        return true;
      },
      host,
    );
  }
});

Deno.test("assertSafeListen() accepts a reachable plaintext bind with insecure, with a warning", () => {
  const { warning } = assertSafeListen({ ...plain, insecure: true, listenHost: "0.0.0.0" });
  assert.match(warning ?? "", /^WARNING: listen_host 0\.0\.0\.0 without TLS/);
});

Deno.test("assertSafeListen() refuses a certificate without its key", () => {
  assert.throws(
    () => assertSafeListen({ ...plain, tlsCert: "/x.pem", listenHost: "127.0.0.1" }),
    (err: unknown) => err instanceof ConfigError && err.key === "tls_key",
  );
});

Deno.test("isLoopbackHost() knows loopback", () => {
  assert.equal(isLoopbackHost("127.0.0.1"), true);
  assert.equal(isLoopbackHost("128.0.0.1"), false);
  assert.equal(isLoopbackHost("localhost.example"), false);
});
