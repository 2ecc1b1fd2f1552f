import assert from "node:assert/strict";
import { MemorySink, runCli } from "./mod.ts";

function io() {
  const out = new MemorySink();
  const err = new MemorySink();
  return {
    out,
    err,
    stdout: out,
    stderr: err,
    stderrIsTerminal: false,
    env: (_: string) => undefined,
    cwd: () => "/nonexistent",
    now: () => 0,
    onInterrupt: () => () => {},
  };
}

const usage: Array<[string[], RegExp]> = [
  [["up", "--port", "http"], /^cumulus: --port: must be a port number 1-65535, got http/],
  [["up", "--port", "70000"], /^cumulus: --port: must be a port number/],
  [["up", "now"], /^cumulus: 'cumulus up' takes no arguments/],
  [["up", "--url", "h:1"], /^cumulus: 'cumulus up' starts its own orchestrator: --url/],
  [["--url", "h:1", "up"], /^cumulus: 'cumulus up' starts its own orchestrator: --url/],
  [["up", "--demo"], /^cumulus: unknown flag --demo for 'cumulus up'/],
  [["down", "all"], /^cumulus: 'cumulus down' takes no arguments/],
  [["down", "--port", "1"], /^cumulus: unknown flag --port for 'cumulus down'/],
];
for (const [argv, msg] of usage) {
  Deno.test(`usage error: cumulus ${argv.join(" ")} → exit 2, nothing started`, async () => {
    const x = io();
    assert.equal(await runCli(argv, x), 2);
    assert.match(x.err.text, msg);
    assert.equal(x.out.text, "");
  });
}

Deno.test("cumulus down on a data dir where nothing runs stops nothing and exits 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-down-" });
  try {
    const x = io();
    assert.equal(await runCli(["down", "--data-dir", dir, "--json"], x), 0);
    assert.deepEqual(JSON.parse(x.out.text), {
      dataDir: dir,
      stopped: { agent: null, orchestrator: null, s3rver: null },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
