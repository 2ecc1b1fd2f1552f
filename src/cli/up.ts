/**
 * `cumulus up`: the embedded default on this machine. Starts (or finds
 * running) this machine's Docker engine as Swarm manager and worker, an S3
 * server for L2 checkpoints, the orchestrator and the agent daemon, then runs
 * the demo (examples/demo/train.py) through an infrastructure failure.
 * @module
 */
import type Docker from "dockerode";
import { pause } from "../core/pause.ts";
import { UsageError } from "./args.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";
import { runDemo } from "./demo.ts";
import {
  builtExecutable,
  defaultUpDataDir,
  EmbeddedPaths,
  type EmbeddedState,
  freePort,
  portOpen,
  readState,
  runningPid,
  selfArgv,
  spawnDetached,
  tail,
  writeState,
} from "./embedded.ts";
import { crashHow, piecesStatus } from "./status.ts";
import {
  credentialsPath,
  CumulusClient,
  CumulusRpcError,
  readCredentialsToken,
  resolveToken,
  writeCredentials,
} from "../sdk/mod.ts";
import { ensureCertificates, tlsDirOf } from "../tls/mod.ts";
import { writeUpEndpoint } from "./up_endpoint.ts";
import { connectDocker, SwarmClient } from "../swarm/mod.ts";
import {
  buildJobImage,
  DEFAULT_JOB_IMAGE,
  DEFAULT_JOB_REPO,
  dockerEngineAddress,
  imageExists,
  pullImage,
  registryImage,
} from "./job_image.ts";
import { PREREQ_SCOPE } from "./prereqs.ts";
import { checkPrereqs } from "./up_prereqs.ts";

/** Default gRPC port of the orchestrator `up` starts. */
export const DEFAULT_UP_PORT = 50051;
/** Bucket `up` creates in its S3 server for L2 checkpoints. */
export const UP_BUCKET = "cumulus-checkpoints";
/** s3rver's built-in credentials (a local server, loopback only). */
const S3RVER_KEY = "S3RVER";

const FLAGS = [
  { name: "port", type: "string" as const },
  { name: "data-dir", type: "string" as const },
  { name: "no-demo", type: "boolean" as const },
  { name: "image-from", type: "string" as const },
  { name: "install-prereqs", type: "boolean" as const },
];

/** What `up` reports with --json. */
export interface UpReport {
  /** Orchestrator address for clients. */
  url: string;
  dataDir: string;
  /** Each piece: started now, reused, or skipped (with why). */
  pieces: Record<
    string,
    {
      status: "started" | "reused" | "skipped";
      /** The supervisor's pid (the piece runs as its child). */
      pid?: number;
      note?: string;
      /** Restarts by its supervisor after crashes (0 for a piece started now). */
      restarts?: number;
    }
  >;
  /** Where L2 checkpoints go. */
  checkpoints: string;
  /** The credentials file the CLI and SDKs read ("" when none could be written). */
  credentials: string;
  /** The demo's outcome, when it ran. */
  demo?: Awaited<ReturnType<typeof runDemo>>;
}

