import assert from "node:assert/strict";

const GUARD = new URL("./crash_guard.ts", import.meta.url).href;

/** Runs `body` in a fresh Deno process, after `installCrashGuard` when `guarded`. */
async function run(body: string, guarded: boolean) {
  const code = `
    import { EventEmitter } from "node:events";
    import { installCrashGuard } from "${GUARD}";
    const lines = [];
    const guard = ${guarded} ? installCrashGuard((l) => lines.push(l)) : null;
    ${body}
    await new Promise((r) => setTimeout(r, 100));
    console.log(JSON.stringify({ alive: true, contained: guard?.contained ?? 0, lines }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return { code: out.code, report: text ? JSON.parse(text.split("\n").pop()!) : null };
}

// What dockerode's modem did with a redirect: an 'error' event nobody listens to, thrown from
// a callback outside any promise; and a rejected promise nobody awaits.
const FAULTS = `
  setTimeout(() => new EventEmitter().emit("error", new Error("getaddrinfo ENOTFOUND x")), 0);
  Promise.reject(new Error("nobody awaits this"));
  setTimeout(() => { throw new TypeError("thrown in a timer"); }, 10);
`;

Deno.test("installCrashGuard() keeps the process alive through uncaught errors and logs each", async () => {
  const { code, report } = await run(FAULTS, true);
  assert.equal(code, 0);
  assert.equal(report.alive, true);
  assert.equal(report.contained, 3);
  assert.ok(report.lines.some((l: string) => /uncaught exception.*ENOTFOUND/.test(l)));
  assert.ok(report.lines.some((l: string) => /unhandled rejection.*nobody awaits this/.test(l)));
  assert.ok(report.lines.some((l: string) => /TypeError: thrown in a timer/.test(l)));
});

Deno.test("without the guard the same faults end the process (the test can fail)", async () => {
  const { code, report } = await run(FAULTS, false);
  assert.notEqual(code, 0);
  assert.equal(report, null);
});
