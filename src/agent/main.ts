/**
 * Entry point of `cumulus-agent`: runs one command line and exits with its code.
 * Needs --allow-ffi (libchronos.so), --allow-env and --allow-read; on GPU workers also
 * --allow-write (grant files, MPS directories) and --allow-run (MPS control daemons).
 * @module
 */
import { runAgentCommand } from "./mod.ts";

if (import.meta.main) {
  Deno.exit(await runAgentCommand(Deno.args));
}
