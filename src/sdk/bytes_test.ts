import assert from "node:assert/strict";
import { formatBytes, parseBytesText } from "./bytes.ts";

// The same table drives the Python twin's test (src/sdk/python/tests/test_bytes.py).
const cases = JSON.parse(
  await Deno.readTextFile(new URL("../../tests/fixtures/bytes_cases.json", import.meta.url)),
) as {
  parse: Array<[string, number | null]>;
  parseRequireUnit: Array<[string, number | null]>;
  format: Array<[number, string]>;
};

for (const [text, want] of cases.parse) {
  Deno.test(`parseBytesText(${JSON.stringify(text)}) is ${want}`, () => {
    assert.equal(parseBytesText(text), want);
  });
}

for (const [text, want] of cases.parseRequireUnit) {
  Deno.test(`parseBytesText(${JSON.stringify(text)}, requireUnit) is ${want}`, () => {
    assert.equal(parseBytesText(text, { requireUnit: true }), want);
  });
}

Deno.test("formatBytes writes each table case and its text parses back within rounding", () => {
  for (const [bytes, want] of cases.format) {
    const text = formatBytes(bytes);
    assert.equal(text, want, `formatBytes(${bytes})`);
    const back = parseBytesText(text);
    assert.ok(back !== null, `${text} does not parse back`);
    assert.ok(Math.abs(back - bytes) <= 0.05 * bytes, `${text}: ${back} vs ${bytes}`);
  }
});
