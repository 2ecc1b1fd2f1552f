import assert from "node:assert/strict";
import {
  type FlagSpec,
  parseArgs,
  parseDuration,
  parseSize,
  positiveIntFlag,
  UsageError,
} from "./args.ts";

const SPECS: FlagSpec[] = [
  { name: "follow", short: "f", type: "boolean" },
  { name: "after", type: "string" },
  { name: "env", type: "string", multiple: true },
];

Deno.test("parseArgs reads long, short, = and repeated flags and positionals", () => {
  const p = parseArgs(["-f", "--after=3", "j-1", "--env", "A=1", "--env=B=2"], SPECS);
  assert.deepEqual(p.flags, { follow: true, after: "3", env: ["A=1", "B=2"] });
  assert.deepEqual(p.positionals, ["j-1"]);
  assert.equal(p.sawSeparator, false);
});

Deno.test("parseArgs stops at -- and keeps the rest verbatim", () => {
  const p = parseArgs(["--after", "1", "--", "sh", "-c", "--after"], SPECS);
  assert.deepEqual(p.positionals, ["sh", "-c", "--after"]);
  assert.equal(p.sawSeparator, true);
});

Deno.test("parseArgs with stopAtPositional leaves the command's own flags alone", () => {
  const p = parseArgs(["-f", "python3", "-f", "--after", "x"], SPECS, { stopAtPositional: true });
  assert.deepEqual(p.flags, { follow: true });
  assert.deepEqual(p.positionals, ["python3", "-f", "--after", "x"]);
});

Deno.test("parseArgs takes a negative number as a value", () => {
  const p = parseArgs(["--after", "-5", "-3"], SPECS);
  assert.equal(p.flags.after, "-5");
  assert.deepEqual(p.positionals, ["-3"]);
});

const usageCases: Array<[string, string[], RegExp]> = [
  ["unknown long flag", ["--nope"], /unknown flag --nope for 'cumulus logs'/],
  ["unknown short flag", ["-x"], /unknown flag -x/],
  ["missing value", ["--after"], /--after needs a value/],
  ["value on a switch", ["--follow=yes"], /--follow takes no value/],
  ["single flag twice", ["--after", "1", "--after", "2"], /--after given twice/],
];
for (const [name, argv, msg] of usageCases) {
  Deno.test(`parseArgs usage error: ${name}`, () => {
    assert.throws(() => parseArgs(argv, SPECS, { command: "logs" }), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, msg);
      return true;
    });
  });
}

const durations: Array<[string, number]> = [
  ["90", 90],
  ["0.5", 0.5],
  ["0", 0],
  ["-5", -5],
  ["90s", 90],
  ["10m", 600],
  ["2h", 7200],
  ["1h30m", 5400],
  ["1d", 86400],
  ["1.5h", 5400],
];
for (const [text, want] of durations) {
  Deno.test(`parseDuration ${JSON.stringify(text)} = ${want}`, () => {
    assert.equal(parseDuration("duration", text), want);
  });
}
for (const text of ["", "abc", "10x", "m10", "1h 30m", "10mm"]) {
  Deno.test(`parseDuration rejects ${JSON.stringify(text)}`, () => {
    assert.throws(() => parseDuration("duration", text), /--duration: expected seconds/);
  });
}

const sizes: Array<[string, number]> = [
  ["1048576", 1048576],
  ["512K", 512 * 1024],
  ["100M", 100 * 1024 ** 2],
  ["100MiB", 100 * 1024 ** 2],
  ["1G", 1024 ** 3],
  ["1.5GB", 1.5e9],
  ["10kb", 10_000],
];
for (const [text, want] of sizes) {
  Deno.test(`parseSize ${JSON.stringify(text)} = ${want}`, () => {
    assert.equal(parseSize("max-bundle-size", text), want);
  });
}
for (const text of ["", "M", "10Q", "-1M", "0"]) {
  Deno.test(`parseSize rejects ${JSON.stringify(text)}`, () => {
    assert.throws(() => parseSize("max-bundle-size", text), /--max-bundle-size: expected a size/);
  });
}

Deno.test("positiveIntFlag refuses zero and words", () => {
  assert.equal(positiveIntFlag("limit", "7"), 7);
  assert.throws(() => positiveIntFlag("limit", "0"), UsageError);
  assert.throws(() => positiveIntFlag("limit", "ten"), UsageError);
});
