/**
 * A private certificate authority and the orchestrator's server certificate, made in
 * process (ECDSA P-256 through WebCrypto, X.509 through npm `@peculiar/x509`): the
 * product stays one executable with no `openssl` at run time.
 * @module
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the
// Reflect metadata API before the library loads.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { join } from "node:path";

x509.cryptoProvider.set(crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** A CA lives ten years; `cumulus certs` keeps it while it has more than {@link RENEW_BEFORE_DAYS} left. */
export const CA_VALIDITY_DAYS = 3650;
/** A server certificate lives a year; it is reissued when fewer than {@link RENEW_BEFORE_DAYS} remain. */
export const SERVER_VALIDITY_DAYS = 365;
/** Days before expiry at which {@link ensureCertificates} replaces a certificate. */
export const RENEW_BEFORE_DAYS = 30;
/** Names every server certificate carries, so a client on the orchestrator's machine can verify it. */
export const LOOPBACK_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** A host for a certificate is not a DNS name or an IP address, or a file is unusable. */
export class CertError extends Error {
  /** Stable code for callers that branch on errors. */
  readonly code = "INVALID_CERT";
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CertError";
  }
}

/** Where {@link ensureCertificates} keeps its four files in `dir`. */
export interface CertPaths {
  /** The CA certificate (public: clients and jobs verify against it). */
  caCert: string;
  /** The CA's private key (mode 0600; needed only to issue server certificates). */
  caKey: string;
  /** The server certificate (the orchestrator's `tls_cert`). */
  serverCert: string;
  /** The server's private key (mode 0600; the orchestrator's `tls_key`). */
  serverKey: string;
}

/** The file names in `dir`. */
export function certPaths(dir: string): CertPaths {
  return {
    caCert: join(dir, "ca.pem"),
    caKey: join(dir, "ca-key.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server-key.pem"),
  };
}

/** Options of {@link ensureCertificates}. */
export interface EnsureCertsOptions {
  /** Directory of the files (created 0700 if missing). */
  dir: string;
  /** Extra names and addresses clients dial (the advertised host); loopback is always added. */
  hosts?: readonly string[];
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
}

/** What {@link ensureCertificates} found or made. */
export interface CertsReport {
  /** The four files. */
  paths: CertPaths;
  /** SHA-256 of the CA certificate (DER), as `AB:CD:…`. */
  caFingerprint: string;
  /** A new CA was made (none, expiring or unreadable before). */
  caCreated: boolean;
  /** A new server certificate was issued. */
  serverCreated: boolean;
  /** Subject alternative names of the server certificate. */
  hosts: string[];
  /** When the CA expires (ISO 8601). */
  caNotAfter: string;
  /** When the server certificate expires (ISO 8601). */
  serverNotAfter: string;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const DNS_RE =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Whether `host` is an IPv4 or IPv6 literal (brackets allowed). */
export function isIpAddress(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return IPV4_RE.test(h) || (h.includes(":") && /^[0-9A-Fa-f:.]+$/.test(h));
}

/**
 * Checks and normalises certificate hosts: DNS names lowercased, IPv6 without brackets,
 * duplicates dropped, loopback names first. Throws {@link CertError} naming a bad one.
 */
export function certHosts(hosts: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of [...LOOPBACK_NAMES, ...hosts]) {
    let h = raw.trim();
    if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
    if (!isIpAddress(h)) {
      if (!DNS_RE.test(h)) {
        throw new CertError(
          `--host: expected a DNS name or an IP address, got ${JSON.stringify(raw)}`,
        );
      }
      h = h.toLowerCase();
    }
    if (!out.includes(h)) out.push(h);
  }
  return out;
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Writes `text` by temp file and rename, so a reader never sees half a key. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, text, { mode });
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, path);
}

async function importKey(pem: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "pkcs8",
    x509.PemConverter.decodeFirst(pem),
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign"],
  );
}

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** Whether `key` is the private half of `cert`'s public key (sign, then verify). */
async function keyMatches(cert: x509.X509Certificate, key: CryptoKey): Promise<boolean> {
  const probe = new TextEncoder().encode("cumulus key probe");
  const sig = await crypto.subtle.sign(ALG, key, probe);
  const pub = await cert.publicKey.export(ALG, ["verify"]);
  return await crypto.subtle.verify(ALG, pub, sig, probe);
}

function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // a positive INTEGER
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of a certificate's DER as `AB:CD:…` (the form `openssl x509 -fingerprint` prints). */
export async function fingerprint(cert: x509.X509Certificate): Promise<string> {
  const digest = new Uint8Array(await cert.getThumbprint("SHA-256"));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

/** {@link fingerprint} of a PEM certificate (the orchestrator's CA, for join lines). */
export async function caFingerprintOf(pem: string): Promise<string> {
  return await fingerprint(new x509.X509Certificate(pem));
}

/** The DNS names and IP addresses in a certificate's subject alternative names. */
export function certificateHosts(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!ext) return [];
  return ext.names.items
    .filter((n) => n.type === "dns" || n.type === "ip")
    .map((n) => n.type === "dns" ? n.value.toLowerCase() : n.value);
}

