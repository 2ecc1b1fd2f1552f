/**
 * Issue 18: the built `dist/cumulus` alone is the product. Copied into an empty directory and
 * run with no Deno, no node and no checkout in reach (tests/helpers/standalone.ts), `cumulus
 * up` brings up the embedded default on this machine's Docker engine — S3 server, orchestrator,
 * agent daemon, each under its supervisor, all started as this same file — reusing the job
 * image, and runs the demo through a container loss; `cumulus status` shows the pieces, client
 * commands find the orchestrator and a token with no flag, and `cumulus down` stops everything
 * and keeps the data, which lives under ~/.local/share/cumulus, not in the working directory.
 */
import assert from "node:assert/strict";
import { freePort } from "./helpers/process.ts";
import { SWARM_SOCKET } from "./helpers/stack.ts";
import {
  cleanupStandalone,
  defaultDataDir,
  makeStandalone,
  runStandalone,
} from "./helpers/standalone.ts";

interface Piece {
  piece: string;
  running: boolean;
  pid: number | null;
  childPid: number | null;
}

function cmdline(pid: number): string | null {
  try {
    const raw = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    return raw === "" ? null : raw.split("\0").join(" ");
  } catch {
    return null;
  }
}

Deno.test({
  name: "the downloaded cumulus alone runs up with the demo, status and down, and keeps the data",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const s = await makeStandalone();
    const dataDir = defaultDataDir(s);
    const jobIds: string[] = [];
    try {
      await t.step("nothing Deno, node or checkout is in reach", async () => {
        const r = await new Deno.Command("sh", {
          args: ["-c", "command -v deno node; ls -A; ls -d node_modules ../node_modules"],
          cwd: s.dir,
          clearEnv: true,
          env: { PATH: "/usr/bin:/bin", HOME: s.home },
          stdout: "piped",
          stderr: "null",
        }).output();
        assert.equal(new TextDecoder().decode(r.stdout), "cumulus\n");
      });

      await t.step(
        "with no engine, up names what is missing and its fix, starts nothing",
        async () => {
          const none = `${s.root}/no-engine`;
          const r = await runStandalone(s, ["up", "--data-dir", none], {
            SWARM_MANAGER: `${s.root}/no-such-docker.sock`,
          });
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, /^up: missing: the Docker engine: .+; fix: \S.+$/m);
          assert.match(r.stderr, /^cumulus: prerequisites missing .*--install-prereqs/m);
          const started = [...Deno.readDirSync(`${none}/up`)].filter((e) =>
            e.name.endsWith(".pid")
          );
          assert.deepEqual(started, []);
        },
      );

      await t.step("cumulus image load FILE loads a docker save archive", async () => {
        // A one-file image of our own, saved and removed, then loaded back by the file.
        const tag = `cumulus-standalone-load-${crypto.randomUUID().slice(0, 8)}:test`;
        const root = `${s.root}/tiny`;
        await Deno.mkdir(root);
        await Deno.writeTextFile(`${root}/hello`, "hi\n");
        const sh = (script: string) =>
          new Deno.Command("sh", {
            args: ["-c", script],
            env: { DOCKER_HOST: `unix://${SWARM_SOCKET}`, TAG: tag, ROOT: root },
            stdout: "piped",
            stderr: "piped",
          }).output();
        const made = await sh(
          'tar -C "$ROOT" -cf - . | docker import - "$TAG" >/dev/null && ' +
            'docker save -o "$ROOT.tar" "$TAG" && docker rmi "$TAG" >/dev/null',
        );
        assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
        try {
          const r = await runStandalone(s, ["image", "load", `${root}.tar`]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, `${tag}\n`);
          assert.match(r.stderr, /^image: loading .*tiny\.tar into the Docker engine/m);
          assert.equal((await sh('docker image inspect "$TAG" >/dev/null')).code, 0);
          const missing = await runStandalone(s, ["image", "load", `${root}.nope`]);
          assert.equal(missing.code, 1);
          assert.match(missing.stderr, /^cumulus: image load: cannot read /m);
        } finally {
          await sh('docker rmi "$TAG" >/dev/null 2>&1');
        }
      });

      const port = freePort();
      let report: {
        url: string;
        dataDir: string;
        pieces: Record<string, { status: string; pid?: number }>;
        checkpoints: string;
        credentials: string;
        demo: { jobId: string; state: string; attempts: number; restoredStep: number };
      };
      await t.step("cumulus up starts every piece from the file and the demo resumes", async () => {
        const up = await runStandalone(s, ["up", "--port", String(port), "--json"]);
        assert.equal(up.code, 0, `up failed:\n${up.stderr}`);
        report = JSON.parse(up.stdout);
        jobIds.push(report.demo.jobId);
        assert.equal(report.dataDir, dataDir, "data under ~/.local/share/cumulus by default");
        assert.equal(report.url, `grpcs://127.0.0.1:${port}`);
        for (const p of ["s3rver", "orchestrator", "agent"]) {
          assert.equal(report.pieces[p]?.status, "started", `${p}: ${up.stderr}`);
        }
        assert.match(report.checkpoints, /L2 s3:\/\/cumulus-checkpoints at http:\/\/127\.0\.0\.1/);
        assert.equal(report.demo.state, "SUCCEEDED", up.stderr);
        assert.equal(report.demo.attempts, 2, up.stderr);
        assert.ok(report.demo.restoredStep > 0, `no checkpoint restored:\n${up.stderr}`);
        assert.match(up.stderr, /\| RESULT steps=300 loss=/);
        // Checkpoints reached the S3 server that runs inside the same file (no node here).
        const l2 = [...Deno.readDirSync(`${dataDir}/s3/cumulus-checkpoints`)];
        assert.ok(l2.length > 0, "no checkpoint reached the S3 server");
        // Nothing was written to the working directory.
        assert.deepEqual([...Deno.readDirSync(s.dir)].map((e) => e.name), ["cumulus"]);
        console.log(`standalone up with the demo: ${(up.ms / 1000).toFixed(1)} s`);
      });

      let pieces: Piece[] = [];
      await t.step("cumulus status shows the pieces, each supervised by this file", async () => {
        const st = await runStandalone(s, ["status", "--json"]);
        assert.equal(st.code, 0, st.stderr);
        pieces = JSON.parse(st.stdout).pieces;
        assert.deepEqual(pieces.map((p) => [p.piece, p.running]), [
          ["s3rver", true],
          ["orchestrator", true],
          ["agent", true],
        ]);
        for (const p of pieces) {
          // The supervisor and the piece are this executable re-run with other arguments:
          // `deno run … app/main.ts supervise --name PIECE …` from its unpacked copy.
          const sup = cmdline(p.pid!) ?? "";
          assert.match(sup, new RegExp(` supervise --name ${p.piece} `), sup);
          assert.ok(sup.includes(`${s.home}/.cache/cumulus/`), sup);
          assert.ok(cmdline(p.childPid!), `${p.piece}'s child is not running`);
        }
        const table = await runStandalone(s, ["status"]);
        assert.match(table.stdout, /orchestrator\s+running/);
      });

      await t.step("client commands find the orchestrator and a token by themselves", async () => {
        const jobs = await runStandalone(s, ["jobs", "--all", "--json"]);
        assert.equal(jobs.code, 0, jobs.stderr);
        const list = JSON.parse(jobs.stdout) as { id: string; state: string }[];
        assert.deepEqual(
          list.filter((j) => j.id === report.demo.jobId).map((j) => j.state),
          ["SUCCEEDED"],
        );
      });

      await t.step("cumulus down stops every process and keeps the data", async () => {
        const pids = pieces.flatMap((p) => [p.pid!, p.childPid!]);
        const down = await runStandalone(s, ["down"]);
        assert.equal(down.code, 0, down.stderr);
        assert.match(down.stdout, /orchestrator: stopped/);
        assert.deepEqual(pids.filter((p) => cmdline(p) !== null), [], "left running after down");
        const st = await runStandalone(s, ["status", "--json"]);
        assert.deepEqual(
          (JSON.parse(st.stdout).pieces as Piece[]).filter((p) => p.running),
          [],
        );
        await Deno.stat(`${dataDir}/jobs.db`);
        assert.ok([...Deno.readDirSync(`${dataDir}/s3/cumulus-checkpoints`)].length > 0);
        await assert.rejects(Deno.stat(`${s.home}/.config/cumulus/up.json`), Deno.errors.NotFound);
      });

      await t.step(
        "up --image-from REGISTRY pulls the job image when the engine lacks it",
        async () => {
          await withLoopbackRegistry(s.root, async (registry, sh) => {
            // A stand-in job image (a single file: up starts no job with --no-demo).
            const image = `${registry}/cumulus-job:latest`;
            const made = await sh(
              'mkdir -p "$ROOT/img" && echo hi > "$ROOT/img/hello" && ' +
                'tar -C "$ROOT/img" -cf - . | docker import - "$IMAGE" >/dev/null && ' +
                'docker push "$IMAGE" >/dev/null && docker rmi "$IMAGE" >/dev/null',
              { IMAGE: image },
            );
            assert.equal(made.code, 0, made.err);
            const other = `${s.root}/image-from`;
            try {
              const up = await runStandalone(s, [
                "up",
                "--no-demo",
                "--port",
                String(freePort()),
                "--data-dir",
                other,
                "--image-from",
                registry,
              ]);
              assert.equal(up.code, 0, up.stderr);
              assert.match(up.stderr, new RegExp(`^up: pulling ${image} …$`, "m"));
              assert.match(up.stderr, new RegExp(`job image ${image}$`, "m"));
              assert.equal(
                (await sh('docker image inspect "$IMAGE" >/dev/null', { IMAGE: image })).code,
                0,
              );
              const bad = await runStandalone(s, [
                "up",
                "--image-from",
                "http://x",
                "--data-dir",
                other,
              ]);
              assert.equal(bad.code, 2, bad.stderr);
              assert.match(bad.stderr, /^cumulus: --image-from: must be a registry host/m);
            } finally {
              await runStandalone(s, ["down", "--data-dir", other]);
              await sh('docker rmi "$IMAGE" >/dev/null 2>&1', { IMAGE: image });
            }
          });
        },
      );
    } finally {
      await cleanupStandalone(s, [dataDir], jobIds);
      await Deno.remove(s.root, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * Runs `fn` with a plain-HTTP Docker registry (Debian's docker-registry) on a loopback port,
 * which engines trust without TLS; stops it and removes its storage after.
 */
async function withLoopbackRegistry(
  root: string,
  fn: (
    registry: string,
    sh: (script: string, env?: Record<string, string>) => Promise<{ code: number; err: string }>,
  ) => Promise<void>,
): Promise<void> {
  const addr = `127.0.0.1:${freePort()}`;
  const dir = `${root}/registry`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(
    `${dir}/config.yml`,
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/store\n` +
      `http:\n  addr: ${addr}\n`,
  );
  const reg = new Deno.Command("/usr/bin/docker-registry", {
    args: ["serve", `${dir}/config.yml`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const sh = async (script: string, env: Record<string, string> = {}) => {
    const o = await new Deno.Command("sh", {
      args: ["-c", script],
      env: { DOCKER_HOST: `unix://${SWARM_SOCKET}`, ROOT: root, ...env },
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code: o.code, err: new TextDecoder().decode(o.stderr) };
  };
  try {
    const until = Date.now() + 15_000;
    while (
      (await fetch(`http://${addr}/v2/`).then((r) => r.body?.cancel(), () => "down")) === "down"
    ) {
      assert.ok(Date.now() < until, "docker-registry did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    await fn(addr, sh);
  } finally {
    reg.kill("SIGTERM");
    await reg.status;
  }
}
