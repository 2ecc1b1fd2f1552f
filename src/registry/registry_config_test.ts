import assert from "node:assert/strict";
import { parse } from "yaml";
import { registryConfigYaml, trustDirOf } from "./registry_config.ts";

Deno.test("registryConfigYaml() binds the address and stores in the directory", () => {
  const doc = parse(registryConfigYaml({
    addr: "198.18.0.1:5000",
    storageDir: "/data/a b/store",
    tls: { certFile: "/t/server.pem", keyFile: "/t/key.pem" },
  }));
  assert.equal(doc.http.addr, "198.18.0.1:5000");
  assert.equal(doc.storage.filesystem.rootdirectory, "/data/a b/store");
  assert.deepEqual(doc.http.tls, { certificate: "/t/server.pem", key: "/t/key.pem" });
  const plain = parse(registryConfigYaml({ addr: "127.0.0.1:5000", storageDir: "/s" }));
  assert.equal(plain.http.tls, undefined);
});

Deno.test("trustDirOf() names the engine's certs.d entry", () => {
  assert.equal(trustDirOf("198.18.0.1:5000"), "/etc/docker/certs.d/198.18.0.1:5000");
  assert.equal(trustDirOf("r:1", "/x"), "/x/r:1");
});
