/**
 * `cumulus s3`: the S3 server `cumulus up` runs for L2 checkpoints: s3rver
 * (npm), a real S3-protocol server that keeps objects in a directory, served
 * on loopback by this same program, so a built executable needs no Node.js.
 * Not for people: `up` starts it under its supervisor.
 * @module
 */
// s3rver ships no type declarations: the little used here is typed below.
// @ts-types="./_s3rver.d.ts"
import S3rver from "s3rver";

const USAGE =
  "usage: cumulus s3 --directory DIR --port N [--address 127.0.0.1] [--bucket NAME ...]";

/** The options `cumulus s3` takes. */
export interface S3ServeOptions {
  /** Where objects are stored. */
  directory: string;
  /** TCP port (0: any free one). */
  port: number;
  /** Address to bind. @default "127.0.0.1" */
  address: string;
  /** Buckets made at start (kept when they exist). */
  buckets: string[];
}

/**
 * Parses `cumulus s3`'s arguments.
 * @throws {Error} on an unknown flag or a bad value, with the flag named.
 */
export function parseS3Args(argv: readonly string[]): S3ServeOptions {
  const o: S3ServeOptions = { directory: "", port: -1, address: "127.0.0.1", buckets: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag}: needs a value\n${USAGE}`);
    if (flag === "--directory") o.directory = value;
    else if (flag === "--address") o.address = value;
    else if (flag === "--bucket") {
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value)) {
        throw new Error(`--bucket: must be an S3 bucket name (3-63 of a-z 0-9 . -), got ${value}`);
      }
      o.buckets.push(value);
    } else if (flag === "--port") {
      o.port = /^\d{1,5}$/.test(value) ? Number(value) : -1;
      if (o.port < 0 || o.port > 65535) throw new Error(`--port: must be 0-65535, got ${value}`);
    } else throw new Error(`unknown option ${JSON.stringify(flag)}\n${USAGE}`);
  }
  if (o.directory === "" || o.port < 0) {
    throw new Error(`--directory and --port are needed\n${USAGE}`);
  }
  return o;
}

/**
 * Runs `cumulus s3` until SIGTERM or SIGINT; returns the exit code.
 * Prints `s3: listening on ADDR:PORT` once it serves.
 */
export async function s3Command(argv: string[]): Promise<number> {
  let opts: S3ServeOptions;
  try {
    opts = parseS3Args(argv);
  } catch (err) {
    console.error(`cumulus s3: ${(err as Error).message}`);
    return 2;
  }
  await Deno.mkdir(opts.directory, { recursive: true });
  const server = new S3rver({
    port: opts.port,
    address: opts.address,
    directory: opts.directory,
    silent: true,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const addr = await server.run();
  console.error(`s3: listening on ${addr.address}:${addr.port}, objects in ${opts.directory}`);
  const { promise, resolve } = Promise.withResolvers<string>();
  const onSignal = (sig: Deno.Signal) => () => resolve(sig);
  const handlers = (["SIGTERM", "SIGINT"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  const sig = await promise;
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  await server.close();
  console.error(`s3: stopped (${sig})`);
  return 0;
}
