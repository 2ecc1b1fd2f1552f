import assert from "node:assert/strict";
import { formatSeconds, parseDurationText } from "./duration.ts";

const parsed: Array<[string, number | null]> = [
  ["3600", 3600],
  ["0.5", 0.5],
  ["90s", 90],
  ["10m", 600],
  ["1h30m", 5400],
  ["7d", 604800],
  [" 2h ", 7200],
  ["0", 0],
  ["", null],
  ["-5", null],
  ["7 days", null],
  ["1h 30m", null],
  ["h", null],
  ["5x", null],
];
for (const [text, want] of parsed) {
  Deno.test(`parseDurationText(${JSON.stringify(text)}) is ${want}`, () => {
    assert.equal(parseDurationText(text), want);
  });
}

Deno.test("formatSeconds writes the largest units first and reads back", () => {
  const cases: Array<[number, string]> = [
    [604800, "7d"],
    [5400, "1h30m"],
    [2, "2s"],
    [90061, "1d1h1m1s"],
    [1.5, "1.5s"],
    [0, "0s"],
  ];
  for (const [s, text] of cases) {
    assert.equal(formatSeconds(s), text);
    assert.equal(parseDurationText(text), s);
  }
});
