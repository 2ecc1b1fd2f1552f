/**
 * `cumulus agent`: hands argv to the worker agent (src/agent), loaded only
 * when this command runs so the client commands start fast.
 * @module
 */

/**
 * Loads the agent and runs it. Throws an error with a clear message when
 * this build has no agent.
 */
export async function agentCommand(argv: string[]): Promise<number> {
  let mod: typeof import("../agent/mod.ts");
  try {
    mod = await import("../agent/mod.ts");
  } catch (err) {
    if (isModuleMissing(err)) throw new Error("the agent is not part of this build (src/agent)");
    throw err;
  }
  return await mod.runAgentCommand(argv);
}

function isModuleMissing(err: unknown): boolean {
  return err instanceof TypeError && /Module not found|Cannot find module/i.test(err.message);
}
