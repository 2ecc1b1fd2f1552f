/**
 * cumulus-gpu-runc (the OCI runtime wrapper of issue 13) in front of real runc, on a rootfs
 * exported from the base image. This host has no GPU, so stand-in character devices made with
 * mknod play the GPU's nodes: their numbers belong to real misc drivers that runc's default
 * device rules do not allow, so a container opens them only if the wrapper's cgroup rules work.
 * Grant files are written here as the agent would write them.
 */
import assert from "node:assert/strict";
import {
  BASE_IMAGE,
  containerConfig,
  containerId,
  exportRootfs,
  type GrantFile,
  makeStandIns,
  type OciConfig,
  type ProcessResult,
  requireWrapper,
  runcSpec,
  runProgram,
  type StandIn,
  writeBundle,
  writeGrant,
} from "./helpers/oci_bundle.ts";

const JOB = "j-0123456789ab";
const P0 = "p-00000000000a";
const P1 = "p-00000000000b";
const UUID0 = "GPU-8f0c0000-0000-0000-0000-000000000000";
const UUID1 = "GPU-8f0c1111-1111-1111-1111-111111111111";
const RO_DEST = "/opt/cumulus-ro";

interface Fixture {
  dir: string;
  wrapper: string;
  rootfs: string;
  spec: OciConfig;
  grants: string;
  runcRoot: string;
  roSource: string;
  dev: Record<string, StandIn>;
  hostIpc: string;
}

/** Everything a container of these tests prints: markers first, then its environment. */
const PROBE = [
  'for d in /dev/*; do echo "node $d"; done',
  "for d in /dev/nvidia0 /dev/nvidia1 /dev/nvidiactl /dev/denied; do",
  '  if [ -e $d ]; then if (exec 3<>$d) 2>/dev/null; then echo "open-ok $d";',
  '  else echo "open-fail $d: $( (exec 3<>$d) 2>&1 )"; fi; fi',
  "done",
  'echo "ipc $(readlink /proc/self/ns/ipc)"',
  `if [ -e ${RO_DEST}/marker ]; then echo "ro-marker $(cat ${RO_DEST}/marker)";`,
  `  if touch ${RO_DEST}/new 2>/dev/null; then echo ro-writable; else echo ro-refused; fi; fi`,
  "env | sed 's/^/env /'",
].join("\n");

/** What PROBE printed, parsed. */
interface Probe {
  nodes: string[];
  opened: string[];
  failed: string[];
  ipc: string;
  roMarker: string | null;
  roWritable: boolean | null;
  env: Record<string, string>;
}

function parseProbe(stdout: string): Probe {
  const p: Probe = {
    nodes: [],
    opened: [],
    failed: [],
    ipc: "",
    roMarker: null,
    roWritable: null,
    env: {},
  };
  for (const line of stdout.split("\n")) {
    const [tag, ...restParts] = line.split(" ");
    const rest = restParts.join(" ");
    if (tag === "node") p.nodes.push(rest);
    if (tag === "open-ok") p.opened.push(rest);
    if (tag === "open-fail") p.failed.push(rest);
    if (tag === "ipc") p.ipc = rest;
    if (tag === "ro-marker") p.roMarker = rest;
    if (tag === "ro-writable") p.roWritable = true;
    if (tag === "ro-refused") p.roWritable = false;
    if (tag === "env") {
      const eq = rest.indexOf("=");
      p.env[rest.slice(0, eq)] = rest.slice(eq + 1);
    }
  }
  return p;
}

/** A grant as the agent writes it for a fractional NVIDIA partition, on stand-in nodes. */
function grantFor(f: Fixture, partitionId: string, index: number, uuid: string): GrantFile {
  return {
    version: 1,
    jobId: JOB,
    partitionId,
    gpu: { vendor: "nvidia", index, uuid, pciBusId: `0000:1${index}:00.0` },
    devices: [
      { path: `/dev/nvidia${index}`, hostPath: f.dev[`nvidia${index}`].hostPath },
      { path: "/dev/nvidiactl", hostPath: f.dev.nvidiactl.hostPath },
    ],
    mounts: [{ source: f.roSource, destination: RO_DEST }],
    env: { CUMULUS_GPU_MEMORY_BYTES: "21474836480", CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: "0=20480M" },
    pathEnv: { PATH: ["/usr/local/nvidia/bin"], LD_LIBRARY_PATH: ["/usr/local/nvidia/lib64"] },
    hostIpc: true,
  };
}

