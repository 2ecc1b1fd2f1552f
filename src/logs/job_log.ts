/**
 * One job's log: an append-only file of numbered lines plus an in-memory tail
 * for live watchers. Sequence numbers are gap-free from 1 and derived from the
 * order Docker delivers frames in, so a line re-read after an orchestrator
 * crash gets the same number again and resuming clients see it exactly once.
 *
 * File format, one record per line:
 * `seq \t o|e \t timeMs \t origin \t text \n`, where the origin field is
 * Docker's timestamp for a line read from Docker, `rt:<attempt>:<index>` for
 * one the job's runtime streamed, empty for an attempt marker and `!` for a
 * notice of Cumulus's own (the log cap). Only this
 * file knows that encoding; everywhere else a line's origin is a
 * {@link LineOrigin}.
 * @module
 */
import { formatBytes, type LogLine } from "../core/mod.ts";
import { encodeFileRecords, encodeRuntimeBatch, toValidUtf8 } from "./line_codec.ts";
import { type EncodedLines, LineTail } from "./line_tail.ts";

/**
 * Where a line came from: Docker's log of the job's container (with Docker's
 * RFC 3339 nano timestamp, kept to align re-read frames), the job's runtime
 * (the `index`-th line `attempt` streamed), or Cumulus itself (the marker
 * written when an attempt starts, or a notice such as the log cap's).
 */
export type LineOrigin =
  | { kind: "docker"; ts: string }
  | { kind: "runtime"; attempt: number; index: number }
  | { kind: "marker" }
  | { kind: "notice" };

/** Options of {@link JobLog.open}. */
export interface JobLogOptions {
  /**
   * Bytes of records kept (about: a runtime batch that starts under the cap
   * is kept whole); later lines are dropped and counted, and the log says so.
   * @default Infinity
   */
  maxBytes?: number;
}

/** Text that starts the log cap's notices. */
export const LOG_CAP_NOTICE = "[cumulus] log cap of ";

/** A line as it comes from the worker, before it has a sequence number. */
export interface IncomingLine {
  stream: "stdout" | "stderr";
  origin: LineOrigin;
  timeMs: number;
  text: string;
}

/** The last stored line, used to align a re-opened Docker log stream. */
export interface LastLine {
  seq: number;
  stream: "stdout" | "stderr";
  origin: LineOrigin;
  text: string;
}

const FLUSH_BYTES = 1 << 20;
const FLUSH_MS = 5;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Prefix of the origin field of runtime-streamed lines. */
const RUNTIME_PREFIX = "rt:";
/** The origin field of a notice. */
const NOTICE_FIELD = "!";

/** The origin field of a record. */
function encodeOrigin(o: LineOrigin): string {
  switch (o.kind) {
    case "docker":
      return o.ts;
    case "runtime":
      return `${RUNTIME_PREFIX}${o.attempt}:${o.index}`;
    case "marker":
      return "";
    case "notice":
      return NOTICE_FIELD;
  }
}

/** The origin a record's field says. */
function decodeOrigin(field: string): LineOrigin {
  if (field === "") return { kind: "marker" };
  if (field === NOTICE_FIELD) return { kind: "notice" };
  if (field.startsWith(RUNTIME_PREFIX)) {
    const [a, i] = field.slice(RUNTIME_PREFIX.length).split(":");
    return { kind: "runtime", attempt: Number(a), index: Number(i) };
  }
  return { kind: "docker", ts: field };
}

