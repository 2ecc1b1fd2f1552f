/**
 * Fuzz of every RPC (issue 14, item 4): a real orchestrator process (`main.ts
 * orchestrator`) receives mutated, truncated, oversized and garbage messages
 * on every method of `cumulus.v1.Cumulus`, `cumulus.v1.Runtime` and
 * `grpc.health.v1.Health/Check`, plus a few raw HTTP/2 connections that
 * misbehave. After every batch the health check must answer SERVING, the
 * process must be alive, and its RSS is read from /proc.
 *
 * Two layers: "typed" messages are built as JS objects with hostile values and
 * encoded by the project's own proto definitions (src/rpc), exactly as a
 * grpc-js client would; "raw" messages are bytes (random, truncated,
 * bit-flipped, wire-type confused, deeply nested groups, lying lengths) sent
 * through grpc-js with an identity serializer. Deterministic for a seed,
 * bounded in messages and time, loopback only.
 *
 * Run: `deno run -A bench/fuzz.ts [MESSAGES]` (default 10,000), or
 * `deno task bench fuzz`. tests/fuzz_test.ts runs a short version.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import { Buffer } from "node:buffer";
import { DatabaseSync } from "node:sqlite";
import { loadCumulusProto, loadHealthProto } from "../src/rpc/mod.ts";
import { connectDocker, SwarmClient } from "../src/swarm/mod.ts";
import { TestClient } from "../tests/helpers/client.ts";
import { freePort, spawnOrchestrator } from "../tests/helpers/process.ts";
import { JOB_IMAGE, SWARM_SOCKET } from "../tests/helpers/stack.ts";

/** Options for {@link runFuzz}. */
export interface FuzzOptions {
  /** gRPC messages to send in total (raw HTTP/2 connections not included). */
  messages: number;
  /** Raw HTTP/2 connections that misbehave, spread over the batches. @default 40 */
  rawConnections?: number;
  /** Seed of the deterministic generator. @default 14 */
  seed?: number;
  /** Batches (health, liveness and RSS are checked after each). @default 20 */
  batches?: number;
  /** Calls in flight at once. @default 16 */
  concurrency?: number;
  /** Raw HTTP/2 variants to use, by name (to reproduce one). @default all of them */
  h2Variants?: readonly string[];
  /** Progress lines. @default no output */
  log?: (line: string) => void;
}

/** Something the fuzz saw that it should not have. */
export interface FuzzFinding {
  /** Method ("Cumulus/GetJob") or "process". */
  rpc: string;
  /** What was sent (generator label and a short preview). */
  input: string;
  /** What came back (status name and details), or what the process did. */
  seen: string;
  /** What a client error should have produced. */
  expected: string;
}

/** What {@link runFuzz} measured. */
export interface FuzzReport {
  /** gRPC messages sent (a streaming call may carry several). */
  messages: number;
  /** Calls made. */
  calls: number;
  /** Raw HTTP/2 connections made. */
  rawConnections: number;
  /** Batches run, each followed by a health check. */
  batches: number;
  /** Health checks that answered SERVING (one per batch when all is well). */
  healthServing: number;
  /** 1 when the orchestrator process ended during the run. */
  crashes: number;
  /** Orchestrator RSS in KiB: at start (after setup), highest seen, at the end. */
  rssStartKiB: number;
  rssMaxKiB: number;
  rssEndKiB: number;
  /** Wall time of the fuzz itself in milliseconds (setup excluded). */
  durationMs: number;
  /** Status names seen per method: counts["Cumulus/GetJob"]["NOT_FOUND"]. */
  counts: Record<string, Record<string, number>>;
  /** Outcomes of the raw HTTP/2 connections per variant. */
  h2: Record<string, Record<string, number>>;
  /** Everything that broke a rule (the fuzz's assertion is that this is empty). */
  findings: FuzzFinding[];
  /** Orchestrator log lines about unexpected or contained errors. */
  unexpectedLogLines: string[];
}

/** The `details` grpc-js itself sends when a request is not valid protobuf. */
const LIBRARY_UNPARSABLE = "Error deserializing request";

// ---------------------------------------------------------------- generator

/** mulberry32: small, fast, deterministic. */
function rngFrom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)],
    bytes: (n: number) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}
type Rng = ReturnType<typeof rngFrom>;

/** Ids, tokens and sizes the generators aim at. */
interface Targets {
  /** A running job (command `sleep`), its token. */
  runningId: string;
  runningToken: string;
  /** A queued job with a bundle and a function, its token. */
  queuedId: string;
  queuedToken: string;
}

