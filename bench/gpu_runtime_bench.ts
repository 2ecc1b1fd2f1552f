/**
 * What cumulus-gpu-runc (the OCI runtime wrapper of issue 13) adds to a container start.
 *
 * `runc run` of a trivial container (`/bin/true`), in alternating rounds:
 * - runc itself on a plain config (the baseline),
 * - through the wrapper, a job container whose partitions have no grant here (read, untouched),
 * - through the wrapper, a job with 2 grants (2 stand-in GPUs + a shared control node, a
 *   read-only driver mount, env, pathEnv, host IPC): the config is rewritten,
 * - runc itself on that rewritten config, to split what runc spends on the extra nodes and
 *   mounts from what the wrapper spends.
 * Then the wrapper alone, with /bin/true as its downstream runtime, against /bin/true run directly.
 *
 * Bundles and runc's state live on tmpfs (/dev/shm), as Docker's do under /run. Run alone:
 * `deno run -A bench/gpu_runtime_bench.ts` prints a Markdown section.
 * @module
 */
import {
  BASE_IMAGE,
  containerConfig,
  containerId,
  exportRootfs,
  type GrantFile,
  makeStandIns,
  type OciConfig,
  requireWrapper,
  runcSpec,
  runProgram,
  writeBundle,
  writeGrant,
} from "../tests/helpers/oci_bundle.ts";
import { fmt, quantile } from "./stats.ts";

const JOB = "j-0123456789ab";
const PARTITIONS = ["p-00000000000a", "p-00000000000b"];
/** Rounds of `runc run` (each runs every variant once). @default 100 */
const ROUNDS = Number(Deno.env.get("GPU_RUNC_BENCH_ROUNDS") ?? 100);
/** Calls of the wrapper alone per variant. @default 300 */
const CALLS = Number(Deno.env.get("GPU_RUNC_BENCH_CALLS") ?? 300);
/** Target from issue 13: the wrapper adds under 30 ms to a container start at p50. */
const TARGET_MS = 30;

interface Variant {
  name: string;
  program: string;
  args: (bundle: string, id: string) => string[];
  config: OciConfig;
  samples: number[];
}

async function timed(program: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await runProgram(program, args);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${program} ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  return ms;
}

/**
 * One table row: p50, p95 and what the variant adds to the baseline, as the median of the
 * per-round differences (both ran in the same round, so drift in machine load cancels).
 */
function row(name: string, samples: number[], baseline: number[] | null): string {
  const added = baseline === null ? "—" : signed(pairedAdded(samples, baseline));
  return `| ${name} | ${samples.length} | ${fmt(quantile(samples, 0.5), 2)} | ${
    fmt(quantile(samples, 0.95), 2)
  } | ${added} |`;
}

function pairedAdded(samples: number[], baseline: number[]): number {
  return quantile(samples.map((x, i) => x - baseline[i]), 0.5);
}

function signed(ms: number): string {
  return `${ms >= 0 ? "+" : ""}${fmt(ms, 2)}`;
}

async function hostDescription(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = info.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  const runc = (await runProgram("runc", ["--version"])).stdout.split("\n")[0];
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  return `${cpu}, ${navigator.hardwareConcurrency} CPUs, load average ${load}, ${runc}`;
}

