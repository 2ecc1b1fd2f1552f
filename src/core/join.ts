/**
 * Joining a worker with one command: the join token's text form, and the
 * grammars of what a joining worker sends (its name, SSH target and SSH host
 * key). A join token reads `cuj_<id>_<secret>` like a user token (`cu_…`),
 * with its own prefix so one is never taken for the other; only its SHA-256
 * is stored, and it is good for one worker.
 * @module
 */
import { newToken, type ParsedToken, parseToken } from "./token.ts";
import { InvalidArgumentError } from "./errors.ts";

/** A worker name's grammar (a hostname label or a few joined by dots). */
export const WORKER_NAME_RE: RegExp = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** How long a join token lives when its creator gives no lifetime (s). */
export const DEFAULT_JOIN_TOKEN_TTL_S = 3600;

/** SSH host key types a worker may present (what ssh2 verifies). */
export const HOST_KEY_TYPES: readonly string[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
];

/**
 * A new random join token.
 * @returns The token text (shown once) with its id and hash.
 */
export function newJoinToken(): ParsedToken & { token: string } {
  return newToken("cuj");
}

/** Parses a join token's text, or returns null when it is not one. */
export function parseJoinToken(text: string): ParsedToken | null {
  return parseToken(text, "cuj");
}

/** Where the orchestrator reaches a worker's agent over SSH. */
export interface WorkerSshTarget {
  user: string;
  host: string;
  port: number;
}

const SSH_USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const SSH_HOST_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/;

/**
 * Parses `user@host[:port]` (host: a DNS name or an IPv4 address).
 * @throws {InvalidArgumentError} When any part breaks its grammar.
 * @example
 * parseSshTarget("cumulus@10.0.0.5:2222"); // { user: "cumulus", host: "10.0.0.5", port: 2222 }
 */
export function parseSshTarget(text: string, field = "ssh_target"): WorkerSshTarget {
  const bad = (why: string) =>
    new InvalidArgumentError(field, `${why}, got ${JSON.stringify(text.slice(0, 80))}`);
  const at = text.indexOf("@");
  if (at <= 0) throw bad("must read user@host[:port]");
  const user = text.slice(0, at);
  let host = text.slice(at + 1);
  let port = 22;
  const colon = host.lastIndexOf(":");
  if (colon >= 0) {
    const p = host.slice(colon + 1);
    port = /^\d{1,5}$/.test(p) ? Number(p) : NaN;
    host = host.slice(0, colon);
  }
  if (!SSH_USER_RE.test(user)) throw bad("the user must be a login name");
  if (!SSH_HOST_RE.test(host)) throw bad("the host must be a DNS name or an IPv4 address");
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad("the port must be 1-65535");
  return { user, host, port };
}

/** `user@host:port` of a target (the form stored and listed). */
export function formatSshTarget(t: WorkerSshTarget): string {
  return `${t.user}@${t.host}:${t.port}`;
}

/** An SSH public key, as one OpenSSH line carries it. */
export interface HostKey {
  /** Key type, e.g. `ssh-ed25519`. */
  type: string;
  /** The key blob, base64 (standard alphabet, padded). */
  base64: string;
}

/**
 * Parses an OpenSSH public key line (`type base64 [comment]`); the comment is
 * dropped. The blob must name the same type as the line.
 * @throws {InvalidArgumentError} When it is not such a line.
 */
export function parseHostKey(line: string, field = "ssh_host_key"): HostKey {
  const bad = (why: string) =>
    new InvalidArgumentError(field, `${why}, got ${JSON.stringify(line.slice(0, 80))}`);
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) throw bad("must be an OpenSSH public key line (type base64 [comment])");
  const [type, b64] = parts;
  if (!HOST_KEY_TYPES.includes(type)) throw bad(`the key type must be one of ${HOST_KEY_TYPES}`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length > 8192) throw bad("bad base64 key");
  let blob: Uint8Array;
  try {
    blob = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    throw bad("bad base64 key");
  }
  const n = blob.length >= 4
    ? new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0)
    : -1;
  const inner = n >= 0 && n <= 64 ? new TextDecoder().decode(blob.subarray(4, 4 + n)) : "";
  if (inner !== type) throw bad(`the key blob is not a ${type} key`);
  return { type, base64: b64 };
}

/**
 * The line an operator runs as root on a new machine: the agent's join with
 * the orchestrator's address, the token and, with TLS, the CA's fingerprint.
 * Every value passed a grammar that holds no shell metacharacters; anything
 * else is single-quoted.
 */
export function joinCommandLine(url: string, token: string, caFingerprint: string): string {
  const q = (v: string) => /^[A-Za-z0-9._:/@=+\[\]-]+$/.test(v) ? v : `'${v.replace(/'/g, "")}'`;
  const words = ["cumulus-agent", "join", "--orchestrator", q(url), "--token", q(token)];
  if (caFingerprint !== "") words.push("--ca-fingerprint", q(caFingerprint));
  return words.join(" ");
}
