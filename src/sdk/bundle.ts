/**
 * Job bundles: a directory packed as a gzipped tar (paths relative, regular
 * files and directories only, modes kept), honouring .gitignore and
 * .cumulusignore files the way git does, with a size limit.
 * @module
 */
// The SDK is imported by URL, where deno.json's import map does not apply:
// dependencies must be full, pinned npm: specifiers.
// deno-lint-ignore no-import-prefix
import ignore, { type Ignore } from "npm:ignore@7.0.16";
// deno-lint-ignore no-import-prefix
import tar from "npm:tar-stream@3.2.2";
import { createGzip } from "node:zlib";
import { BundleError, BundleTooLargeError, type FileSize } from "./errors.ts";

/** Largest bundle (compressed) accepted by default: the orchestrator's default limit. */
export const DEFAULT_MAX_BUNDLE_BYTES = 100 * 1024 * 1024;

/** Ignore files read in every directory, in this order (later rules win). */
export const IGNORE_FILES: readonly string[] = [".gitignore", ".cumulusignore"];

/** One path selected for a bundle. */
export interface BundleEntry {
  /** Path relative to the bundled directory, `/`-separated, no leading `./`. */
  path: string;
  /** Regular file or directory. */
  type: "file" | "directory";
  /** Size in bytes (0 for directories). */
  size: number;
  /** Permission bits (e.g. 0o755). */
  mode: number;
  /** Modification time. */
  mtime: Date;
}

/** The outcome of walking a directory. */
export interface BundleSelection {
  /** Selected files and directories, parents before children, sorted by name. */
  entries: BundleEntry[];
  /** Paths left out because they are neither regular files nor directories (e.g. symlinks). */
  skipped: string[];
  /** Sum of the selected files' sizes. */
  rawBytes: number;
}

/** Progress of {@link packBundle}. */
export interface PackProgress {
  /** Files packed so far. */
  files: number;
  /** Files selected in total. */
  totalFiles: number;
  /** File bytes read so far. */
  bytesIn: number;
  /** File bytes selected in total. */
  totalBytesIn: number;
  /** Compressed bytes produced so far. */
  bytesOut: number;
}