const HOSTILE_STRINGS = [
  "",
  " ",
  "../../info",
  "x/../../containers/json",
  "%2e%2e/%2e%2e/info",
  "..%2f..%2fversion",
  "/etc/passwd",
  "a\u0000b",
  "\u0000",
  "line\nbreak",
  "\r\n\r\nHTTP/1.1 200 OK",
  "j-000000000000",
  "j-ffffffffffff",
  "j-../../../x",
  "J-ABCDEF012345",
  "$(reboot)",
  "; rm -rf /",
  "--help",
  "-rf",
  "\u202eevil",
  "\ud800",
  "😀".repeat(64),
  "cumulus-job:latest@sha256:" + "0".repeat(64),
  "UPPER/Case:Tag",
  "a".repeat(256),
  "registry.example:99999/x:y",
  "node.labels.x==y",
  "node.id!=",
  "s3://bucket/../../x",
  "QUEUED",
  "1e400GiB",
  "-1GiB",
  "NaN",
  "0x10",
];
const HOSTILE_NUMBERS = [
  0,
  -1,
  -0,
  1,
  0.5,
  NaN,
  Infinity,
  -Infinity,
  1e308,
  -1e308,
  5e-324,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 2,
  -(2 ** 63),
  2 ** 64,
  1e12,
  999,
];

function hostileString(r: Rng): string {
  // Oversized strings are rare: they are slow to send and mostly prove one thing.
  if (r.chance(0.01)) return "A".repeat(r.pick([1 << 16, 1 << 20, 3 << 20]));
  if (r.chance(0.002)) return "B".repeat(9 << 20); // over the 8 MiB receive limit
  if (r.chance(0.1)) return String.fromCharCode(...r.bytes(1 + r.int(40)));
  return r.pick(HOSTILE_STRINGS);
}

function hostileNumber(r: Rng): number {
  return r.pick(HOSTILE_NUMBERS);
}

/** Any JS value: what a confused or hostile client might put in a field. */
function hostileValue(r: Rng, kind: "string" | "number" | "bool"): unknown {
  if (r.chance(0.15)) {
    // Wrong type on purpose: proto encoding coerces it, or refuses to encode.
    return r.pick<unknown>(["12", 12, true, null, [], {}, { nested: { deeper: 1 } }, -5]);
  }
  if (kind === "string") return hostileString(r);
  if (kind === "number") return hostileNumber(r);
  return r.chance(0.5);
}

function hostileId(r: Rng, t: Targets): string {
  return r.pick([t.runningId, t.queuedId, hostileString(r), hostileString(r)]);
}

function hostileSpec(r: Rng): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    image: JOB_IMAGE,
    command: ["true"],
    gpuMemory: 0.1,
    duration: 60,
  };
  const fields: Array<[string, () => unknown]> = [
    ["image", () => hostileString(r)],
    ["command", () => Array.from({ length: r.int(4) }, () => hostileValue(r, "string"))],
    ["function", () => r.bytes(r.int(2000))],
    ["env", () => hostileEnv(r)],
    ["gpuMemory", () => hostileValue(r, "number")],
    ["duration", () => hostileValue(r, "number")],
    ["gpuCount", () => hostileValue(r, "number")],
    ["constraints", () => Array.from({ length: r.int(4) }, () => hostileString(r))],
    ["retry", () => ({
      resume: hostileValue(r, "bool"),
      maxAttempts: hostileValue(r, "number"),
      resumeOnExpiry: hostileValue(r, "bool"),
    })],
    ["checkpoint", () => ({ s3Prefix: hostileString(r) })],
    ["user", () => hostileString(r)],
    ["name", () => hostileString(r)],
    ["workdir", () => hostileString(r)],
    ["gpuMemorySize", () => hostileString(r)],
    ["resultRetention", () => hostileValue(r, "number")],
    ["unknownField", () => hostileString(r)],
  ];
  for (let i = 1 + r.int(3); i > 0; i--) {
    const [k, gen] = r.pick(fields);
    spec[k] = gen();
  }
  return spec;
}

function hostileEnv(r: Rng): Record<string, string> {
  const env: Record<string, string> = {};
  if (r.chance(0.02)) {
    // The issue's 7.5 MiB env, in 64 KiB values.
    for (let i = 0; i < 120; i++) env[`BIG_${i}`] = "x".repeat(64 * 1024);
    return env;
  }
  for (let i = r.int(4); i > 0; i--) env[hostileString(r)] = hostileString(r);
  return env;
}

/** One call to make: a method, its request messages and metadata. */
interface FuzzCase {
  service: "Cumulus" | "Runtime" | "Health";
  method: string;
  layer: "typed" | "raw";
  /** Generator label, for reports. */
  label: string;
  /** Messages as JS objects (typed) or bytes (raw). */
  messages: unknown[];
  /** Job token to send, if any. */
  token?: string;
  /** The call must not succeed (a Runtime call without the job's own token). */
  mustFail: boolean;
}

const CUMULUS_METHODS = [
  "SubmitJob",
  "GetJob",
  "ListJobs",
  "WatchJob",
  "CancelJob",
  "GetResult",
  "ListWorkers",
  "ListPartitions",
] as const;
const RUNTIME_METHODS = [
  "StreamLogs",
  "FetchBundle",
  "FetchFunction",
  "ReportCheckpoint",
  "ReportResult",
] as const;
const ALL_METHODS: Array<[FuzzCase["service"], string]> = [
  ...CUMULUS_METHODS.map((m) => ["Cumulus", m] as [FuzzCase["service"], string]),
  ...RUNTIME_METHODS.map((m) => ["Runtime", m] as [FuzzCase["service"], string]),
  ["Health", "Check"],
];

