/**
 * A fast reproduction of Deno's HTTP/2 abort (denoland/deno#36788) on the
 * orchestrator: `calls` Health/Check calls over 4 client connections (50 in
 * flight), then a fifth connection makes one call and closes its channel.
 * Each run starts a fresh orchestrator process (`main.ts orchestrator`, no
 * jobs, loopback only) and reports whether it was still alive a second later.
 * Use it to check a Deno or grpc-js upgrade, or a server option, against the
 * abort: 5 of 6 runs died at 1,000 calls on Deno 2.9.6 with grpc-js 1.14.7
 * (docs/operations.md, "What one client may hold open").
 *
 * Run: `deno run -A bench/h2_abort_repro.ts [RUNS] [CALLS]` (default 6 runs of 1,000 calls).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { loadHealthProto } from "../src/rpc/mod.ts";
import { freePort, spawnOrchestrator } from "../tests/helpers/process.ts";

/** What one run saw. */
export interface ReproRun {
  /** True when the orchestrator process had ended a second after the last client closed. */
  died: boolean;
  /** Its exit code and the last line of its log when it died. */
  exit: string;
}

/**
 * One run against a fresh orchestrator process.
 * @param calls Health/Check calls before the closing client.
 */
export async function reproOnce(calls: number): Promise<ReproRun> {
  const dataDir = await Deno.makeTempDir({ prefix: "cumulus-h2repro-" });
  const orch = await spawnOrchestrator(dataDir, freePort());
  const Health = loadHealthProto();
  // Each client on a connection of its own (grpc-js otherwise shares one per target).
  const connect = () =>
    new Health(orch.url, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
    }) as unknown as grpc.Client & Record<string, CallableFunction>;
  const check = (c: grpc.Client & Record<string, CallableFunction>) =>
    new Promise<void>((resolve) =>
      c.Check({ service: "" }, { deadline: Date.now() + 10_000 }, () => resolve())
    );
  const clients = Array.from({ length: 4 }, connect);
  let ended: Deno.CommandStatus | null = null;
  orch.status.then((s) => ended = s);
  try {
    for (let sent = 0; sent < calls; sent += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => check(clients[k % 4])));
    }
    const last = connect();
    await check(last);
    last.close();
    await new Promise((r) => setTimeout(r, 1000));
    const s = ended as Deno.CommandStatus | null;
    return {
      died: s !== null,
      exit: s ? `code ${s.code}: ${orch.stderr().trim().split("\n").pop()}` : "",
    };
  } finally {
    for (const c of clients) c.close();
    try {
      orch.child.kill("SIGKILL");
    } catch { /* already ended */ }
    await orch.status;
    await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) {
  const runs = Number(Deno.args[0] ?? 6);
  const calls = Number(Deno.args[1] ?? 1000);
  let died = 0;
  for (let i = 1; i <= runs; i++) {
    const r = await reproOnce(calls);
    if (r.died) died++;
    console.log(`run ${i}: ${r.died ? `died (${r.exit})` : "alive"}`);
  }
  console.log(
    `${calls} calls, then one client closes: the orchestrator died in ${died} of ${runs} runs`,
  );
  Deno.exit(0);
}
