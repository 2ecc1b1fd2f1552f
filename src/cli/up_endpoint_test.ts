import assert from "node:assert/strict";
import {
  readUpEndpoint,
  removeUpEndpoint,
  upEndpointPath,
  writeUpEndpoint,
} from "./up_endpoint.ts";

Deno.test("upEndpointPath() prefers CUMULUS_CONFIG_DIR, then XDG_CONFIG_HOME, then HOME", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(upEndpointPath(env({ CUMULUS_CONFIG_DIR: "/c", HOME: "/h" })), "/c/up.json");
  assert.equal(upEndpointPath(env({ XDG_CONFIG_HOME: "/x", HOME: "/h" })), "/x/cumulus/up.json");
  assert.equal(upEndpointPath(env({ HOME: "/h" })), "/h/.config/cumulus/up.json");
  assert.equal(upEndpointPath(env({})), null);
});

Deno.test("up's record is read back while its CA exists, and removed only by its own data dir", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-up-endpoint-" });
  try {
    const env = (name: string) => name === "CUMULUS_CONFIG_DIR" ? `${dir}/cfg` : undefined;
    const caFile = `${dir}/ca.pem`;
    await Deno.writeTextFile(caFile, "ca");
    assert.equal(readUpEndpoint(env), null);
    const record = { url: "grpcs://127.0.0.1:5", caFile, dataDir: "/data/a" };
    await writeUpEndpoint(env, record);
    // The record names a copy of the CA in the config dir (all a narrowed client may read).
    const copied = { ...record, caFile: `${dir}/cfg/up-ca.pem` };
    assert.deepEqual(readUpEndpoint(env), copied);
    assert.equal(await Deno.readTextFile(copied.caFile), "ca");
    assert.equal((await Deno.stat(`${dir}/cfg/up.json`)).mode! & 0o777, 0o600);
    await removeUpEndpoint(env, "/data/other");
    assert.deepEqual(readUpEndpoint(env), copied);
    await Deno.remove(copied.caFile);
    assert.equal(readUpEndpoint(env), null, "a record whose CA is gone counts as none");
    await writeUpEndpoint(env, record);
    await removeUpEndpoint(env, "/data/a");
    await assert.rejects(Deno.stat(`${dir}/cfg/up.json`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(copied.caFile), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
