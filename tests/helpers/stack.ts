/**
 * Test helper: a real orchestrator on a random loopback port with a fresh
 * data directory, against the local Docker engine in Swarm mode
 * (SWARM_MANAGER, default /run/cumulus-docker.sock).
 * @module
 */
import { parseConfig } from "../../src/config/mod.ts";
import { ensureCertificates, tlsDirOf } from "../../src/tls/mod.ts";
import { newToken } from "../../src/core/mod.ts";
import { CumulusClient } from "../../src/sdk/mod.ts";
import {
  isLoopbackHost,
  type OrchestratorHandle,
  type StartOptions,
  startOrchestrator,
} from "../../src/orchestrator/mod.ts";

/** A running test orchestrator. */
export interface Stack {
  /** "127.0.0.1:PORT" for clients. */
  url: string;
  /** The CA file clients verify the server against (a `tls` stack only). */
  caFile?: string;
  port: number;
  dataDir: string;
  orch: OrchestratorHandle;
  /** Environment for a subprocess CLI pointed at this stack (URL and admin token). */
  env: Record<string, string>;
  /** The admin token (user {@link TEST_ADMIN_USER}). */
  token: string;
  /** Creates a token for `user` with the admin token; returns its secret. */
  createToken(user: string, opts?: { admin?: boolean; expiresInS?: number }): Promise<string>;
  /** Stops the orchestrator, removes leftover job services and the data dir. */
  stop(): Promise<void>;
}

/** Options for {@link startStack}. */
export interface StackOptions {
  maxConcurrentJobs?: number;
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
  /** Extra config keys (environment variable names from CONFIG_KEYS). */
  env?: Record<string, string>;
  /** Keep the data dir on stop. */
  keepData?: boolean;
  /**
   * Address to serve on, also the one job containers dial (default
   * 127.0.0.1; a test with a second node uses the bridge, 198.18.0.1).
   */
  host?: string;
  /** Wraps the local agent's transport (tests that count agent commands). */
  wrapAgentTransport?: StartOptions["wrapAgentTransport"];
  /** Serve TLS with a CA and server certificate made in `<dataDir>/tls` (url is grpcs://). */
  tls?: boolean;
  /**
   * Config `insecure`: plaintext on a non-loopback `host`. Default: true for such a host
   * without `tls` (the multi-node tests serve plaintext on the bridge the project creates).
   */
  insecure?: boolean;
  /** Receives the orchestrator's log lines (default: stderr when CUMULUS_TEST_VERBOSE). */
  log?: (line: string) => void;
}

/** Socket of the local Docker engine used by tests. */
export const SWARM_SOCKET = Deno.env.get("SWARM_MANAGER") ?? "/run/cumulus-docker.sock";
/** Image jobs use in tests. */
export const JOB_IMAGE = Deno.env.get("CUMULUS_JOB_IMAGE") ?? "cumulus-job:latest";

/**
 * The admin token every test stack of this process accepts. Clients made in
 * the test process (SDK, TestClient, CLI subprocesses that inherit the
 * environment) find it through CUMULUS_TOKEN.
 */
export const TEST_ADMIN_TOKEN: string = newToken().token;
/** The user of {@link TEST_ADMIN_TOKEN}. */
export const TEST_ADMIN_USER = "admin";
Deno.env.set("CUMULUS_TOKEN", TEST_ADMIN_TOKEN);

