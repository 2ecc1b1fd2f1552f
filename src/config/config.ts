/**
 * Orchestrator configuration: `config.yaml` (path from ORCHESTRATOR_CONFIG,
 * default ./config.yaml) overlaid by environment variables, validated once at
 * start. An invalid value fails fast with the key and the reason.
 * @module
 */
import { parse as parseYaml } from "yaml";
import {
  BYTES_GRAMMAR,
  isRegistryAddress,
  parseBytesText,
  parseDurationText,
} from "../core/mod.ts";

/** A config key has a bad value or the file cannot be parsed. */
export class ConfigError extends Error {
  /** Stable code for callers that branch on errors. */
  readonly code = "INVALID_CONFIG";
  /** The offending key (YAML name), or "" for the file as a whole. */
  readonly key: string;
  /** Creates the error; the message names the key. */
  constructor(key: string, message: string) {
    super(key ? `config key "${key}": ${message}` : message);
    this.name = "ConfigError";
    this.key = key;
  }
}

/** The validated orchestrator configuration. */
export interface Config {
  /** gRPC port (ORCHESTRATOR_PORT); 0 picks a free port. */
  port: number;
  /** Address the gRPC server binds to. */
  listenHost: string;
  /** Port of the HTTP /metrics endpoint; 0 picks a free port, -1 disables it. */
  metricsPort: number;
  /** Docker Engine API of the Swarm manager: a unix socket path, tcp://host:port or ssh://user@host. */
  swarmManager: string;
  /** Private key the orchestrator uses to reach worker agents. */
  sshKeyPath: string;
  /** Jobs running (SCHEDULED or RUNNING) at the same time. */
  maxConcurrentJobs: number;
  /** Directory for the SQLite store, logs, bundles and results. */
  dataDir: string;
  /** Image used when a spec names none. */
  defaultImage: string;
  /** Largest accepted job bundle in bytes. */
  maxBundleBytes: number;
  /** Largest accepted result in bytes. */
  maxResultBytes: number;
  /** Longest allowed job duration in seconds. */
  maxDuration: number;
  /** Jobs waiting in the queue before SubmitJob answers RESOURCE_EXHAUSTED. */
  maxQueuedJobs: number;
  /** Most QUEUED jobs one user may have (max_queued_jobs still caps them all). */
  maxQueuedJobsPerUser: number;
  /** Address job containers use to reach the orchestrator (host:port); "" = 127.0.0.1:<port>. */
  advertiseAddress: string;
  /** Seconds Swarm waits after SIGTERM before SIGKILL when a job is stopped. */
  stopGracePeriod: number;
  /** Milliseconds between task-state polls of a running job. */
  pollIntervalMs: number;
  /**
   * Seconds a job's node may stay `down` in Swarm (no heartbeats: machine off,
   * engine killed, network cut) before the job's attempt ends as lost
   * (TASK_LOST) and resumes on another node when it may; 0 = never (the job
   * waits for its deadline).
   */
  nodeDownGrace: number;
  /**
   * "on": follow the manager engine's container events, so a job on the
   * manager's node is seen starting and ending within milliseconds (its task
   * is then polled only every 2 s as a backstop); "off": poll every job.
   */
  containerEvents: "on" | "off";
  /** Attempts a job gets when its spec says 0; above 1, infrastructure failures resume it. */
  defaultMaxAttempts: number;
  /** S3 bucket for L2 checkpoints, passed to jobs ("" disables L2). */
  s3Bucket: string;
  /** S3 region passed to jobs. */
  s3Region: string;
  /** S3-compatible endpoint URL as jobs reach it ("" = AWS). */
  s3Endpoint: string;
  /** Key prefix under the bucket. */
  s3Prefix: string;
  /**
   * GPU placement through Chronos partitions: "auto" places on nodes whose agent answers
   * (plain Swarm placement when no node has one), "off" never creates partitions.
   */
  gpuPlacement: "auto" | "off";
  /**
   * How to reach each node's agent: "hostname=user@host:port,…" (YAML: a mapping of hostname
   * to "user@host:port" or to { ssh: "user@host:port" }). Nodes not named use the local agent
   * when they are the manager's own node, and have no agent otherwise.
   */
  workers: string;
  /** Command line of the local agent ("" = the cumulus-agent next to the orchestrator, else deno run). */
  agentCommand: string;
  /** CHRONOS_STATE_DIR given to the local agent ("" = the agent's default). */
  chronosStateDir: string;
  /** Milliseconds between partition reconciliations, inventory refreshes and deadline checks. */
  reconcileIntervalMs: number;
  /**
   * Seconds a job's result is kept after the job ends (0 = forever); also the
   * most a job spec may ask for. YAML/env accept "7d", "12h", "90s" or seconds.
   */
  resultRetention: number;
  /** Milliseconds between sweeps that remove results past their retention. */
  resultSweepIntervalMs: number;
  /**
   * WatchJob streams open at once, over all clients; one more answers RESOURCE_EXHAUSTED.
   * Each open stream costs the orchestrator memory and event-loop time.
   */
  maxWatchStreams: number;
  /** WatchJob streams one user may hold open at once. */
  maxWatchStreamsPerUser: number;
  /** Runtime.StreamLogs streams open at once, over all jobs; one more answers RESOURCE_EXHAUSTED. */
  maxLogStreams: number;
  /** SubmitJob uploads (bundle or function) in progress at once; one more answers RESOURCE_EXHAUSTED. */
  maxUploads: number;
  /** SubmitJob uploads one user may have in progress at once. */
  maxUploadsPerUser: number;
  /**
   * HTTP/2 streams (calls of any kind) one client connection may have open at once; the
   * server advertises it (SETTINGS_MAX_CONCURRENT_STREAMS) and gRPC clients queue calls past it.
   */
  maxStreamsPerConnection: number;
  /** Address the HTTP /metrics endpoint binds to (loopback unless configured). */
  metricsHost: string;
  /** PEM server certificate (chain) for TLS on the gRPC port; "" serves plaintext. */
  tlsCert: string;
  /** PEM private key of `tlsCert`. */
  tlsKey: string;
  /** PEM of the CA that signed `tlsCert`: handed to jobs so their runtime verifies the orchestrator. */
  tlsCa: string;
  /**
   * Allow a non-loopback `listenHost` without TLS (a warning is logged at every start);
   * without it such a config refuses to start.
   */
  insecure: boolean;
  /** CPU cores a job's container gets when its spec names none. */
  jobCpuDefault: number;
  /** Most CPU cores a job may ask. */
  jobCpuMax: number;
  /** Memory limit in bytes of a job's container when its spec names none. */
  jobMemoryDefault: number;
  /** Most memory in bytes a job may ask. */
  jobMemoryMax: number;
  /** uid:gid every job's container runs as (unless it may keep its image's user). */
  jobUser: string;
  /** Whether a job may ask to run as its image's own user (often root) instead of {@link jobUser}. */
  allowImageUser: boolean;
  /** Jobs get a read-only root filesystem with writable tmpfs at /tmp and their work dir. */
  jobReadOnlyRoot: boolean;
  /** Bytes of log lines kept per job; later lines are dropped and counted. */
  maxJobLogBytes: number;
  /**
   * The Docker network job containers join: a Swarm-scoped network's name (made by the
   * orchestrator when missing: a bridge local to each node, and made again under a new
   * generation's name when a node's copy goes stale after its engine restarted,
   * job_network.ts), or "host" (the worker's own network namespace, loopback included),
   * which the operator must choose (docs/security.md).
   */
  jobNetwork: string;
  /**
   * Serve jobs' S3 requests through the orchestrator's S3 gate, which relays only
   * requests it presigned: for an S3 server that checks no signatures (s3rver) or that
   * jobs cannot reach. `cumulus up` turns it on.
   */
  jobS3Gate: boolean;
  /**
   * `host:port` of a registry every node can pull from ("" = none: each node must
   * hold job images already). Job images found on the manager are pushed there
   * once per image id and services reference `REGISTRY/cumulus-job@sha256:…`.
   */
  registry: string;
  /** A Docker config.json with registry credentials (`docker login`'s file); "" = none. */
  registryAuthFile: string;
  /**
   * PEM of the CA that signed the registry's certificate, handed to joining
   * workers for `/etc/docker/certs.d` ("" = none: a public CA, or trusted by hand).
   */
  registryCaFile: string;
  /**
   * Run the registry at `registry` from this orchestrator (Debian's
   * `docker-registry`, TLS with its own CA, store in the data dir), trusted by
   * this machine's engines and handed to joining workers (src/registry/owned.ts).
   */
  registryServe: boolean;
}

