import assert from "node:assert/strict";
import { decodeAll, FrameDecoder, parseDockerTime } from "./frames.ts";

function frame(type: number, payload: string): Uint8Array {
  const body = new TextEncoder().encode(payload);
  const out = new Uint8Array(8 + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(4, body.length);
  out.set(body, 8);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("frames split across arbitrary chunk boundaries decode whole", () => {
  const all = concat([
    frame(1, "2026-11-24T15:40:04.484731573Z first line\n"),
    frame(2, "2026-11-24T15:40:04.5Z err ö\n"),
    frame(1, "2026-11-24T15:40:05Z last\n"),
  ]);
  for (const step of [1, 3, 7, 8, 9, 50, all.length]) {
    const d = new FrameDecoder();
    const got = [];
    for (let i = 0; i < all.length; i += step) got.push(...d.push(all.subarray(i, i + step)));
    assert.deepEqual(got.map((f) => [f.stream, f.text]), [
      ["stdout", "first line"],
      ["stderr", "err ö"],
      ["stdout", "last"],
    ]);
    assert.equal(d.pendingBytes, 0);
  }
});

Deno.test("timestamps keep their raw form and parse to milliseconds", () => {
  const [f] = decodeAll(frame(1, "2026-11-24T15:40:04.484731573Z x\n"));
  assert.equal(f.ts, "2026-11-24T15:40:04.484731573Z");
  assert.equal(f.timeMs, Date.UTC(2026, 10, 24, 15, 40, 4, 484));
  assert.equal(parseDockerTime("2026-11-24T15:40:05Z"), Date.UTC(2026, 10, 24, 15, 40, 5));
  assert.ok(Number.isNaN(parseDockerTime("garbage")));
});

Deno.test("an empty line and a line without timestamp survive", () => {
  const got = decodeAll(concat([frame(1, "2026-11-24T15:40:05Z \n"), frame(1, "no-ts\n")]));
  assert.equal(got[0].text, "");
  assert.equal(got[1].text, "no-ts");
  assert.equal(got[1].ts, "");
});
