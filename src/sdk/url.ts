/**
 * Orchestrator address parsing.
 * @module
 */
import { InvalidUrlError } from "./errors.ts";

/** Address used when neither an argument nor CUMULUS_ORCHESTRATOR_URL gives one. */
export const DEFAULT_ORCHESTRATOR_URL = "127.0.0.1:50051";

/** Port used when an address names none. */
export const DEFAULT_ORCHESTRATOR_PORT = 50051;

/**
 * Turns `host:port`, `grpc://host:port`, `[::1]:port` or a bare host into the
 * `host:port` target grpc-js expects. Throws {@link InvalidUrlError}.
 * @example
 * parseOrchestratorUrl("grpc://10.0.0.5:7000"); // "10.0.0.5:7000"
 * parseOrchestratorUrl("gpu-box");              // "gpu-box:50051"
 */
export function parseOrchestratorUrl(url: string): string {
  let rest = url.trim();
  if (rest === "") throw new InvalidUrlError(url, "empty");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (scheme) {
    if (scheme[1].toLowerCase() !== "grpc") {
      throw new InvalidUrlError(
        url,
        `unsupported scheme ${scheme[1]}:// (use host:port or grpc://)`,
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
  if (port === undefined) return `${host}:${DEFAULT_ORCHESTRATOR_PORT}`;
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) {
    throw new InvalidUrlError(url, `invalid port ${JSON.stringify(port)}`);
  }
  return `${host}:${n}`;
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
