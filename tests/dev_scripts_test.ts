/**
 * scripts/dev-*.sh: each answers --help; and the whole cycle against a Docker context of this
 * machine's own engine (a unix socket): dev-setup (twice: idempotent), dev-start (a real
 * orchestrator container from dist/cumulus-orchestrator, built here when missing), dev-logs,
 * dev-stop --purge.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { freePort } from "./helpers/sshd.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SOCKET = (Deno.env.get("DOCKER_HOST") ?? "unix:///run/cumulus-docker.sock").replace(
  /^unix:\/\//,
  "",
);
/** The base image scripts/bootstrap.sh builds (no registry here to pull debian from). */
const BASE_IMAGE = Deno.env.get("CUMULUS_BASE_IMAGE") ?? "cumulus-base:bookworm";

async function script(name: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/${name}`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("every dev script answers --help and refuses unknown arguments", async () => {
  for (const name of ["dev-setup.sh", "dev-start.sh", "dev-logs.sh", "dev-stop.sh"]) {
    const help = await script(name, ["--help"]);
    assert.equal(help.code, 0, `${name}: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^usage: ${name}`));
    const bad = await script(name, ["--no-such-flag"]);
    assert.equal(bad.code, 2, `${name}: ${bad.stderr}`);
  }
});

Deno.test("dev-setup, dev-start, dev-logs and dev-stop run an orchestrator through a local context", async () => {
  const binary = `${ROOT}dist/cumulus-orchestrator`;
  if (!existsSync(binary)) {
    const build = await new Deno.Command("bash", { args: [`${ROOT}scripts/build.sh`] }).output();
    assert.ok(build.success, "scripts/build.sh failed");
  }
  const dir = await Deno.makeTempDir({ prefix: "cumulus-dev-" });
  const context = `cumulus-dev-test-${crypto.randomUUID().slice(0, 8)}`;
  const env = { CUMULUS_DEV_ENV: `${dir}/dev.env` };
  const port = freePort();
  try {
    const setup = ["--host", `unix://${SOCKET}`, "--context", context, "--base-image", BASE_IMAGE];
    const first = await script("dev-setup.sh", setup, env);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /\[done\] created context/);
    const again = await script("dev-setup.sh", setup, env);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /\[done\]/);

    const startArgs = [
      "--port",
      String(port),
      "--docker-socket",
      SOCKET,
      "--env",
      "ORCHESTRATOR_METRICS_PORT=-1",
    ];
    const start = await script("dev-start.sh", startArgs, env);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    assert.match(start.stdout, /listening on port/);
    // It is really there: the gRPC port takes connections.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    const twice = await script("dev-start.sh", startArgs, env);
    assert.match(twice.stdout, /already running/);

    const logs = await script("dev-logs.sh", ["--tail", "5"], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout + logs.stderr, new RegExp(`listening on 127\\.0\\.0\\.1:${port}`));

    const stop = await script("dev-stop.sh", ["--purge"], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /stopped and removed/);
    assert.match(stop.stdout, /removed context/);
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
  } finally {
    await script("dev-stop.sh", ["--purge"], env);
    await Deno.remove(dir, { recursive: true });
  }
});
