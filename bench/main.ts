/**
 * `deno task bench`: runs every benchmark section and writes
 * docs/BENCHMARKS.md. Each section measures Cumulus against a baseline in
 * the same run. Sections: spine (orchestrator), chronos (if built), the OCI
 * runtime wrapper (gpu-runtime: runc with and without cumulus-gpu-runc),
 * the fuzz of every RPC (fuzz: 10,000 hostile messages against a real
 * orchestrator process), load (100 trivial jobs from 8 clients beside a raw
 * `service create` loop; `deno task bench load --jobs 1000` for the full
 * run), time-boxing (timebox: expiry precision and resume latency), and the
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

const sections: string[] = [];
const only = Deno.args[0];
if (!only || only === "spine") sections.push(await runSpineBench());
if (!only || only === "chronos") {
  sections.push(
    await optionalSection("Chronos", async () => {
      const mod = await import("./chronos_bench.ts");
      return await mod.runChronosBench();
    }),
  );
}
if (!only || only === "python") {
  sections.push(
    await optionalSection("Python SDK", async () => {
      const mod = await import("./python_bench.ts");
      return await mod.runPythonBench();
    }),
  );
}
if (!only || only === "checkpoint") {
  sections.push(
    await optionalSection("Checkpoints", async () => {
      const mod = await import("./checkpoint_bench.ts");
      return await mod.runCheckpointBench();
    }),
  );
}
if (!only || only === "gpu-runtime") {
  sections.push(
    await optionalSection("OCI runtime wrapper (issue 13)", async () => {
      const mod = await import("./gpu_runtime_bench.ts");
      return await mod.runGpuRuntimeBench();
    }),
  );
}
if (!only || only === "fuzz") {
  sections.push(
    await optionalSection("Fuzz", async () => {
      const mod = await import("./fuzz.ts");
      return await mod.runFuzzBench();
    }),
  );
}
if (!only || only === "load") {
  sections.push(
    await optionalSection("Load", async () => {
      const mod = await import("./load.ts");
      return await mod.runLoadBench(mod.parseLoadFlags(only ? Deno.args.slice(1) : []));
    }),
  );
}
if (!only || only === "timebox") {
  sections.push(
    await optionalSection("Time-boxing", async () => {
      const mod = await import("./timebox.ts");
      return await mod.runTimeboxBench(mod.parseTimeboxFlags(only ? Deno.args.slice(1) : []));
    }),
  );
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
