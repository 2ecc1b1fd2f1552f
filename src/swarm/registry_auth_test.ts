import assert from "node:assert/strict";
import { parseDockerConfig, RegistryAuthError } from "./registry_auth.ts";

Deno.test("parseDockerConfig() reads auth and user/password entries by host", () => {
  const m = parseDockerConfig(
    JSON.stringify({
      auths: {
        "https://ghcr.io/v1/": { auth: btoa("bot:s3cret:x") },
        "198.18.0.1:5000": { username: "u", password: "p" },
      },
    }),
    "c.json",
  );
  assert.deepEqual(m.get("ghcr.io"), {
    username: "bot",
    password: "s3cret:x",
    serveraddress: "ghcr.io",
  });
  assert.deepEqual(m.get("198.18.0.1:5000"), {
    username: "u",
    password: "p",
    serveraddress: "198.18.0.1:5000",
  });
  assert.equal(parseDockerConfig("{}", "c.json").size, 0);
});

Deno.test("parseDockerConfig() refuses bad files without echoing secrets", () => {
  for (
    const text of [
      "{",
      '{"auths": []}',
      '{"auths": {"r": {"auth": "bm9jb2xvbg=="}}}',
      '{"auths": {"r": {}}}',
    ]
  ) {
    assert.throws(() => parseDockerConfig(text, "c.json"), (err: unknown) => {
      assert.ok(err instanceof RegistryAuthError);
      assert.ok(!err.message.includes("nocolon"), err.message);
      return true;
    });
  }
});
