/**
 * `cumulus orchestrator`: runs the orchestrator in the foreground until
 * SIGTERM or SIGINT, then stops accepting calls, flushes and exits 0.
 * @module
 */
import { parseArgs } from "node:util";
import { CONFIG_KEYS, ConfigError, loadConfig } from "../config/mod.ts";
import { CumulusError } from "../core/mod.ts";
import { installCrashGuard, startOrchestrator } from "../orchestrator/mod.ts";
import { CUMULUS_COMMIT, CUMULUS_VERSION } from "./version.ts";

/** Help text of `cumulus orchestrator`. */
export const ORCHESTRATOR_HELP =
  `Usage: cumulus orchestrator [--config FILE] [--port N] [--data-dir DIR] [--insecure]

Runs the Cumulus orchestrator (gRPC API, job store, scheduler, log relay)
in the foreground. SIGTERM or SIGINT stops it cleanly: new calls are refused,
pending writes are flushed, running jobs keep running and are re-attached on
the next start.

Options:
  --config FILE     config file (default: $ORCHESTRATOR_CONFIG or ./config.yaml)
  --port N          gRPC port (overrides ORCHESTRATOR_PORT / port)
  --data-dir DIR    data directory (overrides CUMULUS_DATA_DIR / data_dir)
  --insecure        serve plaintext on a non-loopback listen_host (insecure: true);
                    without tls_cert/tls_key such a listen_host refuses to start
  --version         print the version and the git commit
  -h, --help        show this help

Configuration keys (YAML key / environment variable / meaning):
${
    Object.values(CONFIG_KEYS).map((k) => `  ${k.yaml.padEnd(20)} ${k.env.padEnd(27)} ${k.doc}`)
      .join("\n")
  }
`;

/** Runs the subcommand; resolves with the process exit code. */
export async function orchestratorCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        port: { type: "string" },
        "data-dir": { type: "string" },
        insecure: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`cumulus: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(ORCHESTRATOR_HELP);
    return 0;
  }
  if (values.version) {
    console.log(`cumulus-orchestrator ${CUMULUS_VERSION} (commit ${CUMULUS_COMMIT})`);
    return 0;
  }
  const env = Deno.env.toObject();
  if (values.config) env.ORCHESTRATOR_CONFIG = values.config;
  if (values.port) env.ORCHESTRATOR_PORT = values.port;
  if (values["data-dir"]) env.CUMULUS_DATA_DIR = values["data-dir"];
  if (values.insecure) env.CUMULUS_INSECURE = "true";
  // A dependency's error thrown outside our promises must not end every client's stream.
  const guard = installCrashGuard((line) =>
    console.error(`${new Date().toISOString()} orchestrator: ${line}`)
  );
  let orch;
  try {
    orch = await startOrchestrator(await loadConfig(env));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof CumulusError) {
      console.error(`cumulus: ${err.message}`);
      return 1;
    }
    console.error(`cumulus: could not start the orchestrator: ${(err as Error).message}`);
    return 1;
  }
  const { promise, resolve } = Promise.withResolvers<void>();
  const onSignal = () => resolve();
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  await promise;
  Deno.removeSignalListener("SIGTERM", onSignal);
  Deno.removeSignalListener("SIGINT", onSignal);
  await orch.stop();
  guard.remove();
  return 0;
}
