/**
 * SSH connections from the orchestrator to worker agents (npm ssh2, pure-JS path).
 *
 * - One connection per target, reused by every command and re-opened when it drops.
 * - Host keys pinned through {@link KnownHosts} (trust on first use, mismatch refused with
 *   {@link HostKeyMismatchError}).
 * - Commands are argv, sent as one JSON array of strings. The worker authorises the
 *   orchestrator's key with a forced command (`cumulus-agent ssh-dispatch`) that parses that JSON
 *   and runs the agent in-process, so no shell on either side ever interprets user data. Without
 *   that forced command the worker's shell would see the JSON and fail: setup-worker.sh installs
 *   it, see docs/workers.md.
 * - Retries only for connection set-up. A command is re-sent only when its channel could not be
 *   opened (it never started); once started, a lost connection is reported as
 *   {@link WorkerUnreachableError} and the caller decides (agent commands are idempotent by job
 *   id, so callers can retry them blindly).
 * @module
 */
import { readFileSync } from "node:fs";
// @ts-types="@types/ssh2"
import { Client, type ClientChannel, type ConnectConfig } from "ssh2";
import { Buffer } from "node:buffer";
import { pause as sleep } from "../core/pause.ts";
import {
  HostKeyMismatchError,
  SshAuthError,
  SshTimeoutError,
  WorkerUnreachableError,
} from "./errors.ts";
import { type HostKeyVerdict, KnownHosts } from "./known_hosts.ts";
import { STDIO_ARGV, StdioChannel } from "./stdio_channel.ts";

/** Where a command runs. */
export interface SshTarget {
  /** Host name or address. */
  host: string;
  /** SSH port. */
  port: number;
  /** Login user on the worker (the unprivileged `cumulus` user). */
  user: string;
}

/** What a command printed and how it exited. */
export interface CommandResult {
  /** Exit status of the remote command. */
  code: number;
  /** Everything it wrote to stdout (UTF-8). */
  stdout: string;
  /** Everything it wrote to stderr (UTF-8). */
  stderr: string;
}

/** Options of one command. */
export interface RunOptions {
  /** Give up after this long (default the pool's commandTimeoutMs); throws SshTimeoutError. */
  timeoutMs?: number;
}

/** Runs argv on one worker: the transport contract shared with the local runner. */
export interface CommandRunner {
  /** Runs `argv` (argv[0] normally "cumulus-agent") on the worker. */
  run(argv: string[], opts?: RunOptions): Promise<CommandResult>;
}

/** Settings of {@link SshPool}. */
export interface SshPoolOptions {
  /** Private key file (SSH_KEY_PATH). */
  keyPath: string;
  /** Known-hosts file for pinned host keys, under the orchestrator's data dir. */
  knownHostsPath: string;
  /** Longest time to get a connection ready, retries included (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Connection attempts within that time (default 3). */
  connectAttempts?: number;
  /** Default timeout of one command (default 30 000 ms). */
  commandTimeoutMs?: number;
  /** Commands in flight on one connection (default 8; sshd's MaxSessions is 10). */
  maxChannels?: number;
  /** Called once per host key recorded on first use. */
  onHostKeyRecorded?: (target: string, fingerprint: string) => void;
  /**
   * Send commands over one long-lived channel to `cumulus-agent serve --stdio` (default true):
   * a few ms per command instead of ~200 ms per SSH exec. Falls back to one exec per command
   * when the worker's agent does not offer it.
   */
  persistentChannel?: boolean;
}

interface Connection {
  client: Client;
  closed: boolean;
  active: number;
  waiters: (() => void)[];
  /** The agent channel: undefined until tried, null when the agent does not offer it. */
  stdio?: Promise<StdioChannel | null>;
}

const RETRYABLE = /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|timed out|EPIPE/i;

function label(t: SshTarget): string {
  return `${t.host}:${t.port}`;
}

/**
 * A pool of SSH connections, one per worker.
 * @example
 * const pool = new SshPool({ keyPath: "/etc/cumulus/id_ed25519", knownHostsPath: "data/known_hosts" });
 * const worker = pool.runner({ host: "10.0.0.5", port: 22, user: "cumulus" });
 * const { code, stdout } = await worker.run(["cumulus-agent", "gpus", "--json"]);
 * await pool.close();
 */
