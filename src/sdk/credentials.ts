/**
 * Where clients find their user token: an explicit option, else the
 * `CUMULUS_TOKEN` environment variable, else the credentials file that
 * `cumulus login` and `cumulus up` write (`CUMULUS_CREDENTIALS`, else
 * `$XDG_CONFIG_HOME/cumulus/credentials`, else
 * `~/.config/cumulus/credentials`; JSON `{"token": "..."}`, mode 0600).
 * @module
 */

import { denoEnv, type EnvLookup } from "./env.ts";

export type { EnvLookup };

/**
 * The user's Cumulus config directory: `$XDG_CONFIG_HOME/cumulus`, else
 * `~/.config/cumulus`; null when no home is known. The credentials file and
 * `cumulus up`'s record (src/cli/up_endpoint.ts) live there by default.
 */
export function userConfigDir(env: EnvLookup = denoEnv): string | null {
  const xdg = env("XDG_CONFIG_HOME")?.trim();
  if (xdg) return `${xdg}/cumulus`;
  const home = env("HOME")?.trim();
  return home ? `${home}/.config/cumulus` : null;
}

/**
 * The credentials file's path, or null when no home is known.
 * @param env Variable lookup; defaults to `Deno.env.get`.
 */
export function credentialsPath(env: EnvLookup = denoEnv): string | null {
  const explicit = env("CUMULUS_CREDENTIALS");
  if (explicit) return explicit;
  const dir = userConfigDir(env);
  return dir ? `${dir}/credentials` : null;
}

/**
 * The token in the credentials file at `path`, or "" when there is no
 * readable file or it holds none.
 */
export function readCredentialsToken(path: string | null): string {
  if (!path) return "";
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    // Missing, unreadable or no --allow-read: no token from the file.
    return "";
  }
  try {
    const parsed = JSON.parse(text) as { token?: unknown };
    return typeof parsed.token === "string" ? parsed.token.trim() : "";
  } catch {
    return "";
  }
}

/**
 * Writes `value` as JSON to `path`, readable by its owner only: the
 * directory made 0700, the file 0600 and replaced atomically.
 */
export async function writePrivateJson(path: string, value: unknown): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, JSON.stringify(value) + "\n", { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

/** Writes `token` to the credentials file at `path` ({@link writePrivateJson}). */
export async function writeCredentials(path: string, token: string): Promise<void> {
  await writePrivateJson(path, { token });
}

/**
 * The token a client sends: `explicit`, else `CUMULUS_TOKEN`, else the
 * credentials file's; "" when none.
 */
export function resolveToken(explicit?: string, env: EnvLookup = denoEnv): string {
  if (explicit) return explicit;
  const fromEnv = env("CUMULUS_TOKEN")?.trim();
  if (fromEnv) return fromEnv;
  return readCredentialsToken(credentialsPath(env));
}
