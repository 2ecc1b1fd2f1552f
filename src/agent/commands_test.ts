import assert from "node:assert/strict";
import { type AgentIo, runAgentCommand } from "./mod.ts";

interface Captured {
  io: AgentIo;
  out: () => string;
  err: () => string;
}

function capture(env: Record<string, string>): Captured {
  let out = "";
  let err = "";
  return {
    io: {
      stdout: (t) => void (out += t),
      stderr: (t) => void (err += t),
      env: (name) => env[name],
    },
    out: () => out,
    err: () => err,
  };
}

async function withState(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chronos-agent-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function agent(dir: string, argv: string[]) {
  const c = capture({ CHRONOS_STATE_DIR: dir });
  const code = await runAgentCommand(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

Deno.test("partition create, list, release and stats with --json", async () => {
  await withState(async (dir) => {
    let r = await agent(dir, [
      "partition",
      "create",
      "0",
      "0.5",
      "60",
      "--owner",
      "alice",
      "--job",
      "j-9",
      "--json",
    ]);
    assert.equal(r.code, 0, r.err);
    const p = JSON.parse(r.out);
    assert.equal(p.memory, 0.5);
    assert.equal(p.jobId, "j-9");

    r = await agent(dir, ["partition", "list", "--json"]);
    assert.equal(r.code, 0);
    const l = JSON.parse(r.out);
    assert.equal(l.partitions.length, 1);
    assert.ok(l.partitions[0].remainingS > 59);

    r = await agent(dir, ["partition", "create", "0", "0.6", "60", "--json"]);
    assert.equal(r.code, 4);
    assert.equal(JSON.parse(r.out).error.code, "NO_CAPACITY");
    assert.equal(JSON.parse(r.out).error.earliestFitMs, p.expiresAtMs);
    assert.equal(r.err.trim().split("\n").length, 1);

    r = await agent(dir, ["partition", "stats", "--json"]);
    assert.equal(r.code, 0);
    const s = JSON.parse(r.out);
    assert.equal(s.devices[0].allocated, 0.5);
    assert.equal(s.stateDir, dir);

    r = await agent(dir, ["partition", "release", p.id, "--json"]);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).id, p.id);
    r = await agent(dir, ["partition", "create", "0", "0.6", "60", "--json"]);
    assert.equal(r.code, 0);
  });
});

Deno.test("gpus --json lists the OpenCL devices; plain output is a table", async () => {
  await withState(async (dir) => {
    let r = await agent(dir, ["gpus", "--json"]);
    assert.equal(r.code, 0, r.err);
    const g = JSON.parse(r.out);
    assert.ok(g.devices.length >= 1);
    assert.ok(g.devices[0].totalMemoryBytes > 0);
    r = await agent(dir, ["gpus"]);
    assert.match(r.out, /^DEV\s+TYPE\s+NAME/);
    assert.match(r.out, new RegExp(g.devices[0].type));
  });
});

Deno.test("human output shows partitions with their remaining time", async () => {
  await withState(async (dir) => {
    let r = await agent(dir, ["partition", "create", "0", "0.25", "3700", "--owner", "bob"]);
    assert.match(r.out, /^created p-[0-9a-f]{12} on device 0: 0\.25 .* owner bob\n$/);
    r = await agent(dir, ["partition", "list"]);
    assert.match(r.out, /REMAINING/);
    assert.match(r.out, /1h01m/);
    r = await agent(dir, ["partition", "stats"]);
    assert.match(r.out, /ALLOCATED/);
  });
});

Deno.test("bad command lines exit 2 with one line on stderr", async () => {
  await withState(async (dir) => {
    const cases: [string[], number, RegExp][] = [
      [["partition", "create", "0", "abc", "60"], 2, /memory must be a number/],
      [["partition", "create", "0", "1.5", "60"], 2, /memory must be a fraction in \(0, 1\]/],
      [["partition", "create", "0", "-0.5", "60"], 2, /memory must be a fraction/],
      [["partition", "create", "x", "0.5", "60"], 2, /device must be a non-negative integer/],
      [["partition", "create", "9", "0.5", "60"], 2, /unknown device 9/],
      [["partition", "create", "0", "0.5"], 2, /takes <device> <memory> <duration_s>/],
      [["partition", "release", "p-ffffffffffff"], 3, /no live partition/],
      [["partition", "release", "nope"], 2, /not a partition id/],
      [["partition", "frob"], 2, /unknown partition command 'frob'/],
      [["partition"], 2, /needs a subcommand/],
      [["gpus", "--verbose"], 2, /unknown option '--verbose'/],
      [["gpus", "--owner", "x"], 2, /only apply to 'partition create'/],
      [["dance"], 2, /unknown command 'dance'/],
      [[], 2, /no command given/],
    ];
    for (const [argv, code, message] of cases) {
      const r = await agent(dir, argv);
      assert.equal(r.code, code, argv.join(" "));
      assert.match(r.err, message, argv.join(" "));
      assert.equal(r.err.trim().split("\n").length, 1, argv.join(" "));
      assert.equal(r.out, "", argv.join(" "));
    }
  });
});

Deno.test("cumulus-agent main.ts runs as its own process", async () => {
  await withState(async (dir) => {
    const main = new URL("./main.ts", import.meta.url).pathname;
    const run = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-ffi", "--allow-env", "--allow-read", main, ...args],
        env: { CHRONOS_STATE_DIR: dir },
      }).output();
    let r = await run(["partition", "create", "0", "0.4", "30", "--json"]);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const id = JSON.parse(new TextDecoder().decode(r.stdout)).id;
    r = await run(["partition", "list", "--json"]);
    assert.equal(JSON.parse(new TextDecoder().decode(r.stdout)).partitions[0].id, id);
    r = await run(["partition", "release", "p-000000000000"]);
    assert.equal(r.code, 3);
  });
});

