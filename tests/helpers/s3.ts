/**
 * Test helper: a real S3-protocol server (s3rver, installed by the bootstrap
 * at $CUMULUS_S3RVER) on a random port, backed by a temp directory.
 * @module
 */

/** A running S3-compatible server. */
export interface S3Server {
  /** http://host:port */
  endpoint: string;
  bucket: string;
  /** Directory holding the objects (for tests that inspect or corrupt them). */
  dir: string;
  /** Environment for an orchestrator handing these settings to jobs. */
  orchestratorEnv: Record<string, string>;
  /** Stops the server and keeps its objects (an outage). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port over the same objects. */
  resume(): Promise<void>;
  /** Stops the server and removes its objects. */
  stop(): Promise<void>;
}

/**
 * Runs s3rver on `host`:`port` (0: any free port) over `dir`; resolves with
 * the process and the port it listens on.
 */
async function spawnS3rver(
  host: string,
  port: number,
  dir: string,
  bucket: string,
): Promise<{ child: Deno.ChildProcess; port: number }> {
  const bin = Deno.env.get("CUMULUS_S3RVER");
  if (!bin) {
    throw new Error("CUMULUS_S3RVER is not set: run scripts/bootstrap.sh and source .cumulus/env");
  }
  const child = new Deno.Command("node", {
    args: [
      bin,
      "-d",
      dir,
      "-p",
      String(port),
      "--address",
      host,
      "--configure-bucket",
      bucket,
      "--silent",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const reader = child.stdout.getReader();
  const until = Date.now() + 20_000;
  let listening = 0;
  while (!listening && Date.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
    const m = /listening on [\d.]+:(\d+)/.exec(text);
    if (m) listening = Number(m[1]);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  child.stderr.cancel().catch(() => {});
  if (!listening) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`s3rver did not start: ${text}`);
  }
  return { child, port: listening };
}

/** Starts s3rver on `host` with one bucket. */
export async function startS3(host = "127.0.0.1", bucket = "cumulus-test"): Promise<S3Server> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-s3-" });
  let child: Deno.ChildProcess | null;
  let port: number;
  try {
    ({ child, port } = await spawnS3rver(host, 0, dir, bucket));
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  const halt = async () => {
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    child = null;
  };
  const endpoint = `http://${host}:${port}`;
  return {
    endpoint,
    bucket,
    dir,
    orchestratorEnv: {
      CUMULUS_S3_BUCKET: bucket,
      CUMULUS_S3_ENDPOINT: endpoint,
      CUMULUS_S3_REGION: "us-east-1",
      // s3rver's built-in credentials.
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    },
    halt,
    async resume() {
      if (!child) ({ child } = await spawnS3rver(host, port, dir, bucket));
    },
    async stop() {
      await halt();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
