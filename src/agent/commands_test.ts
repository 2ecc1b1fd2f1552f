import assert from "node:assert/strict";
import {
  fixtureUuid,
  killStandIns,
  type StandIn,
  standInCalls,
  writeMpsStandIn,
  writeNvidia,
} from "./_gpu_fixtures.ts";
import { readGrant } from "./grants.ts";
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

/** A worker whose Chronos device 0 is pinned to a fixture H100 with MPS (a stand-in). */
async function withGpuWorker(
  fn: (
    env: Record<string, string>,
    dirs: { root: string; grants: string; mps: string; standIn: StandIn },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-agent-gpu-" });
  const dirs = {
    root: `${dir}/root`,
    grants: `${dir}/grants`,
    mps: `${dir}/mps`,
    standIn: await writeMpsStandIn(dir),
  };
  await writeNvidia(dirs.root, [{ bus: "0000:19:00.0", minor: 0, k: 0 }]);
  await Deno.mkdir(`${dirs.root}/usr/local/nvidia/lib64`, { recursive: true });
  const env = {
    CHRONOS_STATE_DIR: `${dir}/state`,
    CUMULUS_GPU_ROOT: dirs.root,
    CUMULUS_GPU_MAP: "0=00000000:19:00.0",
    CUMULUS_GPU_GRANTS_DIR: dirs.grants,
    CUMULUS_MPS_DIR: dirs.mps,
    CUMULUS_MPS_CONTROL: dirs.standIn.binary,
    PATH: "/usr/bin:/bin",
  };
  try {
    await fn(env, dirs);
  } finally {
    await killStandIns(dirs.mps);
    await Deno.remove(dir, { recursive: true });
  }
}

async function agentWith(env: Record<string, string>, argv: string[]) {
  const c = capture(env);
  const code = await runAgentCommand(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

const JOB = "j-0123456789ab";

Deno.test("gpus --json names each device's GPU and the worker's access; the table shows UUID and ACCESS", async () => {
  await withGpuWorker(async (env) => {
    let r = await agentWith(env, ["gpus", "--json"]);
    assert.equal(r.code, 0, r.err);
    const inv = JSON.parse(r.out);
    assert.equal(inv.access, "nvidia");
    assert.equal(inv.devices[0].pciBusId, "0000:19:00.0");
    assert.deepEqual(inv.devices[0].gpu, {
      vendor: "nvidia",
      uuid: fixtureUuid(0),
      pciBusId: "0000:19:00.0",
      minor: 0,
      devices: ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"],
    });
    r = await agentWith(env, ["gpus"]);
    assert.match(r.out, /^DEV\s+TYPE\s+NAME\s+MEMORY\s+PLATFORM\s+UUID\s+ACCESS\n/);
    assert.match(r.out, new RegExp(`${fixtureUuid(0)}\\s+nvidia\\n`));
  });
  await withState(async (dir) => {
    // This machine: a PoCL CPU device, no GPU: a "no device access" worker.
    const r = await agent(dir, ["gpus", "--json"]);
    const inv = JSON.parse(r.out);
    assert.equal(inv.access, "none");
    assert.equal(inv.devices[0].gpu, null);
    assert.equal(typeof inv.devices[0].pciBusId, "string");
  });
});

Deno.test("partition create of a fractional partition starts MPS and writes its grant before answering; release removes it", async () => {
  await withGpuWorker(async (env, dirs) => {
    const create = ["partition", "create", "0", "0.5", "60", "--job", JOB, "--compute-share", "30"];
    let r = await agentWith(env, [...create, "--json"]);
    assert.equal(r.code, 0, r.err);
    const p = JSON.parse(r.out);
    const grant = await readGrant(dirs.grants, p.id);
    assert.ok(grant !== null, "the grant exists when the command answers");
    const pipe = `${dirs.mps}/${fixtureUuid(0)}/pipe`;
    assert.deepEqual(grant, {
      version: 1,
      jobId: JOB,
      partitionId: p.id,
      gpu: { vendor: "nvidia", index: 0, uuid: fixtureUuid(0), pciBusId: "0000:19:00.0" },
      devices: ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
        .map((path) => ({ path, hostPath: `${dirs.root}${path}` })),
      mounts: [
        { source: `${dirs.root}/usr/local/nvidia`, destination: "/usr/local/nvidia" },
        { source: pipe, destination: pipe, writable: true },
      ],
      env: {
        CUMULUS_GPU_MEMORY_BYTES: String(p.memoryBytes),
        CUDA_MPS_PIPE_DIRECTORY: pipe,
        CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: `0=${Math.floor(p.memoryBytes / 2 ** 20)}M`,
        CUDA_MPS_ACTIVE_THREAD_PERCENTAGE: "30",
      },
      pathEnv: { LD_LIBRARY_PATH: ["/usr/local/nvidia/lib64"] },
      hostIpc: true,
    });
    const daemon = (await standInCalls(dirs.standIn)).filter((c) => c.what === "-d");
    assert.equal(daemon.length, 1);
    assert.equal(daemon[0].env.CUDA_VISIBLE_DEVICES, fixtureUuid(0));
    assert.equal(daemon[0].env.CUDA_MPS_PIPE_DIRECTORY, pipe);

    // Idempotent: the same partition, the grant kept, no second daemon.
    r = await agentWith(env, [...create, "--json"]);
    assert.equal(JSON.parse(r.out).existing, true);
    assert.ok(await readGrant(dirs.grants, p.id));
    assert.equal((await standInCalls(dirs.standIn)).filter((c) => c.what === "-d").length, 1);

    r = await agentWith(env, ["partition", "release", p.id]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await readGrant(dirs.grants, p.id), null);
    r = await agentWith(env, ["partition", "release", p.id]);
    assert.equal(r.code, 3);
  });
});

Deno.test("create-group makes one partition per device, all or nothing, and is idempotent", async () => {
  await withGpuWorker(async (env, dirs) => {
    const group = ["partition", "create-group", "0", "1", "60", "--owner", "ann", "--job", JOB];
    let r = await agentWith(env, [...group, "--json"]);
    assert.equal(r.code, 0, r.err);
    const [p] = JSON.parse(r.out).partitions;
    assert.equal(p.jobId, JOB, "a group of one keeps the plain job id");
    assert.equal(p.existing, false);
    const grant = await readGrant(dirs.grants, p.id);
    assert.equal(grant?.hostIpc, false, "a whole GPU gets no MPS");
    assert.equal(grant?.env.CUDA_MPS_PIPE_DIRECTORY, undefined);
    assert.deepEqual(await standInCalls(dirs.standIn), []);
    r = await agentWith(env, [...group, "--json"]);
    assert.equal(JSON.parse(r.out).partitions[0].existing, true);
    assert.equal(JSON.parse(r.out).partitions[0].id, p.id);
    r = await agentWith(env, group);
    assert.match(r.out, /^existing p-[0-9a-f]{12} on device 0: 1 of the device/);

    r = await agentWith(env, ["partition", "release-job", JOB, "--json"]);
    assert.equal(JSON.parse(r.out).released.length, 1);
    assert.equal(await readGrant(dirs.grants, p.id), null);

    // Device 9 does not exist: the partition made on device 0 is released again.
    r = await agentWith(env, [
      "partition",
      "create-group",
      "0,9",
      "1",
      "60",
      "--owner",
      "ann",
      "--job",
      JOB,
      "--json",
    ]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /unknown device 9/);
    assert.equal(JSON.parse(r.out).error.code, "INVALID_ARGUMENT");
    r = await agentWith(env, ["partition", "list", "--json"]);
    assert.deepEqual(JSON.parse(r.out).partitions, []);
    assert.deepEqual([...Deno.readDirSync(dirs.grants)], []);

    // Someone holds half the device: the whole device does not fit, nothing is made.
    await agentWith(env, ["partition", "create", "0", "0.5", "60", "--job", "j-00000000000f"]);
    r = await agentWith(env, [...group, "--json"]);
    assert.equal(r.code, 4);
    assert.equal(JSON.parse(r.out).error.code, "NO_CAPACITY");
    r = await agentWith(env, ["partition", "list", "--json"]);
    assert.deepEqual(JSON.parse(r.out).partitions.map((x: { jobId: string }) => x.jobId), [
      "j-00000000000f",
    ]);
  });
});

Deno.test("release-job releases a group's members (J:g<k>) and nothing else", async () => {
  await withState(async (dir) => {
    for (const job of [`${JOB}:g0`, `${JOB}:g1`, `${JOB}x`, "other"]) {
      const r = await agent(dir, ["partition", "create", "0", "0.2", "60", "--job", job]);
      assert.equal(r.code, 0, r.err);
    }
    let r = await agent(dir, ["partition", "release-job", JOB, "--json"]);
    assert.deepEqual(
      JSON.parse(r.out).released.map((p: { jobId: string }) => p.jobId).sort(),
      [`${JOB}:g0`, `${JOB}:g1`],
    );
    r = await agent(dir, ["partition", "list", "--json"]);
    assert.deepEqual(
      JSON.parse(r.out).partitions.map((p: { jobId: string }) => p.jobId).sort(),
      [`${JOB}x`, "other"],
    );
  });
});

Deno.test("a grant that cannot be written fails the create and releases the partition", async () => {
  await withGpuWorker(async (env, dirs) => {
    await Deno.writeTextFile(`${dirs.root}/not-a-dir`, "");
    const bad = { ...env, CUMULUS_GPU_GRANTS_DIR: `${dirs.root}/not-a-dir/grants` };
    for (
      const argv of [
        ["partition", "create", "0", "0.5", "60", "--job", JOB, "--json"],
        ["partition", "create-group", "0", "1", "60", "--owner", "u", "--job", JOB, "--json"],
      ]
    ) {
      const r = await agentWith(bad, argv);
      assert.equal(r.code, 8, r.err);
      assert.match(r.err, /^cumulus-agent: grants directory .*not-a-dir\/grants: /);
      assert.equal(r.err.trim().split("\n").length, 1);
      const l = await agentWith(env, ["partition", "list", "--json"]);
      assert.deepEqual(JSON.parse(l.out).partitions, [], argv[1]);
    }
  });
});

Deno.test("create-group, --compute-share and GPU settings are checked before anything is made", async () => {
  await withGpuWorker(async (env) => {
    const g = ["partition", "create-group"];
    const cases: [string[], number, RegExp][] = [
      [[...g, "0,1", "0.5", "60", "--owner", "u", "--job", JOB], 2, /takes whole devices \(1\)/],
      [[...g, "0", "1", "60", "--owner", "u"], 2, /needs --owner and --job/],
      [[...g, "0,0", "1", "60", "--owner", "u", "--job", JOB], 2, /each device at most once/],
      [[...g, "0,1,2,3,4,5,6,7,8", "1", "60", "--owner", "u", "--job", JOB], 2, /at most 8/],
      [[...g, "0,x", "1", "60", "--owner", "u", "--job", JOB], 2, /non-negative integer/],
      [[...g, "0", "1"], 2, /takes <dev\[,dev\.\.\.\]> <memory> <duration_s>/],
      [["partition", "create", "0", "0.5", "60", "--compute-share", "0"], 2, /1\.\.100/],
      [["partition", "create", "0", "0.5", "60", "--compute-share", "12.5"], 2, /1\.\.100/],
      [["partition", "list", "--compute-share", "10"], 2, /only apply to 'partition create'/],
    ];
    for (const [argv, code, message] of cases) {
      const r = await agentWith(env, argv);
      assert.equal(r.code, code, argv.join(" "));
      assert.match(r.err, message, argv.join(" "));
    }
    const r = await agentWith({ ...env, CUMULUS_GPU_MAP: "0=nope" }, [
      "partition",
      "create",
      "0",
      "0.5",
      "60",
    ]);
    assert.equal(r.code, 10);
    assert.match(r.err, /CUMULUS_GPU_MAP: expected <device>=<pci bus id>/);
    const l = await agentWith(env, ["partition", "list", "--json"]);
    assert.deepEqual(JSON.parse(l.out).partitions, []);
  });
});

Deno.test("ssh-dispatch allows create-group", async () => {
  await withState(async (dir) => {
    const c = capture({
      CHRONOS_STATE_DIR: dir,
      SSH_ORIGINAL_COMMAND: JSON.stringify([
        "cumulus-agent",
        "partition",
        "create-group",
        "0",
        "0.5",
        "30",
        "--owner",
        "u",
        "--job",
        JOB,
        "--json",
      ]),
    });
    assert.equal(await runAgentCommand(["ssh-dispatch"], c.io), 0, c.err());
    assert.equal(JSON.parse(c.out()).partitions[0].jobId, JOB);
  });
});

Deno.test("an MPS daemon that does not start fails a fractional create and releases it; whole GPUs do not need it", async () => {
  await withGpuWorker(async (env, dirs) => {
    const failing = await writeMpsStandIn(`${dirs.root}`, { exitCode: 3 });
    const bad = { ...env, CUMULUS_MPS_CONTROL: failing.binary };
    let r = await agentWith(bad, ["partition", "create", "0", "0.5", "60", "--job", JOB]);
    assert.equal(r.code, 8, r.err);
    assert.match(r.err, /mps: .* -d for GPU-.* exited with 3/);
    r = await agentWith(env, ["partition", "list", "--json"]);
    assert.deepEqual(JSON.parse(r.out).partitions, []);
    r = await agentWith(bad, ["partition", "create", "0", "1", "60", "--job", JOB, "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.equal((await readGrant(dirs.grants, JSON.parse(r.out).id))?.hostIpc, false);
  });
});