function freePort(host: string): number {
  const l = Deno.listen({ hostname: host, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts an orchestrator for one test. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "cumulus-test-" });
  const host = opts.host ?? "127.0.0.1";
  const port = freePort(host);
  const certs = opts.tls
    ? await ensureCertificates({ dir: tlsDirOf(dataDir), hosts: [host] })
    : null;
  const tlsEnv: Record<string, string> = certs
    ? {
      CUMULUS_TLS_CERT: certs.paths.serverCert,
      CUMULUS_TLS_KEY: certs.paths.serverKey,
      CUMULUS_TLS_CA: certs.paths.caCert,
    }
    : {};
  const config = parseConfig({
    yamlText: null,
    env: {
      ORCHESTRATOR_PORT: String(port),
      ORCHESTRATOR_LISTEN_HOST: host,
      CUMULUS_ADVERTISE_ADDRESS: `${host}:${port}`,
      ORCHESTRATOR_METRICS_PORT: "0",
      SWARM_MANAGER: SWARM_SOCKET,
      CUMULUS_DATA_DIR: dataDir,
      CUMULUS_JOB_IMAGE: JOB_IMAGE,
      CUMULUS_STOP_GRACE_PERIOD: "2",
      MAX_CONCURRENT_JOBS: String(opts.maxConcurrentJobs ?? 5),
      // Most tests run several 0.5 jobs at once on the one PoCL device: GPU gating
      // through partitions is opted into by the tests that exercise it.
      CUMULUS_GPU_PLACEMENT: "off",
      // Jobs share the host's network (the default, said here because the tests' S3
      // servers and second nodes, dockerd --bridge=none, are on addresses only the host
      // network reaches); a network of their own is tested in job_isolation_test.
      CUMULUS_JOB_NETWORK: "host",
      ...tlsEnv,
      CUMULUS_INSECURE: String(opts.insecure ?? (!opts.tls && !isLoopbackHost(host))),
      ...opts.env,
    },
  });
  const orch = await startOrchestrator(config, {
    env: {
      ...Deno.env.toObject(),
      CUMULUS_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      CUMULUS_ADMIN_USER: TEST_ADMIN_USER,
      ...opts.env,
    },
    wrapAgentTransport: opts.wrapAgentTransport,
    log: opts.log ?? ((m) => {
      if (Deno.env.get("CUMULUS_TEST_VERBOSE")) console.error(`[orch] ${m}`);
    }),
  });
  const url = `${certs ? "grpcs://" : ""}${host}:${orch.port}`;
  return {
    url,
    caFile: certs?.paths.caCert,
    port: orch.port,
    dataDir,
    orch,
    env: certs
      ? {
        CUMULUS_ORCHESTRATOR_URL: url,
        CUMULUS_CA_FILE: certs.paths.caCert,
        CUMULUS_TOKEN: TEST_ADMIN_TOKEN,
      }
      : { CUMULUS_ORCHESTRATOR_URL: url, CUMULUS_TOKEN: TEST_ADMIN_TOKEN },
    token: TEST_ADMIN_TOKEN,
    async createToken(user, o = {}) {
      const client = new CumulusClient(url, {
        token: TEST_ADMIN_TOKEN,
        caPem: certs ? await Deno.readTextFile(certs.paths.caCert) : undefined,
      });
      try {
        return (await client.createToken(user, o)).secret;
      } finally {
        client.close();
      }
    },
    async stop() {
      // Only remove services of jobs this stack created; other tests run beside us.
      const ours = new Set(orch.manager.list({ limit: 100_000 }).map((j) => j.id));
      await orch.stop();
      if (!opts.keepData) {
        for (const s of await orch.swarm.listServices("cumulus.job")) {
          if (ours.has(s.labels["cumulus.job"])) await orch.swarm.removeService(s.id);
        }
        // Checkpoint volumes of this instance: the next stack is another
        // instance whose sweeps never see them. A volume is in use until its
        // container is gone (a second or so after its service), so retry.
        const instanceId = (await Deno.readTextFile(`${dataDir}/instance-id`)).trim();
        for (let i = 0; i < 20; i++) {
          const vols = await orch.swarm.listVolumes("cumulus.orchestrator", instanceId);
          let left = 0;
          for (const v of vols) if (!(await orch.swarm.removeVolume(v.name))) left++;
          if (left === 0) break;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      if (!opts.keepData && !opts.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}
