/**
 * Credentials for private registries, read from a Docker `config.json`
 * (`{"auths": {"host": {"auth": base64("user:pass")}}}`, as `docker login`
 * writes it). They come from the orchestrator's config only, never from a job
 * spec, and are never logged.
 * @module
 */

/** The `X-Registry-Auth` body for one registry. */
export interface RegistryAuth {
  username: string;
  password: string;
  /** The registry host the credentials belong to. */
  serveraddress: string;
}

/** The credentials file is unreadable or malformed; the message names the file, never a secret. */
export class RegistryAuthError extends Error {
  /** Stable code for callers that branch on errors. */
  readonly code = "INVALID_REGISTRY_AUTH";
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RegistryAuthError";
  }
}

/**
 * Parses the `auths` of a Docker config.json into credentials per registry
 * host (`https://` and trailing paths are dropped, as Docker does).
 * @param text the file's text
 * @param source the file name, for errors
 * @throws {RegistryAuthError} on bad JSON or an entry without a user and password
 */
export function parseDockerConfig(text: string, source: string): Map<string, RegistryAuth> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RegistryAuthError(`${source}: not valid JSON`);
  }
  const auths = (doc as { auths?: unknown })?.auths ?? {};
  if (typeof auths !== "object" || auths === null || Array.isArray(auths)) {
    throw new RegistryAuthError(`${source}: auths must be an object`);
  }
  const out = new Map<string, RegistryAuth>();
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const host = key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    const e = (entry ?? {}) as { auth?: unknown; username?: unknown; password?: unknown };
    let username = typeof e.username === "string" ? e.username : "";
    let password = typeof e.password === "string" ? e.password : "";
    if (typeof e.auth === "string" && e.auth !== "") {
      let plain: string;
      try {
        plain = atob(e.auth);
      } catch {
        throw new RegistryAuthError(`${source}: auths.${host}.auth is not base64`);
      }
      const colon = plain.indexOf(":");
      if (colon < 0) {
        throw new RegistryAuthError(`${source}: auths.${host}.auth is not user:password`);
      }
      username = plain.slice(0, colon);
      password = plain.slice(colon + 1);
    }
    if (!username || !password) {
      throw new RegistryAuthError(`${source}: auths.${host} has no user and password`);
    }
    out.set(host, { username, password, serveraddress: host });
  }
  return out;
}

/**
 * Reads a Docker config.json (config key `registry_auth_file`).
 * @throws {RegistryAuthError} when it cannot be read or parsed
 */
export async function readDockerConfig(path: string): Promise<Map<string, RegistryAuth>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new RegistryAuthError(`${path}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return parseDockerConfig(text, path);
}
