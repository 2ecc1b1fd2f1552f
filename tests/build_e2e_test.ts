/**
 * End-to-end test of scripts/build.sh: builds dist/ (or finds it up to date), copies the
 * executables out under the build lock (`--copy-to`, so a build started by someone else beside
 * us cannot swap them half-way), then runs them with no Deno and no node_modules anywhere in
 * reach: `env -i` with PATH=/usr/bin:/bin, a fresh HOME and a fresh empty working directory. The orchestrator serves on a random loopback
 * port against the local Swarm (SWARM_MANAGER), the agent loads libchronos.so and lists the
 * OpenCL devices, and the CLI runs a job through the orchestrator.
 */
import assert from "node:assert/strict";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const SWARM_SOCKET = Deno.env.get("SWARM_MANAGER") ?? "/run/cumulus-docker.sock";
const JOB_IMAGE = Deno.env.get("CUMULUS_JOB_IMAGE") ?? "cumulus-job:latest";
/** The only PATH the built executables get: system tools, no Deno, no node_modules/.bin. */
const BARE_PATH = "/usr/bin:/bin";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

const decoder = new TextDecoder();

async function run(cmd: Deno.Command): Promise<Result> {
  const t0 = performance.now();
  const out = await cmd.output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    ms: Math.round(performance.now() - t0),
  };
}