interface Run extends ProcessResult {
  probe: Probe;
  /** config.json before and after the runtime saw it. */
  before: string;
  after: string;
  sameInode: boolean;
}

/**
 * Runs PROBE in a fresh container through the wrapper (or runc itself) and returns what it
 * printed and what became of its config.json.
 */
async function runContainer(
  f: Fixture,
  opts: {
    env: string[];
    direct?: boolean;
    subcommand?: "run" | "create";
    edit?: (c: OciConfig) => void;
  },
): Promise<Run> {
  const id = containerId("cgr");
  const bundle = `${f.dir}/bundles/${id}`;
  const config = containerConfig(f.spec, f.rootfs, ["sh", "-c", PROBE], opts.env);
  opts.edit?.(config);
  const before = await writeBundle(bundle, config);
  const inode = (await Deno.stat(`${bundle}/config.json`)).ino;
  const runtime = opts.direct
    ? ["runc", []] as const
    : [f.wrapper, [`--cumulus-grants=${f.grants}`]] as const;
  const args = [...runtime[1], "--root", f.runcRoot, opts.subcommand ?? "run", "--bundle", bundle];
  try {
    const r = await runProgram(runtime[0], [...args, id]);
    const after = await Deno.readTextFile(`${bundle}/config.json`);
    const sameInode = (await Deno.stat(`${bundle}/config.json`)).ino === inode;
    return { ...r, probe: parseProbe(r.stdout), before, after, sameInode };
  } finally {
    await runProgram("runc", ["--root", f.runcRoot, "delete", "--force", id]);
  }
}

