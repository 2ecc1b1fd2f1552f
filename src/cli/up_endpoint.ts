/**
 * Where `cumulus up` tells clients on this machine how to reach the orchestrator it
 * started: `<config dir>/up.json` with the `grpcs://` address and the CA file, so the
 * CLI (and the Python SDK, which reads the same file) work from any directory with no
 * flag. The config dir is CUMULUS_CONFIG_DIR, else $XDG_CONFIG_HOME/cumulus, else
 * ~/.config/cumulus.
 * @module
 */
import { dirname, join } from "node:path";
import { userConfigDir, writePrivateJson } from "../sdk/mod.ts";

/** What `cumulus up` records for clients. */
export interface UpEndpoint {
  /** The orchestrator's address (`grpcs://127.0.0.1:PORT`). */
  url: string;
  /** The CA file that signed its certificate. */
  caFile: string;
  /** The data dir of that `cumulus up` (so `down` removes only its own record). */
  dataDir: string;
}

type Env = (name: string) => string | undefined;

/** The file's path for this environment, or null when no directory can be named. */
export function upEndpointPath(env: Env): string | null {
  const dir = env("CUMULUS_CONFIG_DIR")?.trim() || userConfigDir(env);
  return dir ? join(dir, "up.json") : null;
}

/** The recorded endpoint, or null when there is none, it is unreadable, or its CA file is gone. */
export function readUpEndpoint(env: Env): UpEndpoint | null {
  const path = upEndpointPath(env);
  if (!path) return null;
  try {
    const v = JSON.parse(Deno.readTextFileSync(path)) as Partial<UpEndpoint>;
    if (typeof v.url !== "string" || typeof v.caFile !== "string") return null;
    Deno.statSync(v.caFile);
    return { url: v.url, caFile: v.caFile, dataDir: String(v.dataDir ?? "") };
  } catch {
    // No record (or a stale one): clients fall back to their defaults.
    return null;
  }
}

/**
 * Records `endpoint` (atomically; the directory is created 0700), with a copy
 * of its CA certificate beside it (`up-ca.pem`), which the record names: a
 * client allowed to read only the config dir (the built `cumulus`) finds both.
 */
export async function writeUpEndpoint(env: Env, endpoint: UpEndpoint): Promise<void> {
  const path = upEndpointPath(env);
  if (!path) return;
  const caCopy = join(dirname(path), UP_CA_FILE);
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${caCopy}.tmp-${Deno.pid}`;
  await Deno.copyFile(endpoint.caFile, tmp);
  await Deno.rename(tmp, caCopy);
  await writePrivateJson(path, { ...endpoint, caFile: caCopy });
}

/** The CA copy's name beside up.json. */
const UP_CA_FILE = "up-ca.pem";

/** Removes the record when it belongs to `dataDir` (another `up`'s record stays). */
export async function removeUpEndpoint(env: Env, dataDir: string): Promise<void> {
  const path = upEndpointPath(env);
  if (!path) return;
  try {
    const v = JSON.parse(await Deno.readTextFile(path)) as Partial<UpEndpoint>;
    if (v.dataDir === dataDir) {
      await Deno.remove(path);
      await Deno.remove(join(dirname(path), UP_CA_FILE)).catch(() => {});
    }
  } catch {
    // Nothing recorded, or unreadable: nothing of ours to remove.
  }
}
