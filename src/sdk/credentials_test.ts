import assert from "node:assert/strict";
import {
  credentialsPath,
  readCredentialsToken,
  resolveToken,
  writeCredentials,
} from "./credentials.ts";

Deno.test("credentialsPath() prefers CUMULUS_CREDENTIALS, then XDG_CONFIG_HOME, then HOME", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.equal(credentialsPath(env({ CUMULUS_CREDENTIALS: "/c", HOME: "/h" })), "/c");
  assert.equal(
    credentialsPath(env({ XDG_CONFIG_HOME: "/x", HOME: "/h" })),
    "/x/cumulus/credentials",
  );
  assert.equal(credentialsPath(env({ HOME: "/h" })), "/h/.config/cumulus/credentials");
  assert.equal(credentialsPath(env({})), null);
});

Deno.test("resolveToken() takes the option, then CUMULUS_TOKEN, then the credentials file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/credentials`;
    await writeCredentials(path, "from-file");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(readCredentialsToken(path), "from-file");
    const vars: Record<string, string> = { CUMULUS_CREDENTIALS: path };
    const env = (n: string) => vars[n];
    assert.equal(resolveToken(undefined, env), "from-file");
    vars.CUMULUS_TOKEN = "from-env";
    assert.equal(resolveToken(undefined, env), "from-env");
    assert.equal(resolveToken("explicit", env), "explicit");
    await Deno.writeTextFile(path, "not json");
    assert.equal(readCredentialsToken(path), "");
    assert.equal(readCredentialsToken(`${dir}/missing`), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