/** A token for a Runtime call and whether it is the job's own. */
function pickToken(r: Rng, t: Targets, jobId: unknown): { token?: string; own: boolean } {
  const tokens = [
    t.runningToken,
    t.queuedToken,
    "",
    "0".repeat(48),
    t.runningToken.slice(0, 47),
    t.runningToken + "0",
    hostileString(r).slice(0, 200),
  ];
  const token = r.chance(0.1) ? undefined : r.pick(tokens);
  const own = (jobId === t.runningId && token === t.runningToken) ||
    (jobId === t.queuedId && token === t.queuedToken);
  return { token, own };
}

function typedCase(r: Rng, t: Targets, service: FuzzCase["service"], method: string): FuzzCase {
  const c = (label: string, messages: unknown[], token?: string, mustFail = false): FuzzCase => ({
    service,
    method,
    layer: "typed",
    label,
    messages,
    token,
    mustFail,
  });
  const id = () => hostileId(r, t);
  switch (method) {
    case "SubmitJob": {
      const shape = r.int(6);
      if (shape === 0) return c("no messages", []);
      if (shape === 1) return c("chunk before spec", [{ chunk: r.bytes(r.int(100)) }]);
      if (shape === 2) {
        return c("spec twice", [{ spec: hostileSpec(r) }, { spec: hostileSpec(r) }]);
      }
      const msgs: unknown[] = [{ spec: hostileSpec(r) }];
      if (shape === 3) {
        for (let i = r.int(4); i > 0; i--) msgs.push({ chunk: r.bytes(r.int(64 * 1024)) });
      }
      return c("hostile spec", msgs);
    }
    case "GetJob":
    case "CancelJob":
    case "GetResult":
      return c("hostile job_id", [{ jobId: id() }]);
    case "ListJobs":
      return c("hostile filters", [{
        states: Array.from(
          { length: r.int(3) },
          () => r.pick<unknown>(["QUEUED", "RUNNING", 999, -1, "NOPE", 0, 8]),
        ),
        user: hostileString(r),
        pageSize: hostileValue(r, "number"),
        pageToken: r.pick<unknown>(["", "1", "-1", "1e9", "NaN", "0", hostileString(r)]),
      }]);
    case "WatchJob":
      return c("hostile watch", [{
        jobId: id(),
        afterSeq: hostileValue(r, "number"),
        noLogs: hostileValue(r, "bool"),
        noFollow: r.chance(0.7) ? true : hostileValue(r, "bool"),
      }]);
    case "ListWorkers":
      return c("empty or unknown fields", [r.chance(0.5) ? {} : { bogus: hostileString(r) }]);
    case "ListPartitions":
      return c("hostile node_id", [{ nodeId: hostileString(r) }]);
    case "Check":
      return c("hostile service", [{ service: hostileString(r) }]);
  }
  // Runtime methods: job id and token.
  const jobId = id();
  const { token, own } = pickToken(r, t, jobId);
  switch (method) {
    case "FetchBundle":
    case "FetchFunction":
      return c("hostile job_id/token", [{ jobId }], token, !own);
    case "ReportCheckpoint":
      return c(
        "hostile checkpoint",
        [{
          jobId,
          step: hostileValue(r, "number"),
          tier: r.pick<unknown>(["l1", "l2", "l3", "", hostileString(r)]),
          location: hostileString(r),
        }],
        token,
        !own,
      );
    case "ReportResult": {
      const header = {
        jobId,
        kind: r.pick<unknown>(["pickle", "error", "", hostileString(r)]),
        totalBytes: hostileValue(r, "number"),
      };
      const msgs: unknown[] = r.chance(0.1) ? [] : [{ header }];
      if (r.chance(0.1)) msgs.unshift({ chunk: r.bytes(10) });
      if (r.chance(0.15)) msgs.push({ header });
      for (let i = r.int(3); i > 0; i--) msgs.push({ chunk: r.bytes(r.int(4096)) });
      return c("hostile result", msgs, token, !own);
    }
    case "StreamLogs": {
      const msgs: unknown[] = [];
      for (let i = 1 + r.int(3); i > 0; i--) {
        const texts = Array.from({ length: r.int(5) }, () => hostileString(r));
        msgs.push({
          jobId: r.chance(0.8) ? jobId : id(),
          attempt: r.pick<unknown>([0, 1, 2, hostileValue(r, "number")]),
          firstIndex: r.pick<unknown>([0, 1, hostileValue(r, "number")]),
          texts: r.chance(0.5) ? texts : [],
          streams: r.bytes(r.int(8)),
          timeMs: hostileValue(r, "number"),
          data: r.chance(0.5)
            ? new TextEncoder().encode(r.chance(0.5) ? "a\nb\n" : hostileString(r))
            : new Uint8Array(0),
        });
      }
      return c("hostile log batches", msgs, token, !own);
    }
  }
  throw new Error(`method: unknown, got ${method}`);
}

