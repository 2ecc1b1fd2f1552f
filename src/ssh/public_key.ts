/**
 * The orchestrator's SSH public key, derived from its private key file
 * (ssh_key_path), as the one OpenSSH line a worker puts in authorized_keys.
 * @module
 */
import { readFileSync } from "node:fs";
// @ts-types="@types/ssh2"
import { utils } from "ssh2";
import { FailedPreconditionError } from "../core/mod.ts";

/**
 * The OpenSSH public key line (`type base64 comment`) of the private key at
 * `keyPath`.
 * @throws {FailedPreconditionError} When the file cannot be read or is no private key.
 */
export function publicKeyLine(keyPath: string, comment = "cumulus-orchestrator"): string {
  let parsed: ReturnType<typeof utils.parseKey>;
  try {
    parsed = utils.parseKey(readFileSync(keyPath));
  } catch (err) {
    throw new FailedPreconditionError(
      `ssh_key_path: cannot read ${keyPath}: ${(err as Error).message}`,
    );
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    const why = key instanceof Error ? key.message : "not a private key";
    throw new FailedPreconditionError(`ssh_key_path: ${keyPath} is no private key: ${why}`);
  }
  return `${key.type} ${key.getPublicSSH().toString("base64")} ${comment}`;
}
