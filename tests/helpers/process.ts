/**
 * Test helper: the orchestrator as a real child process (`main.ts
 * orchestrator`), so tests can SIGKILL and SIGTERM it.
 * @module
 */
import { JOB_IMAGE, SWARM_SOCKET, TEST_ADMIN_TOKEN, TEST_ADMIN_USER } from "./stack.ts";

/** Returns a TCP port that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running orchestrator process. */
export interface OrchestratorProcess {
  child: Deno.ChildProcess;
  url: string;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
  /** Everything it wrote to stderr so far. */
  stderr: () => string;
}

/** Starts `deno run -A main.ts orchestrator` and waits until it listens. */
export async function spawnOrchestrator(
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
): Promise<OrchestratorProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "orchestrator"],
    env: {
      ORCHESTRATOR_PORT: String(port),
      ORCHESTRATOR_METRICS_PORT: "-1",
      SWARM_MANAGER: SWARM_SOCKET,
      CUMULUS_DATA_DIR: dataDir,
      CUMULUS_JOB_IMAGE: JOB_IMAGE,
      CUMULUS_GPU_PLACEMENT: "off",
      // The test process's clients carry this token (CUMULUS_TOKEN).
      CUMULUS_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      CUMULUS_ADMIN_USER: TEST_ADMIN_USER,
      ...env,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += dec.decode(chunk);
      if (text.includes("listening on")) resolve();
    }
    reject(new Error(`orchestrator exited before listening:\n${text}`));
  })();
  const timer = setTimeout(() => reject(new Error(`orchestrator did not start:\n${text}`)), 30_000);
  try {
    await ready;
  } finally {
    clearTimeout(timer);
  }
  return { child, url: `127.0.0.1:${port}`, status: child.status, stderr: () => text };
}
