/**
 * Byte-level encoding of log lines for the relay's hot path. A runtime batch
 * arrives as UTF-8 bytes (lines ending in `\n`); one pass turns it into both
 * the log file's records and ready-to-send `WatchJobEvent.lines` entries, so
 * no line ever becomes a JavaScript string on its way from a job to its
 * watchers. Entries are plain protobuf: any run of whole entries is itself a
 * valid `WatchJobEvent` (field 1 repeated), which is what lets one encoding
 * serve every watcher.
 *
 * Entry layout (cumulus.v1.LogLine inside WatchJobEvent field 1):
 * `0x0a len | 0x08 seq | [0x10 1 if stderr] | 0x18 time_ms | 0x22 len text`.
 * @module
 */
import type { LogLine } from "../core/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/** Longest line kept whole (bytes); longer ones are cut at a character boundary. */
export const MAX_LINE_BYTES = 1 << 20;

/** Bytes a varint of the non-negative integer `n` takes. */
export function varintLength(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** Writes `n` (a non-negative integer up to 2^53) as a varint at `pos`; returns the next position. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  if (n < 0x80000000) {
    // Bit operations are exact below 2^31.
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
    return pos;
  }
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/** Writes the decimal digits of `n` (ASCII) at the start of `digits`; returns their count. */
function setDecimal(digits: Uint8Array, n: number): number {
  const t = String(n);
  for (let i = 0; i < t.length; i++) digits[i] = t.charCodeAt(i);
  return t.length;
}

/** Adds one to the `len` decimal digits in `digits`; returns the new count. */
function incrementDecimal(digits: Uint8Array, len: number): number {
  let i = len - 1;
  while (i >= 0 && digits[i] === 57) digits[i--] = 48;
  if (i >= 0) {
    digits[i]++;
    return len;
  }
  digits.copyWithin(1, 0, len);
  digits[0] = 49;
  return len + 1;
}

/** Size of a line's LogLine message (the entry without its tag and length). */
function innerSize(seq: number, stderr: boolean, timeLen: number, textBytes: number): number {
  return 1 + varintLength(seq) + (stderr ? 2 : 0) + 1 + timeLen + 1 +
    varintLength(textBytes) + textBytes;
}

/** Writes one entry's header (everything before the text) at `pos`; returns the text's position. */
function writeEntryHeader(
  buf: Uint8Array,
  pos: number,
  seq: number,
  stderr: boolean,
  time: Uint8Array,
  textBytes: number,
): number {
  const inner = innerSize(seq, stderr, time.length, textBytes);
  buf[pos++] = 0x0a;
  pos = writeVarint(buf, pos, inner);
  buf[pos++] = 0x08;
  pos = writeVarint(buf, pos, seq);
  if (stderr) {
    buf[pos++] = 0x10;
    buf[pos++] = 1;
  }
  buf[pos++] = 0x18;
  // A byte loop: faster than set() for the few bytes of a varint.
  for (let k = 0; k < time.length; k++) buf[pos++] = time[k];
  buf[pos++] = 0x22;
  return writeVarint(buf, pos, textBytes);
}

function timeVarint(timeMs: number): Uint8Array {
  const t = Math.max(0, Math.floor(timeMs));
  const out = new Uint8Array(varintLength(t));
  writeVarint(out, 0, t);
  return out;
}

/** Length of `text` cut to at most `max` bytes without splitting a UTF-8 sequence. */
function cutLength(data: Uint8Array, start: number, end: number, max: number): number {
  if (end - start <= max) return end - start;
  let n = max;
  while (n > 0 && (data[start + n] & 0xc0) === 0x80) n--;
  return n;
}

/**
 * `data` when it is valid UTF-8, else a copy with each invalid sequence
 * replaced by U+FFFD (newlines stay where they were). Watchers decode text
 * fields strictly, so nothing invalid may reach them.
 */
export function toValidUtf8(data: Uint8Array): Uint8Array {
  try {
    fatalDecoder.decode(data);
    return data;
  } catch {
    return encoder.encode(decoder.decode(data));
  }
}

/** A runtime batch encoded for the file and for watchers. */
export interface EncodedBatch {
  /** Log-file records, one per line (see job_log.ts for the format). */
  file: Uint8Array;
  /** `WatchJobEvent.lines` entries, one per line, back to back. */
  entries: Uint8Array;
  /** `offsets[i]` is where line i's entry starts in `entries`; `offsets[count]` is its end. */
  offsets: Uint32Array;
  /** Lines in the batch. */
  count: number;
  /** The last line's text and stream (for the log's `last`). */
  lastText: string;
  lastStderr: boolean;
}

/** Newline positions of the batch being encoded (reused: encoding never interleaves). */
let newlines = new Uint32Array(8192);

/** Input of {@link encodeRuntimeBatch}. */
export interface RuntimeBatchInput {
  /** Valid UTF-8, every line ending in `\n` (see {@link toValidUtf8}). */
  data: Uint8Array;
  /** One byte per line, 1 = stderr; missing bytes mean stdout. */
  streams: Uint8Array;
  firstSeq: number;
  timeMs: number;
  /** Docker-timestamp field prefix of the batch's lines, e.g. `rt:2:`; the line's index follows. */
  tsPrefix: string;
  /** Index of the batch's first line in its runtime stream. */
  firstIndex: number;
}

/**
 * Encodes a runtime batch in one pass. Throws RangeError when `data` does
 * not end with a newline.
 */
export function encodeRuntimeBatch(input: RuntimeBatchInput): EncodedBatch {
  const { data, streams, firstSeq, timeMs, firstIndex } = input;
  if (data.length > 0 && data[data.length - 1] !== 10) {
    throw new RangeError("log data must end with a newline");
  }
  // One scan for the newlines; the loop below reuses their positions.
  let count = 0;
  let nl = newlines;
  for (let p = data.indexOf(10); p >= 0; p = data.indexOf(10, p + 1)) {
    if (count === nl.length) {
      const bigger = new Uint32Array(nl.length * 2);
      bigger.set(nl);
      nl = newlines = bigger;
    }
    nl[count++] = p;
  }
  const time = timeVarint(timeMs);
  const timeText = encoder.encode(`\t${timeMs}\t${input.tsPrefix}`);
  // Upper bounds: per line at most 10+1+2+1+10+1+3 header bytes and
  // 16+2+timeText+16+1 record bytes around the text.
  const file = new Uint8Array(data.length + count * (37 + timeText.length));
  const entries = new Uint8Array(data.length + count * (29 + time.length));
  const offsets = new Uint32Array(count + 1);
  // seq and index go up by one per line: their decimal digits are counted up
  // in place rather than formatted each time.
  const seqDigits = new Uint8Array(24);
  let seqLen = setDecimal(seqDigits, firstSeq);
  const indexDigits = new Uint8Array(24);
  let indexLen = setDecimal(indexDigits, firstIndex);
  const timeTextLen = timeText.length;
  let fp = 0, ep = 0, start = 0, lastStderr = false, lastStart = 0, lastLen = 0;
  for (let i = 0; i < count; i++) {
    const end = nl[i];
    const len = cutLength(data, start, end, MAX_LINE_BYTES);
    const seq = firstSeq + i;
    const stderr = streams[i] === 1;
    const text = data.subarray(start, start + len);
    offsets[i] = ep;
    ep = writeEntryHeader(entries, ep, seq, stderr, time, len);
    entries.set(text, ep);
    ep += len;
    // Record: seq \t o|e \t time \t rt:A:index \t text \n.
    for (let k = 0; k < seqLen; k++) file[fp++] = seqDigits[k];
    file[fp++] = 9;
    file[fp++] = stderr ? 101 : 111; // "e" | "o"
    for (let k = 0; k < timeTextLen; k++) file[fp++] = timeText[k];
    for (let k = 0; k < indexLen; k++) file[fp++] = indexDigits[k];
    file[fp++] = 9;
    file.set(text, fp);
    fp += len;
    file[fp++] = 10;
    seqLen = incrementDecimal(seqDigits, seqLen);
    indexLen = incrementDecimal(indexDigits, indexLen);
    lastStderr = stderr;
    lastStart = start;
    lastLen = len;
    start = end + 1;
  }
  offsets[count] = ep;
  return {
    file: file.subarray(0, fp),
    entries: entries.subarray(0, ep),
    offsets,
    count,
    lastText: count ? decoder.decode(data.subarray(lastStart, lastStart + lastLen)) : "",
    lastStderr,
  };
}

/** The single entry of one line (the per-line path: Docker lines and markers). */
export function encodeLineEntry(line: LogLine): Uint8Array {
  let text = encoder.encode(line.text);
  if (text.length > MAX_LINE_BYTES) {
    text = text.subarray(0, cutLength(text, 0, text.length, MAX_LINE_BYTES));
  }
  const time = timeVarint(line.timeMs);
  const stderr = line.stream === "stderr";
  const inner = innerSize(line.seq, stderr, time.length, text.length);
  const out = new Uint8Array(1 + varintLength(inner) + inner);
  const p = writeEntryHeader(out, 0, line.seq, stderr, time, text.length);
  out.set(text, p);
  return out;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let n = 0, mul = 1;
  for (;;) {
    const b = buf[pos++];
    n += (b & 0x7f) * mul;
    if (b < 0x80) return [n, pos];
    mul *= 0x80;
  }
}

/**
 * Decodes entries written by this module between byte offsets `from` and
 * `to` of `buf` back into lines.
 */
export function decodeEntries(buf: Uint8Array, from: number, to: number): LogLine[] {
  const out: LogLine[] = [];
  let pos = from;
  while (pos < to) {
    let len: number;
    [len, pos] = readVarint(buf, pos + 1); // skip the 0x0a tag
    const end = pos + len;
    const line: LogLine = { seq: 0, stream: "stdout", timeMs: 0, text: "" };
    while (pos < end) {
      const tag = buf[pos++];
      let v: number;
      if (tag === 0x22) {
        [v, pos] = readVarint(buf, pos);
        line.text = decoder.decode(buf.subarray(pos, pos + v));
        pos += v;
        continue;
      }
      [v, pos] = readVarint(buf, pos);
      if (tag === 0x08) line.seq = v;
      else if (tag === 0x10) line.stream = v === 1 ? "stderr" : "stdout";
      else if (tag === 0x18) line.timeMs = v;
    }
    out.push(line);
  }
  return out;
}

function parseDigits(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return to > from ? n : -1;
}

/** Entries made from log-file records by {@link encodeFileRecords}. */
export interface FileEntries {
  /** `WatchJobEvent.lines` entries, back to back. */
  entries: Uint8Array;
  /** Lines encoded. */
  count: number;
  /** Seq of the last line encoded (0 when none). */
  lastSeq: number;
  /** Byte offset in `buf` just after the last record looked at. */
  end: number;
}

/**
 * Turns the log-file records (see job_log.ts) in `buf[from, to)` (whole
 * records, `to` just after a newline) into entries, skipping seqs up to
 * `afterSeq` and stopping once `maxBytes` of entries are made. Records that
 * do not parse are skipped. The replay path of watchers that fell behind the
 * in-memory tail: bytes to bytes, no per-line strings.
 */
export function encodeFileRecords(
  buf: Uint8Array,
  from: number,
  to: number,
  afterSeq: number,
  maxBytes: number,
): FileEntries {
  let lines = 0;
  for (let p = buf.indexOf(10, from); p >= 0 && p < to; p = buf.indexOf(10, p + 1)) lines++;
  // An entry is at most its record's text plus 30 bytes of header.
  const out = new Uint8Array(to - from + lines * 30);
  let op = 0, count = 0, lastSeq = 0, pos = from;
  const time = new Uint8Array(10);
  while (pos < to && op < maxBytes) {
    const start = pos;
    const nl = buf.indexOf(10, start);
    pos = nl + 1;
    const a = buf.indexOf(9, start);
    const b = a < 0 || a > nl ? -1 : buf.indexOf(9, a + 1);
    const c = b < 0 || b > nl ? -1 : buf.indexOf(9, b + 1);
    const d = c < 0 || c > nl ? -1 : buf.indexOf(9, c + 1);
    if (d < 0 || d > nl) continue;
    const seq = parseDigits(buf, start, a);
    if (seq <= afterSeq) continue;
    const tl = writeVarint(time, 0, Math.max(0, parseDigits(buf, b + 1, c)));
    const len = cutLength(buf, d + 1, nl, MAX_LINE_BYTES);
    op = writeEntryHeader(out, op, seq, buf[a + 1] === 101, time.subarray(0, tl), len);
    out.set(buf.subarray(d + 1, d + 1 + len), op);
    op += len;
    count++;
    lastSeq = seq;
  }
  return { entries: out.subarray(0, op), count, lastSeq, end: pos };
}