/** A built program under `env -i`: only the variables given here reach it. */
function built(
  program: string,
  args: string[],
  sandbox: Sandbox,
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(`${sandbox.bin}/${program}`, {
    args,
    cwd: sandbox.cwd,
    clearEnv: true,
    env: { PATH: BARE_PATH, HOME: sandbox.home, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

interface Sandbox {
  root: string;
  /** The built executables, copied here by `build.sh --copy-to`. */
  bin: string;
  home: string;
  cwd: string;
}

async function makeSandbox(): Promise<Sandbox> {
  const root = await Deno.makeTempDir({ prefix: "cumulus-build-e2e-" });
  const sandbox = { root, bin: `${root}/bin`, home: `${root}/home`, cwd: `${root}/work` };
  await Deno.mkdir(sandbox.home);
  await Deno.mkdir(sandbox.cwd);
  return sandbox;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function git(args: string[]): Promise<string> {
  const r = await run(
    new Deno.Command("git", { args: ["-C", ROOT, ...args], stdout: "piped", stderr: "piped" }),
  );
  assert.equal(r.code, 0, `git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs scripts/build.sh, copying the executables into `copyTo`. */
function build(copyTo: string): Promise<Result> {
  return run(
    new Deno.Command("bash", {
      args: [`${ROOT}/scripts/build.sh`, "--copy-to", copyTo],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
}

/** The input hash build.sh printed ("inputs 0123456789ab"). */
function inputsOf(r: Result): string {
  const m = r.stdout.match(/\(inputs ([0-9a-f]{12})\)/);
  assert.ok(m, r.stdout);
  return m[1];
}

const PROGRAMS = ["cumulus", "cumulus-orchestrator", "cumulus-agent"];

Deno.test({
  name: "build.sh says which way it built, writes three executables, and skips an unchanged build",
  ...opts,
  fn: async () => {
    const sandbox = await makeSandbox();
    try {
      const r = await build(sandbox.bin);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^==> build: (deno compile|offline self-extracting fallback)/m);
      assert.match(r.stdout, /^==> build: (done|up to date)/m);
      for (const p of PROGRAMS) {
        const st = await Deno.stat(`${sandbox.bin}/${p}`);
        assert.ok(st.isFile && (st.mode! & 0o111) !== 0, `${p} is not executable`);
      }
      const again = await build(sandbox.bin);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      if (inputsOf(again) === inputsOf(r)) {
        // Nothing changed since: the second build is the hash check only.
        assert.match(again.stdout, /^==> build: up to date/m);
      } else {
        // Someone edited the shared tree in between: a rebuild is the right answer.
        assert.match(again.stdout, /^==> build: done/m);
      }
      console.log(
        `build: ${r.ms} ms, then ${again.ms} ms (${again.stdout.match(/up to date|done/)})`,
      );
    } finally {
      await Deno.remove(sandbox.root, { recursive: true });
    }
  },
});

Deno.test({
  name: "the built executables run with no Deno: version, agent gpus, orchestrator + CLI job",
  ...opts,
  fn: async (t) => {
    const sandbox = await makeSandbox();
    let orchestrator: Deno.ChildProcess | undefined;
    const jobIds: string[] = [];
    try {
      const b = await build(sandbox.bin);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      const fallback = b.stdout.includes("offline self-extracting fallback");
      // The commit build.sh stamped (HEAD may move while we run: others commit beside us).
      const stamped = b.stdout.match(/^ {4}cumulus [^,]+, commit (\S+), deno /m)?.[1];
      assert.ok(stamped, b.stdout);
      await t.step("nothing Deno is in reach of the sandbox", async () => {
        const which = await run(
          new Deno.Command("sh", {
            args: ["-c", "command -v deno node; ls -A; ls -d node_modules ../node_modules"],
            cwd: sandbox.cwd,
            clearEnv: true,
            env: { PATH: BARE_PATH, HOME: sandbox.home },
            stdout: "piped",
          }),
        );
        assert.equal(which.stdout, "", "deno/node on PATH or files in the working dir");
      });

      await t.step(
        "cumulus version prints version and commit (3 concurrent first runs)",
        async () => {
          const override = Deno.env.get("CUMULUS_BUILD_COMMIT");
          if (override) {
            assert.equal(stamped, override);
          } else {
            const m = stamped.match(/^([0-9a-f]{12})(-dirty)?$/);
            assert.ok(m, `stamped commit ${stamped}`);
            await git(["cat-file", "-e", `${m[1]}^{commit}`]);
          }
          const runs = await Promise.all(
            [1, 2, 3].map(() => run(built("cumulus", ["version"], sandbox))),
          );
          for (const r of runs) {
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, runs[0].stdout);
          }
          assert.match(runs[0].stdout, /^cumulus \d+\.\d+\.\d+ \(deno [^,]+, .*, commit \S+\)\n$/);
          assert.ok(runs[0].stdout.endsWith(`, commit ${stamped})\n`), runs[0].stdout);
          const json = await run(built("cumulus", ["--json", "version"], sandbox));
          assert.equal(json.code, 0, json.stderr);
          assert.equal(JSON.parse(json.stdout).commit, stamped);
          const later = await run(built("cumulus", ["version"], sandbox));
          console.log(
            `cumulus version: first runs ${
              runs.map((r) => r.ms).join("/")
            } ms, later ${later.ms} ms`,
          );
          if (fallback) {
            // One unpacked copy, shared by the three programs, no temporary leftovers.
            const tag = (await Deno.readTextFile(`${sandbox.bin}/.cache-tag`)).trim();
            const cache = `${sandbox.home}/.cache/cumulus`;
            const entries = [];
            for await (const e of Deno.readDir(cache)) entries.push(e.name);
            assert.deepEqual(entries, [tag]);
            const before = (await Deno.stat(`${cache}/${tag}/.complete`)).ino;
            const again = await run(built("cumulus-agent", ["--help"], sandbox));
            assert.equal(again.code, 0, again.stderr);
            assert.equal((await Deno.stat(`${cache}/${tag}/.complete`)).ino, before);
          }
        },
      );

      await t.step("cumulus-agent gpus --json loads libchronos.so and lists a device", async () => {
        const r = await run(built("cumulus-agent", ["gpus", "--json"], sandbox));
        assert.equal(r.code, 0, r.stderr);
        const { devices } = JSON.parse(r.stdout);
        assert.ok(Array.isArray(devices) && devices.length >= 1, r.stdout);
        assert.equal(typeof devices[0].name, "string");
        assert.ok(devices[0].totalMemoryBytes > 0);
      });

      await t.step(
        "cumulus-orchestrator serves; cumulus run prints built-ok; SIGTERM exits 0",
        async () => {
          const port = freePort();
          const dataDir = `${sandbox.root}/data`;
          orchestrator = built("cumulus-orchestrator", [], sandbox, {
            ORCHESTRATOR_PORT: String(port),
            ORCHESTRATOR_METRICS_PORT: "-1",
            SWARM_MANAGER: SWARM_SOCKET,
            CUMULUS_DATA_DIR: dataDir,
            CUMULUS_JOB_IMAGE: JOB_IMAGE,
          }).spawn();
          let log = "";
          const stderrDone = (async () => {
            for await (const chunk of orchestrator!.stderr) log += decoder.decode(chunk);
          })();
          const stdoutDone = orchestrator.stdout.cancel();
          const deadline = Date.now() + 30_000;
          while (!log.includes("listening on")) {
            assert.ok(Date.now() < deadline, `orchestrator did not start:\n${log}`);
            const early: Deno.CommandStatus | undefined = await Promise.race([
              orchestrator.status,
              new Promise<undefined>((r) => setTimeout(() => r(undefined), 50)),
            ]);
            assert.equal(early, undefined, `orchestrator exited before listening:\n${log}`);
          }

          const client = {
            CUMULUS_ORCHESTRATOR_URL: `127.0.0.1:${port}`,
            // The first admin token, which a fresh orchestrator writes to its data dir.
            CUMULUS_TOKEN: (await Deno.readTextFile(`${dataDir}/admin-token`)).trim(),
          };
          const job = await run(
            built(
              "cumulus",
              ["run", "--no-bundle", "--", "sh", "-c", "echo built-ok"],
              sandbox,
              client,
            ),
          );
          assert.equal(job.stdout, "built-ok\n", job.stderr);
          assert.equal(job.code, 0, job.stderr);
          // The CLI may read its working directory (the job bundle) and nothing else.
          await Deno.writeTextFile(`${sandbox.cwd}/input.txt`, "from-cwd\n");
          const bundled = await run(
            built("cumulus", ["run", "--", "sh", "-c", "cat input.txt"], sandbox, client),
          );
          assert.equal(bundled.stdout, "from-cwd\n", bundled.stderr);
          assert.equal(bundled.code, 0, bundled.stderr);
          const jobs = await run(built("cumulus", ["jobs", "--all", "--json"], sandbox, client));
          assert.equal(jobs.code, 0, jobs.stderr);
          const list = JSON.parse(jobs.stdout) as { id: string; state: string }[];
          jobIds.push(...list.map((j) => j.id));
          assert.deepEqual(list.map((j) => j.state), ["SUCCEEDED", "SUCCEEDED"]);
          console.log(`cumulus run --no-bundle: ${job.ms} ms; with a bundle: ${bundled.ms} ms`);

          orchestrator.kill("SIGTERM");
          const status = await orchestrator.status;
          await Promise.all([stderrDone, stdoutDone]);
          assert.equal(status.code, 0, log);
          assert.match(log, /stopped/);
          orchestrator = undefined;
        },
      );
    } finally {
      if (orchestrator) {
        try {
          orchestrator.kill("SIGKILL");
        } catch { /* already gone */ }
        await orchestrator.status;
      }
      await removeServices(jobIds);
      await Deno.remove(sandbox.root, { recursive: true });
    }
  },
});

/** Removes Swarm services of this test's jobs only (other tests run beside us). */
async function removeServices(jobIds: string[]): Promise<void> {
  for (const id of jobIds) {
    const ls = await run(
      new Deno.Command("docker", {
        args: ["service", "ls", "-q", "--filter", `label=cumulus.job=${id}`],
        env: { DOCKER_HOST: `unix://${SWARM_SOCKET}` },
        stdout: "piped",
        stderr: "piped",
      }),
    );
    const services = ls.stdout.split("\n").filter((s) => s !== "");
    if (services.length === 0) continue;
    await run(
      new Deno.Command("docker", {
        args: ["service", "rm", ...services],
        env: { DOCKER_HOST: `unix://${SWARM_SOCKET}` },
        stdout: "piped",
        stderr: "piped",
      }),
    );
  }
}
