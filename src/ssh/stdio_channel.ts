/**
 * One long-lived SSH channel to `cumulus-agent serve --stdio` (src/agent/stdio.ts): requests and
 * answers as JSON lines, matched by id, so a command costs a few ms instead of an SSH exec
 * (~200 ms here). Used by {@link SshPool} when the worker's agent offers it.
 * @module
 */
import { Buffer } from "node:buffer";
// @ts-types="@types/ssh2"
import type { ClientChannel } from "ssh2";
import { SshTimeoutError, WorkerUnreachableError } from "./errors.ts";

/** What a command printed and how it exited. */
export interface StdioResult {
  /** Exit status of the command. */
  code: number;
  /** Its stdout. */
  stdout: string;
  /** Its stderr. */
  stderr: string;
}

interface Pending {
  argv: string[];
  resolve: (r: StdioResult) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The argv that starts the agent's JSON-lines mode. */
export const STDIO_ARGV = ["cumulus-agent", "serve", "--stdio"];

/** A JSON-lines channel to one worker's agent. */
export class StdioChannel {
  #channel: ClientChannel;
  #target: string;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  private constructor(channel: ClientChannel, target: string) {
    this.#channel = channel;
    this.#target = target;
  }

  /** True once the channel has closed; a new one must be opened. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Waits for the agent's `{"ready":true}` on an opened exec channel. Resolves null when the
   * agent does not offer the mode (it answered otherwise or closed the channel), so the caller
   * falls back to one exec per command.
   */
  static start(
    channel: ClientChannel,
    target: string,
    timeoutMs: number,
  ): Promise<StdioChannel | null> {
    return new Promise((resolve) => {
      const self = new StdioChannel(channel, target);
      let buffered = "";
      let ready = false;
      const timer = setTimeout(() => give(null), timeoutMs);
      const give = (value: StdioChannel | null) => {
        if (ready) return;
        ready = true;
        clearTimeout(timer);
        if (value === null) channel.close();
        resolve(value);
      };
      channel.stderr.on("data", () => {});
      channel.on("data", (b: Buffer) => {
        buffered += b.toString("utf8");
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!ready) {
            give(line.trim() === '{"ready":true}' ? self : null);
            continue;
          }
          self.#answer(line);
        }
      });
      channel.on("close", () => {
        give(null);
        self.#fail();
      });
    });
  }

  #answer(line: string): void {
    let msg: { id?: number; code?: number; stdout?: string; stderr?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    const p = msg.id === undefined ? undefined : this.#pending.get(msg.id);
    if (p === undefined) return; // timed out already, or a complaint about a bad line
    this.#pending.delete(msg.id!);
    clearTimeout(p.timer);
    p.resolve({ code: Number(msg.code), stdout: msg.stdout ?? "", stderr: msg.stderr ?? "" });
  }

  #fail(): void {
    this.#closed = true;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(
        new WorkerUnreachableError(
          this.#target,
          `channel closed while '${p.argv.slice(1, 3).join(" ")}' ran; it may have taken effect`,
        ),
      );
    }
    this.#pending.clear();
  }

  /** Sends one command and waits for its answer (at most `timeoutMs`). */
  request(argv: string[], timeoutMs: number): Promise<StdioResult> {
    if (this.#closed) {
      return Promise.reject(new WorkerUnreachableError(this.#target, "agent channel closed"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SshTimeoutError(this.#target, argv.slice(1, 3).join(" "), timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, { argv, resolve, reject, timer });
      this.#channel.write(JSON.stringify({ id, argv }) + "\n");
    });
  }

  /** Ends the channel (the agent exits at end of input). */
  close(): void {
    if (!this.#closed) this.#channel.end();
  }
}