/**
 * Whether the PEM certificate `certPem` names `host` in its subject alternative names
 * (a `*.` DNS name covers one label), as a client verifying it would require.
 */
export function certCoversHost(certPem: string, host: string): boolean {
  const names = certificateHosts(new x509.X509Certificate(certPem));
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return names.some((n) =>
    n === h || (n.startsWith("*.") && !isIpAddress(h) && h.slice(h.indexOf(".")) === n.slice(1))
  );
}

function freshUntil(cert: x509.X509Certificate, now: Date): boolean {
  return cert.notBefore.getTime() <= now.getTime() &&
    cert.notAfter.getTime() - now.getTime() > RENEW_BEFORE_DAYS * DAY_MS;
}

interface LoadedCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

/** A certificate and its key from two PEM files, or null when either is missing or unreadable. */
async function readPair(
  certPath: string,
  keyPath: string,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey } | null> {
  const [certText, keyText] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certText === null || keyText === null) return null;
  try {
    const cert = new x509.X509Certificate(certText);
    const key = await importKey(keyText);
    return await keyMatches(cert, key) ? { cert, key } : null;
  } catch {
    // Unreadable files are replaced, as missing ones are.
    return null;
  }
}

/** The CA in `paths` if it is whole, a CA, ours to sign with and not near its end; else null. */
async function loadCa(paths: CertPaths, now: Date): Promise<LoadedCa | null> {
  const pair = await readPair(paths.caCert, paths.caKey);
  if (!pair) return null;
  const basic = pair.cert.getExtension(x509.BasicConstraintsExtension);
  return basic?.ca && freshUntil(pair.cert, now) ? pair : null;
}

async function makeCa(now: Date): Promise<LoadedCa> {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Cumulus private CA ${now.toISOString().slice(0, 10)}, O=Cumulus`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

/** The server certificate in `paths` if `ca` signed it, it matches its key, covers `hosts` and is fresh. */
async function serverUsable(
  paths: CertPaths,
  ca: x509.X509Certificate,
  hosts: readonly string[],
  now: Date,
): Promise<x509.X509Certificate | null> {
  const pair = await readPair(paths.serverCert, paths.serverKey);
  if (!pair) return null;
  const names = certificateHosts(pair.cert);
  const usable = freshUntil(pair.cert, now) && hosts.every((h) => names.includes(h)) &&
    await pair.cert.verify({ publicKey: ca.publicKey, signatureOnly: true });
  return usable ? pair.cert : null;
}

async function issueServer(
  ca: LoadedCa,
  hosts: readonly string[],
  now: Date,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hosts.find((h) => !isIpAddress(h)) ?? hosts[0]}, O=Cumulus`,
    issuer: ca.cert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + SERVER_VALIDITY_DAYS * DAY_MS),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h): x509.JsonGeneralName => ({ type: isIpAddress(h) ? "ip" : "dns", value: h })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

/**
 * Makes sure `dir` holds a usable private CA and a server certificate it signed for
 * `hosts` (plus loopback): keeps what is valid (a CA with more than 30 days left and its
 * key; a server certificate from that CA covering every host, with 30 days left), makes
 * the rest. Keys are written mode 0600, certificates 0644, each file atomically.
 * Throws {@link CertError} for a bad host.
 * @example
 * const r = await ensureCertificates({ dir: "cumulus-data/tls", hosts: ["10.0.0.5"] });
 * console.log(r.paths.caCert, r.caFingerprint);
 */
export async function ensureCertificates(opts: EnsureCertsOptions): Promise<CertsReport> {
  const now = (opts.now ?? (() => new Date()))();
  const hosts = certHosts(opts.hosts ?? []);
  const paths = certPaths(opts.dir);
  await Deno.mkdir(opts.dir, { recursive: true, mode: 0o700 });
  let ca = await loadCa(paths, now);
  const caCreated = ca === null;
  if (ca === null) {
    ca = await makeCa(now);
    await writeAtomic(paths.caKey, await keyPem(ca.key), 0o600);
    await writeAtomic(paths.caCert, ca.cert.toString("pem") + "\n", 0o644);
  }
  let server = caCreated ? null : await serverUsable(paths, ca.cert, hosts, now);
  const serverCreated = server === null;
  if (server === null) {
    const issued = await issueServer(ca, hosts, now);
    await writeAtomic(paths.serverKey, await keyPem(issued.key), 0o600);
    await writeAtomic(paths.serverCert, issued.cert.toString("pem") + "\n", 0o644);
    server = issued.cert;
  }
  return {
    paths,
    caFingerprint: await fingerprint(ca.cert),
    caCreated,
    serverCreated,
    hosts: certificateHosts(server),
    caNotAfter: ca.cert.notAfter.toISOString(),
    serverNotAfter: server.notAfter.toISOString(),
  };
}

/** The directory {@link ensureCertificates} writes to for a data dir: `<data_dir>/tls`. */
export function tlsDirOf(dataDir: string): string {
  return join(dataDir, "tls");
}
