/**
 * A short, bounded run of the HTTP/2 soak (bench/soak_http2.ts, issue 14
 * item 2): a real orchestrator process under the traffic that once aborted it
 * (a new CLI process each second, idle Python SDK clients, WatchJob streams
 * killed mid-stream, one clean restart), which must still be alive and serving
 * at the end. The long version is `deno task soak --duration 10m`.
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
    assert.deepEqual(result.aborts, [], summary);
    assert.ok(result.serving, summary);
    assert.equal(result.restarts, 1, summary);
    assert.ok(result.cliCalls >= 10, summary);
    assert.ok(result.sessions >= result.cliCalls + 3, summary);
  },
});