function parseRecord(rec: string): (LogLine & { origin: LineOrigin }) | null {
  const a = rec.indexOf("\t");
  const b = rec.indexOf("\t", a + 1);
  const c = rec.indexOf("\t", b + 1);
  const d = rec.indexOf("\t", c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return null;
  return {
    seq: Number(rec.slice(0, a)),
    stream: rec.slice(a + 1, b) === "e" ? "stderr" : "stdout",
    timeMs: Number(rec.slice(b + 1, c)),
    origin: decodeOrigin(rec.slice(c + 1, d)),
    text: rec.slice(d + 1),
  };
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
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
  /** Newest lines, encoded for watchers; created once the last stored seq is known. */
  #tail = new LineTail(1);
  /** File records not yet written. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #waiters = new Set<() => void>();
  #complete = false;
  /** Byte offset in the file where the next appended record will start. */
  #endOffset = 0;
  /** See {@link JobLogOptions.maxBytes}. */
  #maxBytes = Infinity;
  /** Lines dropped past the cap since this log was opened. */
  #dropped = 0;
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
  static async open(path: string, opts: JobLogOptions = {}): Promise<JobLog> {
    const log = new JobLog(path);
    log.#maxBytes = opts.maxBytes ?? Infinity;
    await log.#recover();
    log.#tail = new LineTail(log.#lastSeq + 1);
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
            origin: rec.origin,
            text: rec.text,
          };
          this.#classify(this.#last);
          // The tail alone does not tell where Docker's lines and the
          // runtime's stand: read the whole log once (only after a restart).
          if (rec.origin.kind !== "docker") await this.#scanSources();
        }
        return;
      }
    } finally {
      f.close();
    }
  }

  #classify(line: LastLine): void {
    const o = line.origin;
    switch (o.kind) {
      case "docker":
        this.#lastDocker = line;
        break;
      case "marker":
        this.#lastMarkerSeq = line.seq;
        break;
      case "runtime":
        if (o.attempt >= this.#runtime.attempt) {
          this.#runtime = { attempt: o.attempt, count: o.index + 1 };
        }
        break;
      case "notice":
        break;
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

  /** Lines dropped past the byte cap since the log was opened (not persisted). */
  get dropped(): number {
    return this.#dropped;
  }

  /** True once the stored records reach the cap: lines are dropped from then on. */
  #full(): boolean {
    return this.#endOffset + this.#pendingBytes >= this.#maxBytes;
  }

  /** Counts `n` lines dropped past the cap; the first drop is announced in the log. */
  #drop(n: number): void {
    if (this.#dropped === 0) {
      this.#notice(
        `${LOG_CAP_NOTICE}${formatBytes(this.#maxBytes)} reached: later lines are dropped`,
      );
    }
    this.#dropped += n;
    this.#wake();
  }

  #notice(text: string): void {
    this.#store({ stream: "stderr", origin: { kind: "notice" }, timeMs: Date.now(), text });
  }

  /**
   * Appends one line, numbering it, and wakes waiting readers. Past the byte
   * cap a line from the job is dropped and counted instead (attempt markers
   * and notices are kept); a dropped Docker line still counts as the last
   * line Docker gave, so a re-opened Docker log is aligned after it. Returns
   * the line's seq, or the last stored seq for a dropped line.
   */
  append(line: IncomingLine): number {
    const o = line.origin;
    if (o.kind !== "marker" && o.kind !== "notice" && this.#full()) {
      if (o.kind === "docker") {
        this.#lastDocker = { seq: this.#lastSeq, stream: line.stream, origin: o, text: line.text };
      }
      this.#drop(1);
      return this.#lastSeq;
    }
    return this.#store(line);
  }

  #store(line: IncomingLine): number {
    const seq = ++this.#lastSeq;
    const text = line.text.includes("\n") ? line.text.replaceAll("\n", " ") : line.text;
    const rec = `${seq}\t${line.stream === "stderr" ? "e" : "o"}\t${line.timeMs}\t${
      encodeOrigin(line.origin)
    }\t${text}\n`;
    if (this.#pending.length === 0) this.#pendingFirstSeq = seq;
    const bytes = encoder.encode(rec);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    this.#tail.appendLine({ seq, stream: line.stream, timeMs: line.timeMs, text });
    this.#last = { seq, stream: line.stream, origin: line.origin, text };
    this.#classify(this.#last);
    this.#scheduleFlush();
    this.#wake();
    return seq;
  }

  /**
   * Appends lines `firstIndex..` of `attempt`'s runtime stream given as
   * strings (runtimes that predate LogBatch.data). Same records, numbering
   * and wake-ups as {@link appendRuntimeData}; newlines inside a text become
   * spaces. `streams[i]` is 1 for stderr, else stdout.
   */
  appendRuntimeBatch(
    attempt: number,
    firstIndex: number,
    texts: readonly string[],
    streams: Uint8Array,
    timeMs: number,
  ): void {
    if (texts.length === 0) return;
    const joined = texts.map((t) => t.includes("\n") ? t.replaceAll("\n", " ") : t).join("\n");
    this.appendRuntimeData(attempt, firstIndex, encoder.encode(joined + "\n"), streams, timeMs);
  }

  /**
   * Appends lines `firstIndex..` of `attempt`'s runtime stream at once: the
   * StreamLogs fast path. `data` holds the lines as UTF-8, each ending in
   * `\n` (invalid UTF-8 is replaced); `streams[i]` is 1 when line i is
   * stderr. The lines are numbered, queued for the file and added to the
   * watchers' tail in one pass over the bytes, with no per-line strings.
   * Returns the number of lines appended. Throws RangeError when `data` does
   * not end with a newline.
   */
  appendRuntimeData(
    attempt: number,
    firstIndex: number,
    data: Uint8Array,
    streams: Uint8Array,
    timeMs: number,
  ): number {
    if (data.length === 0) return 0;
    if (this.#full()) {
      let count = 0;
      for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) count++;
      // Counted as received, so a resent batch is not taken for new lines.
      if (attempt >= this.#runtime.attempt) {
        this.#runtime = { attempt, count: firstIndex + count };
      }
      this.#drop(count);
      return count;
    }
    const firstSeq = this.#lastSeq + 1;
    const encode = (d: Uint8Array, s: Uint8Array) =>
      encodeRuntimeBatch({
        data: d,
        streams: s,
        firstSeq,
        timeMs,
        tsPrefix: `${RUNTIME_PREFIX}${attempt}:`,
        firstIndex,
      });
    const valid = toValidUtf8(data);
    let enc = encode(valid, streams);
    if (enc.count === 0) return 0;
    let dropped = 0;
    // A batch that crosses the cap keeps the lines that fit and drops the rest, so the cap
    // holds to one line however large a batch the runtime sent (thousands of lines at once).
    const room = this.#maxBytes - this.#endOffset - this.#pendingBytes;
    if (enc.file.length > room) {
      let keep = 0;
      for (let p = enc.file.indexOf(10); p >= 0 && p < room; p = enc.file.indexOf(10, p + 1)) {
        keep++;
      }
      const total = enc.count;
      if (keep === 0) {
        if (attempt >= this.#runtime.attempt) {
          this.#runtime = { attempt, count: firstIndex + total };
        }
        this.#drop(total);
        return total;
      }
      let cut = -1;
      for (let i = 0; i < keep; i++) cut = valid.indexOf(10, cut + 1);
      enc = encode(valid.subarray(0, cut + 1), streams.subarray(0, keep));
      // The dropped rest still counts as received, as a batch past the cap does.
      dropped = total - enc.count;
    }
    if (this.#pending.length === 0) this.#pendingFirstSeq = firstSeq;
    this.#pending.push(enc.file);
    this.#pendingBytes += enc.file.length;
    this.#tail.appendEncoded(firstSeq, enc.count, enc.entries, enc.offsets);
    const seq = firstSeq + enc.count - 1;
    this.#lastSeq = seq;
    this.#last = {
      seq,
      stream: enc.lastStderr ? "stderr" : "stdout",
      origin: { kind: "runtime", attempt, index: firstIndex + enc.count - 1 },
      text: enc.lastText,
    };
    if (attempt >= this.#runtime.attempt) {
      this.#runtime = { attempt, count: firstIndex + enc.count + dropped };
    }
    this.#scheduleFlush();
    if (dropped > 0) this.#drop(dropped);
    this.#wake();
    return enc.count + dropped;
  }

  /** Writes the pending records now when they are many, else within FLUSH_MS. */
  #scheduleFlush(): void {
    if (this.#pendingBytes >= FLUSH_BYTES) this.flushSync();
    else if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => this.flushSync(), FLUSH_MS);
    }
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
    const bytes = this.#pending.length === 1
      ? this.#pending[0]
      : concat(this.#pending, this.#pendingBytes);
    this.#addIndex(this.#pendingFirstSeq, this.#endOffset);
    this.#endOffset += bytes.length;
    this.#pending = [];
    this.#pendingBytes = 0;
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
  }

  /**
   * Declares that no more lines will be appended; readers finish. A log that
   * dropped lines ends with a notice saying how many.
   */
  markComplete(): void {
    if (this.#dropped > 0 && !this.#complete) {
      this.#notice(
        `${LOG_CAP_NOTICE}${formatBytes(this.#maxBytes)} reached: ${this.#dropped} lines dropped`,
      );
    }
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
    const held = this.#tail.readLines(afterSeq, max);
    if (held) return held;
    this.flushSync();
    return await this.#readFile(afterSeq, max);
  }

  /**
   * Lines with seq > `afterSeq` as ready-to-send `WatchJobEvent` bytes (about
   * `maxBytes` at most, at least one line), when they are still in memory;
   * null when there is nothing newer or they must be read with {@link read}.
   */
  readEncoded(afterSeq: number, maxBytes: number): EncodedLines | null {
    if (afterSeq >= this.#lastSeq) return null;
    return this.#tail.readEncoded(afterSeq, maxBytes);
  }

  /**
   * Like {@link readEncoded} for lines no longer held in memory: reads the
   * file from the sparse index and turns its records into entries without
   * making strings. Null when there is nothing after `afterSeq`.
   */
  async readEncodedFromFile(afterSeq: number, maxBytes: number): Promise<EncodedLines | null> {
    if (afterSeq >= this.#lastSeq) return null;
    this.flushSync();
    for await (const { data, pos } of this.#recordChunks(afterSeq)) {
      const got = encodeFileRecords(data, 0, data.length, afterSeq, maxBytes);
      if (got.count > 0) {
        this.#readHint = { seq: got.lastSeq + 1, offset: pos + got.end };
        return { bytes: got.entries, lastSeq: got.lastSeq };
      }
    }
    return null;
  }

  /**
   * The file from the seek point for `afterSeq` on, in chunks of whole
   * records: `data` ends with a newline and starts at file offset `pos`. A
   * chunk is only valid until the next one is asked for (the buffer is reused).
   */
  async *#recordChunks(afterSeq: number): AsyncGenerator<{ data: Uint8Array; pos: number }> {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(this.path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
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
        if (n === null) return;
        let data = buf.subarray(0, n);
        if (carry.length) {
          const joined = new Uint8Array(carry.length + n);
          joined.set(carry);
          joined.set(data, carry.length);
          data = joined;
        }
        const lastNl = data.lastIndexOf(10);
        if (lastNl < 0) {
          carry = data.slice();
          continue;
        }
        yield { data: data.subarray(0, lastNl + 1), pos };
        pos += lastNl + 1;
        carry = data.slice(lastNl + 1);
      }
    } finally {
      f.close();
    }
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
    for await (const { data, pos } of this.#recordChunks(afterSeq)) {
      // One decode per chunk (a newline byte never sits inside a UTF-8
      // sequence), instead of one per record.
      const records = decoder.decode(data.subarray(0, data.length - 1)).split("\n");
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
    }
    return out;
  }

  /**
   * Remembers where the record after `seq` starts, so the next page of a
   * reader going through the file seeks straight to it. `records[i]` is
   * `seq`'s record in the chunk `data` (whole records) read at byte offset `pos`.
   */
  #noteReadEnd(seq: number, records: string[], i: number, data: Uint8Array, pos: number): void {
    if (i + 1 >= records.length) return;
    let off = pos;
    // Byte length of the records before the next one; ASCII when the
    // chunk's string and byte lengths agree, else measured.
    let chars = 0;
    for (let k = 0; k <= i; k++) chars += records[k].length + 1;
    const ascii = records.reduce((n, r) => n + r.length + 1, 0) === data.length;
    off += ascii ? chars : encoder.encode(records.slice(0, i + 1).join("\n") + "\n").length;
    this.#readHint = { seq: seq + 1, offset: off };
  }
}
