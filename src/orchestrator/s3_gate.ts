/**
 * The S3 gate: an HTTP relay in front of an S3 server that checks no
 * signature itself (s3rver, which `cumulus up` runs, serves unsigned and
 * SigV4 requests alike). Jobs get presigned URLs that point here
 * (config `job_s3_gate`); the gate forwards a request only when its
 * signature verifies against the orchestrator's own keys
 * (sigv4.ts `verifyPresignedUrl`), so a job reaches its own prefix and
 * nothing else of the server, which itself listens on loopback where jobs
 * on their own network cannot reach it (docs/security.md).
 * @module
 */
import { type SigV4Credentials, verifyPresignedUrl } from "./sigv4.ts";

/** Largest request body relayed (a multipart part is 16 MiB, cumulus/checkpoint/l2.py): bodies
 * are streamed through, this bounds what one request may claim. */
export const GATE_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Request headers passed on to the S3 server (the rest are the gate's business or unsigned). */
const FORWARD_REQUEST =
  /^(content-type|content-md5|content-encoding|range|if-match|if-none-match|if-modified-since|if-unmodified-since|x-amz-meta-[a-z0-9-]+)$/;

/** What the gate needs. */
export interface S3GateOptions {
  /** Address to listen on (where jobs reach the orchestrator). */
  hostname: string;
  /** @default 0 (any free port) */
  port?: number;
  /** The S3 server's origin, e.g. `http://127.0.0.1:4569`. */
  upstream: string;
  /** The keys presigned URLs are signed with (the orchestrator's). */
  credentials: SigV4Credentials;
  /** Clock. */
  now?: () => number;
  /** Log of refusals (no URLs: they carry signatures). */
  log?: (msg: string) => void;
}

/** A running gate. */
export interface S3Gate {
  /** The port it listens on. */
  port: number;
  /** The origin to presign for, e.g. `http://172.17.0.1:40123`. */
  origin: string;
  /** Stops listening. */
  close(): Promise<void>;
}

function s3Error(status: number, code: string, message: string): Response {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message.replace(/[<&>]/g, "")}</Message></Error>`;
  return new Response(body, { status, headers: { "content-type": "application/xml" } });
}

/**
 * Handles one request: 403 AccessDenied unless it carries a valid presigned
 * signature, else the S3 server's answer, streamed back.
 */
export async function gateRequest(req: Request, opts: S3GateOptions): Promise<Response> {
  const url = new URL(req.url);
  const now = new Date((opts.now ?? Date.now)());
  const verdict = await verifyPresignedUrl(req.method, url, req.headers, opts.credentials, now);
  if (!verdict.ok) {
    opts.log?.(`s3 gate: refused ${req.method} ${url.pathname}: ${verdict.reason}`);
    return s3Error(403, "AccessDenied", `Cumulus S3 gate: ${verdict.reason}`);
  }
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (!(declared <= GATE_MAX_BODY_BYTES)) {
    return s3Error(413, "EntityTooLarge", `at most ${GATE_MAX_BODY_BYTES} bytes per request`);
  }
  const headers = new Headers();
  for (const [k, v] of req.headers) if (FORWARD_REQUEST.test(k)) headers.set(k, v);
  // Streamed through with its declared length (S3 wants a Content-Length, not chunks).
  const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
  if (hasBody && !req.headers.has("content-length")) {
    return s3Error(411, "MissingContentLength", "a request body needs a Content-Length");
  }
  if (hasBody) headers.set("content-length", String(declared));
  const target = `${opts.upstream.replace(/\/+$/, "")}${url.pathname}${url.search}`;
  let res: Response;
  try {
    res = await fetch(target, {
      method: req.method,
      headers,
      body: hasBody ? req.body : undefined,
      redirect: "manual",
    });
  } catch (err) {
    return s3Error(
      503,
      "ServiceUnavailable",
      `the S3 server does not answer: ${(err as Error).message}`,
    );
  }
  const out = new Headers(res.headers);
  out.delete("transfer-encoding");
  out.delete("connection");
  return new Response(req.method === "HEAD" ? null : res.body, {
    status: res.status,
    headers: out,
  });
}

/**
 * Starts the gate on `opts.hostname`.
 * @example
 * const gate = await startS3Gate({ hostname: "172.17.0.1", upstream: "http://127.0.0.1:4569",
 *   credentials });
 */
export function startS3Gate(opts: S3GateOptions): Promise<S3Gate> {
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: opts.hostname,
        port: opts.port ?? 0,
        onListen: ({ port }) => {
          const host = opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname;
          resolve({
            port,
            origin: `http://${host}:${port}`,
            close: () => server.shutdown(),
          });
        },
        onError: (err) => s3Error(500, "InternalError", (err as Error).message),
      }, (req) => gateRequest(req, opts));
    } catch (err) {
      reject(err);
    }
  });
}
