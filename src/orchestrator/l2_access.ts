/**
 * A job's access to its L2 checkpoints without S3 keys of its own: the
 * orchestrator presigns single S3 requests (SigV4 query signing, 15 min)
 * for keys under the job's own prefix only, `<prefix>/<job id>/`, the
 * prefix taken from the job's record, never from the request. And each
 * job's checkpoint signing key: HMAC-SHA256 of an orchestrator secret (the
 * file `checkpoint.key` in the data dir, 0600) and the job id, so no
 * per-job state is stored and a job never learns another job's key.
 * @module
 */
import { CumulusError, type JobRecord, ResourceExhaustedError } from "../core/mod.ts";
import { presignUrl, type SigV4Credentials, uriEncode } from "./sigv4.ts";

/** How long a presigned URL stays valid, in seconds. */
export const PRESIGN_EXPIRES_S = 900;

/** Most requests one PresignCheckpoint call may ask for (the runtime asks for one at a time). */
export const MAX_PRESIGN_REQUESTS = 1000;

/** What L2 access needs of the orchestrator's S3 settings. */
export interface L2Site {
  bucket: string;
  region: string;
  /** As jobs reach it; "" = AWS (`https://s3.<region>.amazonaws.com`). */
  endpoint: string;
  /** The default prefix (config `s3_prefix`). */
  prefix: string;
  credentials: SigV4Credentials;
}

/** One S3 request a job wants signed. */
export interface L2Request {
  method: string;
  /** The full object key ("" for the bucket: a listing). */
  key: string;
  query: Record<string, string>;
  /** Extra headers to sign: `x-amz-meta-*` only. */
  headers: Record<string, string>;
}

/** A job asked for an S3 request outside what its checkpoints need (PERMISSION_DENIED). */
export class L2AccessDeniedError extends CumulusError {
  /** Creates the error. */
  constructor(message: string) {
    super("PERMISSION_DENIED", message);
    this.name = "L2AccessDeniedError";
  }
}

/** The default prefix of the job runtime when none is set (cumulus/checkpoint/config.py). */
const RUNTIME_DEFAULT_PREFIX = "cumulus";
const SEGMENT = /^[A-Za-z0-9_.-]{1,200}$/;
const META_HEADER = /^x-amz-meta-[a-z0-9-]{1,64}$/;
const OBJECT_QUERY = new Set(["partNumber", "uploadId"]);
const LIST_QUERY = new Set([
  "list-type",
  "prefix",
  "continuation-token",
  "start-after",
  "encoding-type",
  "max-keys",
]);

/** The key prefix a job owns in the bucket: `<prefix>/<job id>/`, as the runtime computes it. */
export function jobL2Base(job: JobRecord, defaultPrefix: string): string {
  const prefix = (job.spec.s3Prefix || defaultPrefix).replace(/^\/+|\/+$/g, "") ||
    RUNTIME_DEFAULT_PREFIX;
  return `${prefix}/${job.id}/`;
}

/**
 * Throws L2AccessDeniedError unless `req` is one of the requests a job's
 * checkpoints need, on a key under `base`: GET, HEAD, PUT, DELETE of an
 * object (parts of a multipart upload included), POST to start or complete
 * a multipart upload, or a ListObjectsV2 whose prefix lies under `base`.
 * Bulk deletes (`POST ?delete`) and copies are refused: their targets are in
 * the body or in headers that a presigned URL would not bind.
 */
export function checkL2Request(base: string, req: L2Request): void {
  const method = req.method.toUpperCase();
  const q = Object.keys(req.query);
  for (const name of Object.keys(req.headers)) {
    if (!META_HEADER.test(name.toLowerCase()) || req.headers[name].length > 256) {
      throw new L2AccessDeniedError(`header ${JSON.stringify(name)} may not be signed`);
    }
  }
  if (req.key === "") {
    const prefix = req.query.prefix ?? "";
    const ok = method === "GET" && req.query["list-type"] === "2" && prefix.startsWith(base) &&
      q.every((k) => LIST_QUERY.has(k)) &&
      (req.query["encoding-type"] ?? "url") === "url";
    if (!ok) {
      throw new L2AccessDeniedError(`only a listing under ${base} may be signed for the bucket`);
    }
    return;
  }
  if (!req.key.startsWith(base) || req.key.length > 1024) {
    throw new L2AccessDeniedError(
      `key ${JSON.stringify(req.key)} is outside the job's prefix ${base}`,
    );
  }
  for (const seg of req.key.slice(base.length).split("/")) {
    if (!SEGMENT.test(seg) || seg === "." || seg === "..") {
      throw new L2AccessDeniedError(
        `key ${JSON.stringify(req.key)}: bad segment ${JSON.stringify(seg)}`,
      );
    }
  }
  const plain = q.every((k) => OBJECT_QUERY.has(k));
  const ok = ((method === "GET" || method === "HEAD" || method === "PUT" || method === "DELETE") &&
    plain) ||
    (method === "POST" && ((q.length === 1 && q[0] === "uploads" && req.query.uploads === "") ||
      (q.length === 1 && q[0] === "uploadId")));
  if (!ok) {
    throw new L2AccessDeniedError(`${method} with query ${JSON.stringify(q)} may not be signed`);
  }
}

