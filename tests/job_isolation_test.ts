/**
 * Job containers are confined on their worker (issue 16, item 3): no
 * capabilities, a pids limit, the job uid instead of the image's user (root
 * here) unless the operator allows otherwise, a read-only root with writable
 * tmpfs, and CPU and memory limits from the spec. Real orchestrator, real
 * Swarm; the root image is cumulus-base (minimal Debian with perl), the
 * memory hog runs in the job image (Python).
 */
import assert from "node:assert/strict";
import { packBundle } from "../src/sdk/mod.ts";
import { connectDocker, JOB_PIDS_LIMIT } from "../src/swarm/mod.ts";
import { spec, TestClient, type WireJob } from "./helpers/client.ts";
import { startStack, SWARM_SOCKET } from "./helpers/stack.ts";
import { startS3 } from "./helpers/s3.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT_IMAGE = Deno.env.get("CUMULUS_BASE_IMAGE") ?? "cumulus-base:bookworm";

/** Prints what the container may do; every line is asserted below. */
const PROBE = String.raw`
use Socket;
open(my $st, "<", "/proc/self/status") or die;
while (<$st>) { print join(" ", split) . "\n" if /^(Uid|CapEff|CapBnd|NoNewPrivs):/; }
print socket(my $r, PF_INET, SOCK_RAW, 1) ? "raw socket: allowed\n" : "raw socket: refused\n";
socket(my $t, PF_INET, SOCK_STREAM, 0) or die;
print bind($t, pack_sockaddr_in(81, inet_aton("127.0.0.1")))
  ? "bind port 81: allowed\n" : "bind port 81: refused\n";
sub first { for my $p (@_) { if (open(my $f, "<", $p)) { my $v = <$f>; chomp $v; return $v; } } "?" }
print "pids.max " . first("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max") . "\n";
# cgroup v2: "quota period"; v1: the quota and the period in two files.
my $cpu = first("/sys/fs/cgroup/cpu.max");
$cpu = first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us") . " " .
  first("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")
  if $cpu eq "?";
print "cpu.max $cpu\n";
print "memory.max " . first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes") . "\n";
for my $p ("/etc/cumulus-probe", "/usr/cumulus-probe", "/tmp/cumulus-probe") {
  print open(my $w, ">", $p) ? "write $p: allowed\n" : "write $p: refused\n";
}
`;

async function probe(c: TestClient, extra: Record<string, unknown>) {
  const id = await c.submit(spec(["perl", "-e", PROBE], { image: ROOT_IMAGE, ...extra }));
  const { lines, job } = await c.watchAll(id);
  const out = lines.map((l) => l.text);
  return { out, all: out.join("\n"), job };
}

