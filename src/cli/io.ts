/**
 * The CLI's view of the outside world, injected so tests can capture output
 * and drive interrupts without touching the real process.
 * @module
 */

/** Where text goes. */
export interface TextSink {
  /** Writes all of `text`. */
  write(text: string): Promise<void>;
}

/** Everything a command may touch besides the network. */
export interface CliIO {
  /** Standard output. */
  stdout: TextSink;
  /** Standard error. */
  stderr: TextSink;
  /** True when stderr is a terminal (progress is shown only then, or with --progress). */
  stderrIsTerminal: boolean;
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** The directory `run` bundles. */
  cwd(): string;
  /** Current time in epoch ms. */
  now(): number;
  /** Calls `handler` on each Ctrl-C (SIGINT); returns the unsubscribe function. */
  onInterrupt(handler: () => void): () => void;
}

const encoder = new TextEncoder();

/** A sink over a Deno writer that loops until every byte is written. */
export function writerSink(writer: { write(p: Uint8Array): Promise<number> }): TextSink {
  return {
    async write(text: string): Promise<void> {
      let bytes = encoder.encode(text);
      while (bytes.length > 0) {
        const n = await writer.write(bytes);
        bytes = bytes.subarray(n);
      }
    },
  };
}

/** The real process: Deno's stdout/stderr, environment, cwd, clock and SIGINT. */
export function denoIO(): CliIO {
  return {
    stdout: writerSink(Deno.stdout),
    stderr: writerSink(Deno.stderr),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    env: (name) => Deno.env.get(name),
    cwd: () => Deno.cwd(),
    now: () => Date.now(),
    onInterrupt(handler) {
      Deno.addSignalListener("SIGINT", handler);
      return () => Deno.removeSignalListener("SIGINT", handler);
    },
  };
}

/** A sink that keeps what is written, for tests. */
export class MemorySink implements TextSink {
  /** Everything written so far. */
  text = "";
  /** Appends `text`. */
  write(text: string): Promise<void> {
    this.text += text;
    return Promise.resolve();
  }
}
