/**
 * Orchestrator address parsing.
 * @module
 */
import { InvalidUrlError } from "./errors.ts";

/** Address used when neither an argument nor CUMULUS_ORCHESTRATOR_URL gives one. */
export const DEFAULT_ORCHESTRATOR_URL = "127.0.0.1:50051";

/** Port used when an address names none. */
export const DEFAULT_ORCHESTRATOR_PORT = 50051;

/** Port used by `https://` addresses that name none. */
export const DEFAULT_HTTPS_PORT = 443;

/** A parsed orchestrator address. */
export interface OrchestratorEndpoint {
  /** The `host:port` target grpc-js dials. */
  target: string;
  /** The host alone (IPv6 in brackets), the name the server certificate must carry. */
  host: string;
  /** True for `grpcs://` and `https://`: the channel is TLS. */
  tls: boolean;
}

/**
 * Parses `host:port`, `grpc://host:port` (plaintext), `grpcs://host:port` or
 * `https://host[:port]` (TLS; https defaults to port 443), `[::1]:port` or a bare
 * host (port 50051). Throws {@link InvalidUrlError}.
 * @example
 * parseOrchestratorEndpoint("grpcs://gpu-box:7000"); // { target: "gpu-box:7000", host: "gpu-box", tls: true }
 */
export function parseOrchestratorEndpoint(url: string): OrchestratorEndpoint {
  let rest = url.trim();
  if (rest === "") throw new InvalidUrlError(url, "empty");
  let tls = false;
  let defaultPort = DEFAULT_ORCHESTRATOR_PORT;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    if (name === "grpcs" || name === "https") {
      tls = true;
      if (name === "https") defaultPort = DEFAULT_HTTPS_PORT;
    } else if (name !== "grpc") {
      throw new InvalidUrlError(
        url,
        `unsupported scheme ${scheme[1]}:// (use host:port, grpc://, grpcs:// or https://)`,
      );
    }
    rest = rest.slice(scheme[0].length);
  }
  // A trailing slash is common when pasting URLs; a real path is not supported.
  if (rest.endsWith("/")) rest = rest.slice(0, -1);
  if (rest.includes("/") || rest.includes("?") || rest.includes("#") || rest.includes("@")) {
    throw new InvalidUrlError(url, "expected host:port");
  }
  let host: string;
  let port: string | undefined;
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    if (end < 0) throw new InvalidUrlError(url, "unterminated IPv6 address");
    host = rest.slice(0, end + 1);
    const after = rest.slice(end + 1);
    if (after !== "" && !after.startsWith(":")) {
      throw new InvalidUrlError(url, "expected host:port");
    }
    port = after === "" ? undefined : after.slice(1);
  } else {
    const parts = rest.split(":");
    if (parts.length > 2) throw new InvalidUrlError(url, "put IPv6 addresses in brackets");
    host = parts[0];
    port = parts[1];
  }
  if (host === "" || host === "[]") throw new InvalidUrlError(url, "missing host");
  if (!host.startsWith("[") && !/^[A-Za-z0-9.\-_]+$/.test(host)) {
    throw new InvalidUrlError(url, `invalid host ${JSON.stringify(host)}`);
  }
  if (port === undefined) return { target: `${host}:${defaultPort}`, host, tls };
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) {
    throw new InvalidUrlError(url, `invalid port ${JSON.stringify(port)}`);
  }
  return { target: `${host}:${n}`, host, tls };
}

/**
 * The `host:port` target of an address ({@link parseOrchestratorEndpoint} without the
 * scheme). Throws {@link InvalidUrlError}.
 * @example
 * parseOrchestratorUrl("grpc://10.0.0.5:7000"); // "10.0.0.5:7000"
 * parseOrchestratorUrl("gpu-box");              // "gpu-box:50051"
 */
export function parseOrchestratorUrl(url: string): string {
  return parseOrchestratorEndpoint(url).target;
}

/** The address with its scheme: `grpcs://target` for TLS, the bare target otherwise. */
export function endpointUrl(endpoint: OrchestratorEndpoint): string {
  return endpoint.tls ? `grpcs://${endpoint.target}` : endpoint.target;
}

/**
 * The address a client uses when given none: CUMULUS_ORCHESTRATOR_URL if set
 * (and readable), else {@link DEFAULT_ORCHESTRATOR_URL}.
 */
export function defaultOrchestratorUrl(): string {
  try {
    const fromEnv = Deno.env.get("CUMULUS_ORCHESTRATOR_URL");
    if (fromEnv && fromEnv.trim() !== "") return fromEnv;
  } catch {
    // Without --allow-env the variable is unreadable; the default applies.
  }
  return DEFAULT_ORCHESTRATOR_URL;
}