/** Defaults for every key. */
export const DEFAULT_CONFIG: Readonly<Config> = {
  port: 50051,
  listenHost: "127.0.0.1",
  metricsPort: 9464,
  swarmManager: "/var/run/docker.sock",
  sshKeyPath: "",
  maxConcurrentJobs: 5,
  dataDir: "./cumulus-data",
  defaultImage: "cumulus-job:latest",
  maxBundleBytes: 100 * 1024 * 1024,
  maxResultBytes: 512 * 1024 * 1024,
  maxDuration: 7 * 24 * 3600,
  maxQueuedJobs: 10_000,
  maxQueuedJobsPerUser: 1000,
  advertiseAddress: "",
  stopGracePeriod: 10,
  pollIntervalMs: 200,
  nodeDownGrace: 60,
  containerEvents: "on",
  defaultMaxAttempts: 3,
  s3Bucket: "",
  s3Region: "us-east-1",
  s3Endpoint: "",
  s3Prefix: "cumulus",
  gpuPlacement: "auto",
  workers: "",
  agentCommand: "",
  chronosStateDir: "",
  reconcileIntervalMs: 5000,
  resultRetention: 7 * 86400,
  resultSweepIntervalMs: 60_000,
  maxWatchStreams: 1000,
  maxWatchStreamsPerUser: 100,
  maxLogStreams: 1000,
  maxUploads: 64,
  maxUploadsPerUser: 8,
  maxStreamsPerConnection: 128,
  metricsHost: "127.0.0.1",
  tlsCert: "",
  tlsKey: "",
  tlsCa: "",
  insecure: false,
  jobCpuDefault: 4,
  jobCpuMax: 64,
  jobMemoryDefault: 4 * 1024 ** 3,
  jobMemoryMax: 64 * 1024 ** 3,
  jobUser: "1000:1000",
  allowImageUser: false,
  jobReadOnlyRoot: true,
  maxJobLogBytes: 100 * 1024 ** 2,
  jobNetwork: "cumulus-jobs",
  jobS3Gate: false,
  registry: "",
  registryAuthFile: "",
  registryCaFile: "",
  registryServe: false,
};

