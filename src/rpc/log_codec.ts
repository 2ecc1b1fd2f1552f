/**
 * Hand-written encoder for the hottest message on the wire: a WatchJobEvent
 * carrying only log lines. protobufjs builds and walks an object per line;
 * this writes the bytes directly (varints, UTF-8 via encodeInto), several
 * times faster. Lengths are written as 3-byte padded varints so nothing has
 * to be moved once a line's size is known; protobuf decoders accept them.
 * @module
 */
import type { LogLine } from "../core/mod.ts";

const encoder = new TextEncoder();
/** Largest text a line may carry here (3-byte length prefixes: < 2 MiB). */
const MAX_TEXT_BYTES = (1 << 21) - 64;

function varint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

function varint3(buf: Uint8Array, pos: number, n: number): void {
  buf[pos] = (n & 0x7f) | 0x80;
  buf[pos + 1] = ((n >> 7) & 0x7f) | 0x80;
  buf[pos + 2] = (n >> 14) & 0x7f;
}

/**
 * Encodes `WatchJobEvent { lines }` (no job). Lines whose text exceeds 2 MiB
 * in UTF-8 are cut (the log relay never produces them: lines are split at
 * 64 KiB upstream).
 */
export function encodeLinesEvent(lines: readonly LogLine[]): Uint8Array {
  let size = 64;
  for (const l of lines) size += l.text.length * 3 + 40;
  let buf = new Uint8Array(size);
  let pos = 0;
  for (const l of lines) {
    const text = l.text.length * 3 > MAX_TEXT_BYTES ? l.text.slice(0, MAX_TEXT_BYTES / 3) : l.text;
    if (pos + text.length * 3 + 40 > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, pos + text.length * 3 + 40));
      bigger.set(buf.subarray(0, pos));
      buf = bigger;
    }
    buf[pos++] = 0x0a; // field 1 (lines), length-delimited
    const lineLen = pos;
    pos += 3;
    const start = pos;
    buf[pos++] = 0x08; // seq
    pos = varint(buf, pos, l.seq);
    if (l.stream === "stderr") {
      buf[pos++] = 0x10; // stream = STDERR
      buf[pos++] = 1;
    }
    buf[pos++] = 0x18; // time_ms
    pos = varint(buf, pos, Math.max(0, Math.floor(l.timeMs)));
    buf[pos++] = 0x22; // text
    const textLen = pos;
    pos += 3;
    const { written } = encoder.encodeInto(text, buf.subarray(pos));
    varint3(buf, textLen, written);
    pos += written;
    varint3(buf, lineLen, pos - start);
  }
  return buf.subarray(0, pos);
}