export class SshPool {
  #opts: Required<Omit<SshPoolOptions, "onHostKeyRecorded">> & SshPoolOptions;
  #stdioEnabled: boolean;
  #known: KnownHosts;
  #key: Buffer | null = null;
  #conns = new Map<string, Promise<Connection>>();
  /** The same connections once ready, so a dead one can be forgotten synchronously. */
  #ready = new Map<string, Connection>();
  #closed = false;

  /** Creates the pool; nothing connects until the first command. */
  constructor(opts: SshPoolOptions) {
    this.#opts = {
      connectTimeoutMs: 10_000,
      connectAttempts: 3,
      commandTimeoutMs: 30_000,
      maxChannels: 8,
      persistentChannel: true,
      ...opts,
    };
    this.#stdioEnabled = this.#opts.persistentChannel;
    this.#known = new KnownHosts(opts.knownHostsPath);
  }

  /** A {@link CommandRunner} for one worker; cheap, shares the pool's connection. */
  runner(target: SshTarget): CommandRunner {
    return { run: (argv, opts) => this.run(target, argv, opts) };
  }

  /** Runs `argv` on `target` (see {@link CommandRunner.run}). */
  async run(target: SshTarget, argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string")) {
      throw new TypeError("argv must be a non-empty array of strings");
    }
    const command = JSON.stringify(argv);
    const timeoutMs = opts.timeoutMs ?? this.#opts.commandTimeoutMs;
    // One re-send at most, and only when the channel never opened (the command never started).
    for (let attempt = 0;; attempt++) {
      const conn = await this.#connection(target);
      if (this.#stdioEnabled) {
        let agent: StdioChannel | null;
        try {
          agent = await this.#stdio(target, conn);
        } catch (err) {
          // The channel never opened, so nothing ran: a new connection may be tried once.
          this.#drop(target, conn);
          if (attempt === 0) continue;
          throw new WorkerUnreachableError(label(target), (err as Error).message, { cause: err });
        }
        if (agent !== null) return await agent.request(argv, timeoutMs);
      }
      await this.#acquire(conn);
      let channel: ClientChannel;
      try {
        channel = await this.#open(conn, command);
      } catch (err) {
        this.#release(conn);
        this.#drop(target, conn);
        if (attempt === 0) continue;
        throw new WorkerUnreachableError(label(target), (err as Error).message, { cause: err });
      }
      try {
        return await this.#collect(target, conn, channel, argv, timeoutMs);
      } finally {
        this.#release(conn);
      }
    }
  }

  /** The connection's agent channel, opened on first use and again after it closed. */
  #stdio(target: SshTarget, conn: Connection): Promise<StdioChannel | null> {
    const open = async (): Promise<StdioChannel | null> => {
      const channel = await this.#open(conn, JSON.stringify(STDIO_ARGV));
      return await StdioChannel.start(channel, label(target), this.#opts.commandTimeoutMs);
    };
    const current = conn.stdio;
    if (current === undefined) {
      conn.stdio = open();
      conn.stdio.catch(() => (conn.stdio = undefined));
      return conn.stdio;
    }
    return current.then((c) => {
      if (c === null || !c.closed) return c;
      if (conn.stdio === current) {
        conn.stdio = open();
        conn.stdio.catch(() => (conn.stdio = undefined));
      }
      return conn.stdio!;
    });
  }

  /** Closes every connection; later commands fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const conns = [...this.#conns.values()];
    this.#conns.clear();
    this.#ready.clear();
    for (const c of await Promise.allSettled(conns)) {
      if (c.status === "fulfilled") c.value.client.end();
    }
  }

  #acquire(conn: Connection): Promise<void> {
    if (conn.active < this.#opts.maxChannels) {
      conn.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => conn.waiters.push(() => (conn.active++, resolve())));
  }

  #release(conn: Connection): void {
    conn.active--;
    conn.waiters.shift()?.();
  }

  #drop(target: SshTarget, conn: Connection): void {
    conn.closed = true;
    const key = label(target) + "@" + target.user;
    // Forget the entry now (if it is still this connection), so a retry opens a new one.
    if (this.#ready.get(key) === conn) {
      this.#ready.delete(key);
      this.#conns.delete(key);
    }
    conn.client.end();
  }

  #open(conn: Connection, command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (conn.closed) return reject(new Error("connection closed"));
      try {
        conn.client.exec(command, (err, channel) => err ? reject(err) : resolve(channel));
      } catch (err) {
        reject(err);
      }
    });
  }

  #collect(
    target: SshTarget,
    conn: Connection,
    channel: ClientChannel,
    argv: string[],
    timeoutMs: number,
  ): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code: number | null = null;
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.client.off("close", onConnClose);
        fn();
      };
      const onConnClose = () =>
        finish(() =>
          reject(
            new WorkerUnreachableError(
              label(target),
              `connection lost while '${argv.slice(0, 3).join(" ")}' ran; it may have taken effect`,
            ),
          )
        );
      const timer = setTimeout(() =>
        finish(() => {
          channel.close();
          reject(new SshTimeoutError(label(target), argv.slice(0, 3).join(" "), timeoutMs));
        }), timeoutMs);
      conn.client.on("close", onConnClose);
      channel.on("data", (b: Buffer) => out.push(b));
      channel.stderr.on("data", (b: Buffer) => err.push(b));
      channel.on("exit", (c: number | null, signal?: string) => {
        code = c ?? (signal ? 128 + 15 : 255);
      });
      channel.on("close", () => {
        if (code === null) return onConnClose();
        const result = {
          code,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        };
        finish(() => resolve(result));
      });
    });
  }

  #connection(target: SshTarget): Promise<Connection> {
    if (this.#closed) {
      return Promise.reject(new WorkerUnreachableError(label(target), "the SSH pool is closed"));
    }
    const key = label(target) + "@" + target.user;
    const existing = this.#conns.get(key);
    if (existing !== undefined) return existing;
    const fresh = this.#connectWithRetries(target);
    this.#conns.set(key, fresh);
    fresh.then((conn) => {
      if (this.#conns.get(key) === fresh) this.#ready.set(key, conn);
      conn.client.on("close", () => {
        conn.closed = true;
        if (this.#conns.get(key) === fresh) {
          this.#conns.delete(key);
          this.#ready.delete(key);
        }
      });
    }, () => {
      if (this.#conns.get(key) === fresh) this.#conns.delete(key);
    });
    return fresh;
  }

  async #connectWithRetries(target: SshTarget): Promise<Connection> {
    const deadline = Date.now() + this.#opts.connectTimeoutMs;
    let last: unknown;
    for (let attempt = 1; attempt <= this.#opts.connectAttempts; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        return await this.#connect(target, left);
      } catch (err) {
        if (!(err instanceof WorkerUnreachableError)) throw err;
        last = err;
        if (!RETRYABLE.test(err.message)) break;
        const pause = Math.min(200 * 2 ** (attempt - 1), deadline - Date.now());
        if (attempt < this.#opts.connectAttempts && pause > 0) await sleep(pause);
      }
    }
    if (last instanceof WorkerUnreachableError) throw last;
    throw new WorkerUnreachableError(
      label(target),
      `no connection within ${this.#opts.connectTimeoutMs} ms`,
    );
  }

  #privateKey(): Buffer {
    if (this.#key === null) this.#key = readFileSync(this.#opts.keyPath);
    return this.#key;
  }

  #connect(target: SshTarget, timeoutMs: number): Promise<Connection> {
    const where = label(target);
    return new Promise((resolve, reject) => {
      const client = new Client();
      let verdict: HostKeyVerdict | null = null;
      let done = false;
      const timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        client.removeAllListeners("ready");
        client.on("error", () => {});
        client.end();
        if (verdict?.kind === "mismatch") {
          reject(
            new HostKeyMismatchError(where, verdict.expected, verdict.actual, this.#known.path),
          );
        } else if ((err as { level?: string }).level === "client-authentication") {
          reject(new SshAuthError(where, err.message));
        } else {
          reject(new WorkerUnreachableError(where, err.message, { cause: err }));
        }
      };
      client.on("ready", () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        client.on("error", () => {}); // reported through 'close' to the commands in flight
        // Small request lines must not wait on Nagle for the previous segment's ACK.
        client.setNoDelay(true);
        resolve({ client, closed: false, active: 0, waiters: [] });
      });
      client.on("error", fail);
      client.on("close", () => fail(new Error("connection closed during set-up")));
      const config: ConnectConfig = {
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: this.#privateKey(),
        readyTimeout: timeoutMs,
        keepaliveInterval: 5_000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          verdict = this.#known.check(target.host, target.port, new Uint8Array(key));
          if (verdict.kind === "recorded") {
            this.#opts.onHostKeyRecorded?.(where, verdict.fingerprint);
          }
          return verdict.kind !== "mismatch";
        },
      };
      try {
        client.connect(config);
      } catch (err) {
        fail(err as Error);
      }
    });
  }
}
