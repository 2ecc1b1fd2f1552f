import assert from "node:assert/strict";
import { loadCumulusProto } from "../rpc/mod.ts";
import {
  decodeEntries,
  encodeFileRecords,
  encodeLineEntry,
  encodeRuntimeBatch,
  MAX_LINE_BYTES,
  toValidUtf8,
} from "./line_codec.ts";

const enc = new TextEncoder();

/** The real protobuf decoder of WatchJobEvent (what every client runs). */
const decodeEvent = (bytes: Uint8Array) =>
  (loadCumulusProto().Cumulus.service.WatchJob.responseDeserialize as (b: Uint8Array) => {
    lines: Array<{ seq: number; stream: string; timeMs: number; text: string }>;
  })(bytes).lines.map((l) => [l.seq, l.stream, l.timeMs, l.text]);

const texts = ["hello", "", "ünïcödé ✓ 😀", "tab\there", "x".repeat(70_000), "last"];

function batch(firstSeq: number, timeMs: number) {
  return encodeRuntimeBatch({
    data: enc.encode(texts.map((t) => t + "\n").join("")),
    streams: new Uint8Array([0, 1, 0, 1]), // shorter than the batch: the rest are stdout
    firstSeq,
    timeMs,
    tsPrefix: "rt:3:",
    firstIndex: 40,
  });
}

Deno.test("runtime batch entries decode with the real protobuf decoder, field for field", () => {
  for (const [firstSeq, timeMs] of [[1, 1_795_535_783_653], [2 ** 40, 0], [127, 2 ** 50]]) {
    const b = batch(firstSeq, timeMs);
    assert.equal(b.count, texts.length);
    const want = texts.map((
      t,
      i,
    ) => [firstSeq + i, i % 2 && i < 4 ? "STDERR" : "STDOUT", timeMs, t]);
    assert.deepEqual(decodeEvent(b.entries), want);
    // Any run of whole entries is a valid event on its own.
    assert.deepEqual(decodeEvent(b.entries.subarray(b.offsets[2], b.offsets[5])), want.slice(2, 5));
    assert.equal(b.offsets[b.count], b.entries.length);
    assert.deepEqual(
      decodeEntries(b.entries, 0, b.entries.length).map((l) => [l.seq, l.stream, l.timeMs, l.text]),
      want.map(([s, st, t, x]) => [s, st === "STDERR" ? "stderr" : "stdout", t, x]),
    );
    assert.equal(b.lastText, "last");
    assert.equal(b.lastStderr, false);
  }
});

Deno.test("runtime batch file records are the log's record format, one per line", () => {
  const b = batch(7, 1234);
  const records = new TextDecoder().decode(b.file).split("\n");
  assert.equal(records.pop(), "");
  assert.deepEqual(
    records,
    texts.map((t, i) => `${7 + i}\t${i % 2 && i < 4 ? "e" : "o"}\t1234\trt:3:${40 + i}\t${t}`),
  );
});

Deno.test("file records turn back into the same entries, from any seq and up to a size", () => {
  const b = batch(7, 1234);
  const all = encodeFileRecords(b.file, 0, b.file.length, 0, 1 << 30);
  assert.equal(all.count, texts.length);
  assert.equal(all.lastSeq, 12);
  assert.equal(all.end, b.file.length);
  assert.deepEqual(all.entries, b.entries);
  const after = encodeFileRecords(b.file, 0, b.file.length, 9, 1 << 30);
  assert.deepEqual(decodeEvent(after.entries).map((l) => l[0]), [10, 11, 12]);
  // Stops after the entry that reaches maxBytes, and says where it stopped.
  const some = encodeFileRecords(b.file, 0, b.file.length, 0, 10);
  assert.equal(some.count, 1);
  const rest = encodeFileRecords(b.file, some.end, b.file.length, some.lastSeq, 1 << 30);
  assert.equal(rest.count, texts.length - 1);
  // A record that does not parse is skipped, not fatal.
  const broken = enc.encode("garbage\n1\to\t5\trt:1:0\tok\n");
  assert.deepEqual(decodeEvent(encodeFileRecords(broken, 0, broken.length, 0, 99).entries), [[
    1,
    "STDOUT",
    5,
    "ok",
  ]]);
});

Deno.test("lines over the limit are cut on a character boundary", () => {
  const long = "é".repeat(MAX_LINE_BYTES); // 2 bytes each
  const b = encodeRuntimeBatch({
    data: enc.encode("a" + long + "\n"),
    streams: new Uint8Array(0),
    firstSeq: 1,
    timeMs: 0,
    tsPrefix: "rt:1:",
    firstIndex: 0,
  });
  const [line] = decodeEvent(b.entries);
  assert.ok(enc.encode(line[3] as string).length <= MAX_LINE_BYTES);
  assert.ok((line[3] as string).startsWith("aéé"));
  assert.ok(!(line[3] as string).includes("\ufffd"));
  const single = encodeLineEntry({ seq: 1, stream: "stdout", timeMs: 0, text: long });
  assert.ok(single.length < MAX_LINE_BYTES + 40);
});

Deno.test("invalid UTF-8 is replaced, valid data is passed through as is", () => {
  const good = enc.encode("fine ✓\n");
  assert.equal(toValidUtf8(good), good);
  const bad = new Uint8Array([0x61, 0xff, 0x0a, 0xe2, 0x82, 0x0a]);
  assert.equal(new TextDecoder().decode(toValidUtf8(bad)), "a\ufffd\n\ufffd\n");
});

Deno.test("data without a final newline is refused", () => {
  assert.throws(
    () =>
      encodeRuntimeBatch({
        data: enc.encode("a\nb"),
        streams: new Uint8Array(0),
        firstSeq: 1,
        timeMs: 0,
        tsPrefix: "rt:1:",
        firstIndex: 0,
      }),
    RangeError,
  );
});