interface KeySpec {
  /** YAML key. */
  yaml: string;
  /** Environment variable that overrides it. */
  env: string;
  /**
   * "duration": seconds as a number, or text like "7d", "1h30m", "90s";
   * "bytes": a whole number of bytes, or a size like "4GiB"; "bool": true/false.
   */
  kind: "int" | "string" | "number" | "duration" | "bytes" | "bool";
  min?: number;
  max?: number;
  /** Human description, used by docs. */
  doc: string;
  /** Extra validation and normalisation of the raw value (YAML value or env text). */
  parse?: (key: string, value: unknown) => string;
}

/** `user@host:port` (port optional), the SSH target of one worker's agent. */
export const SSH_TARGET_RE = /^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+(:\d{1,5})?$/;
const HOSTNAME_RE = /^[A-Za-z0-9_.\-]+$/;

function parseWorkers(key: string, value: unknown): string {
  let pairs: Array<[string, unknown]>;
  if (typeof value === "string") {
    pairs = value.split(",").map((s) => s.trim()).filter((s) => s !== "").map((item) => {
      const eq = item.indexOf("=");
      if (eq <= 0) {
        throw new ConfigError(
          key,
          `expected "hostname=user@host:port", got ${JSON.stringify(item)}`,
        );
      }
      return [item.slice(0, eq).trim(), item.slice(eq + 1).trim()];
    });
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    pairs = Object.entries(value as Record<string, unknown>).map(([host, v]) => [
      host,
      v !== null && typeof v === "object" ? (v as Record<string, unknown>).ssh : v,
    ]);
  } else {
    throw new ConfigError(key, `expected a mapping of hostname to "user@host:port"`);
  }
  for (const [host, target] of pairs) {
    if (!HOSTNAME_RE.test(host)) {
      throw new ConfigError(key, `not a hostname: ${JSON.stringify(host)}`);
    }
    if (typeof target !== "string" || !SSH_TARGET_RE.test(target)) {
      throw new ConfigError(
        key,
        `worker ${host}: expected an SSH target "user@host:port", got ${JSON.stringify(target)}`,
      );
    }
  }
  return pairs.map(([h, t]) => `${h}=${t}`).join(",");
}

