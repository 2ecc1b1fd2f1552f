/**
 * Whether the orchestrator may listen where its config says: a reachable address must
 * not serve plaintext unless the operator said so explicitly. (Issue 16 asks for TLS
 * and tokens there; user tokens are always required, src/orchestrator/auth.ts, so
 * TLS is the one thing left to check.)
 * @module
 */
import type { Config } from "../config/mod.ts";
import { ConfigError } from "../config/mod.ts";

/** Whether `host` names only this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** What {@link assertSafeListen} decided for a config that may start. */
export interface ListenSafety {
  /** A warning to log at every start (an insecure, reachable bind), or null. */
  warning: string | null;
}

/**
 * Refuses a config that binds a non-loopback `listen_host` without TLS (`tls_cert` and
 * `tls_key`), unless `insecure` is set; then it returns the warning to log at every
 * start. A half TLS config (a certificate without its key, or the reverse) is refused
 * everywhere. Throws {@link ConfigError} naming the fix.
 * @example
 * const { warning } = assertSafeListen(config);
 * if (warning) log(warning);
 */
export function assertSafeListen(
  config: Pick<Config, "listenHost" | "tlsCert" | "tlsKey" | "insecure">,
): ListenSafety {
  if ((config.tlsCert === "") !== (config.tlsKey === "")) {
    throw new ConfigError(
      config.tlsCert === "" ? "tls_cert" : "tls_key",
      "tls_cert and tls_key go together: set both (cumulus certs makes a pair) or neither",
    );
  }
  if (config.tlsCert !== "" || isLoopbackHost(config.listenHost)) return { warning: null };
  const where = `listen_host ${config.listenHost}`;
  if (!config.insecure) {
    throw new ConfigError(
      "listen_host",
      `${config.listenHost} is reachable from other machines and the gRPC port would be ` +
        "plaintext: set tls_cert and tls_key (cumulus certs --host <address> makes them), " +
        "or listen on 127.0.0.1, or pass --insecure (insecure: true) to accept the risk",
    );
  }
  return {
    warning: `WARNING: ${where} without TLS (insecure: true): anyone who reaches this port ` +
      "can read and change every job; set tls_cert and tls_key (docs/security.md)",
  };
}
