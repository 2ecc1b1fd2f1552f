/**
 * Progress display on stderr for `cumulus run`: a single rewritten line on a
 * terminal, plain lines otherwise (with --progress), nothing when off.
 * @module
 */
import type { TextSink } from "./io.ts";

/** How progress is shown. */
export type ProgressMode = "tty" | "lines" | "off";

const TTY_INTERVAL_MS = 100;
const LINES_INTERVAL_MS = 1000;

/**
 * A throttled status line. `update` is synchronous (safe in hot callbacks);
 * writes are queued in order and awaited by `flush`/`clear`.
 * @example
 * const p = new Progress(io.stderr, "tty", Date.now);
 * p.update("upload", "Uploading 1.2 MiB / 4.0 MiB");
 * await p.clear();
 */
export class Progress {
  readonly #sink: TextSink;
  readonly #mode: ProgressMode;
  readonly #now: () => number;
  #queue: Promise<void> = Promise.resolve();
  #phase = "";
  #lastAt = 0;
  #pending: string | null = null;
  #shown = false;

  /** Creates a display writing to `sink`. */
  constructor(sink: TextSink, mode: ProgressMode, now: () => number) {
    this.#sink = sink;
    this.#mode = mode;
    this.#now = now;
  }

  /** Whether anything is displayed at all. */
  get enabled(): boolean {
    return this.#mode !== "off";
  }

  /**
   * Shows `text` for `phase`. A new phase is shown at once; repeated updates
   * of one phase at most every 100 ms (terminal) or 1 s (plain lines).
   */
  update(phase: string, text: string): void {
    if (this.#mode === "off") return;
    const now = this.#now();
    const interval = this.#mode === "tty" ? TTY_INTERVAL_MS : LINES_INTERVAL_MS;
    if (phase === this.#phase && now - this.#lastAt < interval) {
      this.#pending = text;
      return;
    }
    this.#phase = phase;
    this.#lastAt = now;
    this.#pending = null;
    this.#show(text);
  }

  /** Shows the last throttled update, if any was held back. */
  flushPending(): void {
    if (this.#pending !== null) {
      const text = this.#pending;
      this.#pending = null;
      this.#lastAt = this.#now();
      this.#show(text);
    }
  }

  /** Prints a line that stays (e.g. "cancelling…"), above the status line. */
  note(text: string): void {
    if (this.#mode === "off") return;
    this.#enqueue((this.#mode === "tty" && this.#shown ? "\r\x1b[2K" : "") + text + "\n");
    this.#shown = false;
  }

  /** Removes the status line (before job output is printed) and waits for writes. */
  async clear(): Promise<void> {
    this.#pending = null;
    if (this.#mode === "tty" && this.#shown) this.#enqueue("\r\x1b[2K");
    this.#shown = false;
    await this.flush();
  }

  /** Waits until every queued write reached the sink. */
  async flush(): Promise<void> {
    await this.#queue;
  }

  #show(text: string): void {
    if (this.#mode === "tty") {
      this.#enqueue(`\r\x1b[2K${text}`);
      this.#shown = true;
    } else {
      this.#enqueue(`${text}\n`);
    }
  }

  #enqueue(text: string): void {
    // Progress must never fail the command: a broken stderr is ignored.
    this.#queue = this.#queue.then(() => this.#sink.write(text)).catch(() => {});
  }
}
