/**
 * `deno task bench`: runs every benchmark section and writes
 * docs/BENCHMARKS.md. Each section measures Cumulus against a baseline in
 * the same run. Sections: spine (orchestrator), chronos (if built), the OCI
 * runtime wrapper (gpu-runtime: runc with and without cumulus-gpu-runc),
 * the fuzz of every RPC (fuzz: 10,000 hostile messages against a real
 * orchestrator process), load (100 trivial jobs from 8 clients beside a raw
 * `service create` loop; `deno task bench load --jobs 1000` for the full
 * run), time-boxing (timebox: expiry precision and resume latency), `cumulus
 * up`'s time to the first demo result from a checkout and from the built
 * executable (up), and the
 * recorded runs: the real-GPU runs
 * (docs/gpu_run.md, produced on the GPU machine) and the HTTP/2 soak
 * (docs/soak_run.md, `deno task soak`, too long for the bench).
 * @module
 */
import { runSpineBench } from "./spine_bench.ts";

async function optionalSection(name: string, fn: () => Promise<string>): Promise<string> {
  try {
    return await fn();
  } catch (err) {
    return `## ${name}\n\nNot measured in this run: ${(err as Error).message}\n`;
  }
}

/** Flags after the section name (`deno task bench load --jobs 1000`); none in a full run. */
const only = Deno.args[0];
const flags = only ? Deno.args.slice(1) : [];

/** Every section but spine, in output order: its key, its title when not measured, its run. */
const OPTIONAL: Array<[key: string, name: string, run: () => Promise<string>]> = [
  ["chronos", "Chronos", async () => (await import("./chronos_bench.ts")).runChronosBench()],
  ["python", "Python SDK", async () => (await import("./python_bench.ts")).runPythonBench()],
  [
    "checkpoint",
    "Checkpoints",
    async () => (await import("./checkpoint_bench.ts")).runCheckpointBench(),
  ],
  [
    "gpu-runtime",
    "OCI runtime wrapper (issue 13)",
    async () => (await import("./gpu_runtime_bench.ts")).runGpuRuntimeBench(),
  ],
  ["tls", "TLS (issue 16)", async () => (await import("./tls_bench.ts")).runTlsBench()],
  [
    "up",
    "Time to first demo result (issue 18)",
    async () => (await import("./up_bench.ts")).runUpBench(),
  ],
  ["fuzz", "Fuzz", async () => (await import("./fuzz.ts")).runFuzzBench()],
  ["load", "Load", async () => {
    const mod = await import("./load.ts");
    return await mod.runLoadBench(mod.parseLoadFlags(flags));
  }],
  ["timebox", "Time-boxing", async () => {
    const mod = await import("./timebox.ts");
    return await mod.runTimeboxBench(mod.parseTimeboxFlags(flags));
  }],
];

const sections: string[] = [];
if (!only || only === "spine") sections.push(await runSpineBench());
for (const [key, name, run] of OPTIONAL) {
  if (!only || only === key) sections.push(await optionalSection(name, run));
}
// Runs recorded elsewhere (the GPU machine; long soaks), kept as their own docs and appended.
const recorded: string[] = [];
for (const doc of ["gpu_run.md", "soak_run.md", "load_run.md"]) {
  try {
    recorded.push(await Deno.readTextFile(new URL(`../docs/${doc}`, import.meta.url)));
  } catch {
    // Not recorded yet.
  }
}
const header = [
  "# Benchmarks",
  "",
  `Written by \`deno task bench\` on ${new Date().toISOString()} (git ${await gitRev()}).`,
  "Every figure is a ratio against a baseline measured in the same run on the same machine.",
  "",
].join("\n");
const body = [header, ...sections, ...recorded].filter((s) => s).join("\n");
const out = new URL("../docs/BENCHMARKS.md", import.meta.url);
if (only) {
  console.log(body);
} else {
  await Deno.writeTextFile(out, body);
  console.log(`wrote ${out.pathname}`);
}
Deno.exit(0);

async function gitRev(): Promise<string> {
  try {
    const { stdout } = await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"] })
      .output();
    return new TextDecoder().decode(stdout).trim();
  } catch {
    return "unknown";
  }
}
