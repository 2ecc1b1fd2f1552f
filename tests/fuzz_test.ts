/**
 * The short fuzz of every RPC (issue 14, item 4): 1,000 hostile typed and raw
 * messages across both services and the health check, plus 40 misbehaving raw
 * HTTP/2 connections of every kind, against a real orchestrator process. The
 * connection teardowns (GOAWAY after a request, destroy with 50 streams open,
 * reset mid-request) are back in: 0 aborts in 10 runs of this test with them
 * (docs/BENCHMARKS.md, "Fuzz after keepalive (issue 14)"). Deno's HTTP/2 abort
 * (denoland/deno#36788) is still reachable otherwise (bench/h2_abort_repro.ts),
 * so a crash here with `nghttp2_session.c` in the log is most likely that bug.
 * The full run (10,000 messages) is bench/fuzz.ts.
 */
import assert from "node:assert/strict";
import { formatFuzzSummary, formatFuzzTable, runFuzz } from "../bench/fuzz.ts";

Deno.test({
  name: "1,000 fuzzed messages on every RPC: no crash, SERVING after each batch, bounded RSS, " +
    "no UNKNOWN or INTERNAL for client errors",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const report = await runFuzz({
      messages: 1000,
      rawConnections: 40,
      batches: 10,
    });
    console.log(formatFuzzSummary(report));
    console.log(formatFuzzTable(report));
    for (const f of report.findings) {
      console.log(`finding: ${f.rpc}: ${f.seen} (expected ${f.expected}); input ${f.input}`);
    }
    assert.equal(report.crashes, 0, "the orchestrator process ended");
    assert.ok(report.messages >= 1000, `messages: fewer than 1000 sent, got ${report.messages}`);
    assert.equal(report.healthServing, report.batches, "health not SERVING after every batch");
    assert.ok(
      report.rssMaxKiB < 2 * report.rssStartKiB + 200 * 1024,
      `rss: above 2x start + 200 MB, got ${report.rssMaxKiB} KiB from ${report.rssStartKiB} KiB`,
    );
    for (const rpc of Object.keys(report.counts)) {
      assert.ok(!("UNKNOWN" in report.counts[rpc]), `${rpc}: answered UNKNOWN`);
    }
    assert.deepEqual(report.findings, [], "findings");
  },
});
