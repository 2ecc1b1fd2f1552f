import assert from "node:assert/strict";
import type { LogLine } from "../core/mod.ts";
import { encodeLinesEvent } from "./log_codec.ts";
import { loadCumulusProto } from "./proto.ts";

const decode = (bytes: Uint8Array) =>
  (loadCumulusProto().Cumulus.service.WatchJob.responseDeserialize as (b: Uint8Array) => {
    lines: Array<{ seq: number; stream: string; timeMs: number; text: string }>;
    job: unknown;
  })(bytes);

Deno.test("hand-encoded line events decode with the real protobuf decoder, field for field", () => {
  const lines: LogLine[] = [
    { seq: 1, stream: "stdout", timeMs: 1795535783653, text: "hello" },
    { seq: 2, stream: "stderr", timeMs: 0, text: "" },
    { seq: 2 ** 40, stream: "stdout", timeMs: 2 ** 50, text: "ünïcödé ✓ 😀" },
    { seq: 300, stream: "stderr", timeMs: 127, text: "x".repeat(70_000) },
    { seq: 301, stream: "stdout", timeMs: 128, text: "tab\there" },
  ];
  const got = decode(encodeLinesEvent(lines));
  assert.equal(got.job, null);
  assert.deepEqual(
    got.lines.map((l) => [l.seq, l.stream, l.timeMs, l.text]),
    lines.map((l) => [l.seq, l.stream === "stderr" ? "STDERR" : "STDOUT", l.timeMs, l.text]),
  );
});

Deno.test("an empty batch encodes to an empty event", () => {
  assert.equal(encodeLinesEvent([]).length, 0);
  assert.deepEqual(decode(encodeLinesEvent([])).lines, []);
});

Deno.test("many lines grow the buffer and keep their order", () => {
  const lines: LogLine[] = Array.from({ length: 5000 }, (_, i) => ({
    seq: i + 1,
    stream: i % 3 ? "stdout" : "stderr",
    timeMs: 1_700_000_000_000 + i,
    text: `line ${i} ${"é".repeat(i % 50)}`,
  }));
  const got = decode(encodeLinesEvent(lines));
  assert.equal(got.lines.length, 5000);
  assert.equal(got.lines[4999].text, lines[4999].text);
  assert.equal(got.lines[1].stream, "STDOUT");
  assert.equal(got.lines[3000].stream, "STDERR");
});
