/**
 * AWS Signature Version 4 query presigning for S3 (the orchestrator signs
 * single requests for jobs, which hold no S3 keys). Only what presigned
 * S3 URLs need: the payload is `UNSIGNED-PAYLOAD`, the signed headers are
 * `host` plus any the caller names. WebCrypto only, no SDK.
 * @module
 */

/** The long-lived keys that sign (the site's, held by the orchestrator only). */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** One request to presign. */
export interface PresignRequest {
  method: string;
  /** Absolute URL without the signature's parameters; its query is signed as given. */
  url: string;
  region: string;
  /** Seconds the URL stays valid (1 … 604800). */
  expiresS: number;
  /** Signing time. */
  now: Date;
  /** Headers the client will send and that must be signed (lowercase names). */
  headers?: Record<string, string>;
  /** @default "s3" */
  service?: string;
}

const enc = new TextEncoder();

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmac(
  key: Uint8Array<ArrayBuffer> | ArrayBuffer,
  data: string,
): Promise<ArrayBuffer> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", k, enc.encode(data));
}

async function sha256Hex(data: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(data)));
}

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept; `/` kept when `keepSlash`). */
export function uriEncode(s: string, keepSlash = false): string {
  let out = "";
  for (const byte of enc.encode(s)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.~-]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * Returns `req.url` with the SigV4 query parameters (`X-Amz-Signature` last).
 * The path is used as given (already encoded once, as S3 expects: S3 does
 * not normalise or double-encode it).
 * @example
 * const url = await presignUrl({ method: "GET", url: "https://b.s3.amazonaws.com/k",
 *   region: "us-east-1", expiresS: 900, now: new Date() }, creds);
 */
export async function presignUrl(req: PresignRequest, creds: SigV4Credentials): Promise<string> {
  const service = req.service ?? "s3";
  const url = new URL(req.url);
  const stamp = amzDate(req.now);
  const day = stamp.slice(0, 8);
  const scope = `${day}/${req.region}/${service}/aws4_request`;
  const headers: Record<string, string> = { host: url.host };
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v.trim();
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(";");
  const params: [string, string][] = [...url.searchParams.entries()];
  params.push(
    ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
    ["X-Amz-Credential", `${creds.accessKeyId}/${scope}`],
    ["X-Amz-Date", stamp],
    ["X-Amz-Expires", String(req.expiresS)],
    ["X-Amz-SignedHeaders", signedHeaders],
  );
  const query = params
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [
    req.method.toUpperCase(),
    url.pathname || "/",
    query,
    names.map((n) => `${n}:${headers[n]}\n`).join(""),
    signedHeaders,
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(enc.encode(`AWS4${creds.secretAccessKey}`), day);
  for (const part of [req.region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  return `${url.origin}${url.pathname}?${query}&X-Amz-Signature=${signature}`;
}

/** The query parameters a presigned URL carries for its signature. */
const SIG_PARAMS = [
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Date",
  "X-Amz-Expires",
  "X-Amz-SignedHeaders",
  "X-Amz-Signature",
] as const;

/** What {@link verifyPresignedUrl} decided: why a request is refused, or null when it verifies. */
export type PresignVerdict = { ok: true } | { ok: false; reason: string };

function refuse(reason: string): PresignVerdict {
  return { ok: false, reason };
}

/** Constant-time comparison of two hex strings of equal length. */
function sameHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Checks a request against a URL that {@link presignUrl} made with `creds`: the
 * signature must match the method, host, path, every other query parameter and
 * the signed headers as received, the access key must be `creds`' and the URL must
 * be within its validity window (signing time up to 60 s in the future is accepted
 * for clock skew). Used by the S3 gate (s3_gate.ts) in front of an S3 server that
 * checks no signature itself.
 * @example
 * const v = await verifyPresignedUrl("GET", new URL(req.url), req.headers, creds, new Date());
 * if (!v.ok) return new Response(v.reason, { status: 403 });
 */
export async function verifyPresignedUrl(
  method: string,
  url: URL,
  headers: Headers,
  creds: SigV4Credentials,
  now: Date,
): Promise<PresignVerdict> {
  const q = url.searchParams;
  for (const p of SIG_PARAMS) {
    if (q.getAll(p).length !== 1) return refuse(`not a presigned URL: ${p} missing or repeated`);
  }
  if (q.get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") return refuse("unsupported algorithm");
  const [keyId, day, region, service, term, ...extra] = q.get("X-Amz-Credential")!.split("/");
  if (extra.length || term !== "aws4_request" || !day || !region || !service) {
    return refuse("malformed X-Amz-Credential");
  }
  if (keyId !== creds.accessKeyId) return refuse("unknown access key");
  const stamp = q.get("X-Amz-Date")!;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m || stamp.slice(0, 8) !== day) return refuse("malformed X-Amz-Date");
  const signedAt = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  const expires = Number(q.get("X-Amz-Expires"));
  if (!Number.isInteger(expires) || expires < 1 || expires > 604800) {
    return refuse("malformed X-Amz-Expires");
  }
  const age = (now.getTime() - signedAt.getTime()) / 1000;
  if (age > expires) return refuse("the presigned URL has expired");
  if (age < -60) return refuse("the presigned URL is dated in the future");
  const names = q.get("X-Amz-SignedHeaders")!.split(";");
  if (!names.includes("host")) return refuse("the host header is not signed");
  const signed: Record<string, string> = {};
  for (const n of names) {
    if (n === "host") continue;
    const v = headers.get(n);
    if (v === null) return refuse(`signed header ${n} is missing`);
    signed[n] = v;
  }
  // The same URL without its signature parameters, re-signed: equal only if nothing changed.
  const bare = new URL(url.href);
  for (const p of SIG_PARAMS) bare.searchParams.delete(p);
  const host = headers.get("host") ?? url.host;
  const again = await presignUrl({
    method: method.toUpperCase(),
    url: `${url.protocol}//${host}${url.pathname}${bare.search}`,
    region,
    service,
    expiresS: expires,
    now: signedAt,
    headers: signed,
  }, creds);
  const want = new URL(again).searchParams.get("X-Amz-Signature") ?? "";
  return sameHex(want, q.get("X-Amz-Signature")!) ? { ok: true } : refuse("signature mismatch");
}