async function setUp(): Promise<Fixture> {
  const wrapper = await requireWrapper();
  const dir = await Deno.makeTempDir({ prefix: "cumulus-gpu-runc-" });
  try {
    const rootfs = `${dir}/rootfs`;
    await exportRootfs(BASE_IMAGE, rootfs);
    await Deno.mkdir(`${dir}/dev`);
    const dev = await makeStandIns(`${dir}/dev`, ["nvidia0", "nvidiactl", "nvidia1", "denied"]);
    const roSource = `${dir}/ro`;
    await Deno.mkdir(roSource);
    await Deno.writeTextFile(`${roSource}/marker`, "driver-files\n");
    await Deno.mkdir(`${dir}/runc-root`);
    return {
      dir,
      wrapper,
      rootfs,
      spec: await runcSpec(),
      grants: `${dir}/grants`,
      runcRoot: `${dir}/runc-root`,
      roSource,
      dev,
      hostIpc: await Deno.readLink("/proc/self/ns/ipc"),
    };
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
}

const jobEnv = (ids: string) => [`CUMULUS_JOB_ID=${JOB}`, `CUMULUS_PARTITION_IDS=${ids}`];
const standInNodes = (p: Probe) => p.nodes.filter((n) => /^\/dev\/(nvidia|denied)/.test(n));

Deno.test("cumulus-gpu-runc through real runc", async (t) => {
  const f = await setUp();
  try {
    await writeGrant(f.grants, grantFor(f, P0, 0, UUID0));
    await writeGrant(f.grants, grantFor(f, P1, 1, UUID1));

    await t.step(
      "a job container sees exactly its granted nodes, opens them, and gets its env, mount and the host's ipc namespace",
      async () => {
        const r = await runContainer(f, { env: jobEnv(P0) });
        assert.equal(r.code, 0, r.stderr);
        const p = r.probe;
        assert.deepEqual(standInNodes(p), ["/dev/nvidia0", "/dev/nvidiactl"]);
        assert.deepEqual(p.opened, ["/dev/nvidia0", "/dev/nvidiactl"], r.stdout);
        assert.deepEqual(p.failed, []);
        assert.equal(p.env.CUDA_VISIBLE_DEVICES, "0");
        assert.equal(p.env.NVIDIA_VISIBLE_DEVICES, UUID0);
        assert.equal(p.env.CUMULUS_GPU_UUIDS, UUID0);
        assert.equal(p.env.CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, "0=20480M");
        assert.match(p.env.PATH, /^\/usr\/local\/nvidia\/bin:\/usr\/local\/sbin:/);
        assert.equal(p.env.LD_LIBRARY_PATH, "/usr/local/nvidia/lib64");
        assert.equal(p.roMarker, "driver-files");
        assert.equal(p.roWritable, false, "the driver mount must be read-only");
        assert.equal(p.ipc, f.hostIpc, "hostIpc must leave the container in the host's ipc ns");
        const written: OciConfig = JSON.parse(r.after);
        assert.deepEqual(
          written.linux.resources?.devices?.filter((d) => d.allow === true).map((d) => d.minor),
          [f.dev.nvidia0.minor, f.dev.nvidiactl.minor],
        );
      },
    );

    await t.step(
      "a node in linux.devices without the wrapper's cgroup rule cannot be opened (EPERM)",
      async () => {
        const r = await runContainer(f, {
          env: [],
          direct: true,
          edit: (c) => {
            c.linux.devices = [f.dev.denied, f.dev.nvidia0].map((d, i) => ({
              path: i === 0 ? "/dev/denied" : "/dev/nvidia0",
              type: "c",
              major: d.major,
              minor: d.minor,
              fileMode: 0o666,
              uid: 0,
              gid: 0,
            }));
            c.linux.resources?.devices?.push({
              allow: true,
              type: "c",
              major: f.dev.nvidia0.major,
              minor: f.dev.nvidia0.minor,
              access: "rwm",
            });
          },
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(standInNodes(r.probe), ["/dev/denied", "/dev/nvidia0"]);
        assert.deepEqual(r.probe.opened, ["/dev/nvidia0"]);
        assert.equal(r.probe.failed.length, 1, r.stdout);
        assert.match(r.probe.failed[0], /^\/dev\/denied: .*Operation not permitted/);
      },
    );

    await t.step(
      "a job container without grants sees no stand-in and its config.json is unchanged",
      async () => {
        const r = await runContainer(f, { env: jobEnv("p-0000000000ff") });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(standInNodes(r.probe), []);
        assert.equal(r.probe.env.CUDA_VISIBLE_DEVICES, undefined);
        assert.notEqual(r.probe.ipc, f.hostIpc);
        assert.equal(r.after, r.before);
        assert.ok(r.sameInode, "config.json must not be rewritten");

        const none = await runContainer(f, { env: [`CUMULUS_JOB_ID=${JOB}`] });
        assert.equal(none.code, 0, none.stderr);
        assert.deepEqual(standInNodes(none.probe), []);
        assert.equal(none.after, none.before);
      },
    );

    await t.step(
      "a container without CUMULUS_JOB_ID is untouched byte for byte, even naming a granted partition",
      async () => {
        const r = await runContainer(f, { env: [`CUMULUS_PARTITION_IDS=${P0}`] });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(standInNodes(r.probe), []);
        assert.equal(r.probe.roMarker, null);
        assert.notEqual(r.probe.ipc, f.hostIpc);
        assert.equal(r.after, r.before);
        assert.ok(r.sameInode, "config.json must not be rewritten");
      },
    );

    await t.step(
      "runc create is refused with the wrapper's message for another job's grant",
      async () => {
        const other = { ...grantFor(f, "p-0000000000cc", 0, UUID0), jobId: "j-ffffffffffff" };
        await writeGrant(f.grants, other);
        const r = await runContainer(f, { env: jobEnv("p-0000000000cc"), subcommand: "create" });
        assert.notEqual(r.code, 0);
        assert.equal(
          r.stderr,
          "cumulus-gpu-runc: grant p-0000000000cc.jobId: belongs to another job than " +
            `'${JOB}', got 'j-ffffffffffff'\n`,
        );
        assert.equal(r.stdout, "");
        assert.equal(r.after, r.before);
      },
    );

    await t.step("runc create is refused when one of two named grants is missing", async () => {
      const r = await runContainer(f, {
        env: jobEnv(`${P0},p-0000000000dd`),
        subcommand: "create",
      });
      assert.notEqual(r.code, 0);
      assert.equal(
        r.stderr,
        `cumulus-gpu-runc: grants: p-0000000000dd missing from ${f.grants}, got 1 of 2\n`,
      );
    });

    await t.step(
      "a job with two grants sees both GPUs' nodes, numbered 0 and 1, and both open",
      async () => {
        const r = await runContainer(f, { env: jobEnv(`${P0},${P1}`) });
        assert.equal(r.code, 0, r.stderr);
        const p = r.probe;
        assert.deepEqual(standInNodes(p), ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"]);
        assert.deepEqual(p.opened, ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"]);
        assert.equal(p.env.CUDA_VISIBLE_DEVICES, "0,1");
        assert.equal(p.env.NVIDIA_VISIBLE_DEVICES, `${UUID0},${UUID1}`);
        assert.equal(p.env.CUMULUS_GPU_UUIDS, `${UUID0},${UUID1}`);
        assert.equal(p.env.PATH.split(":").filter((d) => d === "/usr/local/nvidia/bin").length, 1);
      },
    );
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});
