/**
 * `cumulus`: the command-line entry point. See docs/cli.md.
 * @module
 */
import { runCli } from "./src/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
