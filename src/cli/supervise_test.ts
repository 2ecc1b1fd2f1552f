import assert from "node:assert/strict";
import { processAlive } from "../core/mod.ts";
import { readCrashes, readSupervisorState, restartDelay } from "./supervise.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("restartDelay() restarts at once, backing off only while crashes stay quick", () => {
  const cases: Array<[number, number]> = [[0, 0], [1, 0], [2, 1000], [3, 2000], [4, 4000], [
    9,
    30_000,
  ]];
  for (const [quick, want] of cases) assert.equal(restartDelay(quick), want, String(quick));
});

/** Starts `cumulus supervise` on `script` (sh) with its output in `<dir>/demo.log`. */
function supervise(dir: string, script: string): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: [
      "-c",
      'log="$1"; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      `${dir}/demo.log`,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN,
      "supervise",
      "--name",
      "demo",
      "--run-dir",
      dir,
      "--",
      "sh",
      "-c",
      script,
      "demo",
      dir,
    ],
    stdin: "null",
  }).spawn();
}

async function until<T>(what: string, probe: () => Promise<T | null>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await probe();
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Runs 1 and 2 crash with exit 3 after printing "boom"; run 3 and later stay up.
const CRASH_TWICE = `n=$(cat "$1/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1/count"
echo "run $n"; if [ $n -lt 3 ]; then echo "boom $n" >&2; exit 3; fi; exec sleep 60`;

Deno.test("cumulus supervise restarts a crashed piece, records each crash, and stops it on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-supervise-" });
  const sup = supervise(dir, CRASH_TWICE);
  try {
    const state = await until("run 3", async () => {
      const s = await readSupervisorState(dir, "demo");
      return s && s.restarts === 2 && processAlive(s.childPid) ? s : null;
    });
    assert.equal(state.supervisorPid, sup.pid);
    let crashes = await readCrashes(dir, "demo");
    assert.deepEqual(crashes.map((c) => [c.exitCode, c.signal]), [[3, null], [3, null]]);
    assert.ok(crashes[0].lastLines.includes("boom 1"), crashes[0].lastLines.join("|"));
    // A crash by signal (as the orchestrator's abort) is recorded as such and restarted.
    Deno.kill(state.childPid, "SIGKILL");
    const after = await until("run 4", async () => {
      const s = await readSupervisorState(dir, "demo");
      return s && s.restarts === 3 && processAlive(s.childPid) ? s : null;
    }, 8000);
    crashes = await readCrashes(dir, "demo");
    assert.deepEqual([crashes[2].exitCode, crashes[2].signal], [null, "SIGKILL"]);
    const log = await Deno.readTextFile(`${dir}/demo.log`);
    assert.match(
      log,
      /supervisor: demo killed by SIGKILL after [\d.]+ s; restarting in 2 s \(it keeps crashing\) \(restart 3\)/,
    );
    // SIGTERM: the piece stops, then the supervisor, which exits 0 and leaves no state.
    Deno.kill(sup.pid, "SIGTERM");
    assert.equal((await sup.status).code, 0);
    assert.ok(!processAlive(after.childPid), "the piece stopped with its supervisor");
    assert.equal(await readSupervisorState(dir, "demo"), null);
  } finally {
    try {
      sup.kill("SIGKILL");
    } catch { /* ended */ }
    await sup.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cumulus supervise gives up on a piece that cannot start, with its exit code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-supervise-" });
  const sup = supervise(dir, 'echo "bad config" >&2; exit 7');
  try {
    const status = await sup.status;
    assert.equal(status.code, 7);
    assert.equal((await readCrashes(dir, "demo")).length, 5);
    assert.match(await Deno.readTextFile(`${dir}/demo.log`), /5 quick crashes in a row: giving up/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
