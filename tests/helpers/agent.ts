/**
 * Test helper: the local cumulus-agent on a temp Chronos state directory,
 * as the orchestrator's local transport sees it.
 * @module
 */
import { AgentClient, localAgentCommand, LocalTransport } from "../../src/workers/mod.ts";

/** A temp Chronos state dir and an agent client on it. */
export interface TestAgent {
  stateDir: string;
  agent: AgentClient;
  /** Stack/orchestrator env turning GPU placement on against this state dir. */
  env: Record<string, string>;
  /** Removes the state dir. */
  remove(): Promise<void>;
}

/** Makes a fresh Chronos state dir with an agent client. */
export async function testAgent(): Promise<TestAgent> {
  const stateDir = await Deno.makeTempDir({ prefix: "cumulus-chronos-" });
  const agent = new AgentClient(
    new LocalTransport({
      agentCommand: localAgentCommand(""),
      env: { CHRONOS_STATE_DIR: stateDir },
    }),
  );
  return {
    stateDir,
    agent,
    env: {
      CUMULUS_GPU_PLACEMENT: "auto",
      CHRONOS_STATE_DIR: stateDir,
      CUMULUS_RECONCILE_INTERVAL_MS: "1000",
    },
    remove: () => Deno.remove(stateDir, { recursive: true }),
  };
}

/** A running `cumulus-agent serve` (the expiry daemon) on a test agent's state dir. */
export interface TestDaemon {
  /** Stops the daemon (SIGTERM) and waits for it. */
  stop(): Promise<void>;
  /** SIGKILLs the daemon (a crash: no clean-up of its own) and waits for it. */
  kill(): Promise<void>;
}

/**
 * Starts the agent's expiry daemon on `ta`'s state dir against the test
 * Docker engine, checking every 200 ms with `graceS` of grace.
 */
export function startTestDaemon(ta: TestAgent, graceS: number, dockerSocket: string): TestDaemon {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "src/agent/main.ts",
      "serve",
      "--grace",
      String(graceS),
      "--interval",
      "200",
    ],
    env: {
      CHRONOS_STATE_DIR: ta.stateDir,
      DOCKER_HOST: dockerSocket.startsWith("/") ? `unix://${dockerSocket}` : dockerSocket,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const end = async (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch {
      // Already gone.
    }
    await child.status;
    await child.stderr.cancel();
  };
  return { stop: () => end("SIGTERM"), kill: () => end("SIGKILL") };
}
