/**
 * The orchestrator's data directory, private to the user it runs as: the job
 * store holds job tokens and env values, and logs, bundles and results are
 * users' data. The directory and its sub-directories are made (or, when an
 * older version left them open, changed to) mode 0700 and the files at its
 * top (the store, its journal, the instance id) 0600; with the directory
 * closed, what lies deeper cannot be reached by anyone else whatever its mode.
 * @module
 */

/** The sub-directories of the data directory. */
export interface DataDirs {
  logs: string;
  bundles: string;
  results: string;
  tmp: string;
}

/**
 * Makes `root` and its sub-directories owner-only (0700; top-level files
 * 0600), empties `tmp` (uploads cut by a crash), and returns the paths.
 * @example
 * const dirs = await prepareDataDir("/var/lib/cumulus");
 */
export async function prepareDataDir(root: string): Promise<DataDirs> {
  const dirs: DataDirs = {
    logs: `${root}/logs`,
    bundles: `${root}/bundles`,
    results: `${root}/results`,
    tmp: `${root}/tmp`,
  };
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  await Deno.chmod(root, 0o700);
  for (const dir of Object.values(dirs)) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(dir, 0o700);
  }
  for await (const e of Deno.readDir(root)) {
    if (e.isFile) await Deno.chmod(`${root}/${e.name}`, 0o600);
  }
  for await (const e of Deno.readDir(dirs.tmp)) {
    await Deno.remove(`${dirs.tmp}/${e.name}`, { recursive: true }).catch(() => {});
  }
  return dirs;
}
