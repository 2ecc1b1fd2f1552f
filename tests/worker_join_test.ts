/**
 * A worker joins with one command (issue 17): join tokens, the WorkerJoin
 * service and the worker admin calls on a real orchestrator with a real
 * Swarm manager (the join info is read from it). The full path, a second
 * Swarm node joining through the one line, is tests/worker_onboard_test.ts.
 * @module
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { CumulusClient } from "../src/sdk/mod.ts";
import { loadCumulusProto } from "../src/rpc/mod.ts";
import { WorkerStore } from "../src/store/mod.ts";
import { caFingerprintOf } from "../src/tls/mod.ts";
import { parseOrchestratorEndpoint } from "../src/sdk/url.ts";
import { parseJoinArgs, realJoinHost } from "../src/agent/join.ts";
import { fetchPinnedCa } from "../src/agent/join_ca.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A raw client of the WorkerJoin service (no user token). */
function joinClient(url: string) {
  const { WorkerJoin } = loadCumulusProto();
  const c = new WorkerJoin(url, grpc.credentials.createInsecure()) as unknown as
    & grpc.Client
    & Record<string, CallableFunction>;
  const join = (req: Record<string, string>) =>
    new Promise<Record<string, string>>((resolve, reject) => {
      c.JoinWorker(req, { deadline: Date.now() + 10_000 }, (err: unknown, res: never) => {
        if (err) reject(err);
        else resolve(res);
      });
    });
  return { join, close: () => c.close() };
}

async function rpcCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const code = (err as { code?: number; rpcCode?: string }).code;
    return typeof code === "number" ? grpc.status[code] : String((err as { code: string }).code);
  }
  return "OK";
}

async function keygen(dir: string, name: string): Promise<string> {
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", `${dir}/${name}`],
  }).output();
  assert.ok(out.success);
  return `${dir}/${name}`;
}

Deno.test({
  name: "a join token registers one worker once, pins its host key; drain and remove undo it",
  ...opts,
  fn: async () => {
    const keys = await Deno.makeTempDir();
    const orchKey = await keygen(keys, "orch");
    const hostKey = (await Deno.readTextFile(`${await keygen(keys, "host")}.pub`)).trim();
    const otherKey = (await Deno.readTextFile(`${await keygen(keys, "other")}.pub`)).trim();
    const stack = await startStack({ env: { SSH_KEY_PATH: orchKey } });
    const admin = new CumulusClient(stack.url, { token: stack.token });
    const alice = new CumulusClient(stack.url, { token: await stack.createToken("alice") });
    const joins = joinClient(stack.url);
    const db = WorkerStore.open(`${stack.dataDir}/jobs.db`);
    const knownHosts = () => Deno.readTextFile(`${stack.dataDir}/known_hosts`).catch(() => "");
    const req = (token: string, name = "w-test", key = hostKey) => ({
      joinToken: token,
      name,
      sshTarget: "cumulus@198.18.0.77:2222",
      sshHostKey: key,
    });
    try {
      assert.equal(await rpcCode(alice.createJoinToken()), "PERMISSION_DENIED");
      const t = await admin.createJoinToken({ expiresS: 600 });
      assert.match(t.token, /^cuj_[0-9a-f]{12}_/);
      assert.equal(
        t.command,
        `cumulus-agent join --orchestrator ${stack.url} --token ${t.token}`,
      );
      assert.ok(Math.abs(t.expiresAtMs - Date.now() - 600_000) < 10_000);
      // Only the hash is stored.
      const raw = await Deno.readFile(`${stack.dataDir}/jobs.db`);
      assert.ok(!new TextDecoder().decode(raw).includes(t.token));

      // A user token is no join token; nothing is stored.
      assert.equal(await rpcCode(joins.join(req(stack.token))), "UNAUTHENTICATED");
      assert.equal(db.list().length, 0);

      const res = await joins.join(req(t.token));
      assert.match(res.swarmJoinToken, /^SWMTKN-/);
      assert.match(res.managerAddress, /:2377$/);
      const pub = (await Deno.readTextFile(`${orchKey}.pub`)).split(" ").slice(0, 2).join(" ");
      assert.equal(res.orchestratorSshKey, `${pub} cumulus-orchestrator`);
      const stored = db.get("w-test")!;
      assert.equal(stored.sshTarget, "cumulus@198.18.0.77:2222");
      assert.equal(stored.state, "active");
      const pinned = hostKey.split(" ").slice(0, 2).join(" ");
      assert.equal(await knownHosts(), `[198.18.0.77]:2222 ${pinned}\n`);

      // The same join again: unchanged, still OK.
      assert.deepEqual(await joins.join(req(t.token)), res);
      assert.deepEqual(db.list(), [stored]);
      // The spent token for another worker, and an expired one: refused, nothing stored.
      assert.equal(await rpcCode(joins.join(req(t.token, "w-other"))), "UNAUTHENTICATED");
      const short = await admin.createJoinToken({ expiresS: 0.001 });
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await rpcCode(joins.join(req(short.token, "w-late"))), "UNAUTHENTICATED");
      // The name with another host key: refused until the worker is removed.
      const t2 = await admin.createJoinToken();
      assert.equal(
        await rpcCode(joins.join(req(t2.token, "w-test", otherKey))),
        "FAILED_PRECONDITION",
      );
      assert.deepEqual(db.list(), [stored]);
      assert.equal(await knownHosts(), `[198.18.0.77]:2222 ${pinned}\n`);

      assert.equal(await rpcCode(alice.drainWorker("w-test")), "PERMISSION_DENIED");
      assert.equal(await rpcCode(admin.drainWorker("nope")), "NOT_FOUND");
      assert.equal(await admin.drainWorker("w-test", { now: true }), "");
      assert.equal(db.get("w-test")!.state, "draining");
      assert.equal(await rpcCode(admin.removeWorker("nope")), "NOT_FOUND");
      assert.equal(await admin.removeWorker("w-test"), "");
      assert.equal(db.get("w-test"), null);
      assert.equal(await knownHosts(), "");
      // Removed: the name is free for another key (the unused token t2 still works).
      await joins.join(req(t2.token, "w-test", otherKey));
      assert.equal(db.get("w-test")!.hostKey, otherKey.split(" ").slice(0, 2).join(" "));
    } finally {
      db.close();
      joins.close();
      admin.close();
      alice.close();
      await stack.stop();
      await Deno.remove(keys, { recursive: true });
    }
  },
});

