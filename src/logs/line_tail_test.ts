import assert from "node:assert/strict";
import type { LogLine } from "../core/mod.ts";
import { decodeEntries, encodeRuntimeBatch } from "./line_codec.ts";
import { LineTail } from "./line_tail.ts";

const enc = new TextEncoder();
const line = (seq: number): LogLine => ({
  seq,
  stream: seq % 3 ? "stdout" : "stderr",
  timeMs: 1000 + seq,
  text: `line ${seq}`,
});

/** Adds lines `from..to-1` as one encoded runtime batch. */
function addBatch(tail: LineTail, from: number, to: number): void {
  const b = encodeRuntimeBatch({
    data: enc.encode(Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join("")),
    streams: new Uint8Array(Array.from({ length: to - from }, (_, i) => ((from + i) % 3 ? 0 : 1))),
    firstSeq: from,
    timeMs: 0,
    tsPrefix: "rt:1:",
    firstIndex: 0,
  });
  tail.appendEncoded(from, b.count, b.entries, b.offsets);
}

const seqs = (bytes: Uint8Array) => decodeEntries(bytes, 0, bytes.length).map((l) => l.seq);

Deno.test("encoded reads start at any seq, across single lines and batches, in order", () => {
  const tail = new LineTail(1);
  for (let s = 1; s <= 10; s++) tail.appendLine(line(s));
  addBatch(tail, 11, 50);
  for (let s = 50; s <= 55; s++) tail.appendLine(line(s));
  const got: number[] = [];
  let after = 0;
  for (;;) {
    const r = tail.readEncoded(after, 1 << 20);
    if (!r) break;
    const s = seqs(r.bytes);
    assert.equal(s[s.length - 1], r.lastSeq);
    got.push(...s);
    after = r.lastSeq;
  }
  assert.deepEqual(got, Array.from({ length: 55 }, (_, i) => i + 1));
  assert.deepEqual(seqs(tail.readEncoded(29, 1 << 20)!.bytes).slice(0, 2), [30, 31]);
  assert.equal(tail.readEncoded(55, 1 << 20), null);
  assert.deepEqual(tail.readLines(8, 4)!.map((l) => [l.seq, l.text, l.stream]), [
    [9, "line 9", "stderr"],
    [10, "line 10", "stdout"],
    [11, "line 11", "stdout"],
    [12, "line 12", "stderr"],
  ]);
});

Deno.test("a read stops near maxBytes on a line boundary, and always returns a line", () => {
  const tail = new LineTail(1);
  addBatch(tail, 1, 1001);
  const r = tail.readEncoded(0, 200);
  assert.ok(r!.bytes.length <= 200);
  assert.ok(r!.lastSeq > 1 && r!.lastSeq < 30);
  assert.equal(seqs(r!.bytes).length, r!.lastSeq);
  assert.equal(tail.readEncoded(0, 1)!.lastSeq, 1);
});

Deno.test("slices already handed out stay intact while lines keep coming", () => {
  const tail = new LineTail(1);
  tail.appendLine(line(1));
  const early = tail.readEncoded(0, 1 << 20)!;
  const copy = early.bytes.slice();
  for (let s = 2; s <= 3000; s++) tail.appendLine(line(s)); // grows and closes segments
  assert.deepEqual(early.bytes, copy);
  assert.deepEqual(seqs(tail.readEncoded(2999, 1 << 20)!.bytes), [3000]);
});

Deno.test("the tail is bounded by bytes: old lines leave, the newest batch stays", () => {
  const tail = new LineTail(1, 10_000);
  for (let s = 1; s < 2000; s += 100) addBatch(tail, s, s + 100);
  assert.ok(tail.bytes <= 10_000, `holds ${tail.bytes} bytes`);
  assert.ok(tail.base > 1);
  assert.equal(tail.readEncoded(0, 1 << 20), null);
  assert.equal(tail.readLines(0, 10), null);
  assert.deepEqual(seqs(tail.readEncoded(tail.base - 1, 1 << 20)!.bytes)[0], tail.base);
  // A batch larger than the bound is still held (it is the newest).
  addBatch(tail, 2001, 4001);
  assert.equal(tail.base, 2001);
});

Deno.test("lines must come in seq order", () => {
  const tail = new LineTail(5);
  assert.throws(() => tail.appendLine(line(7)), RangeError);
  tail.appendLine(line(5));
  assert.throws(() => addBatch(tail, 5, 9), RangeError);
});
