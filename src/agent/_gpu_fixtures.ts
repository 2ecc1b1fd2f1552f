/**
 * Shared fixtures of the GPU-layer tests: host trees under a temp root (NVIDIA `/proc` files,
 * AMD/Intel sysfs with symlinks, device nodes as plain files, driver libraries), and a stand-in
 * `nvidia-cuda-mps-control` (a real shell script that records its argv and environment and
 * daemonises like the real one). No such hardware or driver exists on the test machines.
 * @module
 */

/** The UUID of fixture NVIDIA GPU `k`. */
export function fixtureUuid(k: number): string {
  return `GPU-${String(k).padStart(8, "0")}-1111-2222-3333-444455556666`;
}

async function write(root: string, path: string, text = ""): Promise<void> {
  const full = `${root}${path}`;
  await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(full, text);
}

/** One fixture NVIDIA GPU. */
export interface NvidiaFixture {
  /** PCI address as the driver writes it. */
  bus: string;
  /** Device minor. */
  minor: number;
  /** Fixture number (for the UUID). */
  k: number;
  /** Create `/dev/nvidia<minor>` (default true). */
  node?: boolean;
}

/**
 * Writes NVIDIA GPUs under `root`: their `information` files, their nodes, and the shared nodes
 * named in `shared` (default all three).
 */
export async function writeNvidia(
  root: string,
  gpus: NvidiaFixture[],
  shared = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"],
): Promise<void> {
  for (const g of gpus) {
    await write(
      root,
      `/proc/driver/nvidia/gpus/${g.bus}/information`,
      `Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 42\nGPU UUID: \t ${fixtureUuid(g.k)}\n` +
        `Video BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\n` +
        `DMA Mask: \t 0xfffffffffffff\nBus Location: \t ${g.bus}\nDevice Minor: \t ${g.minor}\n` +
        `GPU Excluded:\t No\n`,
    );
    if (g.node ?? true) await write(root, `/dev/nvidia${g.minor}`);
  }
  for (const s of shared) await write(root, s);
}

/** One fixture DRM GPU (AMD or Intel). */
export interface DrmFixture {
  /** PCI address. */
  pci: string;
  /** `0x1002` (AMD) or `0x8086` (Intel). */
  vendorId: string;
  /** `renderD<render>`. */
  render: number;
  /** `card<card>` (none when absent). */
  card?: number;
}

/**
 * Writes DRM GPUs as sysfs has them: `/sys/class/drm/renderD<N>/device` (and `card<M>/device`)
 * are symlinks to the PCI device's directory, which holds `vendor`; plus `/dev/dri/*` nodes and,
 * when `kfd`, `/dev/kfd`.
 */
export async function writeDrm(root: string, gpus: DrmFixture[], kfd = true): Promise<void> {
  for (const g of gpus) {
    const dev = `/sys/devices/pci0000:00/${g.pci}`;
    await write(root, `${dev}/vendor`, `${g.vendorId}\n`);
    const names = [`renderD${g.render}`, ...(g.card === undefined ? [] : [`card${g.card}`])];
    for (const name of names) {
      await Deno.mkdir(`${root}/sys/class/drm/${name}`, { recursive: true });
      await Deno.symlink(
        `../../../devices/pci0000:00/${g.pci}`,
        `${root}/sys/class/drm/${name}/device`,
      );
      await write(root, `/dev/dri/${name}`);
    }
  }
  if (kfd) await write(root, "/dev/kfd");
}

/** Writes `path` (under root) as an executable file. */
export async function writeExecutable(
  root: string,
  path: string,
  text = "#!/bin/sh\n",
): Promise<string> {
  await write(root, path, text);
  await Deno.chmod(`${root}${path}`, 0o755);
  return `${root}${path}`;
}

/** What a {@link writeMpsStandIn} script does. */
export interface StandInOptions {
  /** Exit status of `-d` (default 0). */
  exitCode?: number;
  /** Write the pid file and control socket (default true); false: never becomes ready. */
  ready?: boolean;
}

/** A stand-in control binary and the file it records its invocations in. */
export interface StandIn {
  /** Path of the script (named `nvidia-cuda-mps-control`). */
  binary: string;
  /** Record file: `== <argv>` lines, each followed by the sorted environment. */
  record: string;
}

/**
 * Writes a stand-in `nvidia-cuda-mps-control` into `dir`. With `-d` it records its argv and
 * environment, forks a long-lived copy of itself (`--serve`), writes that copy's pid into
 * `$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid`, creates `control` there and exits, as
 * the real daemon does. Without arguments it reads one command from stdin and records it;
 * `quit` ends the served copy and removes the pid file.
 */
export async function writeMpsStandIn(dir: string, opts: StandInOptions = {}): Promise<StandIn> {
  const record = `${dir}/mps-record.txt`;
  const binary = `${dir}/nvidia-cuda-mps-control`;
  const ready = opts.ready ?? true;
  await Deno.writeTextFile(
    binary,
    `#!/bin/bash
rec='${record}'
if [ "$1" = "-d" ]; then
  { echo "== $*"; env | grep -v -E '^(PWD|SHLVL|_)=' | sort; } >> "$rec"
  ${opts.exitCode ? `exit ${opts.exitCode}` : ":"}
  ${
      ready
        ? `"$0" --serve </dev/null >/dev/null 2>&1 &
  echo $! > "$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid"
  : > "$CUDA_MPS_PIPE_DIRECTORY/control"`
        : "# never ready: no daemon, no pid file, no socket"
    }
  exit 0
elif [ "$1" = "--serve" ]; then
  trap 'exit 0' TERM
  while :; do sleep 0.1; done
else
  read -r cmd
  echo "== control $cmd $CUDA_MPS_PIPE_DIRECTORY" >> "$rec"
  if [ "$cmd" = quit ]; then
    pidfile="$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid"
    kill "$(cat "$pidfile")" && rm -f "$pidfile"
  fi
fi
`,
  );
  await Deno.chmod(binary, 0o755);
  return { binary, record };
}

/** One invocation the stand-in recorded. */
export interface StandInCall {
  /** The `==` line without the marker: `-d`, or `control quit <pipe dir>`. */
  what: string;
  /** The environment of a `-d` call (bash's own PWD, SHLVL and _ left out). */
  env: Record<string, string>;
}

/** Reads what the stand-in recorded (nothing yet: no calls). */
export async function standInCalls(standIn: StandIn): Promise<StandInCall[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(standIn.record);
  } catch {
    return [];
  }
  const calls: StandInCall[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("== ")) calls.push({ what: line.slice(3), env: {} });
    else if (line.includes("=") && calls.length > 0) {
      const i = line.indexOf("=");
      calls[calls.length - 1].env[line.slice(0, i)] = line.slice(i + 1);
    }
  }
  return calls;
}

/** Kills any served stand-in copy left under `mpsDir` (test clean-up). */
export async function killStandIns(mpsDir: string): Promise<void> {
  let uuids: string[] = [];
  try {
    uuids = [...Deno.readDirSync(mpsDir)].map((e) => e.name);
  } catch {
    return;
  }
  for (const uuid of uuids) {
    try {
      const pid = Number(
        (await Deno.readTextFile(`${mpsDir}/${uuid}/pipe/nvidia-cuda-mps-control.pid`)).trim(),
      );
      if (pid > 0) Deno.kill(pid, "SIGKILL");
    } catch {
      // Not running.
    }
  }
}
