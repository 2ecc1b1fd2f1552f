import assert from "node:assert/strict";
import type { LogLine } from "../core/mod.ts";
import { decodeEntries } from "./line_codec.ts";
import { JobLog } from "./mod.ts";

function line(i: number, stream: "stdout" | "stderr" = "stdout") {
  return {
    stream,
    origin: { kind: "docker" as const, ts: `2026-01-01T00:00:00.${i}Z` },
    timeMs: i,
    text: `line ${i}\twith tab`,
  };
}

Deno.test("lines get gap-free sequence numbers and read back in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await JobLog.open(`${dir}/a.log`);
    for (let i = 1; i <= 10; i++) assert.equal(log.append(line(i, i % 2 ? "stdout" : "stderr")), i);
    const got = await log.read(3, 4);
    assert.deepEqual(got.map((l) => l.seq), [4, 5, 6, 7]);
    assert.equal(got[0].text, "line 4\twith tab");
    assert.equal(got[0].stream, "stderr");
    log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reopened log continues numbering and serves old lines from disk", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await JobLog.open(`${dir}/a.log`);
    for (let i = 1; i <= 5; i++) a.append(line(i));
    a.close();
    const b = await JobLog.open(`${dir}/a.log`);
    assert.equal(b.lastSeq, 5);
    assert.deepEqual(b.last?.origin, { kind: "docker", ts: "2026-01-01T00:00:00.5Z" });
    assert.equal(b.append(line(6)), 6);
    assert.deepEqual((await b.read(0, 100)).map((l) => l.seq), [1, 2, 3, 4, 5, 6]);
    b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a torn last record from a crash is cut off on open", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await JobLog.open(`${dir}/a.log`);
    for (let i = 1; i <= 3; i++) a.append(line(i));
    a.close();
    await Deno.writeTextFile(`${dir}/a.log`, "4\to\t4\tts\tpartial", { append: true });
    const b = await JobLog.open(`${dir}/a.log`);
    assert.equal(b.lastSeq, 3);
    assert.equal(b.append(line(4)), 4);
    assert.deepEqual((await b.read(0, 10)).map((l) => l.text), [
      "line 1\twith tab",
      "line 2\twith tab",
      "line 3\twith tab",
      "line 4\twith tab",
    ]);
    b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("waitForMore wakes on append and on completion", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await JobLog.open(`${dir}/a.log`);
    let woke = false;
    const p = log.waitForMore(0).then(() => woke = true);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(woke, false);
    log.append(line(1));
    await p;
    assert.equal(woke, true);
    const q = log.waitForMore(1);
    log.markComplete();
    await q;
    assert.equal(log.complete, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reads far behind the in-memory window come from disk, correct and in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await JobLog.open(`${dir}/a.log`);
    for (let i = 1; i <= 5000; i++) a.append({ ...line(i), text: i % 7 ? `l${i}` : `ü${i}` });
    a.close();
    // A reopened log has nothing in memory: every read goes to the file.
    const b = await JobLog.open(`${dir}/a.log`);
    for (const after of [0, 1023, 1024, 1025, 2047, 3000, 4990]) {
      const got = await b.read(after, 20);
      assert.equal(got[0].seq, after + 1, `after ${after}`);
      assert.equal(got[0].text, (after + 1) % 7 ? `l${after + 1}` : `ü${after + 1}`);
      assert.equal(got.length, Math.min(20, 5000 - after));
    }
    // Sequential paging over the whole file sees every line once.
    let cursor = 0;
    let count = 0;
    while (cursor < 5000) {
      const page = await b.read(cursor, 333);
      for (const l of page) assert.equal(l.seq, ++count);
      cursor = page[page.length - 1].seq;
    }
    assert.equal(count, 5000);
    b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the log tells Docker lines, attempt markers and runtime lines apart, also after reopening", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await JobLog.open(`${dir}/a.log`);
    a.append(line(1));
    a.append({
      stream: "stderr",
      origin: { kind: "marker" },
      timeMs: 2,
      text: "[cumulus] attempt 2 of 3 starts",
    });
    a.append({
      stream: "stdout",
      origin: { kind: "runtime", attempt: 2, index: 0 },
      timeMs: 3,
      text: "rt0",
    });
    a.append({
      stream: "stdout",
      origin: { kind: "runtime", attempt: 2, index: 1 },
      timeMs: 4,
      text: "rt1",
    });
    assert.equal(a.lastDocker?.seq, 1);
    assert.equal(a.lastMarkerSeq, 2);
    assert.equal(a.runtimeCount(2), 2);
    assert.equal(a.runtimeCount(1), 0);
    a.close();
    const b = await JobLog.open(`${dir}/a.log`);
    assert.equal(b.lastDocker?.seq, 1);
    assert.deepEqual(b.lastDocker?.origin, { kind: "docker", ts: "2026-01-01T00:00:00.1Z" });
    assert.equal(b.lastMarkerSeq, 2);
    assert.equal(b.runtimeCount(2), 2);
    b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("appendRuntimeBatch writes exactly the records of per-line appends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const texts = ["a", "b\twith tab", "multi\nline", "ünï ✓", ""];
    const streams = new Uint8Array([0, 1, 0, 1, 0]);
    const one = await JobLog.open(`${dir}/one.log`);
    const batch = await JobLog.open(`${dir}/batch.log`);
    for (const log of [one, batch]) log.append(line(1)); // a Docker line first
    texts.forEach((text, i) =>
      one.append({
        stream: streams[i] ? "stderr" : "stdout",
        origin: { kind: "runtime", attempt: 2, index: 10 + i },
        timeMs: 77,
        text,
      })
    );
    batch.appendRuntimeBatch(2, 10, texts, streams, 77);
    for (const log of [one, batch]) {
      assert.equal(log.lastSeq, 6);
      assert.equal(log.runtimeCount(2), 15);
      assert.deepEqual(log.last, {
        seq: 6,
        stream: "stdout",
        origin: { kind: "runtime", attempt: 2, index: 14 },
        text: "",
      });
      log.close();
    }
    assert.equal(
      await Deno.readTextFile(`${dir}/batch.log`),
      await Deno.readTextFile(`${dir}/one.log`),
    );
    // From memory and, after a reopen, from the file: the same lines.
    const reopened = await JobLog.open(`${dir}/batch.log`);
    assert.equal(reopened.runtimeCount(2), 15);
    const got = await reopened.read(1, 100);
    assert.deepEqual(got.map((l) => [l.seq, l.stream, l.timeMs, l.text]), [
      [2, "stdout", 77, "a"],
      [3, "stderr", 77, "b\twith tab"],
      [4, "stdout", 77, "multi line"],
      [5, "stderr", 77, "ünï ✓"],
      [6, "stdout", 77, ""],
    ]);
    reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reader paging through the file gets every line once, across chunk boundaries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await JobLog.open(`${dir}/a.log`);
    // ~4 MiB of records, some non-ASCII, so pages and 1 MiB read chunks split anywhere.
    const n = 30_000;
    const texts = Array.from({ length: n }, (_, i) => (i % 7 ? "x" : "é").repeat(i % 300));
    for (let i = 0; i < n; i += 1000) {
      log.appendRuntimeBatch(1, i, texts.slice(i, i + 1000), new Uint8Array(1000), i);
    }
    log.close();
    const again = await JobLog.open(`${dir}/a.log`);
    let after = 0;
    const seen: string[] = [];
    for (;;) {
      const page = await again.read(after, 777);
      if (page.length === 0) break;
      assert.equal(page[0].seq, after + 1);
      for (const l of page) seen.push(l.text);
      after = page[page.length - 1].seq;
    }
    assert.equal(seen.length, n);
    assert.deepEqual(seen, texts);
    again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encoded reads from memory and from the file give the same lines as read()", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const enc = new TextEncoder();
    const log = await JobLog.open(`${dir}/a.log`);
    log.append({
      stream: "stdout",
      origin: { kind: "marker" },
      timeMs: 5,
      text: "[cumulus] marker",
    });
    let index = 0;
    for (let b = 0; b < 20; b++) {
      const n = 500 + b;
      const data = enc.encode(
        Array.from({ length: n }, (_, i) => `b${b} l${i} ${"é".repeat(i % 5)}\n`).join(""),
      );
      const streams = new Uint8Array(Array.from({ length: n }, (_, i) => i % 2));
      assert.equal(log.appendRuntimeData(1, index, data, streams, 1000 + b), n);
      index += n;
    }
    assert.equal(log.runtimeCount(1), index);
    const decode = (bytes: Uint8Array) => decodeEntries(bytes, 0, bytes.length);
    const collect = async (
      read: (after: number) => Promise<{ bytes: Uint8Array; lastSeq: number } | null>,
    ) => {
      const out: LogLine[] = [];
      for (let after = 0;;) {
        const r = await read(after);
        if (!r) return out;
        out.push(...decode(r.bytes));
        assert.equal(out[out.length - 1].seq, r.lastSeq);
        after = r.lastSeq;
      }
    };
    const fromMemory = await collect((a) => Promise.resolve(log.readEncoded(a, 64 << 10)));
    const fromFile = await collect((a) => log.readEncodedFromFile(a, 64 << 10));
    const plain = await log.read(0, 1 << 20);
    assert.equal(plain.length, index + 1);
    assert.deepEqual(fromMemory, plain);
    assert.deepEqual(fromFile, plain);
    // After a reopen nothing is in memory: the file path serves every line.
    log.close();
    const again = await JobLog.open(`${dir}/a.log`);
    assert.equal(again.readEncoded(0, 1 << 20), null);
    assert.deepEqual(await collect((a) => again.readEncodedFromFile(a, 100_000)), plain);
    assert.equal(again.runtimeCount(1), index);
    again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("past its byte cap a log drops and counts lines, and says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await JobLog.open(`${dir}/cap.log`, { maxBytes: 2000 });
    for (let i = 1; i <= 100; i++) log.append(line(i));
    // A runtime batch past the cap is counted as received (a resend is no new line).
    const enc = new TextEncoder().encode("a\nb\nc\n");
    assert.equal(log.appendRuntimeData(1, 0, enc, new Uint8Array(3), 1), 3);
    assert.equal(log.runtimeCount(1), 3);
    // An attempt marker is always kept.
    log.append({
      stream: "stderr",
      origin: { kind: "marker" },
      timeMs: 1,
      text: "[cumulus] attempt 2",
    });
    const kept = log.lastSeq;
    assert.ok(kept > 30 && kept < 50, `kept ${kept} lines`);
    const dropped = 100 + 3 - (kept - 2);
    assert.equal(log.dropped, dropped);
    log.markComplete();
    const all = await log.read(0, 1000);
    const texts = all.map((l) => l.text);
    assert.equal(
      texts.filter((t) => t.startsWith("[cumulus] log cap of 2.0 KiB reached")).length,
      2,
    );
    assert.equal(texts.at(-1), `[cumulus] log cap of 2.0 KiB reached: ${dropped} lines dropped`);
    assert.ok(texts.includes("[cumulus] attempt 2"));
    // Numbering stays gap-free, and the notices survive a reopen.
    assert.deepEqual(all.map((l) => l.seq), all.map((_, i) => i + 1));
    const again = await JobLog.open(`${dir}/cap.log`, { maxBytes: 2000 });
    assert.equal(again.lastSeq, all.length);
    assert.equal(again.last?.origin.kind, "notice");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one runtime batch larger than the room left keeps only the lines that fit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await JobLog.open(`${dir}/batch.log`, { maxBytes: 4096 });
    // 1000 lines of 41 bytes in one batch (as a runtime sends a burst): ~60 KB of records.
    const text = Array.from(
      { length: 1000 },
      (_, i) => `line ${String(i).padStart(4, "0")} ${"x".repeat(30)}\n`,
    )
      .join("");
    const n = log.appendRuntimeData(1, 0, new TextEncoder().encode(text), new Uint8Array(1000), 1);
    assert.equal(n, 1000, "every line counts as received");
    assert.equal(log.runtimeCount(1), 1000);
    log.flushSync();
    const size = (await Deno.stat(`${dir}/batch.log`)).size;
    assert.ok(size <= 4096 + 200, `the file holds ${size} bytes against a 4096-byte cap`);
    const kept = log.lastSeq - 1; // the cap notice is the last record
    assert.ok(kept > 20 && kept < 80, `kept ${kept} lines`);
    assert.equal(log.dropped, 1000 - kept);
    const all = await log.read(0, 2000);
    assert.equal(all[kept - 1].text, `line ${String(kept - 1).padStart(4, "0")} ${"x".repeat(30)}`);
    assert.match(
      all.at(-1)!.text,
      /^\[cumulus\] log cap of 4\.0 KiB reached: later lines are dropped$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a log under its cap drops nothing and writes no notice", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await JobLog.open(`${dir}/under.log`, { maxBytes: 1 << 20 });
    for (let i = 1; i <= 100; i++) log.append(line(i));
    log.markComplete();
    assert.equal(log.dropped, 0);
    assert.equal(log.lastSeq, 100);
    assert.equal((await log.read(99, 1))[0].text, "line 100\twith tab");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