/** Protobuf wire helpers for raw messages. */
function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt(Math.floor(n));
  if (v < 0n) v += 1n << 64n;
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function rawMessage(r: Rng, valid: Uint8Array): { label: string; bytes: Uint8Array } {
  switch (r.int(9)) {
    case 0:
      return { label: "random bytes", bytes: r.bytes(r.int(2000)) };
    case 1:
      return { label: "truncated", bytes: valid.subarray(0, r.int(Math.max(1, valid.length))) };
    case 2: {
      const b = valid.slice();
      for (let i = 1 + r.int(8); i > 0 && b.length; i--) b[r.int(b.length)] ^= 1 << r.int(8);
      return { label: "bit flips", bytes: b };
    }
    case 3: // field 1 as varint, fixed64, fixed32 and a group where a string or message is expected
      return {
        label: "wire type confusion",
        bytes: new Uint8Array([
          ...r.pick([[0x08, ...varint(2 ** 40)], [0x09, ...r.bytes(8)], [0x0d, 1, 2, 3, 4], [
            0x0b,
            0x0c,
          ]]),
          ...valid,
        ]),
      };
    case 4: { // deep nesting: unknown field 99 as groups inside groups
      const depth = r.pick([100, 1000, 10_000, 100_000]);
      const start = [...varint((99 << 3) | 3)];
      const end = [...varint((99 << 3) | 4)];
      const b: number[] = [];
      for (let i = 0; i < depth; i++) b.push(...start);
      if (r.chance(0.5)) { for (let i = 0; i < depth; i++) b.push(...end); }
      return { label: `nested groups x${depth}`, bytes: new Uint8Array(b) };
    }
    case 5: // a length prefix that lies (claims far more than follows)
      return {
        label: "lying length",
        bytes: new Uint8Array([0x0a, ...varint(r.pick([2 ** 31 - 1, 2 ** 32, 1e6])), 1, 2, 3]),
      };
    case 6: // unknown fields with every wire type, then the valid message
      return {
        label: "unknown fields",
        bytes: new Uint8Array([
          ...varint((1000 << 3) | 0),
          ...varint(123456789),
          ...varint((1001 << 3) | 2),
          3,
          97,
          98,
          99,
          ...varint((1002 << 3) | 5),
          1,
          2,
          3,
          4,
          ...valid,
        ]),
      };
    case 7: // invalid UTF-8 in every string field: field 1..4 as length-delimited 0xff bytes
      return {
        label: "invalid utf-8",
        bytes: new Uint8Array(
          [1, 2, 3, 4].flatMap((f) => [...varint((f << 3) | 2), 3, 0xff, 0xfe, 0xc0]),
        ),
      };
    default:
      return { label: "empty", bytes: new Uint8Array(0) };
  }
}

// ------------------------------------------------------------------ sending

interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (v: unknown) => Buffer;
}

interface Outcome {
  code: number;
  details: string;
}

const identity = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const passThrough = (b: Buffer) => b;

function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/** Makes one call with pre-encoded messages; resolves with its status. */
function callRaw(
  client: grpc.Client,
  def: MethodDef,
  messages: Uint8Array[],
  metadata: grpc.Metadata,
): Promise<Outcome> {
  const deadline = Date.now() + 10_000;
  return new Promise((resolve) => {
    const done = (err: grpc.ServiceError | null) =>
      resolve(err ? { code: err.code, details: err.details ?? "" } : { code: 0, details: "" });
    const b = messages.map(identity);
    if (!def.requestStream && !def.responseStream) {
      client.makeUnaryRequest(
        def.path,
        (x: Buffer) => x,
        passThrough,
        b[0] ?? Buffer.alloc(0),
        metadata,
        {
          deadline,
        },
        done,
      );
      return;
    }
    if (def.requestStream && !def.responseStream) {
      const call = client.makeClientStreamRequest(
        def.path,
        (x: Buffer) => x,
        passThrough,
        metadata,
        {
          deadline,
        },
        done,
      );
      for (const m of b) call.write(m);
      call.end();
      return;
    }
    // Server or bidi streams: a stream that delivers data was accepted; stop it
    // there (WatchJob would otherwise follow a running job until the deadline).
    const call = def.requestStream
      ? client.makeBidiStreamRequest(def.path, (x: Buffer) => x, passThrough, metadata, {
        deadline,
      })
      : client.makeServerStreamRequest(
        def.path,
        (x: Buffer) => x,
        passThrough,
        b[0] ?? Buffer.alloc(0),
        metadata,
        {
          deadline,
        },
      );
    let settled = false;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    let received = 0;
    call.on("data", () => {
      if (++received === 1) {
        // Accepted: give the server a moment to fail later messages, then stop.
        setTimeout(() => {
          finish({ code: 0, details: "" });
          call.cancel();
        }, def.requestStream ? 200 : 0);
      }
    });
    call.on("error", (err: grpc.ServiceError) => finish({ code: err.code, details: err.details }));
    call.on("status", (s: grpc.StatusObject) => finish({ code: s.code, details: s.details }));
    if (def.requestStream) {
      const duplex = call as grpc.ClientDuplexStream<Buffer, Buffer>;
      for (const m of b) duplex.write(m);
      duplex.end();
    }
  });
}

