/**
 * Cumulus TypeScript SDK: submit jobs to a Cumulus orchestrator, follow their
 * logs, wait for them and fetch their results, over gRPC (`cumulus.v1`).
 *
 * Importable by URL with no install: this module imports only files next to
 * it and pinned `npm:` packages.
 * Run with `--allow-net --allow-env` (and `--allow-read` to pack a directory
 * with {@link packBundle}).
 *
 * @example
 * ```ts
 * import { CumulusClient, packBundle } from "https://example.com/cumulus/src/sdk/mod.ts";
 *
 * const client = new CumulusClient(); // CUMULUS_ORCHESTRATOR_URL or 127.0.0.1:50051
 * try {
 *   const { bytes } = await packBundle(".");
 *   const job = await client.submit(
 *     { command: ["python3", "train.py"], gpuMemory: 0.5, duration: 600 },
 *     { bundle: bytes },
 *   );
 *   for await (const line of job.logs()) {
 *     (line.stream === "stderr" ? console.error : console.log)(line.text);
 *   }
 *   const final = await job.wait();
 *   console.log(final.state, final.exitCode);
 * } finally {
 *   client.close();
 * }
 * ```
 * @module
 */
export {
  BUNDLE_CHUNK_BYTES,
  type ClientOptions,
  CumulusClient,
  type JoinTokenInfo,
  type SubmitOptions,
  type TokenInfo,
  type UploadProgress,
} from "./client.ts";
export {
  credentialsPath,
  type EnvLookup,
  readCredentialsToken,
  resolveToken,
  userConfigDir,
  writeCredentials,
  writePrivateJson,
} from "./credentials.ts";
export { Job, type LogsOptions, type WatchOptions } from "./job.ts";
export { currentJob, type JobContext } from "./context.ts";
export {
  BundleError,
  BundleTooLargeError,
  CumulusRpcError,
  CumulusSdkError,
  type FileSize,
  InvalidUrlError,
  type RpcCode,
} from "./errors.ts";
export {
  type BundleEntry,
  type BundleSelection,
  DEFAULT_MAX_BUNDLE_BYTES,
  IGNORE_FILES,
  packBundle,
  type PackedBundle,
  type PackOptions,
  type PackProgress,
  selectBundleEntries,
} from "./bundle.ts";
export {
  type CheckpointInfo,
  DEFAULT_DURATION,
  DEFAULT_GPU_MEMORY,
  isTerminalState,
  JOB_STATES,
  type JobEvent,
  type JobPage,
  type JobRecord,
  type JobSpec,
  type JobSpecInput,
  type JobState,
  type ListJobsOptions,
  type LogLine,
  type Partition,
  type Worker,
  type WorkerGpu,
} from "./types.ts";
export { formatBytes, parseBytesText } from "./bytes.ts";
export {
  DEFAULT_HTTPS_PORT,
  DEFAULT_ORCHESTRATOR_URL,
  defaultOrchestratorUrl,
  endpointUrl,
  type OrchestratorEndpoint,
  parseOrchestratorEndpoint,
  parseOrchestratorUrl,
} from "./url.ts";
export { type ChannelSecurity, channelSecurity, defaultCaPem } from "./tls.ts";
