/**
 * Starts the orchestrator: data directories, job store, Swarm connection,
 * reconciliation, the gRPC server and the /metrics endpoint.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { type Config, ConfigError } from "../config/mod.ts";
import { LogHub } from "../logs/mod.ts";
import { loadCumulusProto, loadHealthProto } from "../rpc/mod.ts";
import { prepareDataDir } from "./data_dir.ts";
import { HealthState } from "./health.ts";
import { lateHandlers } from "./late_handlers.ts";
import { assertSafeListen } from "./listen_safety.ts";
import { planJobReach } from "./job_reach.ts";
import { JobNetwork } from "./job_network.ts";
import { startS3Gate } from "./s3_gate.ts";
import { caFingerprintOf, certCoversHost } from "../tls/mod.ts";
import { JobStore, TokenStore, WorkerStore } from "../store/mod.ts";
import { parseSshTarget, requireToken } from "../core/mod.ts";
import { bootstrapAdmin, callerOf, httpCaller, withAuth } from "./auth.ts";
import {
  connectDocker,
  readDockerConfig,
  type RegistryAuth,
  RegistryAuthError,
  SwarmClient,
} from "../swarm/mod.ts";
import { ImagePublisher } from "./image_publisher.ts";
import { startOwnedRegistry } from "../registry/mod.ts";
import { JobManager } from "./job_manager.ts";
import { L2Access, loadCheckpointSecret } from "./l2_access.ts";
import { PartitionKeeper } from "./partitions.ts";
import {
  localAgentCommand,
  LocalChannelTransport,
  type Transport,
  WorkerRegistry,
} from "../workers/mod.ts";
import { KnownHosts, publicKeyLine, SshPool } from "../ssh/mod.ts";
import { Metrics } from "./metrics.ts";
import { ResultSweeper } from "./result_retention.ts";
import { cumulusHandlers, runtimeHandlers } from "./server.ts";
import { workerAdminHandlers, workerJoinHandlers } from "./worker_join.ts";
import { boundedServerOptions, StreamLimiter } from "./stream_limits.ts";
import { INSTANCE_LABEL } from "./service_spec.ts";
import { TaskEventHub } from "./task_events.ts";

/** A running orchestrator. */
export interface OrchestratorHandle {
  /** Bound gRPC port. */
  port: number;
  /** Bound /metrics port, or -1 when disabled. */
  metricsPort: number;
  /** The job manager (tests inspect it). */
  manager: JobManager;
  /** The Swarm client in use. */
  swarm: SwarmClient;
  /** The network jobs join now ("host" with config `job_network: host`). */
  jobNetwork(): string;
  /** Stops accepting calls, detaches from jobs (they keep running), flushes and closes the store. */
  stop(): Promise<void>;
}

/** Optional overrides for tests. */
export interface StartOptions {
  /** Diagnostic logger (default: stderr with a timestamp). */
  log?: (msg: string) => void;
  now?: () => number;
  /** Where the S3 credentials that sign jobs' L2 requests are read from (default: the process environment). */
  env?: Record<string, string | undefined>;
  /** Wraps the manager's own node's agent transport (tests count the commands that reach it). */
  wrapAgentTransport?: (transport: Transport) => Transport;
}

/**
 * The Cumulus service definition with a WatchJob serializer that passes
 * already-encoded events (hand-encoded log batches) through untouched.
 */
function withPreEncodedWatch(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const watch = def.WatchJob;
  return {
    ...def,
    WatchJob: {
      ...watch,
      responseSerialize: (v: unknown) =>
        v instanceof Uint8Array
          ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
          : watch.responseSerialize(v),
    },
  };
}

/** Reads this data dir's instance id, creating it on first start. */
async function loadInstanceId(path: string): Promise<string> {
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (/^[0-9a-f]{16}$/.test(id)) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeTextFile(path, id + "\n");
  return id;
}

function defaultLog(msg: string): void {
  console.error(`${new Date().toISOString()} orchestrator: ${msg}`);
}

/** The server side of TLS: credentials, and the CA PEM handed to jobs. */
interface ServerTls {
  credentials: grpc.ServerCredentials;
  caPem: string | undefined;
  /** The server certificate (PEM). */
  certPem: string;
}