/** Runs `cumulus up`. */
export async function upCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("up", argv, FLAGS, ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) throw new UsageError("'cumulus up' takes no arguments");
  if (args.url !== undefined || ctx.url !== undefined) {
    throw new UsageError("'cumulus up' starts its own orchestrator: --url does not apply");
  }
  // ORCHESTRATOR_PORT, the orchestrator's own variable, is the default too.
  const portFlag = (args.flags.port as string | undefined) ??
    nonEmpty(ctx.io.env("ORCHESTRATOR_PORT"));
  let port = DEFAULT_UP_PORT;
  if (portFlag !== undefined) {
    port = Number(portFlag);
    if (!/^\d+$/.test(portFlag) || port < 1 || port > 65535) {
      throw new UsageError(`--port: must be a port number 1-65535, got ${portFlag}`);
    }
  }
  const imageFrom = args.flags["image-from"] as string | undefined;
  let pulled: string | undefined;
  try {
    pulled = imageFrom === undefined ? undefined : registryImage(imageFrom);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const dataDirFlag = args.flags["data-dir"] as string | undefined;
  const paths = new EmbeddedPaths(dataDirFlag ?? defaultUpDataDir(ctx.io.env), ctx.io.cwd());
  requirePermissions();
  const t0 = ctx.io.now();
  const say = (line: string) => ctx.io.stderr.write(`up: ${line}\n`);
  const since = (t: number) => `${((ctx.io.now() - t) / 1000).toFixed(1)} s`;
  const report: UpReport = {
    url: "",
    dataDir: paths.dataDir,
    pieces: {},
    checkpoints: "",
    credentials: "",
  };
  await Deno.mkdir(paths.runDir, { recursive: true });

  // 1. Docker engine: Swarm manager and the only worker. What the machine lacks (the
  // engine, and the tools to build the job image) is checked first and said line by line.
  const manager = dockerEngineAddress(ctx.io.env);
  let t = ctx.io.now();
  await say(`checking the Docker engine at ${manager} …`);
  const docker = connectDocker(manager);
  const install = Boolean(args.flags["install-prereqs"]);
  // deno-lint-ignore no-explicit-any
  let info: any = await checkPrereqs(docker, manager, PREREQ_SCOPE.engine, {
    install,
    env: ctx.io.env,
    say,
  });
  if (info.Swarm?.LocalNodeState !== "active") {
    await say("this engine is not in Swarm mode: initialising a single-node Swarm …");
    await docker.swarmInit({ ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1" });
    info = await docker.info();
  }
  const image = await ensureJobImage(docker, manager, pulled, install, ctx, say);
  await say(
    `Swarm ready in ${since(t)}: node ${info.Name} (${
      String(info.Swarm?.NodeID ?? "").slice(0, 12)
    }) is manager and worker; job image ${image}`,
  );

  // Jobs get a network of their own and reach the orchestrator (and the S3 gate) on
  // Docker's default bridge gateway, which the certificate names; an engine without one
  // keeps them on the host network, and says so.
  const gateway = await new SwarmClient(docker).bridgeGateway();
  if (gateway === null) {
    await say(
      "WARNING: this Docker engine has no default bridge (dockerd --bridge=none): jobs " +
        "share this machine's network, loopback included (docs/security.md)",
    );
  }
  const previous = await readState(paths);
  const state: EmbeddedState = { port, s3Endpoint: "", s3Bucket: "", tls: true };
  // A private CA and a certificate for 127.0.0.1/localhost and the bridge gateway (kept from
  // run to run): the orchestrator serves TLS only, and clients here find the CA through
  // writeUpEndpoint.
  const certs = await ensureCertificates({
    dir: tlsDirOf(paths.dataDir),
    hosts: gateway ? [gateway] : [],
  });
  const caPem = await Deno.readTextFile(certs.paths.caCert);
  const scheme = (tls: boolean | undefined) => tls ? "grpcs://" : "";

  // 2. S3 server for L2 checkpoints (reused while it runs).
  t = ctx.io.now();
  const s3pid = await runningPid(paths, "s3rver");
  if (s3pid !== null && previous?.s3Endpoint && await portOpen(portOf(previous.s3Endpoint))) {
    state.s3Endpoint = previous.s3Endpoint;
    state.s3Bucket = previous.s3Bucket;
    report.pieces.s3rver = { status: "reused", pid: s3pid };
    await say(`S3 server already running at ${state.s3Endpoint} (pid ${s3pid}): reusing it`);
  } else {
    const prevPort = previous?.s3Endpoint ? portOf(previous.s3Endpoint) : 0;
    const s3port = prevPort && !await portOpen(prevPort) ? prevPort : freePort();
    await Deno.mkdir(paths.s3Dir, { recursive: true });
    await say(
      `starting the S3 server (s3rver) on 127.0.0.1:${s3port}, objects in ${paths.s3Dir} …`,
    );
    // s3rver (npm) runs inside this same program (`cumulus s3`): no Node.js needed.
    const proc = await spawnDetached(
      paths,
      "s3rver",
      selfArgv([
        "s3",
        "--directory",
        paths.s3Dir,
        "--port",
        String(s3port),
        "--address",
        "127.0.0.1",
        "--bucket",
        UP_BUCKET,
      ]),
      Deno.env.toObject(),
    );
    await waitUntil("the S3 server", paths.logFile("s3rver"), 20_000, async () => {
      if (proc.exited()) return "exited";
      return await portOpen(s3port) ? "ready" : "wait";
    });
    state.s3Endpoint = `http://127.0.0.1:${s3port}`;
    state.s3Bucket = UP_BUCKET;
    report.pieces.s3rver = { status: "started", pid: proc.pid };
    await say(`S3 server ready in ${since(t)} (pid ${proc.pid})`);
  }
  report.checkpoints = state.s3Endpoint
    ? `L1 on this machine + L2 s3://${state.s3Bucket} at ${state.s3Endpoint}`
    : "L1 only: a local directory per job on this machine (no S3 server)";

  // 3. The orchestrator, and (in parallel) the agent daemon if this build has one. Both
  // see the same Chronos state, kept in the data dir unless CHRONOS_STATE_DIR says otherwise.
  t = ctx.io.now();
  const chronosStateDir = nonEmpty(ctx.io.env("CHRONOS_STATE_DIR")) ?? `${paths.dataDir}/chronos`;
  await Deno.mkdir(chronosStateDir, { recursive: true });
  const pieceEnv = {
    ...Deno.env.toObject(),
    CHRONOS_STATE_DIR: chronosStateDir,
    CUMULUS_JOB_IMAGE: image,
    // The agent daemon stops expired jobs' containers through the same engine.
    DOCKER_HOST: nonEmpty(ctx.io.env("DOCKER_HOST")) ??
      (manager.startsWith("/") ? `unix://${manager}` : manager),
  };
  const agentStarting = startAgent(paths, pieceEnv, say);
  const orchPid = await runningPid(paths, "orchestrator");
  if (orchPid !== null && previous && await portOpen(previous.port)) {
    state.port = previous.port;
    state.tls = previous.tls;
    // Its S3 settings were fixed when it started: keep reporting those.
    if (previous.s3Endpoint) {
      state.s3Endpoint = previous.s3Endpoint;
      state.s3Bucket = previous.s3Bucket;
    }
    report.pieces.orchestrator = { status: "reused", pid: orchPid };
    const moved = portFlag !== undefined && port !== previous.port
      ? ` (not ${port}: stop it with 'cumulus down' to change the port)`
      : "";
    await say(
      `orchestrator already running on 127.0.0.1:${state.port}${moved} (pid ${orchPid}): reusing it`,
    );
  } else {
    if (await portOpen(port)) {
      throw new Error(
        `port ${port} is taken by a program 'cumulus up' did not start: choose another with --port`,
      );
    }
    await say(`starting the orchestrator on 127.0.0.1:${port} …`);
    const env: Record<string, string> = {
      ...pieceEnv,
      SWARM_MANAGER: manager,
      ORCHESTRATOR_METRICS_PORT: nonEmpty(ctx.io.env("ORCHESTRATOR_METRICS_PORT")) ?? "0",
      CUMULUS_TLS_CERT: certs.paths.serverCert,
      CUMULUS_TLS_KEY: certs.paths.serverKey,
      CUMULUS_TLS_CA: certs.paths.caCert,
      ...(gateway ? {} : { CUMULUS_JOB_NETWORK: "host" }),
    };
    if (state.s3Endpoint) {
      Object.assign(env, {
        CUMULUS_S3_BUCKET: state.s3Bucket,
        CUMULUS_S3_ENDPOINT: state.s3Endpoint,
        CUMULUS_S3_REGION: "us-east-1",
        // s3rver checks no signature: jobs' requests go through the gate, which relays only
        // what the orchestrator presigned (and, with job_network, is all they can reach).
        CUMULUS_JOB_S3_GATE: "true",
        AWS_ACCESS_KEY_ID: S3RVER_KEY,
        AWS_SECRET_ACCESS_KEY: S3RVER_KEY,
      });
    }
    const proc = await spawnDetached(
      paths,
      "orchestrator",
      selfArgv(["orchestrator", "--port", String(port), "--data-dir", paths.dataDir]),
      env,
    );
    let client: CumulusClient | null = null;
    try {
      await waitUntil("the orchestrator", paths.logFile("orchestrator"), 60_000, async () => {
        if (proc.exited()) return "exited";
        if (!await portOpen(port)) return "wait";
        // Its first admin token is on disk before it listens.
        client ??= new CumulusClient(`grpcs://127.0.0.1:${port}`, {
          caPem,
          token: await upToken(paths, ctx),
        });
        return await client.listJobs({ pageSize: 1 }).then(
          () => "ready" as const,
          // An answer all the same; the credentials step says what is wrong.
          (err) =>
            err instanceof CumulusRpcError && err.code === "UNAUTHENTICATED" ? "ready" : "wait",
        );
      });
    } finally {
      (client as CumulusClient | null)?.close();
    }
    report.pieces.orchestrator = { status: "started", pid: proc.pid };
    await say(
      `orchestrator ready in ${since(t)} (pid ${proc.pid}, log ${paths.logFile("orchestrator")})`,
    );
  }
  report.pieces.agent = await agentStarting;
  report.url = `${scheme(state.tls)}127.0.0.1:${state.port}`;
  await writeState(paths, state);
  if (state.tls) {
    await writeUpEndpoint(ctx.io.env, {
      url: report.url,
      caFile: certs.paths.caCert,
      dataDir: paths.dataDir,
    });
  }
  const token = await upToken(paths, ctx);
  report.credentials = await saveCredentials(ctx, report.url, caPem, token, say);
  await say(`checkpoints: ${report.checkpoints}`);
  // Pieces run under supervisors: say what crashed and was restarted since they started.
  for (const p of await piecesStatus(paths)) {
    const piece = report.pieces[p.piece];
    if (piece) piece.restarts = p.restarts;
    if (p.restarts > 0 && p.lastCrash) {
      await say(
        `${p.piece}: restarted ${p.restarts} time(s) by its supervisor; last crash ` +
          `${p.lastCrash.at}, ${crashHow(p.lastCrash)} (see cumulus status)`,
      );
    }
  }
  await say(
    `cluster ready in ${since(t0)}: CUMULUS_ORCHESTRATOR_URL=${report.url}` +
      (state.tls ? ` CUMULUS_CA_FILE=${certs.paths.caCert} (clients here find both)` : ""),
  );

  let code = 0;
  if (!args.flags["no-demo"]) {
    report.demo = await runDemo({
      url: report.url,
      caPem,
      token: token || undefined,
      docker,
      say: (line) => say(`demo: ${line}`),
      now: () => ctx.io.now(),
    });
    code = report.demo.state === "SUCCEEDED" ? 0 : 1;
  }
  if (args.json) {
    await ctx.io.stdout.write(JSON.stringify(report, null, 2) + "\n");
  } else {
    if (report.demo) await ctx.io.stdout.write(report.demo.text);
    await ctx.io.stdout.write(
      `\nCumulus is running (orchestrator ${report.url}, data in ${paths.dataDir}).\n` +
        `Try: cumulus jobs    Stop: cumulus down${
          dataDirFlag === undefined ? "" : ` --data-dir ${paths.dataDir}`
        }\n`,
    );
  }
  await say(`done in ${since(t0)}`);
  return code;
}

/**
 * The token `up` uses: the first admin token the orchestrator wrote to its
 * data dir, else the user's own (CUMULUS_TOKEN, the credentials file).
 */
async function upToken(paths: EmbeddedPaths, ctx: CommandContext): Promise<string> {
  try {
    return (await Deno.readTextFile(`${paths.dataDir}/admin-token`)).trim();
  } catch {
    return resolveToken(undefined, (n) => ctx.io.env(n));
  }
}

/**
 * Makes the CLI and the SDKs find a token for this orchestrator: the
 * credentials file keeps a token this orchestrator accepts, else gets
 * `token`. Returns the file's path ("" when there is none).
 */
async function saveCredentials(
  ctx: CommandContext,
  url: string,
  caPem: string,
  token: string,
  say: (line: string) => Promise<unknown>,
): Promise<string> {
  const path = credentialsPath((n) => ctx.io.env(n));
  const who = async (t: string) => {
    const client = new CumulusClient(url, { caPem, token: t });
    try {
      return await client.whoAmI();
    } catch (err) {
      if (err instanceof CumulusRpcError && err.code === "UNAUTHENTICATED") return null;
      throw err;
    } finally {
      client.close();
    }
  };
  if (!path) {
    await say("no HOME: set CUMULUS_CREDENTIALS to keep a token for the CLI (cumulus login)");
    return "";
  }
  const existing = readCredentialsToken(path);
  const current = existing ? await who(existing) : null;
  if (current) {
    await say(`credentials: ${path} holds a token of ${current.user} for this orchestrator`);
    return path;
  }
  const mine = token ? await who(token) : null;
  if (!mine) {
    await say(
      `no token for this orchestrator (its first admin token is no longer in ` +
        `its data dir): run 'cumulus login' with a token an admin created`,
    );
    return "";
  }
  await writeCredentials(path, token);
  await say(
    `credentials: admin token of ${mine.user} saved in ${path} (mode 0600); ` +
      "'cumulus token create USER' makes tokens for others",
  );
  return path;
}

/**
 * `up` starts processes and writes its data dir. The offline build gives it
 * those permissions (scripts/build.sh); a program built otherwise with client
 * permissions cannot run it, so say how to.
 */
function requirePermissions(): void {
  for (const name of ["run", "write", "read", "net", "env"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") {
      throw new Error(
        `'cumulus up' needs --allow-${name} (it starts processes and writes its data dir): ` +
          (builtExecutable()
            ? "this executable was built with client permissions only (docs/build.md)"
            : "run it as 'deno run -A main.ts up'"),
      );
    }
  }
}

/**
 * The job image `up` gives the orchestrator: CUMULUS_JOB_IMAGE or
 * cumulus-job:latest when the engine has it; else pulled from --image-from;
 * else built from this copy's containers/ (prerequisites checked first).
 */
async function ensureJobImage(
  docker: Docker,
  engine: string,
  pulled: string | undefined,
  install: boolean,
  ctx: CommandContext,
  say: (line: string) => Promise<unknown>,
): Promise<string> {
  const named = nonEmpty(ctx.io.env("CUMULUS_JOB_IMAGE"));
  if (pulled !== undefined) {
    if (await imageExists(docker, pulled)) return pulled;
    await pullImage(docker, pulled, say);
    return pulled;
  }
  const wanted = named ?? DEFAULT_JOB_IMAGE;
  if (await imageExists(docker, wanted)) return wanted;
  const repo = nonEmpty(ctx.io.env("CUMULUS_JOB_REPO")) ?? DEFAULT_JOB_REPO;
  if (named !== undefined && named !== `${repo}:latest`) {
    throw new Error(
      `CUMULUS_JOB_IMAGE=${named}: the engine has no such image ('docker pull' it, ` +
        "'cumulus image load FILE', or unset CUMULUS_JOB_IMAGE to build one)",
    );
  }
  await say(
    `no job image ${wanted} on this engine: building it from this copy of Cumulus ` +
      "(or stop and use --image-from REGISTRY, or 'cumulus image load FILE')",
  );
  await checkPrereqs(docker, engine, PREREQ_SCOPE.imageBuild, { install, env: ctx.io.env, say });
  return await buildJobImage({ repo, engine, env: Deno.env.toObject(), say });
}

/** Starts the agent daemon when `cumulus agent serve --help` works; else reports it skipped. */
async function startAgent(
  paths: EmbeddedPaths,
  env: Record<string, string>,
  say: (line: string) => Promise<void>,
): Promise<UpReport["pieces"][string]> {
  const running = await runningPid(paths, "agent");
  if (running !== null) {
    await say(`agent daemon already running (pid ${running}): reusing it`);
    return { status: "reused", pid: running };
  }
  const [exe, ...rest] = selfArgv(["agent", "serve", "--help"]);
  const probe = await new Deno.Command(exe, { args: rest, stdout: "null", stderr: "null" })
    .output();
  if (!probe.success) {
    const note = "this build has no 'cumulus agent serve' daemon yet";
    await say(`agent daemon skipped: ${note} (partition expiry is not enforced)`);
    return { status: "skipped", note };
  }
  const t = Date.now();
  await say("starting the agent daemon (cumulus agent serve) …");
  const proc = await spawnDetached(
    paths,
    "agent",
    selfArgv(["agent", "serve"]),
    env,
  );
  await pause(1000);
  if (proc.exited()) {
    const note = `it exited at start: ${
      (await tail(paths.logFile("agent"), 3)).replace(/\n/g, " | ")
    }`;
    await say(`agent daemon not running: ${note}`);
    return { status: "skipped", note };
  }
  await say(`agent daemon ready in ${((Date.now() - t) / 1000).toFixed(1)} s (pid ${proc.pid})`);
  return { status: "started", pid: proc.pid };
}

/** Polls `check` until "ready"; throws with the log's tail on "exited" or timeout. */
async function waitUntil(
  what: string,
  log: string,
  timeoutMs: number,
  check: () => Promise<"ready" | "wait" | "exited">,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const s = await check();
    if (s === "ready") return;
    if (s === "exited") {
      throw new Error(`${what} exited at start; its log (${log}) ends with: ${await tail(log)}`);
    }
    await pause(150);
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s; see ${log}`);
}

function portOf(endpoint: string): number {
  return Number(new URL(endpoint).port);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() !== "" ? v : undefined;
}