Deno.test({
  name: "a root-image job runs as the job uid with no capabilities, a read-only root and limits",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const { out, all, job } = await probe(c, { cpu: 0.5, memory: "256MiB" });
      assert.equal(job.state, "SUCCEEDED", all);
      assert.ok(out.includes("Uid: 1000 1000 1000 1000"), `the job uid, not root: ${all}`);
      assert.ok(out.includes("CapEff: 0000000000000000"), all);
      assert.ok(out.includes("CapBnd: 0000000000000000"), all);
      // The engine's --no-new-privileges (scripts/lib/docker_engine.sh): setuid binaries
      // in the image cannot raise privileges.
      assert.ok(out.includes("NoNewPrivs: 1"), all);
      assert.ok(out.includes("raw socket: refused"), all);
      assert.ok(out.includes("bind port 81: refused"), all);
      assert.ok(out.includes(`pids.max ${JOB_PIDS_LIMIT}`), all);
      // Half a core: 50 ms of CPU time per 100 ms period.
      assert.ok(out.includes("cpu.max 50000 100000"), all);
      assert.ok(out.includes(`memory.max ${256 * 1024 * 1024}`), all);
      assert.ok(out.includes("write /etc/cumulus-probe: refused"), all);
      assert.ok(out.includes("write /usr/cumulus-probe: refused"), all);
      assert.ok(out.includes("write /tmp/cumulus-probe: allowed"), all);
      // Asking the image's user is refused while the operator does not allow it.
      await assert.rejects(
        () => c.submit(spec(["true"], { image: ROOT_IMAGE, imageUser: true })),
        /spec\.image_user: .*allow_image_user is off/,
      );
      await assert.rejects(
        () => c.submit(spec(["true"], { memory: "65GiB" })),
        /spec\.memory: must be at most 64\.0 GiB \(the orchestrator's job_memory_max\)/,
      );
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "with allow_image_user a job may run as its image's root, still without capabilities",
  ...opts,
  fn: async () => {
    const stack = await startStack({
      env: { CUMULUS_ALLOW_IMAGE_USER: "true", CUMULUS_JOB_READ_ONLY_ROOT: "false" },
    });
    const c = new TestClient(stack.url);
    try {
      const { out, all, job } = await probe(c, { imageUser: true });
      assert.equal(job.state, "SUCCEEDED", all);
      assert.ok(out.includes("Uid: 0 0 0 0"), `the image's root: ${all}`);
      assert.ok(out.includes("CapEff: 0000000000000000"), all);
      assert.ok(out.includes("raw socket: refused"), all);
      // The defaults: 4 cores (capped at the node's count: Docker refuses more), 4 GiB;
      // job_read_only_root off leaves the root writable.
      const cores = Math.min(4, navigator.hardwareConcurrency);
      assert.ok(out.includes(`cpu.max ${cores * 100000} 100000`), all);
      assert.ok(out.includes(`memory.max ${4 * 1024 ** 3}`), all);
      assert.ok(out.includes("write /etc/cumulus-probe: allowed"), all);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

/** A job as it ended, with its log's text. */
type Ended = WireJob & { reasonCode: string; text: string };

/** Waits for both jobs to end. */
function both(c: TestClient, a: string, b: string): Promise<Ended[]> {
  return Promise.all([a, b].map(async (id) => {
    const { lines, job } = await c.watchAll(id);
    return { ...job, text: lines.map((l) => l.text).join("\n") } as Ended;
  }));
}

Deno.test({
  name: "a memory hog is stopped by its limit (FAILED, MEMORY_EXCEEDED) while a neighbour finishes",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const hog = await c.submit(spec([
        "python3",
        "-c",
        "b = []\nwhile True: b.append(bytearray(16 << 20))",
      ], { memory: "128MiB", retry: { maxAttempts: 3 } }));
      const neighbour = await c.submit(
        spec(["python3", "-c", "import time; time.sleep(3); print('neighbour done')"]),
      );
      const [h, n] = await both(c, hog, neighbour);
      assert.equal(h.state, "FAILED", JSON.stringify(h));
      assert.equal(h.reasonCode, "MEMORY_EXCEEDED", h.reason);
      assert.match(h.reason, /exceeded its memory limit of 128 MiB/);
      // Not resumed: it would run out again.
      assert.equal(h.attempts, 1);
      assert.equal(n.state, "SUCCEEDED", n.text);
      assert.match(n.text, /neighbour done/);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

const FORK_BOMB = String.raw`
my $n = 0;
while (1) {
  my $p = fork();
  if (!defined $p) { print "fork refused after $n\n"; exit 0; }
  if ($p == 0) { sleep 120; exit 0; }
  $n++;
}
`;

Deno.test({
  name: "a fork bomb is stopped by the pids limit while a neighbour finishes",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const bomb = await c.submit(spec(["perl", "-e", FORK_BOMB], { image: ROOT_IMAGE }));
      const neighbour = await c.submit(
        spec(["python3", "-c", "import time; time.sleep(2); print('neighbour done')"]),
      );
      const [b, n] = await both(c, bomb, neighbour);
      assert.equal(b.state, "SUCCEEDED", b.text);
      const m = /fork refused after (\d+)/.exec(b.text);
      assert.ok(m, b.text);
      assert.ok(Number(m[1]) < JOB_PIDS_LIMIT && Number(m[1]) > JOB_PIDS_LIMIT / 2, b.text);
      assert.equal(n.state, "SUCCEEDED", n.text);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "past max_job_log_bytes a job's lines are dropped and counted, streamed or from Docker",
  ...opts,
  fn: async () => {
    const stack = await startStack({ env: { CUMULUS_MAX_JOB_LOG_BYTES: "64KiB" } });
    const c = new TestClient(stack.url);
    const dir = await Deno.makeTempDir();
    try {
      const spam = "for i in range(5000): print(f'line {i:05d} ' + 'x' * 40)\n";
      await Deno.writeTextFile(`${dir}/spam.py`, spam);
      // With a bundle the runtime streams the lines; a plain command goes through Docker's log.
      const streamed = await c.submit(
        spec(["python3", "spam.py"]),
        (await packBundle(dir)).bytes,
      );
      const viaDocker = await c.submit(spec(["python3", "-c", spam]));
      for (const id of [streamed, viaDocker]) {
        const { lines, job } = await c.watchAll(id);
        const texts = lines.map((l) => l.text);
        assert.equal(job.state, "SUCCEEDED", job.reason);
        const kept = texts.filter((t) => t.startsWith("line ")).length;
        assert.ok(kept > 500 && kept < 2000, `${id}: kept ${kept}`);
        assert.ok(texts.includes("[cumulus] log cap of 64.0 KiB reached: later lines are dropped"));
        // Every line is either kept or counted.
        assert.equal(
          texts.at(-1),
          `[cumulus] log cap of 64.0 KiB reached: ${5000 - kept} lines dropped`,
        );
      }
    } finally {
      c.close();
      await stack.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * The probe a job runs: 127.0.0.1:PORT (argv[1]) and the S3 server's own port
 * (argv[2]) on what the job sees as loopback, an unsigned listing through
 * CUMULUS_S3_ENDPOINT (the gate), then a checkpoint saved to and restored from
 * L2 through presigned URLs.
 */
const NETWORK_PROBE = `
import os, socket, sys, urllib.request, urllib.error
for name, port in (("host loopback", sys.argv[1]), ("s3 server", sys.argv[2])):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=3).close()
        print(f"{name}: reached", flush=True)
    except OSError as err:
        print(f"{name}: unreachable", type(err).__name__, flush=True)
if len(sys.argv) > 3:
    url = os.environ["CUMULUS_S3_ENDPOINT"] + "/" + os.environ["CUMULUS_S3_BUCKET"] + "?list-type=2"
    try:
        urllib.request.urlopen(url, timeout=5)
        print("unsigned listing: allowed", flush=True)
    except urllib.error.HTTPError as err:
        print("unsigned listing:", err.code, flush=True)
    from pathlib import Path
    from cumulus.checkpoint import CheckpointConfig, CheckpointManager
    config = CheckpointConfig.from_env()
    m = CheckpointManager(config)
    m.save({"w": list(range(100))}, 7)
    assert m.flush(120)
    fresh = CheckpointManager(CheckpointConfig(directory=Path("/tmp/fresh-l1"), job_id=config.job_id, s3=config.s3), report=False)
    got = fresh.restore()
    print("RESTORED", got.step, got.source, flush=True)
`;

Deno.test({
  name: "a job has its own network: no host loopback, no S3 server; its " +
    "runtime and presigned L2 requests (through the S3 gate) still work",
  ...opts,
  fn: async () => {
    // A server only the host's loopback offers (as the agent's, /metrics, or s3rver are).
    const secret = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepting = (async () => {
      for await (const conn of secret) conn.close();
    })();
    const s3 = await startS3();
    // A network of its own, made by the orchestrator (a Swarm-scoped bridge, as the default
    // job_network is; a fresh name, so that the test removes what it made), the
    // orchestrator on loopback with no advertise address, jobs' S3 through the gate.
    const network = `cumulus-test-jobs-${crypto.randomUUID().slice(0, 8)}`;
    const stack = await startStack({
      env: {
        ...s3.orchestratorEnv,
        CUMULUS_JOB_NETWORK: network,
        CUMULUS_ADVERTISE_ADDRESS: "",
        CUMULUS_JOB_S3_GATE: "true",
      },
    });
    const c = new TestClient(stack.url);
    const dir = await Deno.makeTempDir();
    const port = String((secret.addr as Deno.NetAddr).port);
    const s3port = new URL(s3.endpoint).port;
    try {
      await Deno.writeTextFile(`${dir}/net_probe.py`, NETWORK_PROBE);
      // A bundle: the runtime fetches it and streams the lines over gRPC.
      const id = await c.submit(
        spec(["python3", "net_probe.py", port, s3port, "l2"]),
        (await packBundle(dir)).bytes,
      );
      const { lines, job } = await c.watchAll(id);
      const out = lines.map((l) => l.text).join("\n");
      assert.equal(job.state, "SUCCEEDED", `${job.reason}\n${out}`);
      assert.match(out, /host loopback: unreachable/);
      assert.match(out, /s3 server: unreachable/);
      assert.match(out, /unsigned listing: 403/);
      assert.match(out, /RESTORED 7 l2/);
      const net = await stack.orch.swarm.docker.getNetwork(network).inspect();
      assert.equal(net.Scope, "swarm");
      // The checkpoint is in the S3 server, under the job's own prefix.
      const stored = [...Deno.readDirSync(`${s3.dir}/${s3.bucket}/cumulus`)].map((e) => e.name);
      assert.ok(stored.some((n) => n.startsWith(id)), stored.join(" "));
      // Sanity: the same probe on the host network reaches both.
      const hostStack = await startStack();
      const hc = new TestClient(hostStack.url);
      try {
        const hid = await hc.submit(spec(["python3", "-c", NETWORK_PROBE, port, s3port]));
        const host = await hc.watchAll(hid);
        const text = host.lines.map((l) => l.text).join("\n");
        assert.match(text, /host loopback: reached/);
        assert.match(text, /s3 server: reached/);
      } finally {
        hc.close();
        await hostStack.stop();
      }
    } finally {
      c.close();
      await stack.stop();
      await s3.stop();
      secret.close();
      await accepting.catch(() => {});
      await Deno.remove(dir, { recursive: true });
      // The network is in use until the job's container is gone.
      const docker = connectDocker(SWARM_SOCKET);
      for (let i = 0; i < 40; i++) {
        try {
          await docker.getNetwork(network).remove();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
  },
});