/** Options of {@link packBundle}. */
export interface PackOptions {
  /** Largest compressed size in bytes (default {@link DEFAULT_MAX_BUNDLE_BYTES}). */
  maxBytes?: number;
  /** Called as bytes are read and compressed. */
  onProgress?: (progress: PackProgress) => void;
  /** Stops packing; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A packed bundle. */
export interface PackedBundle {
  /** The gzipped tar. */
  bytes: Uint8Array;
  /** Files in it. */
  files: number;
  /** Directories in it. */
  directories: number;
  /** Uncompressed size of its files. */
  rawBytes: number;
  /** Paths left out because they are neither regular files nor directories. */
  skipped: string[];
}

interface Matcher {
  /** Directory of the ignore files, relative to the root ("" for the root). */
  base: string;
  rules: Ignore;
}

/**
 * Decides whether `path` (relative to the root, `/` suffix for directories)
 * is ignored. As in git, the deepest ignore file with a matching rule
 * decides, so a nested `!pattern` re-includes what a parent excluded.
 */
function isIgnored(path: string, matchers: readonly Matcher[]): boolean {
  for (let i = matchers.length - 1; i >= 0; i--) {
    const { base, rules } = matchers[i];
    const rel = base === "" ? path : path.slice(base.length + 1);
    const verdict = rules.test(rel);
    if (verdict.unignored) return false;
    if (verdict.ignored) return true;
  }
  return false;
}

async function readIgnoreRules(dir: string): Promise<Ignore | null> {
  let rules: Ignore | null = null;
  for (const name of IGNORE_FILES) {
    let text: string;
    try {
      text = await Deno.readTextFile(`${dir}/${name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.IsADirectory) continue;
      throw new BundleError("FAILED_PRECONDITION", `cannot read ${dir}/${name}: ${message(err)}`, {
        cause: err,
      });
    }
    rules ??= ignore();
    rules.add(text);
  }
  return rules;
}

/**
 * Lists what {@link packBundle} would put in a bundle of `root`: every file
 * and directory not excluded by a .gitignore or .cumulusignore (in `root` or
 * any subdirectory; .cumulusignore rules come after .gitignore rules of the
 * same directory, so `!name` there re-includes a git-ignored file). `.git`
 * is always left out.
 */
export async function selectBundleEntries(root: string): Promise<BundleSelection> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (err) {
    throw new BundleError("INVALID_ARGUMENT", `cannot bundle ${root}: ${message(err)}`, {
      cause: err,
    });
  }
  if (!info.isDirectory) {
    throw new BundleError("INVALID_ARGUMENT", `cannot bundle ${root}: not a directory`);
  }
  const selection: BundleSelection = { entries: [], skipped: [], rawBytes: 0 };
  await walk(root, "", [], selection);
  return selection;
}

async function walk(
  root: string,
  rel: string,
  parentMatchers: readonly Matcher[],
  out: BundleSelection,
): Promise<void> {
  const dir = rel === "" ? root : `${root}/${rel}`;
  const rules = await readIgnoreRules(dir);
  const matchers = rules ? [...parentMatchers, { base: rel, rules }] : parentMatchers;
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (err) {
    throw new BundleError("FAILED_PRECONDITION", `cannot read directory ${dir}: ${message(err)}`, {
      cause: err,
    });
  }
  names.sort();
  for (const name of names) {
    if (name === ".git") continue;
    const path = rel === "" ? name : `${rel}/${name}`;
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(`${root}/${path}`);
    } catch (err) {
      // Deleted between readDir and lstat: it is simply not part of the bundle.
      if (err instanceof Deno.errors.NotFound) continue;
      throw new BundleError("FAILED_PRECONDITION", `cannot stat ${path}: ${message(err)}`, {
        cause: err,
      });
    }
    if (st.isDirectory) {
      if (isIgnored(`${path}/`, matchers)) continue;
      out.entries.push(entryOf(path, "directory", st));
      await walk(root, path, matchers, out);
    } else if (st.isFile) {
      if (isIgnored(path, matchers)) continue;
      out.entries.push(entryOf(path, "file", st));
      out.rawBytes += st.size;
    } else if (!isIgnored(path, matchers)) {
      out.skipped.push(path);
    }
  }
}

function entryOf(path: string, type: "file" | "directory", st: Deno.FileInfo): BundleEntry {
  return {
    path,
    type,
    size: type === "file" ? st.size : 0,
    mode: (st.mode ?? (type === "file" ? 0o644 : 0o755)) & 0o7777,
    mtime: st.mtime ?? new Date(0),
  };
}

/** The `count` largest files of a selection, biggest first. */
export function largestFiles(entries: readonly BundleEntry[], count = 5): FileSize[] {
  return entries
    .filter((e) => e.type === "file")
    .sort((a, b) => b.size - a.size || a.path.localeCompare(b.path))
    .slice(0, count)
    .map((e) => ({ path: e.path, bytes: e.size }));
}

/**
 * Packs `root` into a gzipped tar in memory (see {@link selectBundleEntries}
 * for what is included). Fails with {@link BundleTooLargeError} as soon as
 * the compressed output passes `maxBytes`.
 * @example
 * const bundle = await packBundle(".", {
 *   maxBytes: 50 * 1024 * 1024,
 *   onProgress: (p) => console.error(`${p.bytesIn}/${p.totalBytesIn} bytes`),
 * });
 * const job = await client.submit({ command: ["python3", "main.py"] }, { bundle: bundle.bytes });
 */
export async function packBundle(root: string, options: PackOptions = {}): Promise<PackedBundle> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  const signal = options.signal;
  signal?.throwIfAborted();
  const selection = await selectBundleEntries(root);
  const files = selection.entries.filter((e) => e.type === "file");
  const progress: PackProgress = {
    files: 0,
    totalFiles: files.length,
    bytesIn: 0,
    totalBytesIn: selection.rawBytes,
    bytesOut: 0,
  };

  const pack = tar.pack();
  const gzip = createGzip();
  const output: Uint8Array[] = [];
  let failure: unknown = null;
  let rejectFinished!: (err: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    rejectFinished = reject;
    gzip.on("end", () => resolve());
  });
  // Rejected only through fail(), whose error the producer also rethrows.
  finished.catch(() => {});
  const fail = (err: unknown) => {
    if (failure !== null) return;
    failure = err;
    pack.destroy();
    gzip.destroy();
    rejectFinished(err);
  };
  gzip.on("data", (chunk: Uint8Array) => {
    output.push(chunk);
    progress.bytesOut += chunk.length;
    if (progress.bytesOut > maxBytes) {
      fail(
        new BundleTooLargeError(
          progress.bytesOut,
          maxBytes,
          selection.rawBytes,
          largestFiles(selection.entries),
        ),
      );
    }
  });
  gzip.on("error", fail);
  pack.on("error", fail);
  pack.pipe(gzip);
  const onAbort = () => fail(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });

  const check = () => {
    if (failure !== null) throw failure;
  };
  try {
    for (const entry of selection.entries) {
      check();
      const header = { name: entry.path, mode: entry.mode, mtime: entry.mtime };
      if (entry.type === "directory") {
        pack.entry({ ...header, type: "directory" });
        continue;
      }
      await packFile(root, entry, pack, header, progress, options.onProgress, check, finished);
      progress.files++;
      options.onProgress?.({ ...progress });
    }
    check();
    pack.finalize();
    await finished;
    check();
  } catch (err) {
    fail(err);
    throw failure;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return {
    bytes: concat(output, progress.bytesOut),
    files: files.length,
    directories: selection.entries.length - files.length,
    rawBytes: selection.rawBytes,
    skipped: selection.skipped,
  };
}

async function packFile(
  root: string,
  entry: BundleEntry,
  // tar-stream's pack type: kept loose to avoid depending on its typings' shape.
  // deno-lint-ignore no-explicit-any
  pack: any,
  header: { name: string; mode: number; mtime: Date },
  progress: PackProgress,
  onProgress: PackOptions["onProgress"],
  check: () => void,
  stopped: Promise<void>,
): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(`${root}/${entry.path}`, { read: true });
  } catch (err) {
    throw new BundleError("FAILED_PRECONDITION", `cannot read ${entry.path}: ${message(err)}`, {
      cause: err,
    });
  }
  let entryDone!: (err?: unknown) => void;
  const written = new Promise<void>((resolve, reject) => {
    entryDone = (err?: unknown) => err ? reject(err) : resolve();
  });
  written.catch(() => {});
  const sink = pack.entry({ ...header, size: entry.size, type: "file" }, entryDone);
  let read = 0;
  for await (const chunk of file.readable) {
    check();
    read += chunk.length;
    if (read > entry.size) break;
    progress.bytesIn += chunk.length;
    onProgress?.({ ...progress });
    if (!sink.write(chunk)) {
      // `stopped` rejects when packing failed, so a destroyed stream that
      // will never drain does not leave us waiting.
      await Promise.race([new Promise<void>((resolve) => sink.once("drain", resolve)), stopped]);
    }
  }
  if (read !== entry.size) {
    // A tar header states the size up front, so a file that changed while
    // being read cannot be packed consistently.
    throw new BundleError(
      "ABORTED",
      `${entry.path} changed while being packed (${entry.size} bytes listed, ${read} read)`,
    );
  }
  sink.end();
  await Promise.race([written, stopped]);
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
