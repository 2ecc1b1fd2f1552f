import assert from "node:assert/strict";
import {
  InvalidArgumentError,
  joinCommandLine,
  newJoinToken,
  parseHostKey,
  parseJoinToken,
  parseSshTarget,
  parseToken,
} from "./mod.ts";

const ED_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIG1v8r3WqX0Yh8a2TQkqg0bW0xJjJ0m2mQ3pKqJ7pI2s";

Deno.test("newJoinToken() makes a cuj_ token that parseJoinToken() reads back", () => {
  const t = newJoinToken();
  assert.match(t.token, /^cuj_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(parseJoinToken(t.token), { id: t.id, hash: t.hash });
  // Never taken for a user token, nor the other way round.
  assert.equal(parseToken(t.token), null);
  assert.equal(parseJoinToken(t.token.replace("cuj_", "cu_")), null);
});

Deno.test("parseSshTarget() reads user@host[:port] and refuses the rest", () => {
  assert.deepEqual(parseSshTarget("cumulus@10.0.0.5"), {
    user: "cumulus",
    host: "10.0.0.5",
    port: 22,
  });
  assert.deepEqual(parseSshTarget("cu@gpu-1.lan:2222"), {
    user: "cu",
    host: "gpu-1.lan",
    port: 2222,
  });
  for (
    const bad of ["host", "@h", "u@", "u@h:0", "u@h:99999", "u@h;rm -rf", "-o@h", "u@-h", "u@h:x"]
  ) {
    assert.throws(() => parseSshTarget(bad), InvalidArgumentError, bad);
  }
});

Deno.test("parseHostKey() takes an OpenSSH line whose blob matches its type", () => {
  assert.deepEqual(parseHostKey(`ssh-ed25519 ${ED_KEY} root@w1\n`), {
    type: "ssh-ed25519",
    base64: ED_KEY,
  });
  assert.throws(() => parseHostKey(`ssh-rsa ${ED_KEY}`), /not a ssh-rsa key/);
  assert.throws(() => parseHostKey("ssh-dss AAAA"), /key type/);
  assert.throws(() => parseHostKey("ssh-ed25519 !!!"), /base64/);
  assert.throws(() => parseHostKey(""), /OpenSSH public key line/);
});

Deno.test("joinCommandLine() names the orchestrator, the token and the CA fingerprint", () => {
  assert.equal(
    joinCommandLine("grpcs://10.0.0.1:50051", "cuj_0123456789ab_x", "AB:CD"),
    "cumulus-agent join --orchestrator grpcs://10.0.0.1:50051 --token cuj_0123456789ab_x " +
      "--ca-fingerprint AB:CD",
  );
  assert.equal(
    joinCommandLine("h:1", "t", ""),
    "cumulus-agent join --orchestrator h:1 --token t",
  );
  assert.equal(
    joinCommandLine("a b';x", "t", ""),
    "cumulus-agent join --orchestrator 'a b;x' --token t",
  );
});