/** Runs the benchmark and returns its Markdown section. */
export async function runGpuRuntimeBench(): Promise<string> {
  const wrapper = await requireWrapper();
  const disk = await Deno.makeTempDir({ prefix: "cumulus-gpu-runc-bench-" });
  const shm = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "cumulus-gpu-runc-bench-" });
  try {
    const rootfs = `${disk}/rootfs`;
    await exportRootfs(BASE_IMAGE, rootfs);
    await Deno.mkdir(`${disk}/dev`);
    const dev = await makeStandIns(`${disk}/dev`, ["nvidia0", "nvidia1", "nvidiactl"]);
    await Deno.mkdir(`${disk}/driver`);
    const grants = `${shm}/grants`;
    const runcRoot = `${shm}/runc-root`;
    await Deno.mkdir(runcRoot);
    for (const [index, partitionId] of PARTITIONS.entries()) {
      const grant: GrantFile = {
        version: 1,
        jobId: JOB,
        partitionId,
        gpu: { vendor: "nvidia", index, uuid: `GPU-bench-${index}`, pciBusId: "" },
        devices: [
          { path: `/dev/nvidia${index}`, hostPath: dev[`nvidia${index}`].hostPath },
          { path: "/dev/nvidiactl", hostPath: dev.nvidiactl.hostPath },
        ],
        mounts: [{ source: `${disk}/driver`, destination: "/usr/local/nvidia" }],
        env: { CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: "0=20480M" },
        pathEnv: { LD_LIBRARY_PATH: ["/usr/local/nvidia/lib64"], PATH: ["/usr/local/nvidia/bin"] },
        hostIpc: true,
      };
      await writeGrant(grants, grant);
    }
    const spec = await runcSpec();
    const plain = containerConfig(spec, rootfs, ["/bin/true"], []);
    const jobNoGrant = containerConfig(spec, rootfs, ["/bin/true"], [
      `CUMULUS_JOB_ID=${JOB}`,
      "CUMULUS_PARTITION_IDS=p-0000000000ff",
    ]);
    const job = containerConfig(spec, rootfs, ["/bin/true"], [
      `CUMULUS_JOB_ID=${JOB}`,
      `CUMULUS_PARTITION_IDS=${PARTITIONS.join(",")}`,
    ]);
    // The config as the wrapper leaves it, for runc alone on the same work.
    const probe = `${shm}/probe`;
    await writeBundle(probe, job);
    await timed(wrapper, [
      `--cumulus-grants=${grants}`,
      "--cumulus-runc=/bin/true",
      "create",
      "--bundle",
      probe,
      "x",
    ]);
    const applied: OciConfig = JSON.parse(await Deno.readTextFile(`${probe}/config.json`));

    const viaRunc = (
      bundle: string,
      id: string,
    ) => ["--root", runcRoot, "run", "--bundle", bundle, id];
    const viaWrapper = (bundle: string, id: string) => [
      `--cumulus-grants=${grants}`,
      ...viaRunc(bundle, id),
    ];
    const runVariants: Variant[] = [
      {
        name: "runc, plain config (baseline)",
        program: "runc",
        args: viaRunc,
        config: plain,
        samples: [],
      },
      {
        name: "wrapper → runc, job without grants (untouched)",
        program: wrapper,
        args: viaWrapper,
        config: jobNoGrant,
        samples: [],
      },
      {
        name: "wrapper → runc, job with 2 grants (rewritten)",
        program: wrapper,
        args: viaWrapper,
        config: job,
        samples: [],
      },
      {
        name: "runc, the 2 grants already applied",
        program: "runc",
        args: viaRunc,
        config: applied,
        samples: [],
      },
    ];
    const aloneArgs = (extra: string[]) => (bundle: string, id: string) => [
      `--cumulus-grants=${grants}`,
      "--cumulus-runc=/bin/true",
      ...extra,
      "--bundle",
      bundle,
      id,
    ];
    const aloneVariants: Variant[] = [
      {
        name: "/bin/true directly (baseline)",
        program: "/bin/true",
        args: (bundle, id) => ["create", "--bundle", bundle, id],
        config: job,
        samples: [],
      },
      {
        name: "wrapper `create`, job with 2 grants (read, apply, rewrite)",
        program: wrapper,
        args: aloneArgs(["create"]),
        config: job,
        samples: [],
      },
      {
        name: "wrapper `create`, not a job container",
        program: wrapper,
        args: aloneArgs(["create"]),
        config: plain,
        samples: [],
      },
      {
        name: "wrapper, any other subcommand (`start`: exec at once)",
        program: wrapper,
        args: (_b, id) => [`--cumulus-grants=${grants}`, "--cumulus-runc=/bin/true", "start", id],
        config: plain,
        samples: [],
      },
    ];

    const measure = async (variants: Variant[], rounds: number, warmup: number) => {
      for (let r = 0; r < rounds + warmup; r++) {
        // Rotate the order each round so drift and caches hit every variant alike.
        for (let k = 0; k < variants.length; k++) {
          const v = variants[(r + k) % variants.length];
          const id = containerId("bench");
          const bundle = `${shm}/bundles/${id}`;
          await writeBundle(bundle, v.config);
          const ms = await timed(v.program, v.args(bundle, id));
          if (r >= warmup) v.samples.push(ms);
          await Deno.remove(bundle, { recursive: true });
        }
      }
    };
    await measure(runVariants, ROUNDS, 3);
    await measure(aloneVariants, CALLS, 10);

    const base = runVariants[0].samples;
    const added = pairedAdded(runVariants[2].samples, base);
    const wrapperOwn = pairedAdded(aloneVariants[1].samples, aloneVariants[0].samples);
    const cgroup = await Deno.stat("/sys/fs/cgroup/cgroup.controllers").then(
      () => "v2",
      () => "v1",
    );
    return [
      "## OCI runtime wrapper (issue 13)",
      "",
      `Measured ${new Date().toISOString().slice(0, 10)} on ${await hostDescription()}, cgroup ` +
      `${cgroup}. Wall time of one process from spawn to exit, seen from Deno; bundles and ` +
      "runc's state on tmpfs (/dev/shm, as Docker's under /run); stand-in device nodes (mknod) " +
      'for the GPUs. "Added" is the median over rounds of the difference to the baseline run ' +
      "in the same round.",
      "",
      `### \`runc run\` of \`/bin/true\` (${ROUNDS} rounds, the four in rotating order)`,
      "",
      "| Path | Runs | p50 ms | p95 ms | added ms |",
      "|---|---:|---:|---:|---:|",
      row(runVariants[0].name, base, null),
      ...runVariants.slice(1).map((v) => row(v.name, v.samples, base)),
      "",
      `A job with 2 GPUs starts ${signed(added)} ms after a plain container at p50 (target: ` +
      `under ${TARGET_MS} ms, ${added < TARGET_MS ? "met" : "NOT met"}). The wrapper's own ` +
      `part is the ${fmt(wrapperOwn, 2)} ms of its \`create\` below (a second exec, reading and ` +
      "rewriting config.json); the rest is runc's work on the extra nodes, mounts and cgroup " +
      "rules (last row) and run-to-run noise, which is of the same size on this shared host.",
      "",
      `### The wrapper alone (${CALLS} calls each, downstream runtime \`/bin/true\`)`,
      "",
      "| Call | Runs | p50 ms | p95 ms | added ms |",
      "|---|---:|---:|---:|---:|",
      row(aloneVariants[0].name, aloneVariants[0].samples, null),
      ...aloneVariants.slice(1).map((v) => row(v.name, v.samples, aloneVariants[0].samples)),
      "",
      "Under Docker the shim calls the runtime for `create`, `start`, `state` and `delete`; only " +
      "`create` reads the config, the others cost one extra exec (last row).",
      "",
      "Command: `deno run -A bench/gpu_runtime_bench.ts` (or `deno task bench gpu-runtime`); " +
      "needs root, runc and the Chronos build (`bash chronos/build.sh release`). " +
      "`GPU_RUNC_BENCH_ROUNDS` and `GPU_RUNC_BENCH_CALLS` change the counts.",
      "",
    ].join("\n");
  } finally {
    await Deno.remove(shm, { recursive: true });
    await Deno.remove(disk, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await runGpuRuntimeBench());
}
