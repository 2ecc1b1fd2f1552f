/**
 * Chronos latency benchmark: one partition create + release, measured side by side through
 *
 * - the C ABI (chronos_bench, a C++ executable linked to libchronos.so: the baseline),
 * - Deno FFI as the agent calls it (src/agent: a never-waiting synchronous `chronos_try_*` call,
 *   falling back to a `nonblocking` worker-thread call only when it would have to wait),
 * - Deno FFI forced through the `nonblocking` worker-thread calls every time,
 * - Deno FFI with synchronous symbols (the cost of the call itself, for reference),
 * - the chronos_cli process (two processes per create + release).
 *
 * The C and FFI paths run in alternating rounds so machine noise hits them alike. The state
 * directory is on tmpfs (/dev/shm) like /run on a production host (docs/chronos.md says why);
 * a disk-backed round shows what fsync costs when the state directory is on disk.
 *
 * Run alone: `deno run -A bench/chronos_bench.ts` prints a Markdown section.
 * @module
 */
import { Chronos } from "../src/agent/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** A prebuilt Chronos (e.g. the GPU machine's build) can be named; else chronos/build is built. */
const PREBUILT = Deno.env.get("CHRONOS_BUILD_DIR");
const BUILD = PREBUILT ?? `${ROOT}chronos/build`;

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)));
  return sorted[i];
}

function summarize(samples: number[]): { p50: number; p99: number; mean: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99), mean, n: s.length };
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** One round of the C baseline: chronos_bench prints its own percentiles as JSON. */
async function cRound(stateDir: string, iterations: number): Promise<{
  p50: number;
  p99: number;
  mean: number;
  initMs: number;
}> {
  const out = JSON.parse(
    await run(`${BUILD}/chronos_bench`, [
      "--iterations",
      String(iterations),
      "--warmup",
      "50",
      "--state-dir",
      stateDir,
    ]),
  );
  return { p50: out.p50_us, p99: out.p99_us, mean: out.mean_us, initMs: out.init_ms };
}

async function ffiRound(chronos: Chronos, iterations: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    const p = await chronos.create({ device: 0, memory: 0.25, duration: 60, owner: "bench" });
    await chronos.release(p.id);
    samples.push((performance.now() - t0) * 1000);
  }
  return samples;
}

/** The same two calls through synchronous symbols: no worker-thread hop. */
function openSync(libraryPath: string, stateDir: string) {
  const lib = Deno.dlopen(
    libraryPath,
    {
      chronos_init: { parameters: ["buffer", "buffer"], result: "pointer" },
      chronos_shutdown: { parameters: ["pointer"], result: "void" },
      chronos_create: {
        parameters: [
          "pointer",
          "u32",
          "f64",
          "f64",
          "buffer",
          "buffer",
          "buffer",
          "usize",
          "buffer",
        ],
        result: "i32",
      },
      chronos_release: {
        parameters: ["pointer", "buffer", "buffer", "usize", "buffer"],
        result: "i32",
      },
    } as const,
  );
  const enc = new TextEncoder();
  const h = lib.symbols.chronos_init(enc.encode(stateDir + "\0"), null);
  if (h === null) throw new Error("chronos_init failed");
  const owner = enc.encode("bench\0");
  const buf = new Uint8Array(4096);
  const dec = new TextDecoder();
  return {
    round(iterations: number): number[] {
      const samples: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const t0 = performance.now();
        const rc = lib.symbols.chronos_create(h, 0, 0.25, 60, owner, null, buf, 4096n, null);
        if (rc !== 0) throw new Error(`create failed: ${rc}`);
        const text = dec.decode(buf.subarray(0, buf.indexOf(0)));
        const id = JSON.parse(text).id as string;
        if (lib.symbols.chronos_release(h, enc.encode(id + "\0"), null, 0n, null) !== 0) {
          throw new Error("release failed");
        }
        samples.push((performance.now() - t0) * 1000);
      }
      return samples;
    },
    close() {
      lib.symbols.chronos_shutdown(h);
      lib.close();
    },
  };
}

async function cliRound(stateDir: string, iterations: number): Promise<number[]> {
  const cli = `${BUILD}/chronos_cli`;
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    const created = JSON.parse(
      await run(cli, ["--state-dir", stateDir, "create", "0", "0.25", "60", "--json"]),
    );
    await run(cli, ["--state-dir", stateDir, "release", created.id]);
    samples.push((performance.now() - t0) * 1000);
  }
  return samples;
}

