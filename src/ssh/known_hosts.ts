/**
 * Pinned host keys, trust on first use, in OpenSSH's known_hosts format (`[host]:port type
 * base64`), so operators can read and edit the file with the usual tools. The first key a worker
 * presents is recorded; any other key later is a mismatch.
 * @module
 */
import { createHash } from "node:crypto";

/** Outcome of {@link KnownHosts.check}. */
export type HostKeyVerdict =
  | { kind: "known" }
  | { kind: "recorded"; fingerprint: string }
  | { kind: "mismatch"; expected: string; actual: string };

/** SHA256 fingerprint as OpenSSH prints it (`SHA256:` + unpadded base64). */
export function fingerprint(keyBlob: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

/** The host field of a known_hosts line: `host` on port 22, else `[host]:port`. */
export function hostSpec(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function keyType(blob: Uint8Array): string {
  if (blob.length < 4) return "unknown";
  const n = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  return new TextDecoder().decode(blob.subarray(4, 4 + Math.min(n, 64)));
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/**
 * A known-hosts file. Reads it on every check (it is small, checks happen once per connection,
 * and an operator's edit takes effect without a restart); appends new hosts.
 * @example
 * const known = new KnownHosts("/var/lib/cumulus/known_hosts");
 * known.check("10.0.0.5", 22, keyBlob); // { kind: "recorded", ... } the first time
 */
export class KnownHosts {
  /** Path of the file. */
  readonly path: string;

  /** Uses `path`; the file is created on the first recorded key. */
  constructor(path: string) {
    this.path = path;
  }

  #keysFor(spec: string): Uint8Array[] {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    const keys: Uint8Array[] = [];
    for (const line of text.split("\n")) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 3 || fields[0].startsWith("#")) continue;
      if (!fields[0].split(",").includes(spec)) continue;
      const blob = fromBase64(fields[2]);
      if (blob !== null) keys.push(blob);
    }
    return keys;
  }

  /**
   * Checks the key `host:port` presented: known, recorded now (first use), or a mismatch
   * (nothing is written then).
   */
  check(host: string, port: number, keyBlob: Uint8Array): HostKeyVerdict {
    const spec = hostSpec(host, port);
    const pinned = this.#keysFor(spec);
    const actual = fingerprint(keyBlob);
    if (pinned.some((k) => fingerprint(k) === actual)) return { kind: "known" };
    if (pinned.length > 0) {
      return { kind: "mismatch", expected: pinned.map(fingerprint).join(" or "), actual };
    }
    const line = `${spec} ${keyType(keyBlob)} ${toBase64(keyBlob)}\n`;
    Deno.writeTextFileSync(this.path, line, { append: true, mode: 0o600 });
    return { kind: "recorded", fingerprint: actual };
  }
  #lines(): string[] {
    try {
      return Deno.readTextFileSync(this.path).split("\n").filter((l) => l !== "");
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  #rewrite(lines: string[]): void {
    // Written aside and renamed: a reader never sees half a file.
    const tmp = `${this.path}.tmp`;
    Deno.writeTextFileSync(tmp, lines.map((l) => l + "\n").join(""), { mode: 0o600 });
    Deno.renameSync(tmp, this.path);
  }

  #without(spec: string): string[] {
    return this.#lines().filter((line) => {
      const first = line.trim().split(/\s+/)[0] ?? "";
      return line.trim().startsWith("#") || !first.split(",").includes(spec);
    });
  }

  /**
   * Pins `type base64` as the only key of `host:port` (a key the worker sent
   * when it joined), so the first connection is checked, not trusted.
   * @returns Whether the file changed (false: that key was the one pinned).
   */
  pin(host: string, port: number, type: string, base64: string): boolean {
    const spec = hostSpec(host, port);
    const line = `${spec} ${type} ${base64}`;
    const current = this.#lines();
    const mine = current.filter((l) => (l.trim().split(/\s+/)[0] ?? "").split(",").includes(spec));
    if (mine.length === 1 && mine[0].trim().split(/\s+/).slice(0, 3).join(" ") === line) {
      return false;
    }
    this.#rewrite([...this.#without(spec), line]);
    return true;
  }

  /** Forgets every key of `host:port`; returns whether one was pinned. */
  unpin(host: string, port: number): boolean {
    const spec = hostSpec(host, port);
    const before = this.#lines();
    const after = this.#without(spec);
    if (after.length === before.length) return false;
    this.#rewrite(after);
    return true;
  }
}