Deno.test({
  name: "with TLS the join line pins the CA by fingerprint, and the agent registers through it",
  ...opts,
  fn: async () => {
    const keys = await Deno.makeTempDir();
    const hostKey = (await Deno.readTextFile(`${await keygen(keys, "host")}.pub`)).trim();
    const stack = await startStack({ tls: true });
    const caPem = await Deno.readTextFile(stack.caFile!);
    const admin = new CumulusClient(stack.url, { token: stack.token, caPem });
    const db = WorkerStore.open(`${stack.dataDir}/jobs.db`);
    try {
      const t = await admin.createJoinToken();
      const fp = await caFingerprintOf(caPem);
      assert.equal(t.caFingerprint, fp);
      assert.equal(
        t.command,
        `cumulus-agent join --orchestrator ${stack.url} --token ${t.token} --ca-fingerprint ${fp}`,
      );
      const { host, target } = parseOrchestratorEndpoint(stack.url);
      const port = Number(target.slice(target.lastIndexOf(":") + 1));
      assert.equal((await fetchPinnedCa(host, port, fp)).trim(), caPem.trim());
      const wrong = fp.replace(/^../, fp.startsWith("00") ? "01" : "00");
      await assert.rejects(fetchPinnedCa(host, port, wrong), /presents no CA with fingerprint/);
      const o = parseJoinArgs([
        "--orchestrator",
        stack.url,
        "--token",
        t.token,
        "--ca-fingerprint",
        fp,
      ])!;
      const req = {
        joinToken: t.token,
        name: "w-tls",
        sshTarget: "cumulus@10.9.9.9:22",
        sshHostKey: hostKey,
      };
      const res = await realJoinHost.register(o, req);
      assert.match(res.swarmJoinToken, /^SWMTKN-/);
      assert.equal(db.get("w-tls")!.sshTarget, "cumulus@10.9.9.9:22");
      // A spent token through the agent's client: its own failure kind.
      await assert.rejects(realJoinHost.register(o, { ...req, name: "w-2" }), /already used/);
    } finally {
      db.close();
      admin.close();
      await stack.stop();
      await Deno.remove(keys, { recursive: true });
    }
  },
});
