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
  stop(): Promise<void>;
}

/** Starts s3rver on `host` with one bucket. */
export async function startS3(host = "127.0.0.1", bucket = "cumulus-test"): Promise<S3Server> {
  const bin = Deno.env.get("CUMULUS_S3RVER");
  if (!bin) {
    throw new Error("CUMULUS_S3RVER is not set: run scripts/bootstrap.sh and source .cumulus/env");
  }
  const dir = await Deno.makeTempDir({ prefix: "cumulus-s3-" });
  const child = new Deno.Command("node", {
    args: [bin, "-d", dir, "-p", "0", "--address", host, "--configure-bucket", bucket, "--silent"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const reader = child.stdout.getReader();
  const until = Date.now() + 20_000;
  let port = 0;
  while (!port && Date.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
    const m = /listening on [\d.]+:(\d+)/.exec(text);
    if (m) port = Number(m[1]);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  child.stderr.cancel().catch(() => {});
  if (!port) {
    child.kill("SIGKILL");
    throw new Error(`s3rver did not start: ${text}`);
  }
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
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
