/**
 * The recent part of a job's log kept in memory as encoded `WatchJobEvent`
 * entries (see line_codec.ts): live watchers are sent slices of it as they
 * are, encoded once however many watch. Bounded by bytes; the oldest
 * segments go first and are then read from the file.
 * @module
 */
import type { LogLine } from "../core/mod.ts";
import { decodeEntries, encodeLineEntry } from "./line_codec.ts";

/** Bytes of entries kept before the oldest segments are dropped. */
export const TAIL_MAX_BYTES = 48 << 20;
/** A segment built line by line is closed at this size. */
const OPEN_SEGMENT_MAX = 256 << 10;

interface Segment {
  firstSeq: number;
  count: number;
  buf: Uint8Array;
  /** Bytes used in buf. */
  len: number;
  /** offs[i]: start of line i's entry; offs[count] is `len`. */
  offs: Uint32Array;
  /** Still taking lines from {@link LineTail.appendLine}. */
  open: boolean;
}

/** Encoded lines from one read of the tail. */
export interface EncodedLines {
  /** Whole entries: a valid `WatchJobEvent` with only `lines`. */
  bytes: Uint8Array;
  /** Seq of the last line in `bytes`. */
  lastSeq: number;
}

/** In-memory window of a log's newest lines, encoded once for every watcher. */
export class LineTail {
  #segs: Segment[] = [];
  #bytes = 0;
  #maxBytes: number;
  /** Seq of the next line to be added. */
  #next: number;

  /** An empty tail whose first line will be `nextSeq`. */
  constructor(nextSeq: number, maxBytes = TAIL_MAX_BYTES) {
    this.#next = nextSeq;
    this.#maxBytes = maxBytes;
  }

  /** Lowest seq still held (equals the next seq when nothing is held). */
  get base(): number {
    return this.#segs.length ? this.#segs[0].firstSeq : this.#next;
  }

  /** Bytes of entries held. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Adds a batch already encoded by encodeRuntimeBatch: `count` lines from
   * `firstSeq` (which must be the next seq), entries with their offsets.
   */
  appendEncoded(firstSeq: number, count: number, entries: Uint8Array, offsets: Uint32Array): void {
    if (count === 0) return;
    this.#expect(firstSeq);
    this.#close();
    this.#segs.push({
      firstSeq,
      count,
      buf: entries,
      len: entries.length,
      offs: offsets,
      open: false,
    });
    this.#grow(firstSeq + count, entries.length);
  }

  /** Adds one line (its seq must be the next seq). */
  appendLine(line: LogLine): void {
    this.#expect(line.seq);
    const entry = encodeLineEntry(line);
    let seg = this.#segs[this.#segs.length - 1];
    if (!seg?.open || seg.len + entry.length > OPEN_SEGMENT_MAX) {
      this.#close();
      seg = {
        firstSeq: line.seq,
        count: 0,
        buf: new Uint8Array(Math.max(4096, entry.length)),
        len: 0,
        offs: new Uint32Array(64),
        open: true,
      };
      this.#segs.push(seg);
    }
    if (seg.len + entry.length > seg.buf.length) {
      // A new buffer, never writing into the old one: readers may hold slices of it.
      const bigger = new Uint8Array(Math.max(seg.buf.length * 2, seg.len + entry.length));
      bigger.set(seg.buf.subarray(0, seg.len));
      seg.buf = bigger;
    }
    if (seg.count + 2 > seg.offs.length) {
      const offs = new Uint32Array(seg.offs.length * 2);
      offs.set(seg.offs);
      seg.offs = offs;
    }
    seg.buf.set(entry, seg.len);
    seg.offs[seg.count] = seg.len;
    seg.len += entry.length;
    seg.count++;
    seg.offs[seg.count] = seg.len;
    this.#grow(line.seq + 1, entry.length);
  }

  /**
   * Whole entries from seq `afterSeq + 1` on, up to about `maxBytes` (at
   * least one line) and never across a segment; null when that seq is not
   * held (too old, or not written yet).
   */
  readEncoded(afterSeq: number, maxBytes: number): EncodedLines | null {
    const found = this.#find(afterSeq + 1);
    if (!found) return null;
    const [seg, k] = found;
    const start = seg.offs[k];
    let j = seg.count; // exclusive end line
    if (seg.offs[j] - start > maxBytes) {
      // Largest j > k with offs[j] - start <= maxBytes (at least k + 1).
      let lo = k + 1, hi = seg.count;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (seg.offs[mid] - start <= maxBytes) lo = mid;
        else hi = mid - 1;
      }
      j = lo;
    }
    return { bytes: seg.buf.subarray(start, seg.offs[j]), lastSeq: seg.firstSeq + j - 1 };
  }

  /** Up to `max` decoded lines from seq `afterSeq + 1` on, or null when that seq is not held. */
  readLines(afterSeq: number, max: number): LogLine[] | null {
    if (!this.#find(afterSeq + 1)) return null;
    const out: LogLine[] = [];
    let after = afterSeq;
    while (out.length < max) {
      const found = this.#find(after + 1);
      if (!found) break;
      const [seg, k] = found;
      const j = Math.min(seg.count, k + max - out.length);
      out.push(...decodeEntries(seg.buf, seg.offs[k], seg.offs[j]));
      after = seg.firstSeq + j - 1;
    }
    return out;
  }

  #find(seq: number): [Segment, number] | null {
    const segs = this.#segs;
    if (segs.length === 0 || seq < segs[0].firstSeq || seq >= this.#next) return null;
    let lo = 0, hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid].firstSeq <= seq) lo = mid;
      else hi = mid - 1;
    }
    const seg = segs[lo];
    return [seg, seq - seg.firstSeq];
  }

  #expect(seq: number): void {
    if (seq !== this.#next) {
      throw new RangeError(`log tail expected seq ${this.#next}, got ${seq}`);
    }
  }

  #close(): void {
    const last = this.#segs[this.#segs.length - 1];
    if (last) last.open = false;
  }

  #grow(next: number, added: number): void {
    this.#next = next;
    this.#bytes += added;
    if (this.#bytes <= this.#maxBytes) return;
    // Drop to three quarters, never the newest segment.
    let drop = 0;
    while (drop < this.#segs.length - 1 && this.#bytes > (this.#maxBytes * 3) / 4) {
      this.#bytes -= this.#segs[drop].len;
      drop++;
    }
    this.#segs.splice(0, drop);
  }
}
