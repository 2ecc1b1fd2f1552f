/**
 * A short, bounded run of the HTTP/2 soak (bench/soak_http2.ts, issue 14
 * item 2): a real orchestrator process under the traffic that once aborted it
 * (a new CLI process each second, idle Python SDK clients, WatchJob streams
 * killed mid-stream, one clean restart), which must still be alive and serving
 * at the end. The long version is `deno task soak --duration 10m`.
 *
 * Deno's own HTTP/2 abort (denoland/deno#36788) may still strike: the server's
 * keepalive removed the idle-session trigger this soak found, but
 * bench/h2_abort_repro.ts shows another no code of ours can reach. The soak
 * restarts an aborted orchestrator as the supervisor does, so what must hold is
 * that any abort is that known one, that the orchestrator serves again, and
 * that only calls around a restart fail.
 * @module
 */
import assert from "node:assert/strict";
import { formatSoakSummary, runSoak } from "../bench/soak_http2.ts";

Deno.test({
  name: "the orchestrator survives a 25 s HTTP/2 soak and keeps serving",
  async fn() {
    const result = await runSoak({
      durationS: 25,
      cliIntervalS: 1,
      pythonClients: 2,
      pythonWatchers: 1,
      idleMinS: 3,
      idleMaxS: 8,
      watchers: 1,
      killMaxS: 15,
      restartEveryS: 15,
    });
    const summary = formatSoakSummary(result);
    for (const a of result.aborts) {
      assert.ok(
        /nghttp2_session\.c/.test(a.line) || a.signal === "SIGSEGV" || a.code === 139,
        `not the known upstream abort: ${JSON.stringify(a)}; ${summary}`,
      );
    }
    if (result.aborts.length > 0) console.log(`known upstream aborts, recovered: ${summary}`);
    assert.ok(result.serving, summary);
    // A restart or an abort costs a few calls each (they fail with UNAVAILABLE meanwhile).
    assert.ok(
      result.failedCalls <= 5 * (result.restarts + result.aborts.length),
      `too many failed calls: ${summary}`,
    );
    assert.equal(result.restarts, 1, summary);
    assert.ok(result.cliCalls >= 10, summary);
    assert.ok(result.sessions >= result.cliCalls + 3, summary);
  },
});
