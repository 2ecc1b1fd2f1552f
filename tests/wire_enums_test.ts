/**
 * The job lifecycle is declared in four places (proto/cumulus.proto, core,
 * the TypeScript SDK, the Python SDK), because the SDKs must import nothing
 * of the orchestrator. This test holds them equal, so a state added in one
 * place and forgotten in another fails here, not in a user's program.
 */
import assert from "node:assert/strict";
import { JOB_STATES as CORE_STATES, TERMINAL_STATES } from "../src/core/mod.ts";
import { isTerminalState, JOB_STATES as SDK_STATES } from "../src/sdk/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PROTO = await Deno.readTextFile(`${ROOT}proto/cumulus.proto`);

/** The members of `enum name { … }` in proto order, with their numbers. */
function protoEnum(name: string): Array<[string, number]> {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(PROTO);
  assert.ok(body, `proto/cumulus.proto has no enum ${name}`);
  return [...body[1].matchAll(/^\s*([A-Z_]+)\s*=\s*(\d+);/gm)].map((m) => [m[1], Number(m[2])]);
}

Deno.test("JobState: the proto enum, core and the TypeScript SDK list the same states in order", () => {
  const members = protoEnum("JobState");
  assert.deepEqual(members[0], ["JOB_STATE_UNSPECIFIED", 0]);
  const named = members.slice(1);
  assert.deepEqual(named.map(([n]) => n), [...CORE_STATES]);
  assert.deepEqual([...SDK_STATES], [...CORE_STATES]);
  // Lifecycle order is wire order: QUEUED = 1, SCHEDULED = 2, …
  assert.deepEqual(named.map(([, v]) => v), named.map((_, i) => i + 1));
});

Deno.test("terminal states agree in core, the TypeScript SDK and the Python SDK", async () => {
  const core = [...TERMINAL_STATES].sort();
  assert.deepEqual(CORE_STATES.filter(isTerminalState).sort(), core);
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import json, cumulus.job as j; print(json.dumps(sorted(j.TERMINAL_STATES)))"],
    env: { PYTHONPATH: `${ROOT}src/sdk/python`, PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), core);
});

Deno.test("LogStream: the proto enum has exactly the streams a log line names", () => {
  assert.deepEqual(protoEnum("LogStream"), [["STDOUT", 0], ["STDERR", 1]]);
});
