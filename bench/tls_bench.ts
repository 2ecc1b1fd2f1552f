/**
 * TLS cost (issue 16): submit → first log line through a plaintext orchestrator and a TLS
 * one (CA and certificate from src/tls), alternating, both driven by the TypeScript SDK.
 * Two job kinds: a plain command (its line comes through Docker's log, so TLS is on the
 * client's SubmitJob and WatchJob only) and a bundled command (the job's runtime also
 * fetches the bundle and streams the line over TLS from its container).
 * Run alone: `deno run -A bench/tls_bench.ts` (prints the section); BENCH_TLS_RUNS sets N.
 * @module
 */
import { CumulusClient, packBundle } from "../src/sdk/mod.ts";
import { type Stack, startStack } from "../tests/helpers/stack.ts";
import { fmt, quantile } from "./stats.ts";

const RUNS = Number(Deno.env.get("BENCH_TLS_RUNS") ?? 10);
const SETTLE_MS = Number(Deno.env.get("BENCH_SETTLE_MS") ?? 500);

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, SETTLE_MS));
}

async function firstLog(client: CumulusClient, bundle?: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const job = await client.submit(
    { command: ["sh", "-c", "echo first"] },
    bundle ? { bundle } : {},
  );
  let first = 0;
  for await (const _line of job.logs()) {
    if (!first) first = performance.now();
  }
  await job.wait();
  return first - t0;
}

/** Runs the bench and returns its markdown section. */
export async function runTlsBench(): Promise<string> {
  const stacks: Stack[] = [];
  const dir = await Deno.makeTempDir({ prefix: "cumulus-tls-bench-" });
  try {
    const plain = await startStack({ maxConcurrentJobs: 5 });
    stacks.push(plain);
    const tls = await startStack({ maxConcurrentJobs: 5, tls: true });
    stacks.push(tls);
    await Deno.writeTextFile(`${dir}/run.sh`, "echo first\n");
    const bundle = (await packBundle(dir)).bytes;
    const clients = {
      plain: new CumulusClient(plain.url),
      tls: new CumulusClient(tls.url, { caPem: await Deno.readTextFile(tls.caFile!) }),
    };
    const rows: string[] = [];
    try {
      for (const [kind, b] of [["command", undefined], ["bundled", bundle]] as const) {
        // Warm both paths once (image layers, TLS session set-up).
        await firstLog(clients.plain, b);
        await firstLog(clients.tls, b);
        const off: number[] = [];
        const on: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          await settle();
          off.push(await firstLog(clients.plain, b));
          await settle();
          on.push(await firstLog(clients.tls, b));
          console.error(
            `tls ${kind} ${i + 1}/${RUNS}: plaintext ${fmt(off[i], 0)} ms, TLS ${fmt(on[i], 0)} ms`,
          );
        }
        const [p50off, p95off] = [quantile(off, 0.5), quantile(off, 0.95)];
        const [p50on, p95on] = [quantile(on, 0.5), quantile(on, 0.95)];
        rows.push(
          `| ${kind}: plaintext (baseline) | ${fmt(p50off)} | ${fmt(p95off)} |`,
          `| ${kind}: TLS | ${fmt(p50on)} | ${fmt(p95on)} |`,
          `| **${kind}: ratio (TLS / plaintext)** | **${fmt(p50on / p50off, 2)}** | **${
            fmt(p95on / p95off, 2)
          }** |`,
        );
      }
    } finally {
      clients.plain.close();
      clients.tls.close();
    }
    return [
      "## TLS: submit → first log line with TLS on and off",
      "",
      "Command: `deno run -A bench/tls_bench.ts` (in `deno task bench` as the `tls` section). Two",
      "orchestrators in one process, one plaintext and one TLS (ECDSA P-256 certificate from the",
      `private CA of src/tls), ${RUNS} jobs each, alternating; the TypeScript SDK's \`submit\` → first`,
      "line of `job.logs()`. `command`: `sh -c 'echo first'`, its line through Docker's log (TLS on the",
      "client's calls only); `bundled`: the same with a bundle, so the job's runtime also fetches the",
      "bundle and streams the line over TLS from its container.",
      "",
      "| path | p50 ms | p95 ms |",
      "| ---- | ------ | ------ |",
      ...rows,
      "",
    ].join("\n");
  } finally {
    for (const s of stacks) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) console.log(await runTlsBench());