Deno.test("create is idempotent by job id and release-job releases all of a job, then none", async () => {
  await withState(async (dir) => {
    const create = ["partition", "create", "0", "0.25", "60", "--owner", "bob", "--job", "j-1"];
    const first = await agent(dir, [...create, "--json"]);
    assert.equal(first.code, 0, first.err);
    const again = await agent(dir, [...create, "--json"]);
    assert.equal(again.code, 0, again.err);
    assert.equal(JSON.parse(again.out).id, JSON.parse(first.out).id);
    assert.equal(JSON.parse(again.out).existing, true);
    const other = await agent(dir, ["partition", "create", "0", "0.25", "60", "--job", "j-2"]);
    assert.equal(other.code, 0, other.err);

    let r = await agent(dir, ["partition", "release-job", "j-1", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).released.map((p: { id: string }) => p.id), [
      JSON.parse(first.out).id,
    ]);
    r = await agent(dir, ["partition", "release-job", "j-1", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), { released: [] });
    r = await agent(dir, ["partition", "list", "--json"]);
    assert.deepEqual(JSON.parse(r.out).partitions.map((p: { jobId: string }) => p.jobId), ["j-2"]);
  });
});

Deno.test("ssh-dispatch runs the JSON argv in SSH_ORIGINAL_COMMAND and refuses the rest", async () => {
  await withState(async (dir) => {
    const run = async (command: string | undefined, argv = ["ssh-dispatch"]) => {
      const env: Record<string, string> = { CHRONOS_STATE_DIR: dir };
      if (command !== undefined) env.SSH_ORIGINAL_COMMAND = command;
      const c = capture(env);
      return { code: await runAgentCommand(argv, c.io), out: c.out(), err: c.err() };
    };
    const ok = await run(JSON.stringify(["cumulus-agent", "partition", "list", "--json"]));
    assert.equal(ok.code, 0, ok.err);
    assert.deepEqual(JSON.parse(ok.out).partitions, []);
    for (
      const bad of [
        undefined,
        "partition list --json",
        JSON.stringify(["cumulus-agent", "serve"]),
        JSON.stringify(["partition", "list", "--state-dir", "/tmp"]),
        JSON.stringify([1, 2]),
      ]
    ) {
      const r = await run(bad);
      assert.equal(r.code, 2, `${bad}: ${r.err}`);
      assert.match(r.err, /ssh-dispatch refused/);
      assert.equal(r.out, "");
    }
    const extra = await run("[]", ["ssh-dispatch", "gpus"]);
    assert.equal(extra.code, 2);
  });
});
