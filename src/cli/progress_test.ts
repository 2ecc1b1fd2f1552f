import assert from "node:assert/strict";
import { MemorySink } from "./io.ts";
import { Progress } from "./progress.ts";

Deno.test("tty progress rewrites one line, throttles repeats and clears", async () => {
  const sink = new MemorySink();
  let now = 0;
  const p = new Progress(sink, "tty", () => now);
  p.update("pack", "a");
  p.update("pack", "b"); // within 100 ms: held back
  now = 150;
  p.update("pack", "c");
  p.update("upload", "d"); // a new phase shows at once
  await p.clear();
  assert.equal(sink.text, "\r\x1b[2Ka\r\x1b[2Kc\r\x1b[2Kd\r\x1b[2K");
});

Deno.test("lines mode prints plain lines, a phase change at once", async () => {
  const sink = new MemorySink();
  let now = 0;
  const p = new Progress(sink, "lines", () => now);
  p.update("pack", "a");
  now = 500;
  p.update("pack", "b");
  p.update("queued", "c");
  now = 2000;
  p.update("queued", "d");
  p.note("n");
  await p.clear();
  assert.equal(sink.text, "a\nc\nd\nn\n");
});

Deno.test("off mode writes nothing", async () => {
  const sink = new MemorySink();
  const p = new Progress(sink, "off", () => 0);
  p.update("x", "y");
  p.note("z");
  await p.clear();
  assert.equal(sink.text, "");
});
