/**
 * Business rules that turn a job into a Swarm service request.
 * @module
 */
import { devicesOf, type JobRecord, partitionsOf } from "../core/mod.ts";
import type { ServiceRequest } from "../swarm/mod.ts";
import { attemptToken } from "./job_token.ts";

/** Label every Cumulus job service carries; its value is the job id. */
export const JOB_LABEL = "cumulus.job";

/** Label naming the orchestrator instance that owns a service. */
export const INSTANCE_LABEL = "cumulus.orchestrator";

/** Where the L1 checkpoint volume is mounted inside job containers. */
export const CHECKPOINT_DIR = "/cumulus/checkpoints";

/** The per-job L1 checkpoint volume (created by Docker on whichever node runs the job). */
export function checkpointVolume(jobId: string): string {
  return `cumulus-ckpt-${jobId}`;
}

/**
 * S3 settings handed to jobs for L2 checkpoints. No credentials: jobs get
 * presigned URLs for their own prefix over the Runtime API (l2_access.ts).
 */
export interface S3Settings {
  bucket: string;
  region: string;
  endpoint: string;
  prefix: string;
}

/** The Swarm service name of a job (unique, so a retried create finds the first). */
export function serviceName(jobId: string): string {
  return `cumulus-${jobId}`;
}

/** The runtime's work dir when neither the spec nor the image names one. */
export const DEFAULT_WORKDIR = "/workspace";

/** How job containers are confined on their worker (config `job_*`). */
export interface JobIsolation {
  /** uid:gid every container runs as, unless its spec keeps the image's user. */
  user: string;
  /** Read-only root filesystem, with tmpfs at /tmp and the runtime's work dir. */
  readOnlyRoot: boolean;
  /** Cores of a record stored before specs carried them. */
  cpuDefault: number;
  /** Memory bytes of a record stored before specs carried them. */
  memoryDefault: number;
  /** "host" or the Swarm-scoped network jobs join. @default "host" */
  network?: string;
}

/** The isolation of `DEFAULT_CONFIG` (src/config), for callers that set none. */
export const DEFAULT_JOB_ISOLATION: Readonly<JobIsolation> = {
  user: "1000:1000",
  readOnlyRoot: true,
  cpuDefault: 4,
  memoryDefault: 4 * 1024 ** 3,
};

/** Where and how the job's container reaches the orchestrator. */
export interface ServiceContext {
  /**
   * Image id resolved on the manager (skips registry pulls), or with config
   * `registry` the reference every node can pull (`REGISTRY/cumulus-job@sha256:…`).
   */
  imageId: string;
  /** Owning orchestrator instance id. */
  instanceId: string;
  /** host:port of the orchestrator's gRPC server as seen from the worker. */
  orchestratorAddress: string;
  /** PEM of the CA that signed the orchestrator's TLS certificate, for the job's runtime. */
  orchestratorCaPem?: string;
  stopGracePeriodS: number;
  /** Epoch ms. */
  now: number;
  /** L2 checkpoint settings; bucket "" = none. */
  s3?: S3Settings;
  /** @default {DEFAULT_JOB_ISOLATION} */
  isolation?: JobIsolation;
}

/**
 * Builds the service: the user's argv (wrapped by the Python runtime when a
 * bundle or a function must be fetched first), the job's env plus the
 * CUMULUS_* variables, labels and placement constraints.
 */
