/**
 * Where jobs reach the orchestrator. Jobs run on their own network
 * (config `job_network`, a Swarm-scoped bridge by default), where the host's
 * loopback is not theirs: an orchestrator that listens on 127.0.0.1 then also
 * listens on Docker's default bridge gateway (an address of the host that
 * containers reach, 172.17.0.1 as a rule) and tells jobs to dial that.
 * Pure: the caller looks the gateway up and binds.
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import { isLoopbackHost } from "./listen_safety.ts";

/** What the plan depends on. */
export interface JobReachInput {
  /** Config `listen_host`. */
  listenHost: string;
  /** Config `advertise_address` ("" = not set). */
  advertiseAddress: string;
  /** Config `job_network`. */
  jobNetwork: string;
  /** The port the orchestrator got. */
  port: number;
  /** Docker's default bridge gateway on this host, or null where there is none. */
  bridgeGateway: string | null;
}

/** Where jobs dial, and what else to listen on for that. */
export interface JobReach {
  /** `host:port` jobs dial (without a scheme). */
  address: string;
  /** The host part of `address`: where the S3 gate listens and what TLS must cover. */
  host: string;
  /** A second address to listen on (`host:port`), or null. */
  extraBind: string | null;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

function hostOf(address: string): string {
  const bare = address.replace(/^[a-z]+:\/\//, "");
  const m = /^\[([^\]]+)\]/.exec(bare);
  if (m) return m[1];
  const i = bare.lastIndexOf(":");
  return i > 0 && bare.indexOf(":") === i ? bare.slice(0, i) : bare;
}

/**
 * Plans where jobs reach the orchestrator:
 * - `advertise_address` wins when set;
 * - jobs on the host network dial 127.0.0.1 (as before);
 * - jobs on their own network dial a non-loopback `listen_host` as is, and
 *   otherwise the bridge gateway: a loopback-only orchestrator also binds there.
 * @throws {ConfigError} when jobs on their own network could not reach it (no bridge)
 */
export function planJobReach(input: JobReachInput): JobReach {
  const { listenHost, port } = input;
  if (input.advertiseAddress) {
    return {
      address: input.advertiseAddress,
      host: hostOf(input.advertiseAddress),
      extraBind: null,
    };
  }
  if (input.jobNetwork === "host") {
    return { address: `127.0.0.1:${port}`, host: "127.0.0.1", extraBind: null };
  }
  if (!isLoopbackHost(listenHost) && !isWildcard(listenHost)) {
    const host = hostOf(listenHost);
    const h = host.includes(":") ? `[${host}]` : host;
    return { address: `${h}:${port}`, host, extraBind: null };
  }
  const gw = input.bridgeGateway;
  if (!gw) {
    throw new ConfigError(
      "job_network",
      `jobs on network ${input.jobNetwork} cannot reach an orchestrator on ${listenHost}, and ` +
        "this Docker engine has no default bridge to listen on (dockerd --bridge=none): set " +
        "advertise_address to an address jobs reach, or job_network: host",
    );
  }
  const h = gw.includes(":") ? `[${gw}]` : gw;
  return {
    address: `${h}:${port}`,
    host: gw,
    extraBind: isWildcard(listenHost) ? null : `${h}:${port}`,
  };
}
