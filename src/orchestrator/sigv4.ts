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
