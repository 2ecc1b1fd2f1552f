import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  CertError,
  certHosts,
  ensureCertificates,
  RENEW_BEFORE_DAYS,
  SERVER_VALIDITY_DAYS,
} from "./certs.ts";

const DAY_MS = 86_400_000;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-certs-" });
  try {
    await fn(`${dir}/tls`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ensureCertificates() makes a CA and a server certificate it signed, with the SANs", async () => {
  await withDir(async (dir) => {
    const r = await ensureCertificates({ dir, hosts: ["gpu-box.example", "10.0.0.5"] });
    assert.equal(r.caCreated, true);
    assert.equal(r.serverCreated, true);
    // Node's own X.509 parser, independent of the library that wrote the files.
    const ca = new X509Certificate(await Deno.readTextFile(r.paths.caCert));
    const server = new X509Certificate(await Deno.readTextFile(r.paths.serverCert));
    assert.equal(ca.ca, true);
    assert.equal(server.ca, false);
    assert.equal(server.verify(ca.publicKey), true);
    assert.equal(server.checkIssued(ca), true);
    assert.equal(r.caFingerprint, ca.fingerprint256);
    for (const host of ["localhost", "gpu-box.example"]) {
      assert.equal(server.checkHost(host), host, host);
    }
    for (const ip of ["127.0.0.1", "10.0.0.5"]) assert.equal(server.checkIP(ip), ip, ip);
    assert.equal(server.checkIP("10.0.0.6"), undefined);
    assert.equal(server.checkHost("other.example"), undefined);
    assert.deepEqual(r.hosts, ["localhost", "127.0.0.1", "::1", "gpu-box.example", "10.0.0.5"]);
    const days = (Date.parse(server.validTo) - Date.now()) / DAY_MS;
    assert.ok(days > SERVER_VALIDITY_DAYS - 2 && days <= SERVER_VALIDITY_DAYS, `${days}`);
    assert.ok(Date.parse(server.validFrom) <= Date.now());
  });
});

Deno.test("ensureCertificates() writes keys mode 0600 in a 0700 directory", async () => {
  await withDir(async (dir) => {
    const r = await ensureCertificates({ dir });
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(r.paths.caKey)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(r.paths.serverKey)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(r.paths.caCert)).mode! & 0o777, 0o644);
    assert.match(await Deno.readTextFile(r.paths.serverKey), /^-----BEGIN PRIVATE KEY-----/);
  });
});

Deno.test("ensureCertificates() is idempotent: a second run keeps both files", async () => {
  await withDir(async (dir) => {
    const first = await ensureCertificates({ dir, hosts: ["10.0.0.5"] });
    const caPem = await Deno.readTextFile(first.paths.caCert);
    const serverPem = await Deno.readTextFile(first.paths.serverCert);
    const again = await ensureCertificates({ dir, hosts: ["10.0.0.5"] });
    assert.equal(again.caCreated, false);
    assert.equal(again.serverCreated, false);
    assert.equal(again.caFingerprint, first.caFingerprint);
    assert.equal(await Deno.readTextFile(first.paths.caCert), caPem);
    assert.equal(await Deno.readTextFile(first.paths.serverCert), serverPem);
  });
});

Deno.test("ensureCertificates() keeps the CA and reissues the server certificate for a new host", async () => {
  await withDir(async (dir) => {
    const first = await ensureCertificates({ dir });
    const r = await ensureCertificates({ dir, hosts: ["192.168.7.7"] });
    assert.equal(r.caCreated, false);
    assert.equal(r.serverCreated, true);
    assert.equal(r.caFingerprint, first.caFingerprint);
    const server = new X509Certificate(await Deno.readTextFile(r.paths.serverCert));
    assert.equal(server.checkIP("192.168.7.7"), "192.168.7.7");
  });
});

Deno.test("ensureCertificates() renews a server certificate near its end, and a CA near its end", async () => {
  await withDir(async (dir) => {
    const first = await ensureCertificates({ dir });
    const later = SERVER_VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1;
    const r = await ensureCertificates({ dir, now: () => new Date(Date.now() + later * DAY_MS) });
    assert.equal(r.caCreated, false);
    assert.equal(r.serverCreated, true);
    const muchLater = await ensureCertificates({
      dir,
      now: () => new Date(Date.now() + 3650 * DAY_MS),
    });
    assert.equal(muchLater.caCreated, true);
    assert.notEqual(muchLater.caFingerprint, first.caFingerprint);
  });
});

Deno.test("ensureCertificates() replaces a CA whose key does not match, and its server certificate", async () => {
  await withDir(async (dir) => {
    const first = await ensureCertificates({ dir });
    const other = await ensureCertificates({ dir: `${dir}-other` });
    await Deno.copyFile(other.paths.caKey, first.paths.caKey);
    await Deno.remove(`${dir}-other`, { recursive: true });
    const r = await ensureCertificates({ dir });
    assert.equal(r.caCreated, true);
    assert.equal(r.serverCreated, true);
    const ca = new X509Certificate(await Deno.readTextFile(r.paths.caCert));
    const server = new X509Certificate(await Deno.readTextFile(r.paths.serverCert));
    assert.equal(server.verify(ca.publicKey), true);
  });
});

Deno.test("certHosts() validates and normalises hosts", () => {
  assert.deepEqual(certHosts(["GPU-Box.Example", "[fd00::5]", "127.0.0.1"]), [
    "localhost",
    "127.0.0.1",
    "::1",
    "gpu-box.example",
    "fd00::5",
  ]);
  for (const bad of ["a b", "http://x", "-x.example", ""]) {
    assert.throws(() => certHosts([bad]), CertError, bad);
  }
});
