/**
 * Human output: aligned tables, ages, durations, and the JSON shapes printed
 * with --json.
 * @module
 */
import { formatBytes, type JobRecord, type Worker } from "../sdk/mod.ts";

// C0 and C1 control characters, DEL, and the bidirectional overrides and
// isolates that can reorder what a terminal shows ("Trojan Source").
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE_FOR_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes a string from a user or a server safe to print on a terminal: every
 * control character (escape sequences included) and every bidirectional
 * override becomes a visible escape such as `\x1b` or `\u202e`, so a job
 * name cannot clear the screen, move the cursor or hide text. Job output
 * (`cumulus logs`) is the job's own and is printed as it is, as `docker logs`
 * does.
 * @example
 * escapeTerminal("a\x1b[2Jb"); // "a\\x1b[2Jb"
 */
export function escapeTerminal(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

/**
 * Renders rows under upper-case headers, columns separated by three spaces
 * and padded to their widest cell (the last column is not padded). Every
 * cell is passed through {@link escapeTerminal}.
 * @example
 * formatTable(["ID", "STATE"], [["j-1", "RUNNING"]]);
 * // "ID    STATE\nj-1   RUNNING\n"
 */
export function formatTable(headers: readonly string[], rawRows: readonly string[][]): string {
  const rows = rawRows.map((r) => r.map(escapeTerminal));
  const widths = headers.map((h, i) =>
    Math.max(textWidth(h), ...rows.map((r) => textWidth(r[i] ?? "")))
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i] - textWidth(c))))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].map((l) => l + "\n").join("");
}

function textWidth(s: string): number {
  // Code points, not UTF-16 units, so names with emoji or accents align.
  return [...s].length;
}

/**
 * A compact age: `45s`, `12m`, `5h`, `3d`.
 * @example
 * formatAge(90_000); // "1m"
 */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/**
 * A run time: `0.4s`, `12s`, `3m05s`, `2h07m`.
 * @example
 * formatDuration(185_000); // "3m05s"
 */
export function formatDuration(ms: number): string {
  const clamped = Math.max(0, ms);
  if (clamped < 10_000) return `${(clamped / 1000).toFixed(1)}s`;
  const s = Math.floor(clamped / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad2(Math.floor((s % 3600) / 60))}m`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Shortens `text` to `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join("") + "…";
}

/** Quotes argv for display (never for execution). */
export function displayCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

/** Column headers of `cumulus jobs`. */
export const JOB_HEADERS: readonly string[] = [
  "ID",
  "NAME",
  "STATE",
  "EXIT",
  "ATTEMPTS",
  "USER",
  "AGE",
  "DURATION",
  "COMMAND",
];

/** One `cumulus jobs` row. */
export function jobRow(job: JobRecord, now: number): string[] {
  const started = job.startedAtMs;
  const duration = started === null ? "-" : formatDuration((job.finishedAtMs ?? now) - started);
  const command = job.spec.command.length > 0
    ? displayCommand(job.spec.command)
    : job.functionBytes > 0
    ? "(python function)"
    : "";
  return [
    job.id,
    job.spec.name || "-",
    job.state,
    job.exitCode === null ? "-" : String(job.exitCode),
    attempts(job),
    job.spec.user || "-",
    formatAge(now - job.createdAtMs),
    duration,
    truncate(command, 40),
  ];
}

// "2/3": the attempt running (or the last one) out of the most the resume policy allows.
function attempts(job: JobRecord): string {
  const max = job.spec.retry.maxAttempts;
  return max > 1 ? `${job.attempts}/${max}` : String(job.attempts);
}

/** The `cumulus jobs` table. */
export function formatJobs(jobs: readonly JobRecord[], now: number): string {
  return formatTable(JOB_HEADERS, jobs.map((j) => jobRow(j, now)));
}

/** Column headers of `cumulus workers`. */
export const WORKER_HEADERS: readonly string[] = [
  "ID",
  "HOSTNAME",
  "STATE",
  "AVAILABILITY",
  "ROLE",
  "JOBS",
  "AGENT",
  "DEVICE ACCESS",
  "GPUS (used/free share, partitions)",
  "ADDRESS",
  "LABELS",
];

/**
 * One cell per worker: each device's memory, share used and free, partitions,
 * and the physical GPU behind it (its UUID, shortened) when there is one.
 */
export function formatGpus(w: Worker): string {
  if (w.gpus.length === 0) return "-";
  return w.gpus.map((g) =>
    `gpu${g.index} ${formatBytes(g.memoryBytes)} ${g.allocated.toFixed(2)}/${g.free.toFixed(2)} ` +
    `(${g.partitions})` + (g.uuid ? ` ${g.uuid.slice(0, 12)}` : "")
  ).join("; ");
}

/** The DEVICE ACCESS cell: how jobs reach the worker's GPUs ("none": bookkeeping only). */
function formatAccess(w: Worker): string {
  if (w.agent !== "ok") return "-";
  return w.deviceAccess === "none" ? "none (no device access)" : w.deviceAccess;
}

/** The `cumulus workers` table. */
export function formatWorkers(workers: readonly Worker[]): string {
  return formatTable(
    WORKER_HEADERS,
    workers.map((w) => [
      w.nodeId,
      w.hostname,
      w.state,
      w.availability,
      w.role,
      String(w.runningJobs),
      w.agent || "-",
      formatAccess(w),
      formatGpus(w),
      w.address || "-",
      // GPU labels repeat the GPUS column.
      Object.entries(w.labels).filter(([k]) => !k.startsWith("gpu.")).sort()
        .map(([k, v]) => `${k}=${v}`).join(",") || "-",
    ]),
  );
}

/**
 * A job record as printed by --json: the SDK's record with the pickled
 * function as base64 (as in the proto3 JSON mapping) instead of raw bytes.
 */
export function jobJson(job: JobRecord): Record<string, unknown> {
  return {
    ...job,
    spec: { ...job.spec, function: base64(job.spec.function) },
  };
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
