import assert from "node:assert/strict";
import { JsonLineSplitter, parseContainerEvent } from "./events.ts";

/** A container event as Docker 20.10 writes it on GET /events. */
function raw(action: string, attrs: Record<string, string>, type = "container") {
  return {
    status: action,
    id: "c0ffee",
    Type: type,
    Action: action,
    Actor: { ID: "c0ffee", Attributes: { image: "sha256:abc", ...attrs } },
    scope: "local",
    time: 1_765_000_000,
    timeNano: 1_765_000_000_123_456_789,
  };
}

const cases: Array<[string, unknown, ReturnType<typeof parseContainerEvent>]> = [
  [
    "die carries its exit code, apart from the labels",
    raw("die", { exitCode: "3", "cumulus.job": "j-1" }),
    {
      action: "die",
      containerId: "c0ffee",
      labels: { image: "sha256:abc", "cumulus.job": "j-1" },
      exitCode: 3,
      timeMs: 1_765_000_000_123,
    },
  ],
  [
    "start has no exit code",
    raw("start", { "com.docker.swarm.service.id": "s1" }),
    {
      action: "start",
      containerId: "c0ffee",
      labels: { image: "sha256:abc", "com.docker.swarm.service.id": "s1" },
      exitCode: null,
      timeMs: 1_765_000_000_123,
    },
  ],
  ["another action is not ours", raw("destroy", {}), null],
  ["another type is not ours", raw("die", { exitCode: "0" }, "network"), null],
  ["not an object", "die", null],
  ["null", null, null],
];
for (const [name, input, want] of cases) {
  Deno.test(`parseContainerEvent: ${name}`, () =>
    assert.deepEqual(parseContainerEvent(input), want));
}

Deno.test("parseContainerEvent: a malformed exit code is null, not NaN", () => {
  assert.equal(parseContainerEvent(raw("die", { exitCode: "x" }))?.exitCode, null);
});

Deno.test("JsonLineSplitter: objects split across chunks and UTF-8 boundaries come out whole", () => {
  const text = '{"a":"ö"}\n\n{"b":2}\nnot json\n{"c":3}\n{"d":';
  const bytes = new TextEncoder().encode(text);
  for (const step of [1, 2, 5, bytes.length]) {
    const s = new JsonLineSplitter();
    const out: unknown[] = [];
    for (let i = 0; i < bytes.length; i += step) out.push(...s.push(bytes.subarray(i, i + step)));
    assert.deepEqual(out, [{ a: "ö" }, { b: 2 }, { c: 3 }], `step ${step}`);
  }
});
