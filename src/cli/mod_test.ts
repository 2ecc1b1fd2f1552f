import assert from "node:assert/strict";
import { COMMAND_HELP } from "./help.ts";
import { type CliIO, MemorySink, runCli } from "./mod.ts";

function memoryIO(env: Record<string, string> = {}): CliIO & {
  out: MemorySink;
  err: MemorySink;
} {
  const out = new MemorySink();
  const err = new MemorySink();
  return {
    out,
    err,
    stdout: out,
    stderr: err,
    stderrIsTerminal: false,
    env: (k) => env[k],
    cwd: () => "/nonexistent",
    now: () => 0,
    onInterrupt: () => () => {},
  };
}

function refusedUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `127.0.0.1:${port}`;
}

const usage: Array<[string[], RegExp]> = [
  [["frobnicate"], /^cumulus: unknown command "frobnicate"/],
  [["run"], /^cumulus: run needs a command/],
  [["run", "--gpu-memory", "lots", "--", "true"], /^cumulus: --gpu-memory: not a number/],
  [["run", "--duration", "soon", "--", "true"], /^cumulus: --duration: expected seconds/],
  [["run", "--bogus", "--", "true"], /^cumulus: unknown flag --bogus for 'cumulus run'/],
  [["jobs", "--state", "sleeping"], /^cumulus: --state: unknown state "sleeping"/],
  [["jobs", "--limit", "0"], /^cumulus: --limit: expected a positive integer/],
  [["logs"], /^cumulus: logs needs a job id/],
  [["logs", "--after", "x", "j-1"], /^cumulus: --after: expected an integer/],
  [["kill"], /^cumulus: kill needs at least one job id/],
  [["workers", "extra"], /^cumulus: workers takes no arguments/],
  [["help", "nope"], /^cumulus: unknown command "nope"/],
];
for (const [argv, msg] of usage) {
  Deno.test(`usage error: cumulus ${argv.join(" ")} → exit 2 and one line`, async () => {
    const io = memoryIO();
    const code = await runCli(argv, io);
    assert.equal(code, 2);
    assert.match(io.err.text, msg);
    assert.equal(io.err.text.split("\n").length, 2, io.err.text);
    assert.equal(io.out.text, "");
  });
}

for (const name of Object.keys(COMMAND_HELP)) {
  if (name === "orchestrator" || name === "agent") continue;
  for (const flag of ["--help", "-h"]) {
    Deno.test(`cumulus ${name} ${flag} prints its usage and exits 0`, async () => {
      const io = memoryIO();
      assert.equal(await runCli([name, flag], io), 0);
      assert.ok(io.out.text.startsWith(`Usage: cumulus ${name}`), io.out.text);
      assert.match(io.out.text, /--url ADDR/);
      assert.equal(io.err.text, "");
    });
  }
}

Deno.test("cumulus --help, cumulus help and cumulus help run", async () => {
  for (const argv of [["--help"], ["-h"], ["help"]]) {
    const io = memoryIO();
    assert.equal(await runCli(argv, io), 0);
    for (const cmd of ["run", "jobs", "logs", "kill", "workers", "version", "orchestrator"]) {
      assert.match(io.out.text, new RegExp(`^  ${cmd}\\s`, "m"));
    }
  }
  const io = memoryIO();
  assert.equal(await runCli(["help", "run"], io), 0);
  assert.match(io.out.text, /--gpu-memory F\|SIZE.*default 0\.25/);
  assert.match(io.out.text, /--duration DURATION.*default 3600/);
});

Deno.test("cumulus with no command prints usage on stderr and exits 2", async () => {
  const io = memoryIO();
  assert.equal(await runCli([], io), 2);
  assert.match(io.err.text, /^Usage: cumulus COMMAND/);
});

Deno.test("every run flag in the parser is documented in its help", async () => {
  const src = await Deno.readTextFile(new URL("./run.ts", import.meta.url));
  const flags = [...src.matchAll(/\{ name: "([a-z-]+)", type:/g)].map((m) => m[1]);
  assert.ok(flags.length >= 12);
  for (const f of flags) assert.match(COMMAND_HELP.run, new RegExp(`--${f}\\b`), f);
});

Deno.test("an unreachable orchestrator is one error line and exit 1", async () => {
  const url = refusedUrl();
  for (const argv of [["jobs"], ["workers"], ["logs", "j-0123456789ab"], ["kill", "j-1"]]) {
    const io = memoryIO({ CUMULUS_ORCHESTRATOR_URL: url });
    assert.equal(await runCli(argv, io), 1, argv.join(" "));
    assert.match(io.err.text, new RegExp(`^cumulus: cannot reach the orchestrator at ${url}`));
    assert.match(io.err.text, /\[UNAVAILABLE\]\n$/);
    assert.equal(io.err.text.split("\n").length, 2);
  }
});

Deno.test("--url before or after the command overrides the environment", async () => {
  const url = refusedUrl();
  for (const argv of [["--url", url, "jobs"], ["jobs", `--url=${url}`]]) {
    const io = memoryIO({ CUMULUS_ORCHESTRATOR_URL: "127.0.0.1:1" });
    assert.equal(await runCli(argv, io), 1);
    assert.match(io.err.text, new RegExp(url));
  }
});

Deno.test("a malformed --url is one error line and exit 1", async () => {
  const io = memoryIO();
  assert.equal(await runCli(["jobs", "--url", "http://x:1"], io), 1);
  assert.match(
    io.err.text,
    /^cumulus: invalid orchestrator URL "http:\/\/x:1": unsupported scheme/,
  );
});

Deno.test("run of a missing directory fails before contacting anyone", async () => {
  const io = memoryIO({ CUMULUS_ORCHESTRATOR_URL: refusedUrl() });
  assert.equal(await runCli(["run", "--", "true"], io), 1);
  assert.match(io.err.text, /^cumulus: cannot bundle \/nonexistent/);
});

Deno.test("version prints the version, and JSON with --json", async () => {
  const io = memoryIO();
  assert.equal(await runCli(["version"], io), 0);
  assert.match(io.out.text, /^cumulus \d+\.\d+\.\d+ \(deno /);
  const j = memoryIO();
  assert.equal(await runCli(["--json", "version"], j), 0);
  assert.match(JSON.parse(j.out.text).version, /^\d+\.\d+\.\d+$/);
});

Deno.test("cumulus agent dispatches to the agent with its argv untouched", async () => {
  // The agent prints its own usage for --help; the CLI must not intercept it.
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, "agent", "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(child.stdout) + new TextDecoder().decode(child.stderr);
  assert.equal(child.code, 0, out);
  assert.match(out, /cumulus-agent/);
  assert.ok(!out.includes("Usage: cumulus COMMAND"), out);
});

Deno.test("errorLine escapes control characters a server message may quote", async () => {
  const { errorLine } = await import("./errors.ts");
  assert.equal(
    errorLine(new Error("unknown image 'a\x1b[31mred'")),
    "cumulus: unknown image 'a\\x1b[31mred'",
  );
});
