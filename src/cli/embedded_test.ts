import assert from "node:assert/strict";
import { pause } from "../core/pause.ts";
import {
  builtExecutable,
  defaultUpDataDir,
  EmbeddedPaths,
  readState,
  runningPid,
  spawnDetached,
  stopPiece,
  writeState,
} from "./embedded.ts";

Deno.test("EmbeddedPaths: relative data dirs resolve against the cwd", () => {
  const p = new EmbeddedPaths("./data", "/home/ada/work");
  assert.equal(p.dataDir, "/home/ada/work/data");
  assert.equal(p.pidFile("orchestrator"), "/home/ada/work/data/up/orchestrator.pid");
  assert.equal(p.logFile("s3rver"), "/home/ada/work/data/up/s3rver.log");
  assert.equal(new EmbeddedPaths("/srv/c", "/x").s3Dir, "/srv/c/s3");
});

Deno.test({
  name: "a detached piece is found by its pid file, not mistaken for another, and stops on SIGTERM",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cumulus-embedded-" });
    const paths = new EmbeddedPaths(dir, "/");
    try {
      assert.equal(await runningPid(paths, "orchestrator"), null, "no pid file yet");
      // bash stays the process (the sleep is not its last command), and its
      // command line carries the piece's marker word.
      const proc = await spawnDetached(paths, "orchestrator", [
        "bash",
        "-c",
        "echo started; sleep 30; : orchestrator",
      ], { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" });
      const pid = proc.pid;
      assert.equal(proc.exited(), false);
      // The piece runs under its supervisor (a Deno process): wait for both to be up.
      const until = Date.now() + 20_000;
      while (
        Date.now() < until &&
        !/started/.test(await Deno.readTextFile(paths.logFile("orchestrator")))
      ) await pause(50);
      assert.equal(await runningPid(paths, "orchestrator"), pid);
      assert.match(await Deno.readTextFile(paths.logFile("orchestrator")), /started/);
      // A pid file naming a live process of another kind is not ours.
      await Deno.writeTextFile(paths.pidFile("s3rver"), `${pid}\n`);
      assert.equal(await runningPid(paths, "s3rver"), null);
      assert.equal(await stopPiece(paths, "orchestrator", 5000), pid);
      assert.equal(await runningPid(paths, "orchestrator"), null);
      await pause(50);
      assert.ok(proc.exited(), "our child saw it exit");
      await assert.rejects(Deno.stat(paths.pidFile("orchestrator")));
      assert.equal(await stopPiece(paths, "orchestrator"), null, "stopping twice is fine");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("state.json round-trips; a missing one reads as null", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-embedded-" });
  try {
    const paths = new EmbeddedPaths(dir, "/");
    assert.equal(await readState(paths), null);
    const state = { port: 50051, s3Endpoint: "http://127.0.0.1:4568", s3Bucket: "b-1" };
    await writeState(paths, state);
    assert.deepEqual(await readState(paths), state);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("defaultUpDataDir() is ./cumulus-data from a checkout, the XDG data dir when built", async () => {
  const exe = await Deno.makeTempFile({ prefix: "cumulus-self-" });
  try {
    const env = (vars: Record<string, string>) => (name: string) => vars[name];
    // Run by `deno test`: a checkout, unless the stub named the built file.
    assert.equal(defaultUpDataDir(env({ HOME: "/h" })), "./cumulus-data");
    assert.equal(builtExecutable(env({})), false);
    const built = { CUMULUS_SELF: exe };
    assert.equal(builtExecutable(env(built)), true);
    assert.equal(defaultUpDataDir(env({ ...built, HOME: "/h" })), "/h/.local/share/cumulus");
    assert.equal(
      defaultUpDataDir(env({ ...built, HOME: "/h", XDG_DATA_HOME: "/x" })),
      "/x/cumulus",
    );
    assert.throws(() => defaultUpDataDir(env(built)), /set HOME or XDG_DATA_HOME/);
    // A CUMULUS_SELF that names no file is ignored (a stale variable from elsewhere).
    assert.equal(builtExecutable(env({ CUMULUS_SELF: `${exe}.gone` })), false);
  } finally {
    await Deno.remove(exe);
  }
});
