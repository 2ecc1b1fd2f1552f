import assert from "node:assert/strict";
import { fingerprint, hostSpec, KnownHosts } from "./known_hosts.ts";

function blob(type: string, body: number): Uint8Array {
  const t = new TextEncoder().encode(type);
  const out = new Uint8Array(4 + t.length + 8);
  new DataView(out.buffer).setUint32(0, t.length);
  out.set(t, 4);
  out.fill(body, 4 + t.length);
  return out;
}

Deno.test("host keys: first use is recorded, the same key is known, another is a mismatch", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const known = new KnownHosts(`${dir}/known_hosts`);
    const a = blob("ssh-ed25519", 1);
    const b = blob("ssh-ed25519", 2);
    assert.deepEqual(known.check("10.0.0.5", 2222, a), {
      kind: "recorded",
      fingerprint: fingerprint(a),
    });
    assert.deepEqual(known.check("10.0.0.5", 2222, a), { kind: "known" });
    const verdict = known.check("10.0.0.5", 2222, b);
    assert.equal(verdict.kind, "mismatch");
    // Another port of the same host is another entry.
    assert.equal(known.check("10.0.0.5", 22, b).kind, "recorded");
    const lines = Deno.readTextFileSync(`${dir}/known_hosts`).trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^\[10\.0\.0\.5\]:2222 ssh-ed25519 [A-Za-z0-9+/=]+$/);
    assert.match(lines[1], /^10\.0\.0\.5 ssh-ed25519 /);
    assert.equal((Deno.statSync(`${dir}/known_hosts`).mode ?? 0) & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostSpec and fingerprint follow OpenSSH", () => {
  assert.equal(hostSpec("h", 22), "h");
  assert.equal(hostSpec("h", 2200), "[h]:2200");
  assert.match(fingerprint(new Uint8Array([1, 2, 3])), /^SHA256:[A-Za-z0-9+/]{43}$/);
});

Deno.test("KnownHosts.pin() makes a joined worker's key known before first contact; unpin() forgets it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const known = new KnownHosts(`${dir}/known_hosts`);
    const a = blob("ssh-ed25519", 1);
    const b = blob("ssh-ed25519", 2);
    const b64 = (k: Uint8Array) => btoa(String.fromCharCode(...k));
    known.check("10.0.0.9", 22, b); // another host, kept throughout
    assert.equal(known.pin("10.0.0.5", 2222, "ssh-ed25519", b64(a)), true);
    assert.equal(known.pin("10.0.0.5", 2222, "ssh-ed25519", b64(a)), false);
    assert.deepEqual(known.check("10.0.0.5", 2222, a), { kind: "known" });
    assert.equal(known.check("10.0.0.5", 2222, b).kind, "mismatch");
    // A new pin replaces the old key.
    assert.equal(known.pin("10.0.0.5", 2222, "ssh-ed25519", b64(b)), true);
    assert.deepEqual(known.check("10.0.0.5", 2222, b), { kind: "known" });
    assert.equal(known.unpin("10.0.0.5", 2222), true);
    assert.equal(known.unpin("10.0.0.5", 2222), false);
    assert.deepEqual(known.check("10.0.0.9", 22, b), { kind: "known" });
    assert.equal((await Deno.stat(known.path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