// --------------------------------------------------------------- raw HTTP/2

/** The ways the raw HTTP/2 connections misbehave. */
export const H2_VARIANTS = [
  "huge frame length",
  "wrong content-type",
  "unknown path",
  "compressed flag without encoding",
  "bad grpc-timeout",
  "reset mid-request",
  "goaway after request",
  "destroy with 50 streams open",
  "garbage after preface",
  "garbage instead of preface",
] as const;

/** One misbehaving HTTP/2 connection; resolves with what came back. */
async function rawH2(r: Rng, port: number, variant: (typeof H2_VARIANTS)[number]): Promise<string> {
  if (variant === "garbage after preface" || variant === "garbage instead of preface") {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      if (variant === "garbage after preface") await conn.write(preface);
      await conn.write(r.bytes(64 + r.int(4096)));
      const buf = new Uint8Array(4096);
      const read = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<null>((res) => setTimeout(() => res(null), 1000)),
      ]);
      return read === null ? "closed or silent" : "answered";
    } finally {
      try {
        conn.close();
      } catch { /* closed by the server */ }
    }
  }
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  try {
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("no answer in 3 s"), 3000);
      const finish = (s: string) => {
        clearTimeout(timer);
        resolve(s);
      };
      const headers: http2.OutgoingHttpHeaders = {
        ":method": "POST",
        ":path": "/cumulus.v1.Cumulus/GetJob",
        "content-type": "application/grpc",
        te: "trailers",
      };
      let body = new Uint8Array([0, 0, 0, 0, 2, 0x0a, 0]);
      if (variant === "huge frame length") body = new Uint8Array([0, 0x7f, 0xff, 0xff, 0xff, 1, 2]);
      if (variant === "wrong content-type") headers["content-type"] = "text/plain";
      if (variant === "unknown path") headers[":path"] = "/../../cumulus.v1.Cumulus/%2e%2e";
      if (variant === "compressed flag without encoding") body[0] = 1;
      if (variant === "bad grpc-timeout") headers["grpc-timeout"] = "-5Q";
      if (variant === "destroy with 50 streams open") {
        for (let i = 0; i < 50; i++) {
          const s = session.request({ ...headers, ":path": "/cumulus.v1.Cumulus/WatchJob" });
          s.on("error", () => {});
          s.write(new Uint8Array([0, 0, 0, 0, 0]));
        }
        setTimeout(() => {
          session.destroy();
          finish("destroyed");
        }, 100);
        return;
      }
      const req = session.request(headers);
      req.on("error", () => finish("stream error"));
      let status = "";
      req.on("response", (h) => {
        status = `http ${h[":status"]}${h["grpc-status"] ? ` grpc ${h["grpc-status"]}` : ""}`;
      });
      req.on("trailers", (t) => finish(`${status} grpc ${t["grpc-status"]}`));
      req.on("data", () => {});
      req.on("close", () => finish(status || "closed"));
      if (variant === "reset mid-request") {
        req.write(body.subarray(0, 3));
        setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 10);
        return;
      }
      req.end(body);
      if (variant === "goaway after request") session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    });
  } finally {
    session.destroy();
  }
}

// -------------------------------------------------------------------- run

