/**
 * `deno task bench up`: time to the first demo result of `cumulus up`, with the job image
 * present, from a checkout (`deno run -A main.ts up`) and from the downloaded executable (the
 * built `cumulus` alone in an empty directory under `env -i`, tests/helpers/standalone.ts),
 * alternating in one run. Each `up` starts cold (a fresh data dir, nothing running) and is
 * timed from its start to the demo's `RESULT` line on stderr; `cumulus down` follows each.
 * The first run of the executable also unpacks it (a fresh cache), and is reported apart.
 * @module
 */
import { freePort } from "../tests/helpers/process.ts";
import { SWARM_SOCKET } from "../tests/helpers/stack.ts";
import {
  cleanupStandalone,
  makeStandalone,
  type Standalone,
  standaloneEnv,
} from "../tests/helpers/standalone.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Seconds from spawn to the demo's RESULT line, and the job id. */
async function timeToResult(cmd: Deno.Command): Promise<{ seconds: number; jobId: string }> {
  const t0 = performance.now();
  const child = cmd.spawn();
  let seen = 0;
  let text = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (!seen && text.includes("| RESULT ")) seen = performance.now();
  }
  const status = await child.status;
  const jobId = /submitted job (j-[0-9a-f]{12})/.exec(text)?.[1] ?? "";
  if (!status.success || !seen) throw new Error(`up failed (exit ${status.code}):\n${text}`);
  return { seconds: (seen - t0) / 1000, jobId };
}

function checkoutUp(dataDir: string, home: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "up", "--port", String(freePort()), "--data-dir", dataDir],
    cwd: ROOT,
    env: {
      SWARM_MANAGER: SWARM_SOCKET,
      CUMULUS_CONFIG_DIR: `${home}/config`,
      CUMULUS_CREDENTIALS: `${home}/credentials`,
      CUMULUS_TOKEN: "",
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
}

function downloadedUp(s: Standalone, dataDir: string): Deno.Command {
  return new Deno.Command("./cumulus", {
    args: ["up", "--port", String(freePort()), "--data-dir", dataDir],
    cwd: s.dir,
    clearEnv: true,
    env: standaloneEnv(s),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
}

/** Runs the section; returns its markdown. */
export async function runUpBench(rounds = 3): Promise<string> {
  const s = await makeStandalone("cumulus-up-bench-");
  const checkout: number[] = [];
  const downloaded: number[] = [];
  const dataDirs: string[] = [];
  const jobIds: string[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const a = `${s.root}/checkout-${i}`;
      dataDirs.push(a);
      const r1 = await timeToResult(checkoutUp(a, s.root));
      checkout.push(r1.seconds);
      jobIds.push(r1.jobId);
      await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "down", "--data-dir", a],
        cwd: ROOT,
        env: { CUMULUS_CONFIG_DIR: `${s.root}/config` },
        stdout: "null",
        stderr: "null",
      }).output();
      const b = `${s.home}/data-${i}`;
      dataDirs.push(b);
      const r2 = await timeToResult(downloadedUp(s, b));
      downloaded.push(r2.seconds);
      jobIds.push(r2.jobId);
      await cleanupStandalone(s, [b], []);
    }
  } finally {
    await cleanupStandalone(s, dataDirs, jobIds);
    await Deno.remove(s.root, { recursive: true }).catch(() => {});
  }
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
  const median = (xs: number[]) => {
    const v = [...xs].sort((x, y) => x - y);
    const m = Math.floor(v.length / 2);
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const later = downloaded.slice(1);
  return [
    "## Time to first demo result (issue 18)",
    "",
    "`cumulus up` with the job image present, cold (fresh data dir, nothing running), timed from",
    "its start to the demo's `RESULT` line: from the checkout (`deno run -A main.ts up`) and from",
    "the built `cumulus` copied alone into an empty directory (`env -i`, PATH=/usr/bin:/bin),",
    `alternating, ${rounds} rounds, \`deno task bench up\`. The executable's first run also`,
    "unpacks it into a fresh cache.",
    "",
    "| Path | Runs (s) | Median (s) |",
    "| ---- | -------- | ---------- |",
    `| checkout (\`deno run -A main.ts up\`) | ${fmt(checkout)} | ${median(checkout).toFixed(1)} |`,
    `| downloaded \`cumulus up\`, first run (unpack included) | ${downloaded[0].toFixed(1)} | - |`,
    `| downloaded \`cumulus up\`, later runs | ${fmt(later)} | ${
      later.length ? median(later).toFixed(1) : "-"
    } |`,
    "",
    `Ratio downloaded / checkout (medians of the later runs): **${
      later.length ? (median(later) / median(checkout)).toFixed(2) : "-"
    }**.`,
    "",
  ].join("\n");
}

if (import.meta.main) console.log(await runUpBench(Number(Deno.args[0] ?? 3)));
