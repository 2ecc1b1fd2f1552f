/**
 * `cumulus orchestrator`: placeholder until the orchestrator lands (the lead
 * replaces this file).
 * @module
 */

/** Runs the orchestrator; not implemented yet. */
export function orchestratorCommand(_argv: string[]): Promise<number> {
  console.error("cumulus: orchestrator: not implemented");
  return Promise.resolve(1);
}