export function buildServiceRequest(job: JobRecord, ctx: ServiceContext): ServiceRequest {
  const s = job.spec;
  let command = s.command;
  if (s.function.length > 0 && s.command.length === 0) {
    command = ["python3", "-m", "cumulus.runtime", "--function"];
  } else if (job.bundleBytes > 0) {
    command = ["python3", "-m", "cumulus.runtime", "--", ...s.command];
  }
  const env: Record<string, string> = {
    ...s.env,
    CUMULUS_JOB_ID: job.id,
    // This attempt's own token (job_token.ts): refused once another attempt starts.
    CUMULUS_JOB_TOKEN: attemptToken(job.token, job.attempts),
    CUMULUS_ORCHESTRATOR_URL: ctx.orchestratorAddress,
    CUMULUS_GPU_MEMORY: String(s.gpuMemory),
    CUMULUS_GPU_COUNT: String(s.gpuCount),
    CUMULUS_DURATION: String(s.duration),
    CUMULUS_DEADLINE_MS: String(ctx.now + s.duration * 1000),
    CUMULUS_ATTEMPT: String(job.attempts),
    PYTHONUNBUFFERED: s.env.PYTHONUNBUFFERED ?? "1",
  };
  // Public: the runtime verifies the orchestrator's certificate against it (grpcs://).
  if (ctx.orchestratorCaPem) env.CUMULUS_CA_PEM = ctx.orchestratorCaPem;
  // The runtime extracts the bundle into CUMULUS_WORKDIR and runs from there.
  if (s.workdir) env.CUMULUS_WORKDIR = s.workdir;
  env.CUMULUS_CHECKPOINT_DIR = CHECKPOINT_DIR;
  // Runtime-wrapped jobs stream their output over gRPC (Runtime.StreamLogs):
  // Docker's log pipeline is an order of magnitude slower.
  if (command[0] === "python3" && command[2] === "cumulus.runtime") env.CUMULUS_LOG_STREAM = "1";
  env.CUMULUS_MAX_ATTEMPTS = String(s.maxAttempts);
  const iso = ctx.isolation ?? DEFAULT_JOB_ISOLATION;
  const memoryBytes = s.memoryBytes ?? iso.memoryDefault;
  const tmpfs: NonNullable<ServiceRequest["tmpfs"]> = [];
  const labels = { [JOB_LABEL]: job.id, [INSTANCE_LABEL]: ctx.instanceId };
  if (iso.readOnlyRoot) {
    // tmpfs pages count against the container's memory limit, so that limit
    // also bounds what the job can write here.
    tmpfs.push({ target: "/tmp", sizeBytes: memoryBytes, labels });
    if (env.CUMULUS_LOG_STREAM === "1") {
      // The runtime extracts the bundle and runs from its work dir: writable.
      const workdir = s.workdir || DEFAULT_WORKDIR;
      env.CUMULUS_WORKDIR = workdir;
      if (workdir !== "/tmp") tmpfs.push({ target: workdir, sizeBytes: memoryBytes, labels });
    }
    // The image's HOME is on the read-only root (or "/" for a uid it does not know).
    if (s.env.HOME === undefined) env.HOME = "/tmp";
  }
  const constraints = [...s.constraints];
  // Always set, even empty: an image's own ENV must never name partitions
  // for the worker's GPU runtime wrapper to hand over.
  env.CUMULUS_PARTITION_ID = "";
  env.CUMULUS_PARTITION_IDS = "";
  if (job.partitionId && job.deadlineMs > 0) {
    // Placed through a Chronos partition: the container runs where it is held,
    // knows it, and knows when it ends.
    // On a GPU worker the runtime wrapper finds the job's grants by these ids
    // and hands the container exactly those GPUs (docs/gpus.md).
    env.CUMULUS_PARTITION_ID = job.partitionId;
    env.CUMULUS_PARTITION_IDS = partitionsOf(job).join(",");
    env.CUMULUS_GPU_DEVICE = String(job.gpuDevice);
    env.CUMULUS_GPU_DEVICES = devicesOf(job).join(",");
    env.CUMULUS_DEADLINE_MS = String(job.deadlineMs);
    constraints.push(`node.id==${job.nodeId}`);
  }
  const s3 = ctx.s3;
  if (s3 && s3.bucket) {
    env.CUMULUS_S3_BUCKET = s3.bucket;
    env.CUMULUS_S3_REGION = s3.region;
    env.CUMULUS_S3_PREFIX = s.s3Prefix || s3.prefix;
    if (s3.endpoint) env.CUMULUS_S3_ENDPOINT = s3.endpoint;
    // The runtime signs nothing itself: it asks the orchestrator (and an
    // image's own AWS_* ENV is ignored for L2).
    env.CUMULUS_S3_PRESIGN = "1";
  }
  return {
    name: serviceName(job.id),
    image: ctx.imageId,
    command,
    env,
    labels: { [JOB_LABEL]: job.id, [INSTANCE_LABEL]: ctx.instanceId, "cumulus.user": s.user },
    constraints,
    stopGracePeriodS: ctx.stopGracePeriodS,
    workdir: s.workdir || undefined,
    user: s.imageUser ? undefined : iso.user,
    cpu: s.cpu ?? iso.cpuDefault,
    memoryBytes,
    readOnlyRoot: iso.readOnlyRoot,
    tmpfs,
    network: iso.network ?? "host",
    volumes: [{
      name: checkpointVolume(job.id),
      target: CHECKPOINT_DIR,
      labels,
    }],
  };
}