function parseOneOf(options: readonly string[]) {
  return (key: string, value: unknown): string => {
    const v = String(value);
    if (!options.includes(v)) {
      throw new ConfigError(key, `must be one of ${options.join(", ")}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
}

const USER_GROUP_RE = /^\d{1,10}:\d{1,10}$/;

const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$/;

function parseNetworkName(key: string, value: unknown): string {
  const v = String(value).trim();
  if (!NETWORK_NAME_RE.test(v)) {
    throw new ConfigError(
      key,
      `expected "host" or a Docker network name, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function parseRegistry(key: string, value: unknown): string {
  const v = String(value).trim();
  if (v !== "" && !isRegistryAddress(v)) {
    throw new ConfigError(key, `expected host:port of a registry, got ${JSON.stringify(v)}`);
  }
  return v;
}

function parseJobUser(key: string, value: unknown): string {
  const v = String(value).trim();
  if (!USER_GROUP_RE.test(v)) {
    throw new ConfigError(
      key,
      `expected a numeric "uid:gid" like "1000:1000", got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Every key: its YAML name, its environment variable, its type and meaning. */
export const CONFIG_KEYS: Readonly<Record<keyof Config, KeySpec>> = {
  port: {
    yaml: "port",
    env: "ORCHESTRATOR_PORT",
    kind: "int",
    min: 0,
    max: 65535,
    doc: "gRPC port",
  },
  listenHost: {
    yaml: "listen_host",
    env: "ORCHESTRATOR_LISTEN_HOST",
    kind: "string",
    doc: "address the gRPC server binds to",
  },
  metricsPort: {
    yaml: "metrics_port",
    env: "ORCHESTRATOR_METRICS_PORT",
    kind: "int",
    min: -1,
    max: 65535,
    doc: "HTTP /metrics port (-1 disables)",
  },
  swarmManager: {
    yaml: "swarm_manager",
    env: "SWARM_MANAGER",
    kind: "string",
    doc: "Docker API of the Swarm manager: socket path, tcp://host:port or ssh://user@host",
  },
  sshKeyPath: {
    yaml: "ssh_key_path",
    env: "SSH_KEY_PATH",
    kind: "string",
    doc: "private key for worker agents",
  },
  maxConcurrentJobs: {
    yaml: "max_concurrent_jobs",
    env: "MAX_CONCURRENT_JOBS",
    kind: "int",
    min: 1,
    max: 100_000,
    doc: "jobs running at once",
  },
  dataDir: {
    yaml: "data_dir",
    env: "CUMULUS_DATA_DIR",
    kind: "string",
    doc: "store, logs, bundles, results",
  },
  defaultImage: {
    yaml: "default_image",
    env: "CUMULUS_JOB_IMAGE",
    kind: "string",
    doc: "image used when a job names none",
  },
  maxBundleBytes: {
    yaml: "max_bundle_bytes",
    env: "CUMULUS_MAX_BUNDLE_BYTES",
    kind: "int",
    min: 1,
    doc: "largest job bundle",
  },
  maxResultBytes: {
    yaml: "max_result_bytes",
    env: "CUMULUS_MAX_RESULT_BYTES",
    kind: "int",
    min: 1,
    doc: "largest job result",
  },
  maxDuration: {
    yaml: "max_duration",
    env: "CUMULUS_MAX_DURATION",
    kind: "number",
    min: 1,
    doc: "longest job duration (s)",
  },
  maxQueuedJobs: {
    yaml: "max_queued_jobs",
    env: "CUMULUS_MAX_QUEUED_JOBS",
    kind: "int",
    min: 1,
    doc: "queue length limit",
  },
  maxQueuedJobsPerUser: {
    yaml: "max_queued_jobs_per_user",
    env: "CUMULUS_MAX_QUEUED_JOBS_PER_USER",
    kind: "int",
    min: 1,
    doc: "queued jobs limit per user",
  },
  advertiseAddress: {
    yaml: "advertise_address",
    env: "CUMULUS_ADVERTISE_ADDRESS",
    kind: "string",
    doc: "host:port job containers dial",
  },
  stopGracePeriod: {
    yaml: "stop_grace_period",
    env: "CUMULUS_STOP_GRACE_PERIOD",
    kind: "number",
    min: 0,
    max: 3600,
    doc: "seconds between SIGTERM and SIGKILL",
  },
  pollIntervalMs: {
    yaml: "poll_interval_ms",
    env: "CUMULUS_POLL_INTERVAL_MS",
    kind: "int",
    min: 10,
    max: 60_000,
    doc: "task-state poll interval",
  },
  nodeDownGrace: {
    yaml: "node_down_grace",
    env: "CUMULUS_NODE_DOWN_GRACE",
    kind: "duration",
    min: 0,
    max: 86_400,
    doc:
      "a job whose node Swarm marks down for longer ends as lost and resumes elsewhere (0: never)",
  },
  containerEvents: {
    yaml: "container_events",
    env: "CUMULUS_CONTAINER_EVENTS",
    kind: "string",
    doc: "on: jobs on the manager's node are followed by Docker container events; off: polled",
    parse: parseOneOf(["on", "off"]),
  },
  defaultMaxAttempts: {
    yaml: "default_max_attempts",
    env: "CUMULUS_DEFAULT_MAX_ATTEMPTS",
    kind: "int",
    min: 1,
    max: 100,
    doc: "attempts per job unless the spec says (1 = never resume)",
  },
  s3Bucket: {
    yaml: "s3_bucket",
    env: "CUMULUS_S3_BUCKET",
    kind: "string",
    doc: "bucket for L2 checkpoints (empty: L1 only)",
  },
  s3Region: {
    yaml: "s3_region",
    env: "CUMULUS_S3_REGION",
    kind: "string",
    doc: "S3 region",
  },
  s3Endpoint: {
    yaml: "s3_endpoint",
    env: "CUMULUS_S3_ENDPOINT",
    kind: "string",
    doc: "S3-compatible endpoint URL as workers reach it",
  },
  s3Prefix: {
    yaml: "s3_prefix",
    env: "CUMULUS_S3_PREFIX",
    kind: "string",
    doc: "key prefix in the bucket",
  },
  gpuPlacement: {
    yaml: "gpu_placement",
    env: "CUMULUS_GPU_PLACEMENT",
    kind: "string",
    doc: "auto: place GPU jobs through Chronos partitions on nodes with an agent; off: never",
    parse: parseOneOf(["auto", "off"]),
  },
  workers: {
    yaml: "workers",
    env: "CUMULUS_WORKERS",
    kind: "string",
    doc: "SSH target of each node's agent: hostname=user@host:port,…",
    parse: parseWorkers,
  },
  agentCommand: {
    yaml: "agent_command",
    env: "CUMULUS_AGENT_COMMAND",
    kind: "string",
    doc: "command line of the local agent (empty: cumulus-agent beside the orchestrator)",
  },
  chronosStateDir: {
    yaml: "chronos_state_dir",
    env: "CHRONOS_STATE_DIR",
    kind: "string",
    doc: "Chronos state directory of the local agent (empty: the agent's default)",
  },
  reconcileIntervalMs: {
    yaml: "reconcile_interval_ms",
    env: "CUMULUS_RECONCILE_INTERVAL_MS",
    kind: "int",
    min: 100,
    max: 3_600_000,
    doc: "partition reconciliation, GPU inventory and deadline check interval",
  },
  resultRetention: {
    yaml: "result_retention",
    env: "CUMULUS_RESULT_RETENTION",
    kind: "duration",
    min: 0,
    doc: "results are removed this long after their job ended (0: never); a job may ask for less",
  },
  resultSweepIntervalMs: {
    yaml: "result_sweep_interval_ms",
    env: "CUMULUS_RESULT_SWEEP_INTERVAL_MS",
    kind: "int",
    min: 100,
    max: 86_400_000,
    doc: "how often results past their retention are looked for",
  },
  maxWatchStreams: {
    yaml: "max_watch_streams",
    env: "CUMULUS_MAX_WATCH_STREAMS",
    kind: "int",
    min: 1,
    max: 1_000_000,
    doc: "WatchJob streams open at once over all clients; one more answers RESOURCE_EXHAUSTED",
  },
  maxUploads: {
    yaml: "max_uploads",
    env: "CUMULUS_MAX_UPLOADS",
    kind: "int",
    min: 1,
    max: 100_000,
    doc: "SubmitJob uploads in progress at once; one more answers RESOURCE_EXHAUSTED",
  },
  maxUploadsPerUser: {
    yaml: "max_uploads_per_user",
    env: "CUMULUS_MAX_UPLOADS_PER_USER",
    kind: "int",
    min: 1,
    max: 100_000,
    doc: "SubmitJob uploads one user may have in progress at once",
  },
  maxWatchStreamsPerUser: {
    yaml: "max_watch_streams_per_user",
    env: "CUMULUS_MAX_WATCH_STREAMS_PER_USER",
    kind: "int",
    min: 1,
    max: 1_000_000,
    doc: "WatchJob streams one user may hold open at once; one more answers RESOURCE_EXHAUSTED",
  },
  maxLogStreams: {
    yaml: "max_log_streams",
    env: "CUMULUS_MAX_LOG_STREAMS",
    kind: "int",
    min: 1,
    max: 1_000_000,
    doc:
      "Runtime.StreamLogs streams open at once over all jobs; one more answers RESOURCE_EXHAUSTED",
  },
  maxStreamsPerConnection: {
    yaml: "max_streams_per_connection",
    env: "CUMULUS_MAX_STREAMS_PER_CONNECTION",
    kind: "int",
    min: 1,
    max: 1_000_000,
    doc:
      "calls one client connection may have open at once (HTTP/2 streams); clients queue the rest",
  },
  metricsHost: {
    yaml: "metrics_host",
    env: "ORCHESTRATOR_METRICS_HOST",
    kind: "string",
    doc: "address the HTTP /metrics endpoint binds to",
  },
  tlsCert: {
    yaml: "tls_cert",
    env: "CUMULUS_TLS_CERT",
    kind: "string",
    doc: 'PEM server certificate: the gRPC port serves TLS only ("" = plaintext)',
  },
  tlsKey: {
    yaml: "tls_key",
    env: "CUMULUS_TLS_KEY",
    kind: "string",
    doc: "PEM private key of tls_cert",
  },
  tlsCa: {
    yaml: "tls_ca",
    env: "CUMULUS_TLS_CA",
    kind: "string",
    doc: "PEM CA that signed tls_cert, given to jobs to verify the orchestrator",
  },
  insecure: {
    yaml: "insecure",
    env: "CUMULUS_INSECURE",
    kind: "bool",
    doc: "allow a non-loopback listen_host without TLS (warned at every start)",
  },
  jobCpuDefault: {
    yaml: "job_cpu_default",
    env: "CUMULUS_JOB_CPU_DEFAULT",
    kind: "number",
    min: 0.01,
    doc: "CPU cores of a job that asks none",
  },
  jobCpuMax: {
    yaml: "job_cpu_max",
    env: "CUMULUS_JOB_CPU_MAX",
    kind: "number",
    min: 0.01,
    doc: "most CPU cores a job may ask",
  },
  jobMemoryDefault: {
    yaml: "job_memory_default",
    env: "CUMULUS_JOB_MEMORY_DEFAULT",
    kind: "bytes",
    min: 32 * 1024 * 1024,
    doc: "memory limit of a job that asks none (e.g. 4GiB)",
  },
  jobMemoryMax: {
    yaml: "job_memory_max",
    env: "CUMULUS_JOB_MEMORY_MAX",
    kind: "bytes",
    min: 32 * 1024 * 1024,
    doc: "most memory a job may ask",
  },
  jobUser: {
    yaml: "job_user",
    env: "CUMULUS_JOB_USER",
    kind: "string",
    doc: "uid:gid job containers run as",
    parse: parseJobUser,
  },
  allowImageUser: {
    yaml: "allow_image_user",
    env: "CUMULUS_ALLOW_IMAGE_USER",
    kind: "bool",
    doc: "let a job ask to run as its image's own user (often root)",
  },
  jobReadOnlyRoot: {
    yaml: "job_read_only_root",
    env: "CUMULUS_JOB_READ_ONLY_ROOT",
    kind: "bool",
    doc: "read-only root filesystem for jobs, writable tmpfs /tmp and work dir",
  },
  maxJobLogBytes: {
    yaml: "max_job_log_bytes",
    env: "CUMULUS_MAX_JOB_LOG_BYTES",
    kind: "bytes",
    min: 1024,
    doc: "log bytes kept per job; later lines are dropped and counted",
  },
  jobNetwork: {
    yaml: "job_network",
    env: "CUMULUS_JOB_NETWORK",
    kind: "string",
    doc: "Swarm-scoped network for jobs (made when missing); host: the worker's own network",
    parse: parseNetworkName,
  },
  jobS3Gate: {
    yaml: "job_s3_gate",
    env: "CUMULUS_JOB_S3_GATE",
    kind: "bool",
    doc: "jobs reach S3 through the orchestrator, which relays only what it presigned",
  },
  registry: {
    yaml: "registry",
    env: "CUMULUS_REGISTRY",
    kind: "string",
    doc: "host:port of a registry nodes pull job images from (the manager pushes them)",
    parse: parseRegistry,
  },
  registryAuthFile: {
    yaml: "registry_auth_file",
    env: "CUMULUS_REGISTRY_AUTH_FILE",
    kind: "string",
    doc: "Docker config.json with registry credentials (sent as the service's registry auth)",
  },
  registryCaFile: {
    yaml: "registry_ca_file",
    env: "CUMULUS_REGISTRY_CA_FILE",
    kind: "string",
    doc: "CA (PEM) of the registry's certificate; joining workers install it in certs.d",
  },
  registryServe: {
    yaml: "registry_serve",
    env: "CUMULUS_REGISTRY_SERVE",
    kind: "bool",
    doc: "run the registry at `registry` from the orchestrator (its CA in the data dir)",
  },
};

function coerce(key: string, spec: KeySpec, value: unknown): number | string | boolean {
  if (spec.parse) return spec.parse(key, value);
  if (spec.kind === "bool") {
    const text = String(value).trim().toLowerCase();
    if (text === "true" || text === "1") return true;
    if (text === "false" || text === "0") return false;
    throw new ConfigError(key, `expected true or false, got ${JSON.stringify(value)}`);
  }
  if (spec.kind === "string") {
    if (typeof value !== "string" && typeof value !== "number") {
      throw new ConfigError(key, `expected a string, got ${JSON.stringify(value)}`);
    }
    return String(value);
  }
  const n = typeof value === "number"
    ? value
    : typeof value !== "string" || value.trim() === ""
    ? NaN
    : spec.kind === "duration"
    ? parseDurationText(value) ?? NaN
    : spec.kind === "bytes"
    ? parseBytesText(value) ?? NaN
    : Number(value);
  if (!Number.isFinite(n)) {
    throw new ConfigError(
      key,
      spec.kind === "duration"
        ? `expected seconds or a duration like 90s, 12h, 7d; got ${JSON.stringify(value)}`
        : spec.kind === "bytes"
        ? `expected bytes or a size (${BYTES_GRAMMAR}); got ${JSON.stringify(value)}`
        : `expected a number, got ${JSON.stringify(value)}`,
    );
  }
  if ((spec.kind === "int" || spec.kind === "bytes") && !Number.isInteger(n)) {
    throw new ConfigError(key, `expected an integer, got ${n}`);
  }
  if (spec.min !== undefined && n < spec.min) {
    throw new ConfigError(key, `must be >= ${spec.min}, got ${n}`);
  }
  if (spec.max !== undefined && n > spec.max) {
    throw new ConfigError(key, `must be <= ${spec.max}, got ${n}`);
  }
  return n;
}

/** Where configuration comes from; tests pass their own. */
export interface ConfigSources {
  /** YAML text of the config file, or null when there is none. */
  yamlText: string | null;
  /** Environment variables. */
  env: Record<string, string | undefined>;
}

/**
 * Builds a Config from YAML text and environment variables (the environment
 * wins). Unknown YAML keys are refused so typos do not pass silently.
 * @example
 * const cfg = parseConfig({ yamlText: "max_concurrent_jobs: 2", env: {} });
 */
export function parseConfig(sources: ConfigSources): Config {
  let doc: Record<string, unknown> = {};
  if (sources.yamlText !== null && sources.yamlText.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = parseYaml(sources.yamlText, { merge: true });
    } catch (err) {
      throw new ConfigError("", `config file is not valid YAML: ${(err as Error).message}`);
    }
    if (parsed !== null && (typeof parsed !== "object" || Array.isArray(parsed))) {
      throw new ConfigError("", "config file must be a mapping of keys to values");
    }
    doc = (parsed ?? {}) as Record<string, unknown>;
  }
  const known = new Set(Object.values(CONFIG_KEYS).map((k) => k.yaml));
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw new ConfigError(key, "unknown key");
  }
  const out: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [field, spec] of Object.entries(CONFIG_KEYS)) {
    if (doc[spec.yaml] !== undefined && doc[spec.yaml] !== null) {
      out[field] = coerce(spec.yaml, spec, doc[spec.yaml]);
    }
    const fromEnv = sources.env[spec.env];
    if (fromEnv !== undefined && fromEnv !== "") {
      out[field] = coerce(spec.env, spec, fromEnv);
    }
  }
  const config = out as unknown as Config;
  if (config.jobCpuDefault > config.jobCpuMax) {
    throw new ConfigError(
      "job_cpu_default",
      `must be at most job_cpu_max (${config.jobCpuMax}), got ${config.jobCpuDefault}`,
    );
  }
  if (config.jobMemoryDefault > config.jobMemoryMax) {
    throw new ConfigError(
      "job_memory_default",
      `must be at most job_memory_max (${config.jobMemoryMax}), got ${config.jobMemoryDefault}`,
    );
  }
  return config;
}

/**
 * Reads ORCHESTRATOR_CONFIG (default ./config.yaml; a missing default file is
 * fine, a missing explicit file is an error) and the process environment.
 */
export async function loadConfig(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<Config> {
  const explicit = env.ORCHESTRATOR_CONFIG;
  const path = explicit || "./config.yaml";
  let yamlText: string | null = null;
  try {
    yamlText = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) || explicit) {
      throw new ConfigError(
        "ORCHESTRATOR_CONFIG",
        `cannot read ${path}: ${(err as Error).message}`,
      );
    }
  }
  return parseConfig({ yamlText, env });
}