async function hostDescription(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = info.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  let load = "";
  try {
    load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch { /* not Linux */ }
  return `${cpu}, ${navigator.hardwareConcurrency} CPUs, load average ${load || "n/a"}`;
}

function fmt(us: number): string {
  return us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`;
}

async function tempDir(onTmpfs: boolean): Promise<string> {
  if (onTmpfs) {
    try {
      return await Deno.makeTempDir({ dir: "/dev/shm", prefix: "chronos-bench-" });
    } catch { /* no /dev/shm: fall through to the default */ }
  }
  return await Deno.makeTempDir({ prefix: "chronos-bench-" });
}

/**
 * Builds Chronos if needed, runs every path and returns the Markdown section for
 * docs/BENCHMARKS.md (a table plus the command that produced it).
 */
export async function runChronosBench(): Promise<string> {
  if (PREBUILT === undefined) {
    const build = await new Deno.Command("bash", {
      args: [`${ROOT}chronos/build.sh`, "release"],
      stdout: "null",
      stderr: "inherit",
    }).output();
    if (!build.success) throw new Error("bash chronos/build.sh release failed");
  }
  const libraryPath = `${BUILD}/libchronos.so`;
  const rounds = 5;
  const perRound = 400;
  const tmpfs = await tempDir(true);
  const disk = await tempDir(false);
  try {
    const ffi = Chronos.open({ libraryPath, stateDir: tmpfs });
    const hop = Chronos.open({ libraryPath, stateDir: tmpfs, fastPath: false });
    const sync = openSync(libraryPath, tmpfs);
    const t0 = performance.now();
    await ffi.deviceCount(); // one-time OpenCL discovery, excluded below
    const ffiInitMs = performance.now() - t0;
    await hop.deviceCount();
    await ffiRound(ffi, 50);
    await ffiRound(hop, 50);
    sync.round(50);

    const c: { p50: number[]; p99: number[]; mean: number[]; init: number[] } = {
      p50: [],
      p99: [],
      mean: [],
      init: [],
    };
    const ffiSamples: number[] = [];
    const hopSamples: number[] = [];
    const syncSamples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const cr = await cRound(tmpfs, perRound);
      c.p50.push(cr.p50);
      c.p99.push(cr.p99);
      c.mean.push(cr.mean);
      c.init.push(cr.initMs);
      ffiSamples.push(...await ffiRound(ffi, perRound));
      hopSamples.push(...await ffiRound(hop, perRound));
      syncSamples.push(...sync.round(perRound));
    }
    sync.close();
    hop.close();
    ffi.close();
    const cliSamples = await cliRound(tmpfs, 40);

    // Disk-backed state directory: the fsync of file and directory dominates.
    const cDisk = await cRound(disk, 100);
    const ffiDisk = Chronos.open({ libraryPath, stateDir: disk });
    await ffiRound(ffiDisk, 10);
    const ffiDiskStats = summarize(await ffiRound(ffiDisk, 100));
    ffiDisk.close();

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const cP50 = median(c.p50);
    const cP99 = median(c.p99);
    const ffiStats = summarize(ffiSamples);
    const hopStats = summarize(hopSamples);
    const syncStats = summarize(syncSamples);
    const cliStats = summarize(cliSamples);
    const ratio = (x: number) => `${(x / cP50).toFixed(2)}×`;
    const ffiOk = ffiStats.p50 <= 2 * cP50;
    const p99Ok = ffiStats.p99 < 1000;

    const rows = [
      `| C ABI (chronos_bench, baseline) | ${rounds * perRound} | ${fmt(cP50)} | ${
        fmt(cP99)
      } | 1.00× |`,
      `| Deno FFI as the agent calls it (try now, else worker thread) | ${ffiStats.n} | ${
        fmt(ffiStats.p50)
      } | ${fmt(ffiStats.p99)} | ${ratio(ffiStats.p50)} |`,
      `| Deno FFI, always a nonblocking worker-thread call | ${hopStats.n} | ${
        fmt(hopStats.p50)
      } | ${fmt(hopStats.p99)} | ${ratio(hopStats.p50)} |`,
      `| Deno FFI, synchronous symbols | ${syncStats.n} | ${fmt(syncStats.p50)} | ${
        fmt(syncStats.p99)
      } | ${ratio(syncStats.p50)} |`,
      `| chronos_cli process (create + release = 2 processes) | ${cliStats.n} | ${
        fmt(cliStats.p50)
      } | ${fmt(cliStats.p99)} | ${ratio(cliStats.p50)} |`,
      `| C ABI, state dir on disk | 100 | ${fmt(cDisk.p50)} | ${fmt(cDisk.p99)} | ${
        ratio(cDisk.p50)
      } |`,
      `| Deno FFI as the agent calls it, state dir on disk (worker thread) | ${ffiDiskStats.n} | ${
        fmt(ffiDiskStats.p50)
      } | ${fmt(ffiDiskStats.p99)} | ${ratio(ffiDiskStats.p50)} |`,
    ];
    return [
      "## Chronos: partition create + release latency",
      "",
      `Measured ${new Date().toISOString().slice(0, 10)} on ${await hostDescription()}. ` +
      `One sample = create (0.25 of device 0, 60 s) then release, state directory on tmpfs ` +
      `(/dev/shm, like /run on a production host) unless marked "on disk". C and FFI ran in ` +
      `${rounds} alternating rounds of ${perRound}; the C p50/p99 are the medians over its rounds. ` +
      `The agent's path tries a synchronous call that never waits (chronos_try_*) and hops to a ` +
      `worker thread (nonblocking FFI) only when it would wait: on the lock, on a disk, or on ` +
      `OpenCL.`,
      "",
      "| Path | Samples | p50 | p99 | p50 vs C |",
      "|---|---:|---:|---:|---:|",
      ...rows,
      "",
      `One-time OpenCL discovery (excluded above): ${median(c.init).toFixed(0)} ms in ` +
      `chronos_bench, ${ffiInitMs.toFixed(0)} ms through FFI. Targets: FFI within 2× of C ` +
      `(p50 ${ratio(ffiStats.p50)}: ${ffiOk ? "met" : "NOT met"}), FFI p99 under 1 ms ` +
      `(${fmt(ffiStats.p99)}: ${p99Ok ? "met" : "NOT met"}).`,
      "",
      "Command: `deno run -A bench/chronos_bench.ts` (builds chronos/ first if needed).",
      "",
    ].join("\n");
  } finally {
    await Deno.remove(tmpfs, { recursive: true });
    await Deno.remove(disk, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await runChronosBench());
}
