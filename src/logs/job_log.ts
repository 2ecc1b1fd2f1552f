/**
 * One job's log: an append-only file of numbered lines plus an in-memory tail
 * for live watchers. Sequence numbers are gap-free from 1 and derived from the
 * order Docker delivers frames in, so a line re-read after an orchestrator
 * crash gets the same number again and resuming clients see it exactly once.
 *
 * File format, one record per line:
 * `seq \t o|e \t timeMs \t dockerTimestamp \t text \n`.
 * @module
 */
import type { LogLine } from "../core/mod.ts";

/** A line as it comes from the worker, before it has a sequence number. */
export interface IncomingLine {
  stream: "stdout" | "stderr";
  /** Docker's RFC 3339 nano timestamp, kept to align re-read frames. */
  dockerTs: string;
  timeMs: number;
  text: string;
}

/** The last stored line, used to align a re-opened Docker log stream. */
export interface LastLine {
  seq: number;
  stream: "stdout" | "stderr";
  dockerTs: string;
  text: string;
}

const RECENT_MAX = 200_000;
const FLUSH_BYTES = 1 << 20;
const FLUSH_MS = 5;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where a stored line came from, told by its Docker-timestamp field. */
function sourceOf(dockerTs: string): "docker" | "marker" | "runtime" {
  if (dockerTs === "") return "marker";
  if (dockerTs.startsWith(RUNTIME_TS_PREFIX)) return "runtime";
  return "docker";
}

/** The Docker-timestamp field of the `index`-th line streamed by `attempt`'s runtime. */
export function runtimeTs(attempt: number, index: number): string {
  return `${RUNTIME_TS_PREFIX}${attempt}:${index}`;
}

function runtimePosition(ts: string): [number, number] {
  const [a, i] = ts.slice(RUNTIME_TS_PREFIX.length).split(":");
  return [Number(a), Number(i)];
}

/** Prefix marking lines streamed by a job's runtime rather than read from Docker. */
export const RUNTIME_TS_PREFIX = "rt:";

