/**
 * Where `cumulus up` tells clients on this machine how to reach the orchestrator it
 * started: `<config dir>/up.json` with the `grpcs://` address and the CA file, so the
 * CLI (and the Python SDK, which reads the same file) work from any directory with no
 * flag. The config dir is CUMULUS_CONFIG_DIR, else $XDG_CONFIG_HOME/cumulus, else
 * ~/.config/cumulus.
 * @module
 */
import { join } from "node:path";
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

/** Records `endpoint` (atomically; the directory is created 0700). */
export async function writeUpEndpoint(env: Env, endpoint: UpEndpoint): Promise<void> {
  const path = upEndpointPath(env);
  if (path) await writePrivateJson(path, endpoint);
}

/** Removes the record when it belongs to `dataDir` (another `up`'s record stays). */
export async function removeUpEndpoint(env: Env, dataDir: string): Promise<void> {
  const path = upEndpointPath(env);
  if (!path) return;
  try {
    const v = JSON.parse(await Deno.readTextFile(path)) as Partial<UpEndpoint>;
    if (v.dataDir === dataDir) await Deno.remove(path);
  } catch {
    // Nothing recorded, or unreadable: nothing of ours to remove.
  }
}