function readRssKiB(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function preview(v: unknown): string {
  const s = v instanceof Uint8Array
    ? `${v.length} bytes ${
      Array.from(v.subarray(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")
    }`
    : JSON.stringify(
      v,
      (_k, x) =>
        x instanceof Uint8Array
          ? `<${x.length} bytes>`
          : typeof x === "string" && x.length > 60
          ? `${x.slice(0, 40)}...<${x.length} chars>`
          : typeof x === "number" && !Number.isFinite(x)
          ? String(x)
          : x,
    );
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
}

function queryToken(dataDir: string, id: string): string {
  const db = new DatabaseSync(`${dataDir}/jobs.db`, { readOnly: true });
  try {
    const row = db.prepare("SELECT token FROM jobs WHERE id = ?").get(id) as { token: string };
    return row.token;
  } finally {
    db.close();
  }
}

/**
 * Starts an orchestrator process with a fresh data dir, runs the fuzz against
 * it and stops it; every job the fuzz created is cancelled and its Swarm
 * service removed.
 * @param opts What to send and how much.
 * @returns The figures and findings; the caller asserts on them.
 */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const r = rngFrom(opts.seed ?? 14);
  const batches = opts.batches ?? 20;
  const concurrency = opts.concurrency ?? 16;
  const rawConnections = opts.rawConnections ?? 40;
  const log = opts.log ?? (() => {});
  const variants = H2_VARIANTS.filter((v) => !opts.h2Variants || opts.h2Variants.includes(v));
  const dataDir = await Deno.makeTempDir({ prefix: "cumulus-fuzz-" });
  const port = freePort();
  const orch = await spawnOrchestrator(dataDir, port, {
    // One running job at a time: whatever the fuzz manages to submit queues
    // behind the running target and never starts during the run.
    MAX_CONCURRENT_JOBS: "1",
    CUMULUS_MAX_QUEUED_JOBS: "200",
    CUMULUS_STOP_GRACE_PERIOD: "1",
  });
  const pid = orch.child.pid;
  let exited: Deno.CommandStatus | null = null;
  orch.status.then((s) => exited = s);
  const setup = new TestClient(orch.url);
  const { Cumulus, Runtime } = loadCumulusProto();
  const Health = loadHealthProto();
  const clientOpts = { "grpc.max_receive_message_length": -1 };
  const clients = {
    Cumulus: new grpc.Client(orch.url, grpc.credentials.createInsecure(), clientOpts),
    Runtime: new grpc.Client(orch.url, grpc.credentials.createInsecure(), clientOpts),
    Health: new grpc.Client(orch.url, grpc.credentials.createInsecure(), clientOpts),
  };
  const defs: Record<FuzzCase["service"], Record<string, MethodDef>> = {
    Cumulus: Cumulus.service as unknown as Record<string, MethodDef>,
    Runtime: Runtime.service as unknown as Record<string, MethodDef>,
    Health: Health.service as unknown as Record<string, MethodDef>,
  };
  const health = new Health(orch.url, grpc.credentials.createInsecure()) as unknown as
    & grpc.Client
    & Record<string, CallableFunction>;
  const report: FuzzReport = {
    messages: 0,
    calls: 0,
    rawConnections: 0,
    batches: 0,
    healthServing: 0,
    crashes: 0,
    rssStartKiB: 0,
    rssMaxKiB: 0,
    rssEndKiB: 0,
    durationMs: 0,
    counts: {},
    h2: {},
    findings: [],
    unexpectedLogLines: [],
  };
  const started = performance.now();
  try {
    // Targets: a running job, and a queued one (behind it) with a bundle and a function.
    const runningId = await setup.submit({
      image: JOB_IMAGE,
      command: ["sleep", "600"],
      gpuMemory: 0.1,
      duration: 900,
      name: "fuzz-target-running",
    });
    const queuedId = await setup.submit({
      image: JOB_IMAGE,
      command: ["true"],
      function: crypto.getRandomValues(new Uint8Array(65536)),
      gpuMemory: 0.1,
      duration: 900,
      name: "fuzz-target-queued",
    }, new Uint8Array(300_000));
    const targets: Targets = {
      runningId,
      runningToken: queryToken(dataDir, runningId),
      queuedId,
      queuedToken: queryToken(dataDir, queuedId),
    };
    report.rssStartKiB = readRssKiB(pid);
    report.rssMaxKiB = report.rssStartKiB;
    log(`orchestrator pid ${pid} on ${orch.url}, rss ${report.rssStartKiB} KiB`);
    const t0 = performance.now();

    const perBatch = Math.ceil(opts.messages / batches);
    const h2PerBatch = Math.ceil(rawConnections / batches);
    for (let b = 0; b < batches && report.messages < opts.messages; b++) {
      // Build the batch first (deterministic), then send it with bounded concurrency.
      const cases: FuzzCase[] = [];
      let planned = 0;
      while (planned < perBatch && report.messages + planned < opts.messages) {
        const [service, method] = r.pick(ALL_METHODS);
        const typed = typedCase(r, targets, service, method);
        const fc = r.chance(0.4) ? toRaw(r, typed, defs) : typed;
        cases.push(fc);
        planned += Math.max(1, fc.messages.length);
      }
      let next = 0;
      const worker = async () => {
        while (next < cases.length) {
          const fc = cases[next++];
          await runCase(fc);
        }
      };
      const runCase = async (fc: FuzzCase) => {
        const def = defs[fc.service][fc.method];
        let bytes: Uint8Array[];
        try {
          bytes = fc.layer === "raw"
            ? fc.messages as Uint8Array[]
            : fc.messages.map((m) => def.requestSerialize(m));
        } catch {
          // The proto refuses to encode this value: a grpc-js client could
          // never send it. Send its raw cousin instead.
          bytes = [rawMessage(r, new Uint8Array(0)).bytes];
          fc = { ...fc, layer: "raw", label: `${fc.label} (unencodable, sent raw)` };
        }
        const md = new grpc.Metadata();
        if (fc.token !== undefined) {
          try {
            md.set("x-cumulus-job-token", fc.token);
          } catch {
            md.set("x-cumulus-job-token", "not-a-header-value");
          }
        }
        const out = await callRaw(clients[fc.service], def, bytes, md);
        report.calls++;
        report.messages += Math.max(1, bytes.length);
        const rpc = `${fc.service}/${fc.method}`;
        const name = statusName(out.code);
        const row = report.counts[rpc] ??= {};
        row[name] = (row[name] ?? 0) + 1;
        const input = `${fc.layer} ${fc.label}: ${preview(fc.messages)}`;
        if (out.code === grpc.status.UNKNOWN) {
          report.findings.push({
            rpc,
            input,
            seen: `UNKNOWN: ${out.details}`,
            expected: "a specific status (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED...)",
          });
        } else if (
          out.code === grpc.status.INTERNAL &&
          !(fc.layer === "raw" && out.details.startsWith(LIBRARY_UNPARSABLE))
        ) {
          report.findings.push({
            rpc,
            input,
            seen: `INTERNAL: ${out.details}`,
            expected: "a client error status (INVALID_ARGUMENT, NOT_FOUND...)",
          });
        } else if (out.code === grpc.status.OK && fc.mustFail) {
          report.findings.push({
            rpc,
            input: `${input} token=${preview(fc.token ?? "(none)")}`,
            seen: "OK",
            expected: "UNAUTHENTICATED (not the job's own token)",
          });
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));

      for (let i = 0; i < h2PerBatch && report.rawConnections < rawConnections; i++) {
        const variant = variants[report.rawConnections % variants.length];
        const seen = await rawH2(r, port, variant).catch((e) =>
          `client error ${(e as Error).name}`
        );
        report.rawConnections++;
        const row = report.h2[variant] ??= {};
        row[seen] = (row[seen] ?? 0) + 1;
        if (exited) {
          log(
            `orchestrator ended after raw HTTP/2 connection ${report.rawConnections} (${variant})`,
          );
          break;
        }
      }

      // After the batch: alive, serving, RSS.
      report.batches++;
      if (exited) break;
      const status = await new Promise<string>((resolve) =>
        health.Check(
          { service: "" },
          { deadline: Date.now() + 5000 },
          (err: grpc.ServiceError | null, res: { status: string }) =>
            resolve(err ? `error ${statusName(err.code)}: ${err.details}` : res.status),
        )
      );
      if (status === "SERVING") report.healthServing++;
      else {
        report.findings.push({
          rpc: "Health/Check",
          input: `after batch ${b + 1}`,
          seen: status,
          expected: "SERVING",
        });
      }
      const rss = readRssKiB(pid);
      report.rssMaxKiB = Math.max(report.rssMaxKiB, rss);
      log(
        `batch ${b + 1}/${batches}: ${report.messages} messages, ${report.rawConnections} h2, ` +
          `health ${status}, rss ${rss} KiB`,
      );
    }
    report.durationMs = performance.now() - t0;
    report.rssEndKiB = readRssKiB(pid);
  } finally {
    // Give a just-ended process's status a moment to land.
    await new Promise((res) => setTimeout(res, 100));
    if (exited) {
      report.crashes = 1;
      const s = exited as Deno.CommandStatus;
      report.findings.push({
        rpc: "process",
        input: "the fuzz",
        seen: `orchestrator exited (code ${s.code}, signal ${s.signal}); stderr tail: ${
          orch.stderr().split("\n").slice(-8).join(" | ")
        }`,
        expected: "keeps serving",
      });
    }
    report.unexpectedLogLines = orch.stderr().split("\n").filter((l) =>
      /unexpected error|contained an/.test(l)
    ).slice(0, 50);
    for (const l of report.unexpectedLogLines.slice(0, 10)) {
      report.findings.push({
        rpc: l.split(":")[0].trim() || "log",
        input: "(see the call that preceded it)",
        seen: l.slice(0, 400),
        expected: "no unexpected or uncaught error in the orchestrator",
      });
    }
    // Close the fuzz's channels before the orchestrator shuts down: a client
    // session that receives the server's GOAWAY after many reset streams can
    // hit Deno's nghttp2 assertion (denoland/deno#36788) and abort this process.
    for (const c of Object.values(clients)) c.close();
    health.close();
    await cleanup(orch, setup, dataDir);
    log(`fuzz done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return report;
}

function toRaw(
  r: Rng,
  typed: FuzzCase,
  defs: Record<FuzzCase["service"], Record<string, MethodDef>>,
): FuzzCase {
  const def = defs[typed.service][typed.method];
  let valid = new Uint8Array(0);
  try {
    if (typed.messages.length) valid = new Uint8Array(def.requestSerialize(typed.messages[0]));
  } catch { /* unencodable: mutate nothing */ }
  const count = def.requestStream ? 1 + r.int(3) : 1;
  const msgs: Uint8Array[] = [];
  let label = "";
  for (let i = 0; i < count; i++) {
    const m = rawMessage(r, valid);
    msgs.push(m.bytes);
    label ||= m.label;
  }
  return { ...typed, layer: "raw", label, messages: msgs };
}

async function cleanup(
  orch: Awaited<ReturnType<typeof spawnOrchestrator>>,
  setup: TestClient,
  dataDir: string,
): Promise<void> {
  const ids: string[] = [];
  try {
    let token = "";
    do {
      const page = await setup.unary<
        { jobs: { id: string; state: string }[]; nextPageToken: string }
      >(
        "ListJobs",
        { pageSize: 1000, pageToken: token },
      );
      for (const j of page.jobs) ids.push(j.id);
      token = page.nextPageToken;
    } while (token);
    await Promise.all(ids.map((id) => setup.cancel(id).catch(() => {})));
  } catch {
    // The orchestrator is gone: the sweep below still removes the services.
  }
  setup.close();
  try {
    orch.child.kill("SIGTERM");
  } catch { /* already ended */ }
  const timer = setTimeout(() => {
    try {
      orch.child.kill("SIGKILL");
    } catch { /* ended */ }
  }, 10_000);
  await orch.status;
  clearTimeout(timer);
  await removeLeftovers(dataDir, ids);
  await Deno.remove(dataDir, { recursive: true });
}

/**
 * Removes the Swarm services and volumes an orchestrator process left: those
 * of `jobIds`, and every one labelled with the instance id in `dataDir`, so a
 * run whose orchestrator died before its jobs were listed leaks nothing.
 * @param dataDir The orchestrator's data dir (holds `instance-id`).
 * @param jobIds Jobs known to the caller.
 */
export async function removeLeftovers(dataDir: string, jobIds: Iterable<string>): Promise<void> {
  const swarm = new SwarmClient(connectDocker(SWARM_SOCKET));
  const ours = new Set(jobIds);
  let instanceId = "";
  try {
    instanceId = (await Deno.readTextFile(`${dataDir}/instance-id`)).trim();
  } catch { /* no instance id: nothing was created */ }
  // Services of this orchestrator's jobs, also when it died before listing them.
  for (const s of await swarm.listServices("cumulus.job")) {
    const mine = ours.has(s.labels["cumulus.job"]) ||
      (instanceId !== "" && s.labels["cumulus.orchestrator"] === instanceId);
    if (mine) await swarm.removeService(s.id);
  }
  for (let i = 0; instanceId && i < 20; i++) {
    let left = 0;
    for (const v of await swarm.listVolumes("cumulus.orchestrator", instanceId)) {
      if (!(await swarm.removeVolume(v.name))) left++;
    }
    if (left === 0) break;
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Status codes per method as a markdown table. */
export function formatFuzzTable(report: FuzzReport): string {
  const codes = [...new Set(Object.values(report.counts).flatMap((row) => Object.keys(row)))]
    .sort();
  const lines = [
    `| RPC | ${codes.join(" | ")} |`,
    `|---|${codes.map(() => "---:").join("|")}|`,
  ];
  for (const [service, method] of ALL_METHODS) {
    const row = report.counts[`${service}/${method}`] ?? {};
    lines.push(`| ${service}/${method} | ${codes.map((c) => row[c] ?? 0).join(" | ")} |`);
  }
  return lines.join("\n");
}

/** One-paragraph summary of a run's figures. */
export function formatFuzzSummary(report: FuzzReport): string {
  const mb = (k: number) => (k / 1024).toFixed(0);
  return `${report.messages} messages in ${report.calls} calls over 15 methods plus ` +
    `${report.rawConnections} raw HTTP/2 connections, ${report.batches} batches, ` +
    `${(report.durationMs / 1000).toFixed(1)} s: ${report.crashes} crashes, health SERVING ` +
    `after ${report.healthServing}/${report.batches} batches, orchestrator RSS ` +
    `${mb(report.rssStartKiB)} MB at start, ${mb(report.rssMaxKiB)} MB at most, ` +
    `${mb(report.rssEndKiB)} MB at the end; ${report.findings.length} findings.`;
}

/** The bench section: the full fuzz (10,000 messages, 400 raw connections). */
export async function runFuzzBench(messages = 10_000): Promise<string> {
  const report = await runFuzz({
    messages,
    rawConnections: 400,
    batches: 40,
    log: (l) => console.error(l),
  });
  const h2 = Object.entries(report.h2).map(([v, row]) =>
    `- ${v}: ${Object.entries(row).map(([s, n]) => `${s} ×${n}`).join(", ")}`
  );
  const findings = report.findings.slice(0, 20).map((f) =>
    `- ${f.rpc}: ${f.seen} (expected ${f.expected}); input ${f.input}`
  );
  return [
    "## Fuzz",
    "",
    "`deno run -A bench/fuzz.ts` (or `deno task bench fuzz`): hostile typed messages and raw",
    "bytes on every RPC of both services and the health check, against a real orchestrator",
    "process, seed 14. The test command runs 1,000 of them (tests/fuzz_test.ts).",
    "",
    formatFuzzSummary(report),
    "",
    formatFuzzTable(report),
    "",
    "Raw HTTP/2 connections:",
    "",
    ...h2,
    "",
    findings.length ? "Findings:\n\n" + findings.join("\n") : "Findings: none.",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 10_000);
  console.log(await runFuzzBench(n));
  Deno.exit(0);
}
