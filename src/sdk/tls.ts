/**
 * Channel credentials for an orchestrator address: plaintext for `grpc://`, TLS verified
 * against a CA file (or the system store) for `grpcs://` and `https://`.
 * @module
 */
// deno-lint-ignore no-import-prefix
import * as grpc from "npm:@grpc/grpc-js@1.14.7";
import { Buffer } from "node:buffer";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { denoEnv, type EnvLookup } from "./env.ts";
import type { OrchestratorEndpoint } from "./url.ts";

/** What grpc-js needs to open a channel to one endpoint. */
export interface ChannelSecurity {
  /** Insecure or TLS credentials. */
  credentials: grpc.ChannelCredentials;
  /** Channel options the credentials need (empty for plaintext). */
  options: grpc.ChannelOptions;
}

// Deno's node:tls refuses an IP address as the TLS server name (SNI), which grpc-js sets
// to the dialled host (Node only warns, DEP0123). For an IP we send this placeholder
// instead and check the certificate against the real address ourselves: chain
// verification is untouched, and SNI must not carry an IP anyway (RFC 6066).
const IP_SNI_PLACEHOLDER = "cumulus-orchestrator.invalid";

function isIp(host: string): boolean {
  return host.startsWith("[") || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/**
 * The credentials for `endpoint`. `caPem` is the CA to trust for TLS endpoints; without
 * it, the system's roots. The server certificate must name the host dialled (a DNS name
 * or an IP address in its subject alternative names).
 * @example
 * const { credentials, options } = channelSecurity(parseOrchestratorEndpoint("grpcs://h:1"), pem);
 */
export function channelSecurity(
  endpoint: OrchestratorEndpoint,
  caPem?: string,
): ChannelSecurity {
  if (!endpoint.tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  const roots = caPem ? Buffer.from(caPem) : null;
  if (!isIp(endpoint.host)) {
    return { credentials: grpc.credentials.createSsl(roots), options: {} };
  }
  const ip = endpoint.host.replace(/^\[|\]$/g, "");
  return {
    credentials: grpc.credentials.createSsl(roots, null, null, {
      checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(ip, cert),
    }),
    options: { "grpc.ssl_target_name_override": IP_SNI_PLACEHOLDER },
  };
}

/**
 * The CA a client trusts when given none: CUMULUS_CA_PEM (the PEM itself, as jobs get it;
 * also for a client that may not read files), else the file CUMULUS_CA_FILE names, else
 * undefined (the system store). Throws when the variable names a file that cannot be read.
 */
export function defaultCaPem(env: EnvLookup = denoEnv): string | undefined {
  const pem = env("CUMULUS_CA_PEM")?.trim();
  if (pem) return pem;
  const file = env("CUMULUS_CA_FILE")?.trim();
  if (!file) return undefined;
  return Deno.readTextFileSync(file);
}