/** Checks and presigns requests of one job, and derives its checkpoint key. */
export class L2Access {
  readonly #site: L2Site;
  readonly #secret: Uint8Array<ArrayBuffer>;

  /** `secret`: the orchestrator's checkpoint secret (see {@link loadCheckpointSecret}). */
  constructor(site: L2Site, secret: Uint8Array<ArrayBuffer>) {
    this.#site = site;
    this.#secret = secret;
  }

  /** True when L2 is configured (a bucket); without it nothing is presigned. */
  get enabled(): boolean {
    return this.#site.bucket !== "";
  }

  /**
   * Presigned URLs for `reqs` of `job`, in order, valid {@link PRESIGN_EXPIRES_S} s.
   * @throws {L2AccessDeniedError} for any request outside the job's prefix (none is signed then)
   * @throws {ResourceExhaustedError} past {@link MAX_PRESIGN_REQUESTS} requests
   */
  async presign(job: JobRecord, reqs: L2Request[], now: Date): Promise<string[]> {
    const site = this.#site;
    if (!this.enabled) throw new L2AccessDeniedError("no S3 bucket is configured: L2 is off");
    if (reqs.length > MAX_PRESIGN_REQUESTS) {
      throw new ResourceExhaustedError(
        `requests: at most ${MAX_PRESIGN_REQUESTS} per call, got ${reqs.length}`,
      );
    }
    const base = jobL2Base(job, site.prefix);
    for (const r of reqs) checkL2Request(base, r);
    const origin = (site.endpoint || `https://s3.${site.region}.amazonaws.com`).replace(/\/+$/, "");
    return await Promise.all(reqs.map((r) => {
      const query = Object.entries(r.query).map(([k, v]) =>
        v === "" ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`
      );
      const path = `/${site.bucket}/${uriEncode(r.key, true)}`;
      const headers = Object.fromEntries(
        Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]),
      );
      return presignUrl({
        method: r.method.toUpperCase(),
        url: `${origin}${path}${query.length ? "?" + query.join("&") : ""}`,
        region: site.region,
        expiresS: PRESIGN_EXPIRES_S,
        now,
        headers,
      }, site.credentials);
    }));
  }

  /** The job's checkpoint signing key: HMAC-SHA256(secret, "cumulus-checkpoint-v1\0" + job id). */
  async checkpointKey(jobId: string): Promise<Uint8Array> {
    const key = await crypto.subtle.importKey(
      "raw",
      this.#secret,
      { name: "HMAC", hash: "SHA-256" },
      false,
      [
        "sign",
      ],
    );
    const label = new TextEncoder().encode(`cumulus-checkpoint-v1\0${jobId}`);
    return new Uint8Array(await crypto.subtle.sign("HMAC", key, label));
  }
}

/**
 * The orchestrator's checkpoint secret at `path` (32 random bytes, mode
 * 0600), made on first use. Losing it makes every stored checkpoint unloadable
 * (their signatures no longer verify); jobs then start from scratch.
 */
export async function loadCheckpointSecret(path: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    const data = await Deno.readFile(path);
    if (data.length >= 32) return new Uint8Array(data);
    throw new CumulusError(
      "FAILED_PRECONDITION",
      `${path}: checkpoint secret too short, got ${data.length} bytes`,
    );
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeFile(tmp, secret, { mode: 0o600, createNew: true });
  try {
    // link(2) fails if another start made one meanwhile: that one wins.
    await Deno.link(tmp, path);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    return await loadCheckpointSecret(path);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  return secret;
}