function parseRecord(rec: string): (LogLine & { dockerTs: string }) | null {
  const a = rec.indexOf("\t");
  const b = rec.indexOf("\t", a + 1);
  const c = rec.indexOf("\t", b + 1);
  const d = rec.indexOf("\t", c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return null;
  return {
    seq: Number(rec.slice(0, a)),
    stream: rec.slice(a + 1, b) === "e" ? "stderr" : "stdout",
    timeMs: Number(rec.slice(b + 1, c)),
    dockerTs: rec.slice(c + 1, d),
    text: rec.slice(d + 1),
  };
}

/** Append-only numbered log of one job with fan-out to waiting readers. */
export class JobLog {
  /** Path of the log file. */
  readonly path: string;
  #file: Deno.FsFile | null = null;
  #lastSeq = 0;
  #last: LastLine | null = null;
  /** Last line that came from Docker's log (the one re-found after a restart). */
  #lastDocker: LastLine | null = null;
  /** Seq of the last attempt marker (a line with no Docker timestamp), 0 if none. */
  #lastMarkerSeq = 0;
  /** Runtime-streamed lines stored for the newest attempt that streamed. */
  #runtime = { attempt: 0, count: 0 };
  #recent: LogLine[] = [];
  #recentBase = 1;
  #pending: string[] = [];
  #pendingBytes = 0;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #waiters = new Set<() => void>();
  #complete = false;
  /** Byte offset in the file where the next appended record will start. */
  #endOffset = 0;
  /**
   * Sparse index, ascending: the first seq of each flushed batch (and, after a
   * restart, of the first record of every 1 MiB chunk scanned) with its byte offset.
   */
  #indexSeqs: number[] = [];
  #indexOffsets: number[] = [];
  /** Seq of the first record waiting in #pending. */
  #pendingFirstSeq = 0;
  /** Where the record after the last file page read starts (see #noteReadEnd). */
  #readHint = { seq: 0, offset: 0 };

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens the log at `path`, creating it when missing. A torn last record (a
   * crash in the middle of a write) is cut off.
   */
  static async open(path: string): Promise<JobLog> {
    const log = new JobLog(path);
    await log.#recover();
    log.#recentBase = log.#lastSeq + 1;
    return log;
  }

  async #recover(): Promise<void> {
    let size = 0;
    try {
      size = (await Deno.stat(this.path)).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      return;
    }
    if (size === 0) return;
    const f = await Deno.open(this.path, { read: true, write: true });
    try {
      // Read backwards until a complete record is found.
      let window = 64 * 1024;
      for (;;) {
        const start = Math.max(0, size - window);
        const buf = new Uint8Array(size - start);
        await f.seek(start, Deno.SeekMode.Start);
        let off = 0;
        while (off < buf.length) {
          const n = await f.read(buf.subarray(off));
          if (n === null) break;
          off += n;
        }
        const text = new TextDecoder().decode(buf);
        const end = text.lastIndexOf("\n");
        if (end < 0 && start > 0) {
          window *= 4;
          continue;
        }
        const validBytes = start + encoder.encode(text.slice(0, end + 1)).length;
        if (validBytes !== size) await f.truncate(validBytes);
        this.#endOffset = validBytes;
        const body = text.slice(0, end);
        const prevNl = body.lastIndexOf("\n");
        if (prevNl < 0 && start > 0) {
          window *= 4;
          continue;
        }
        const rec = parseRecord(body.slice(prevNl + 1));
        if (rec) {
          this.#lastSeq = rec.seq;
          this.#last = {
            seq: rec.seq,
            stream: rec.stream,
            dockerTs: rec.dockerTs,
            text: rec.text,
          };
          this.#classify(this.#last);
          // The tail alone does not tell where Docker's lines and the
          // runtime's stand: read the whole log once (only after a restart).
          if (sourceOf(rec.dockerTs) !== "docker") await this.#scanSources();
        }
        return;
      }
    } finally {
      f.close();
    }
  }

  #classify(line: LastLine): void {
    const src = sourceOf(line.dockerTs);
    if (src === "docker") this.#lastDocker = line;
    else if (src === "marker") this.#lastMarkerSeq = line.seq;
    else {
      const [attempt, index] = runtimePosition(line.dockerTs);
      if (attempt >= this.#runtime.attempt) this.#runtime = { attempt, count: index + 1 };
    }
  }

  async #scanSources(): Promise<void> {
    this.#lastDocker = null;
    this.#lastMarkerSeq = 0;
    this.#runtime = { attempt: 0, count: 0 };
    let after = 0;
    for (;;) {
      const page = await this.#readFileRaw(after, 10_000);
      if (page.length === 0) return;
      for (const r of page) this.#classify(r);
      after = page[page.length - 1].seq;
    }
  }

  /** The last line that came from Docker's log, or null. */
  get lastDocker(): LastLine | null {
    return this.#lastDocker;
  }

  /** Seq of the last attempt marker line (0 when there is none). */
  get lastMarkerSeq(): number {
    return this.#lastMarkerSeq;
  }

  /** Runtime-streamed lines stored for `attempt` (they are numbered 0..n-1). */
  runtimeCount(attempt: number): number {
    return this.#runtime.attempt === attempt ? this.#runtime.count : 0;
  }

  /** Highest stored sequence number (0 when empty). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The last stored line, or null when the log is empty. */
  get last(): LastLine | null {
    return this.#last;
  }

  /** True once {@link markComplete} was called: no more lines will come. */
  get complete(): boolean {
    return this.#complete;
  }

  /**
   * Appends one line, numbering it, and wakes waiting readers. `runtime` is
   * the line's position in its attempt's runtime stream, when it came that way
   * (its dockerTs must then be `runtimeTs(attempt, index)`).
   */
  append(line: IncomingLine, runtime?: { attempt: number; index: number }): number {
    const seq = ++this.#lastSeq;
    const text = line.text.includes("\n") ? line.text.replaceAll("\n", " ") : line.text;
    const rec = `${seq}\t${
      line.stream === "stderr" ? "e" : "o"
    }\t${line.timeMs}\t${line.dockerTs}\t${text}\n`;
    if (this.#pending.length === 0) this.#pendingFirstSeq = seq;
    this.#pending.push(rec);
    this.#pendingBytes += rec.length;
    this.#recent.push({ seq, stream: line.stream, timeMs: line.timeMs, text });
    if (this.#recent.length > RECENT_MAX) {
      const drop = this.#recent.length - RECENT_MAX / 2;
      this.#recent.splice(0, drop);
      this.#recentBase += drop;
    }
    this.#last = { seq, stream: line.stream, dockerTs: line.dockerTs, text };
    if (runtime) {
      if (runtime.attempt >= this.#runtime.attempt) {
        this.#runtime = { attempt: runtime.attempt, count: runtime.index + 1 };
      }
    } else this.#classify(this.#last);
    if (this.#pendingBytes >= FLUSH_BYTES) this.flushSync();
    else if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => this.flushSync(), FLUSH_MS);
    }
    this.#wake();
    return seq;
  }

  /**
   * Appends lines `firstIndex..` of `attempt`'s runtime stream at once: the
   * StreamLogs fast path (one call per batch of thousands of lines instead of
   * one {@link append} each). Same records, numbering and wake-ups as
   * {@link append}. `streams[i]` is 1 for stderr, else stdout.
   */
  appendRuntimeBatch(
    attempt: number,
    firstIndex: number,
    texts: readonly string[],
    streams: Uint8Array,
    timeMs: number,
  ): void {
    if (texts.length === 0) return;
    const tail = `\t${timeMs}\t${RUNTIME_TS_PREFIX}${attempt}:`;
    if (this.#pending.length === 0) this.#pendingFirstSeq = this.#lastSeq + 1;
    let bytes = 0;
    let seq = this.#lastSeq;
    let text = "";
    let stream: "stdout" | "stderr" = "stdout";
    for (let i = 0; i < texts.length; i++) {
      text = texts[i].includes("\n") ? texts[i].replaceAll("\n", " ") : texts[i];
      stream = streams[i] === 1 ? "stderr" : "stdout";
      const rec = ++seq + (stream === "stderr" ? "\te" : "\to") + tail + (firstIndex + i) + "\t" +
        text + "\n";
      this.#pending.push(rec);
      bytes += rec.length;
      this.#recent.push({ seq, stream, timeMs, text });
    }
    this.#lastSeq = seq;
    this.#pendingBytes += bytes;
    if (this.#recent.length > RECENT_MAX) {
      const drop = this.#recent.length - RECENT_MAX / 2;
      this.#recent.splice(0, drop);
      this.#recentBase += drop;
    }
    this.#last = { seq, stream, dockerTs: runtimeTs(attempt, firstIndex + texts.length - 1), text };
    if (attempt >= this.#runtime.attempt) {
      this.#runtime = { attempt, count: firstIndex + texts.length };
    }
    if (this.#pendingBytes >= FLUSH_BYTES) this.flushSync();
    else if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => this.flushSync(), FLUSH_MS);
    }
    this.#wake();
  }

  /** Writes pending records to disk now. */
  flushSync(): void {
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    if (this.#pending.length === 0) return;
    if (!this.#file) {
      this.#file = Deno.openSync(this.path, { append: true, create: true });
    }
    const bytes = encoder.encode(this.#pending.join(""));
    this.#addIndex(this.#pendingFirstSeq, this.#endOffset);
    this.#endOffset += bytes.length;
    this.#pending = [];
    this.#pendingBytes = 0;
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
  }

  /** Declares that no more lines will be appended; readers finish. */
  markComplete(): void {
    this.flushSync();
    this.#complete = true;
    this.#file?.close();
    this.#file = null;
    this.#wake();
  }

  /** Flushes and releases the file without declaring the log complete. */
  close(): void {
    this.flushSync();
    this.#file?.close();
    this.#file = null;
    this.#wake();
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w();
  }

  /** Resolves when a line after `afterSeq` exists, the log completes, or `signal` aborts. */
  waitForMore(afterSeq: number, signal?: AbortSignal): Promise<void> {
    if (this.#lastSeq > afterSeq || this.#complete || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Up to `max` lines with seq > `afterSeq`, from memory or from the file. */
  async read(afterSeq: number, max: number): Promise<LogLine[]> {
    if (afterSeq >= this.#lastSeq) return [];
    if (afterSeq + 1 >= this.#recentBase) {
      const start = afterSeq + 1 - this.#recentBase;
      return this.#recent.slice(start, start + max);
    }
    this.flushSync();
    return await this.#readFile(afterSeq, max);
  }

  #addIndex(seq: number, offset: number): void {
    const n = this.#indexSeqs.length;
    if (n > 0 && seq <= this.#indexSeqs[n - 1]) return;
    this.#indexSeqs.push(seq);
    this.#indexOffsets.push(offset);
  }

  /** Byte offset to start scanning at for seq > afterSeq, from the sparse index. */
  #seekPoint(afterSeq: number): { seq: number; offset: number } {
    const target = afterSeq + 1;
    let lo = 0, hi = this.#indexSeqs.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#indexSeqs[mid] <= target) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const found = best < 0
      ? { seq: 1, offset: 0 }
      : { seq: this.#indexSeqs[best], offset: this.#indexOffsets[best] };
    const hint = this.#readHint;
    return hint.seq <= target && hint.seq > found.seq ? { ...hint } : found;
  }

  async #readFile(afterSeq: number, max: number): Promise<LogLine[]> {
    const raw = await this.#readFileRaw(afterSeq, max);
    return raw.map((r) => ({ seq: r.seq, stream: r.stream, timeMs: r.timeMs, text: r.text }));
  }

  async #readFileRaw(afterSeq: number, max: number): Promise<Array<LastLine & { timeMs: number }>> {
    const out: Array<LastLine & { timeMs: number }> = [];
    let f: Deno.FsFile;
    try {
      f = await Deno.open(this.path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return out;
      throw err;
    }
    try {
      const start = this.#seekPoint(afterSeq);
      await f.seek(start.offset, Deno.SeekMode.Start);
      // Byte offset of the first unread record (the start of `carry`).
      let pos = start.offset;
      let carry = new Uint8Array(0);
      const buf = new Uint8Array(1 << 20);
      for (;;) {
        const n = await f.read(buf);
        if (n === null) break;
        let data = buf.subarray(0, n);
        if (carry.length) {
          const joined = new Uint8Array(carry.length + n);
          joined.set(carry);
          joined.set(data, carry.length);
          data = joined;
        }
        // One decode per chunk, up to its last newline (a newline byte never
        // sits inside a UTF-8 sequence), instead of one per record.
        const lastNl = data.lastIndexOf(10);
        if (lastNl < 0) {
          carry = data.slice();
          continue;
        }
        const records = decoder.decode(data.subarray(0, lastNl)).split("\n");
        for (let i = 0; i < records.length; i++) {
          const rec = parseRecord(records[i]);
          if (!rec) continue;
          if (i === 0) this.#addIndex(rec.seq, pos);
          if (rec.seq > afterSeq) {
            out.push(rec);
            if (out.length >= max) {
              this.#noteReadEnd(rec.seq, records, i, data, pos);
              return out;
            }
          }
        }
        pos += lastNl + 1;
        carry = data.slice(lastNl + 1);
      }
      return out;
    } finally {
      f.close();
    }
  }

  /**
   * Remembers where the record after `seq` starts, so the next page of a
   * reader going through the file seeks straight to it. `records[i]` is
   * `seq`'s record in the chunk `data` decoded from byte offset `pos`.
   */
  #noteReadEnd(seq: number, records: string[], i: number, data: Uint8Array, pos: number): void {
    if (i + 1 >= records.length) return;
    let off = pos;
    // Byte length of the records before the next one; ASCII when the
    // chunk's string and byte lengths agree, else measured.
    let chars = 0;
    for (let k = 0; k <= i; k++) chars += records[k].length + 1;
    const ascii = records.reduce((n, r) => n + r.length + 1, 0) - 1 === data.lastIndexOf(10);
    off += ascii ? chars : encoder.encode(records.slice(0, i + 1).join("\n") + "\n").length;
    this.#readHint = { seq: seq + 1, offset: off };
  }
}