async function readPem(key: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(key, `cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Registry credentials of config `registry_auth_file` ("" = none); a bad file is a config error. */
async function loadRegistryAuths(path: string): Promise<Map<string, RegistryAuth>> {
  if (!path) return new Map();
  try {
    return await readDockerConfig(path);
  } catch (err) {
    if (err instanceof RegistryAuthError) throw new ConfigError("registry_auth_file", err.message);
    throw err;
  }
}
/** TLS credentials from `tls_cert`/`tls_key` (and `tls_ca`), or null for plaintext. */
async function loadServerTls(config: Config): Promise<ServerTls | null> {
  if (config.tlsCert === "") return null;
  const [cert, key, ca] = await Promise.all([
    readPem("tls_cert", config.tlsCert),
    readPem("tls_key", config.tlsKey),
    config.tlsCa ? readPem("tls_ca", config.tlsCa) : Promise.resolve(undefined),
  ]);
  // No client certificates are asked for, so rootCerts is never used to verify anyone; but
  // with null grpc-js hands every system root to node:tls as `ca`, and Deno 2.9.6's TLS
  // server then fails every handshake (clients see "excessive message size"). A small PEM
  // (the CA, else the certificate itself) avoids that.
  return {
    credentials: grpc.ServerCredentials.createSsl(
      Buffer.from(ca ?? cert),
      // The CA goes with the certificate, so a joining worker that pins the CA by its
      // fingerprint (cumulus-agent join --ca-fingerprint) finds it in the chain.
      [{
        cert_chain: Buffer.from(ca ? `${cert.trimEnd()}\n${ca}` : cert),
        private_key: Buffer.from(key),
      }],
      false,
    ),
    caPem: ca,
    certPem: cert,
  };
}

/** Binds `address` (`host:port`, port 0: any free one) and resolves with the port. */
function bind(
  server: grpc.Server,
  address: string,
  credentials: grpc.ServerCredentials,
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p)))
  );
}

/** Refuses to start when jobs would dial `host` and the certificate does not name it. */
function assertCertCovers(certPem: string, host: string): void {
  if (certCoversHost(certPem, host)) return;
  throw new ConfigError(
    "tls_cert",
    `jobs dial ${host}, which the certificate does not name, so their TLS handshake would ` +
      `fail: add it (cumulus certs --host ${host}) or set advertise_address to a name it covers`,
  );
}

/**
 * Starts an orchestrator for `config`. Fails fast when the Swarm manager does
 * not answer or the port is taken.
 * @example
 * const orch = await startOrchestrator(await loadConfig());
 * Deno.addSignalListener("SIGTERM", () => orch.stop());
 */
export async function startOrchestrator(
  config: Config,
  opts: StartOptions = {},
): Promise<OrchestratorHandle> {
  const log = opts.log ?? defaultLog;
  const now = opts.now ?? Date.now;
  // Before anything else: a reachable plaintext port is refused unless the operator said so.
  const { warning } = assertSafeListen(config);
  if (warning) log(warning);
  const tls = await loadServerTls(config);
  // Owner-only (0700): the store holds job tokens and env values.
  const dirs = await prepareDataDir(config.dataDir);
  const instanceId = await loadInstanceId(`${config.dataDir}/instance-id`);
  const swarm = new SwarmClient(connectDocker(config.swarmManager));
  await swarm.ping();
  if (config.registryServe && !config.registry) {
    throw new ConfigError("registry_serve", "needs registry (host:port to serve it on)");
  }
  // The registry nodes pull job images from, run by this orchestrator when asked.
  const ownRegistry = config.registryServe
    ? await startOwnedRegistry({ addr: config.registry, dataDir: config.dataDir, log })
    : null;
  const registryCaFile = config.registryCaFile || ownRegistry?.caFile || "";
  const images = config.registry
    ? new ImagePublisher({
      docker: swarm.docker,
      registry: config.registry,
      auths: await loadRegistryAuths(config.registryAuthFile),
      log,
      now,
    })
    : undefined;
  const store = JobStore.open(`${config.dataDir}/jobs.db`);
  const tokens = TokenStore.open(`${config.dataDir}/jobs.db`);
  const joinedWorkers = WorkerStore.open(`${config.dataDir}/jobs.db`);
  const env = opts.env ?? Deno.env.toObject();
  // The first admin: CUMULUS_ADMIN_TOKEN (what `cumulus up` and tests pass), else
  // a token written to the data dir while no token exists (docs/security.md).
  const boot = await bootstrapAdmin(tokens, {
    envToken: env.CUMULUS_ADMIN_TOKEN
      ? requireToken("CUMULUS_ADMIN_TOKEN", env.CUMULUS_ADMIN_TOKEN)
      : null,
    user: env.CUMULUS_ADMIN_USER || env.USER || "admin",
    file: `${config.dataDir}/admin-token`,
    now: now(),
  });
  if (boot.kind === "file") {
    log(`created the first admin token ${boot.id}: its secret is in ${boot.path} (mode 0600)`);
  }
  const logs = new LogHub(dirs.logs, { maxLogBytes: config.maxJobLogBytes });
  const metrics = new Metrics();

  const server = new grpc.Server({
    // Message sizes and calls per connection (src/orchestrator/stream_limits.ts).
    ...boundedServerOptions(config.maxStreamsPerConnection),
    "grpc.keepalive_permit_without_calls": 1,
    // Deno 2.9.6's node:http2 can die inside nghttp2 (find_stream_on_goaway_func
    // assertion or SIGSEGV, denoland/deno#36788) when a client comes back to a
    // session that sat idle for minutes. A server ping every 60 s keeps no session
    // idle that long: in `deno task soak --duration 12m --idle-min 150 --idle-max 330`
    // (docs/operations.md) the orchestrator died 3 times in 3 runs without it (2 of the
    // runs), and 0 times in 2 runs with it; grpc.max_connection_idle_ms = 60 s did
    // not help (died at 175 s).
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
  });
  // Every service is registered before the port opens (calls get UNAVAILABLE, which
  // clients retry, until its handlers are built below), never UNIMPLEMENTED.
  const proto = loadCumulusProto();
  const healthProto = loadHealthProto();
  const cumulusService = withPreEncodedWatch(proto.Cumulus.service);
  const lateCumulus = lateHandlers(cumulusService);
  const lateRuntime = lateHandlers(proto.Runtime.service);
  const lateHealth = lateHandlers(healthProto.service);
  const lateJoin = lateHandlers(proto.WorkerJoin.service);
  server.addService(cumulusService, lateCumulus.handlers);
  server.addService(proto.Runtime.service, lateRuntime.handlers);
  server.addService(proto.WorkerJoin.service, lateJoin.handlers);
  server.addService(healthProto.service, lateHealth.handlers);
  const credentials = tls?.credentials ?? grpc.ServerCredentials.createInsecure();
  const port = await bind(server, `${config.listenHost}:${config.port}`, credentials);
  // Jobs run on a network of their own (unless job_network is host), where the host's
  // loopback is not theirs: docs/security.md.
  const jobNetwork = config.jobNetwork === "host"
    ? undefined
    : new JobNetwork(swarm, config.jobNetwork, log);
  if (jobNetwork && await jobNetwork.init()) {
    log(`created the Swarm-scoped bridge network ${jobNetwork.name} for jobs`);
  }
  const reach = planJobReach({
    listenHost: config.listenHost,
    advertiseAddress: config.advertiseAddress,
    jobNetwork: config.jobNetwork,
    port,
    bridgeGateway: config.jobNetwork !== "host" && !config.advertiseAddress
      ? await swarm.bridgeGateway()
      : null,
  });
  if (tls) assertCertCovers(tls.certPem, reach.host);
  if (reach.extraBind) {
    // Plaintext here only when the main port is plaintext loopback: a host-local bridge
    // address that containers of this host reach (docs/security.md).
    await bind(server, reach.extraBind, credentials).catch((err: Error) => {
      throw new Error(`listening on ${reach.extraBind} for jobs: ${err.message}`);
    });
  }
  // Jobs dial TLS when the port serves it: the scheme tells their runtime.
  const advertise = tls && !reach.address.includes("://")
    ? `grpcs://${reach.address}`
    : reach.address;
  // For an S3 server that checks no signature (s3rver): jobs reach their own prefix through
  // the gate, which relays only what the orchestrator presigned.
  const s3Keys = {
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? "",
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? "",
  };
  const gate = config.jobS3Gate && config.s3Bucket
    ? await startS3Gate({
      hostname: reach.host,
      upstream: config.s3Endpoint || `https://s3.${config.s3Region}.amazonaws.com`,
      credentials: s3Keys,
      now,
      log,
    })
    : null;
  const jobS3Endpoint = gate?.origin ?? config.s3Endpoint;
  // Workers named in config `workers` or joined with a join token are reached over SSH with
  // SSH_KEY_PATH; host keys are pinned in the data dir (a joined worker's when it joins,
  // the others' on first use).
  const knownHostsPath = `${config.dataDir}/known_hosts`;
  const sshPool = config.sshKeyPath
    ? new SshPool({
      keyPath: config.sshKeyPath,
      knownHostsPath,
      onHostKeyRecorded: (t, fp) => log(`worker ${t}: host key ${fp} recorded (first use)`),
    })
    : null;
  // One long-lived agent child for the manager's own node (started on first use), as the SSH
  // pool keeps one agent channel per worker.
  const localAgent = new LocalChannelTransport({
    agentCommand: localAgentCommand(config.agentCommand),
    env: config.chronosStateDir ? { CHRONOS_STATE_DIR: config.chronosStateDir } : undefined,
  });
  const registry = new WorkerRegistry({
    swarm,
    local: opts.wrapAgentTransport?.(localAgent) ?? localAgent,
    workers: config.workers,
    joined: () =>
      joinedWorkers.list().map((w) => ({ name: w.name, target: parseSshTarget(w.sshTarget) })),
    ssh: sshPool ? (target) => sshPool.runner(target) : undefined,
    log,
  });
  const partitions = new PartitionKeeper({
    registry,
    store,
    mode: config.gpuPlacement,
    now,
    log,
  });
  // Container start/exit of this instance's jobs on the manager's node, within
  // milliseconds (src/orchestrator/task_events.ts); other nodes are polled.
  const taskEvents = config.containerEvents === "on"
    ? new TaskEventHub({ swarm, label: `${INSTANCE_LABEL}=${instanceId}`, log })
    : undefined;
  await taskEvents?.start();
  const manager = new JobManager({
    store,
    logs,
    swarm,
    taskEvents,
    images,
    maxConcurrentJobs: config.maxConcurrentJobs,
    maxQueuedJobs: config.maxQueuedJobs,
    maxQueuedJobsPerUser: config.maxQueuedJobsPerUser,
    orchestratorAddress: advertise,
    orchestratorCaPem: tls?.caPem,
    instanceId,
    s3: {
      bucket: config.s3Bucket,
      region: config.s3Region,
      endpoint: jobS3Endpoint,
      prefix: config.s3Prefix,
    },
    isolation: {
      user: config.jobUser,
      readOnlyRoot: config.jobReadOnlyRoot,
      cpuDefault: config.jobCpuDefault,
      memoryDefault: config.jobMemoryDefault,
      network: config.jobNetwork,
    },
    network: jobNetwork,
    volumeSweepMs: 5000,
    partitions,
    sweepIntervalMs: config.reconcileIntervalMs,
    nodeDownGraceMs: config.nodeDownGrace * 1000,
    stopGracePeriodS: config.stopGracePeriod,
    pollIntervalMs: config.pollIntervalMs,
    bundleDir: dirs.bundles,
    now,
    log,
  });
  const deps = {
    manager,
    logs,
    store,
    tokens,
    now,
    swarm,
    partitions,
    limits: {
      defaultImage: config.defaultImage,
      maxDuration: config.maxDuration,
      defaultMaxAttempts: config.defaultMaxAttempts,
      resultRetention: config.resultRetention,
      resources: {
        cpuDefault: config.jobCpuDefault,
        cpuMax: config.jobCpuMax,
        memoryDefault: config.jobMemoryDefault,
        memoryMax: config.jobMemoryMax,
        allowImageUser: config.allowImageUser,
      },
    },
    maxBundleBytes: config.maxBundleBytes,
    maxResultBytes: config.maxResultBytes,
    tmpDir: dirs.tmp,
    bundleDir: dirs.bundles,
    resultDir: dirs.results,
    resultRetention: config.resultRetention,
    log,
    observe: (m: string, c: string, ms: number) => metrics.observe(m, c, ms),
    // The site's S3 keys stay here: jobs get presigned URLs for their own prefix.
    l2: new L2Access(
      {
        bucket: config.s3Bucket,
        region: config.s3Region,
        endpoint: jobS3Endpoint,
        prefix: config.s3Prefix,
        credentials: s3Keys,
      },
      await loadCheckpointSecret(`${config.dataDir}/checkpoint.key`),
    ),
  };
  const joinDeps = {
    workers: joinedWorkers,
    swarm,
    knownHosts: new KnownHosts(knownHostsPath),
    sshPublicKey: () => config.sshKeyPath ? publicKeyLine(config.sshKeyPath) : "",
    caFingerprint: tls?.caPem ? await caFingerprintOf(tls.caPem) : "",
    // What jobs dial; `cumulus worker add` passes the address its caller used instead.
    orchestratorUrl: advertise,
    onRemoved: (nodeId: string) => registry.forget(nodeId),
    registry: config.registry,
    registryCaPem: () => registryCaFile ? Deno.readTextFile(registryCaFile) : Promise.resolve(""),
  };
  // Long-lived streams are counted server-wide; one past its bound is refused.
  const streams = new StreamLimiter({
    WatchJob: {
      max: config.maxWatchStreams,
      key: "max_watch_streams",
      perCaller: { max: config.maxWatchStreamsPerUser, key: "max_watch_streams_per_user" },
    },
    StreamLogs: { max: config.maxLogStreams, key: "max_log_streams" },
    // Each upload holds a temp file until it ends.
    SubmitJob: {
      max: config.maxUploads,
      key: "max_uploads",
      perCaller: { max: config.maxUploadsPerUser, key: "max_uploads_per_user" },
    },
  }, {
    onRefused: (m) => metrics.observe(m, "RESOURCE_EXHAUSTED", 0),
    log,
    // Inside withAuth: the token's user.
    callerOf: (call) => callerOf(call)?.user ?? null,
  });
  lateCumulus.ready(
    // Every client call is authenticated here, before its stream is counted.
    withAuth(streams.wrap({ ...cumulusHandlers(deps), ...workerAdminHandlers(deps, joinDeps) }), {
      tokens,
      now,
      onRefused: (m) => metrics.observe(m, "UNAUTHENTICATED", 0),
    }),
  );
  lateRuntime.ready(streams.wrap(runtimeHandlers(deps)));
  // Joining workers authenticate with their join token, not a user token.
  lateJoin.ready(workerJoinHandlers(deps, joinDeps));
  const health = new HealthState();
  lateHealth.ready(health.handlers());
  await manager.reconcile();
  // Results past their retention (also while we were down) go at once, then periodically.
  const results = new ResultSweeper({
    store,
    resultDir: dirs.results,
    bundleDir: dirs.bundles,
    defaultRetention: config.resultRetention,
    intervalMs: config.resultSweepIntervalMs,
    now,
    log,
  });
  await results.start();
  manager.startVolumeSweeps();
  // Orphan partitions (jobs that ended while we were down) go before anything is placed.
  await manager.startPartitionSweeps();

  let metricsServer: Deno.HttpServer | null = null;
  let metricsPort = -1;
  if (config.metricsPort >= 0) {
    metricsServer = Deno.serve(
      { hostname: config.metricsHost, port: config.metricsPort, onListen: () => {} },
      (req) => {
        if (new URL(req.url).pathname !== "/metrics") {
          return new Response("not found\n", { status: 404 });
        }
        // The same user tokens as the gRPC API (any user's: the page holds counts only).
        try {
          httpCaller(req, tokens, now());
        } catch (err) {
          return new Response(`${(err as Error).message}\n`, {
            status: 401,
            headers: { "www-authenticate": "Bearer" },
          });
        }
        return new Response(
          metrics.render(
            store.countByState(),
            manager.activeCount,
            partitions.lastShares(),
            manager.scheduleRounds,
            manager.attemptEnds,
          ),
          {
            headers: { "content-type": "text/plain; version=0.0.4" },
          },
        );
      },
    );
    metricsPort = (metricsServer.addr as Deno.NetAddr).port;
  }
  log(
    `listening on ${config.listenHost}:${port}${tls ? " (TLS)" : ""} (jobs dial ${advertise}), ` +
      `data in ${config.dataDir}`,
  );

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      log("shutting down: no new calls, detaching from running jobs");
      health.set("NOT_SERVING");
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
        // Watch streams never end on their own; end them after in-flight unary calls.
        setTimeout(() => server.forceShutdown(), 200);
      });
      await manager.shutdown();
      await taskEvents?.stop();
      await gate?.close();
      await results.stop();
      await logs.closeAll();
      await metricsServer?.shutdown();
      await sshPool?.close();
      await localAgent.close();
      await ownRegistry?.stop();
      store.close();
      tokens.close();
      joinedWorkers.close();
      log("stopped");
    })();
    return stopping;
  };
  return {
    port,
    metricsPort,
    manager,
    swarm,
    jobNetwork: () => jobNetwork?.name ?? "host",
    stop,
  };
}
