/**
 * Entry point of `cumulus-agent`: runs one command line and exits with its code.
 * Needs --allow-ffi (libchronos.so), --allow-env and --allow-read.
 * @module
 */
import { runAgentCommand } from "./mod.ts";

if (import.meta.main) {
  Deno.exit(await runAgentCommand(Deno.args));
}
