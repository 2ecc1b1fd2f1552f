/**
 * A job whose image runs as root is still an ordinary user on the worker: no
 * capabilities (effective and bounding) and a pids limit (issue 16, item 3,
 * first part). Real orchestrator, real Swarm; the image is cumulus-base, whose
 * user is root (the job image runs as uid 1000 already), and the probe is
 * perl, which that minimal Debian has.
 */
import assert from "node:assert/strict";
import { JOB_PIDS_LIMIT } from "../src/swarm/mod.ts";
import { spec, TestClient } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT_IMAGE = Deno.env.get("CUMULUS_BASE_IMAGE") ?? "cumulus-base:bookworm";

const PROBE = String.raw`
use Socket;
open(my $st, "<", "/proc/self/status") or die;
while (<$st>) { print join(" ", split) . "\n" if /^(Uid|CapEff|CapBnd):/; }
print socket(my $r, PF_INET, SOCK_RAW, 1) ? "raw socket: allowed\n" : "raw socket: refused\n";
socket(my $t, PF_INET, SOCK_STREAM, 0) or die;
print bind($t, pack_sockaddr_in(81, inet_aton("127.0.0.1")))
  ? "bind port 81: allowed\n" : "bind port 81: refused\n";
for my $p ("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max") {
  if (open(my $f, "<", $p)) { my $v = <$f>; chomp $v; print "pids.max $v\n"; last; }
}
`;

Deno.test({
  name: "a root job has no capabilities and a pids limit; raw sockets and low ports are refused",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["perl", "-e", PROBE], { image: ROOT_IMAGE }));
      const { lines, job } = await c.watchAll(id);
      const out = lines.map((l) => l.text);
      const all = out.join("\n");
      assert.equal(job.state, "SUCCEEDED", all);
      assert.ok(out.includes("Uid: 0 0 0 0"), `the image runs as root: ${all}`);
      assert.ok(out.includes("CapEff: 0000000000000000"), all);
      assert.ok(out.includes("CapBnd: 0000000000000000"), all);
      assert.ok(out.includes("raw socket: refused"), all);
      assert.ok(out.includes("bind port 81: refused"), all);
      assert.ok(out.includes(`pids.max ${JOB_PIDS_LIMIT}`), all);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
