/**
 * The orchestrator's CA, pinned by fingerprint: a joining worker has no CA
 * file yet, only the SHA-256 fingerprint printed in the join line. It reads
 * the certificate chain the orchestrator presents (without trusting it),
 * keeps the certificate whose SHA-256 is that fingerprint, and then dials
 * the orchestrator verified against it as usual.
 * @module
 */
import { connect, type DetailedPeerCertificate } from "node:tls";
import { JoinError } from "./join_error.ts";

/** The placeholder server name for IP addresses (Deno's node:tls refuses an IP as SNI). */
const SNI_PLACEHOLDER = "cumulus-orchestrator.invalid";

/** `AB:CD:…` uppercase, as `cumulus certs` prints fingerprints. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/^sha256:/i, "").replace(/:/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new JoinError(
      "usage",
      `--ca-fingerprint: expected 32 hex bytes (AB:CD:…), got ${JSON.stringify(fp.slice(0, 100))}`,
    );
  }
  return hex.match(/../g)!.join(":");
}

function toPem(der: Uint8Array): string {
  let s = "";
  for (const b of der) s += String.fromCharCode(b);
  const b64 = btoa(s).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** The chain's certificate whose SHA-256 is `fp` (normalized), as PEM, or null. */
export function pickPinned(leaf: DetailedPeerCertificate, fp: string): string | null {
  const seen = new Set<DetailedPeerCertificate>();
  for (
    let c: DetailedPeerCertificate | undefined = leaf;
    c && !seen.has(c);
    c = c.issuerCertificate
  ) {
    seen.add(c);
    if (c.fingerprint256?.toUpperCase() === fp && c.raw) return toPem(new Uint8Array(c.raw));
  }
  return null;
}

/**
 * Fetches the CA with fingerprint `fp` from the chain `host:port` presents.
 * @throws {JoinError} "orchestrator" when it cannot be reached or presents no such CA.
 */
export async function fetchPinnedCa(host: string, port: number, fp: string): Promise<string> {
  const want = normalizeFingerprint(fp);
  const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
  const leaf = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = connect({
      host,
      port,
      servername: ip ? SNI_PLACEHOLDER : host,
      ALPNProtocols: ["h2"],
      // Only to read the chain: nothing is sent, and the CA found is checked by its hash.
      rejectUnauthorized: false,
    }, () => {
      const cert = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(cert);
    });
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error("no TLS answer within 10 s"));
    });
    socket.on("error", reject);
  }).catch((err) => {
    throw new JoinError(
      "orchestrator",
      `cannot reach the orchestrator at ${host}:${port} over TLS: ${(err as Error).message}`,
    );
  });
  const pem = pickPinned(leaf, want);
  if (!pem) {
    throw new JoinError(
      "orchestrator",
      `the orchestrator at ${host}:${port} presents no CA with fingerprint ${want} ` +
        "(check --ca-fingerprint against `cumulus certs`)",
    );
  }
  return pem;
}
