/**
 * The manager's own node's agent as one long-lived child process: `cumulus-agent serve --stdio`
 * (src/agent/stdio.ts, the protocol the SSH transport already speaks to remote workers), JSON lines
 * in and out, answers matched by id. Starting `deno run src/agent/main.ts` costs hundreds of ms;
 * a command in the running agent costs a few (docs/BENCHMARKS.md, "Local agent channel").
 *
 * The child is started on the first command, started again after it dies (with a bounded backoff
 * between failed starts, during which commands fail at once with the reason), killed when a
 * command runs past its time limit (the agent runs commands in order, so one wedged command
 * would hold every later one), and ended by {@link LocalChannelTransport.close}.
 * @module
 */
import { LocalAgentError, type RunResult, type Transport } from "./transport.ts";

/** Settings of {@link LocalChannelTransport}. */
export interface LocalChannelOptions {
  /** argv prefix that replaces "cumulus-agent" (see `localAgentCommand`). */
  agentCommand: string[];
  /** Extra environment (CHRONOS_STATE_DIR, CUMULUS_CHRONOS_PATH). */
  env?: Record<string, string>;
  /**
   * Default per-command time limit, ms.
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * How long the child may take to say it is ready, ms.
   * @default {30000}
   */
  startTimeoutMs?: number;
  /**
   * First pause after a failed start, ms; doubled after each further failure.
   * @default {250}
   */
  backoffMs?: number;
  /**
   * Longest pause between two starts, ms.
   * @default {5000}
   */
  maxBackoffMs?: number;
}

interface Pending {
  argv: string[];
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One started child and its answers. */
interface Session {
  child: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  pending: Map<number, Pending>;
  /** Resolves once the child has exited and its pipes are drained. */
  ended: Promise<void>;
  dead: boolean;
  /** When it said it was ready (epoch ms); 0 before. */
  readyAt: number;
  /** This transport killed it (time limit, close): not a crash. */
  killed: boolean;
}

/** A child that dies on its own sooner than this after it was ready counts as a failed start. */
const CRASH_LOOP_MS = 1_000;

const STDIO_ARGS = ["serve", "--stdio"];
const STDERR_TAIL = 2048;

/** Runs agent commands over one persistent `cumulus-agent serve --stdio` child. */
export class LocalChannelTransport implements Transport {
  #o: Required<Omit<LocalChannelOptions, "env">> & { env?: Record<string, string> };
  #session: Promise<Session> | null = null;
  #nextId = 1;
  #failures = 0;
  #retryAt = 0;
  #lastError = "";
  #stderr = "";
  #closed = false;
  #starts = 0;

  /** Creates the transport; nothing starts until the first command. */
  constructor(opts: LocalChannelOptions) {
    this.#o = {
      timeoutMs: 30_000,
      startTimeoutMs: 30_000,
      backoffMs: 250,
      maxBackoffMs: 5_000,
      ...opts,
    };
  }

  /** How many children were started so far (a restart counts). */
  get starts(): number {
    return this.#starts;
  }

  /** The running child's pid, or null when none runs. */
  async pid(): Promise<number | null> {
    const s = await this.#session?.catch(() => null);
    return s && !s.dead ? s.child.pid : null;
  }

  /**
   * Runs `argv` (argv[0] "cumulus-agent") in the agent; rejects with {@link LocalAgentError} when
   * the agent cannot be started, dies meanwhile or does not answer within the time limit.
   */
  async run(argv: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    if (argv[0] !== "cumulus-agent") {
      throw new LocalAgentError(
        `argv[0]: only cumulus-agent runs over the channel, got ${argv[0]}`,
      );
    }
    const s = await this.#current();
    const timeoutMs = opts.timeoutMs ?? this.#o.timeoutMs;
    const id = this.#nextId++;
    return await new Promise<RunResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        s.pending.delete(id);
        reject(new LocalAgentError(`${argv.slice(1, 3).join(" ")} did not finish in time`));
        // Commands run in order in the agent: a wedged one would hold every later one.
        s.killed = true;
        this.#died(s, "was stopped: a command ran past its time limit");
      }, timeoutMs);
      s.pending.set(id, { argv, resolve, reject, timer });
      s.writer.write(new TextEncoder().encode(JSON.stringify({ id, argv }) + "\n")).catch(
        () => this.#died(s, "its input closed"),
      );
    });
  }

  /** Ends the child (end of input, then SIGKILL after 2 s) and waits for it; later commands fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const s = await this.#session?.catch(() => null);
    this.#session = null;
    if (!s) return;
    await s.writer.close().catch(() => {});
    const t = setTimeout(() => this.#kill(s), 2_000);
    await s.ended;
    clearTimeout(t);
  }

  #current(): Promise<Session> {
    if (this.#closed) return Promise.reject(new LocalAgentError("local agent channel closed"));
    const cur = this.#session;
    if (cur) {
      return cur.then((s) => s.dead ? this.#restart(cur) : s, () => this.#restart(cur));
    }
    return this.#restart(null);
  }

  /** Starts a new child unless someone already replaced `stale`. */
  #restart(stale: Promise<Session> | null): Promise<Session> {
    if (this.#session !== stale && this.#session !== null) return this.#current();
    const wait = this.#retryAt - Date.now();
    if (wait > 0) {
      return Promise.reject(
        new LocalAgentError(
          `${this.#lastError} (the local agent is started again in ${Math.ceil(wait)} ms)`,
        ),
      );
    }
    const next = this.#start();
    this.#session = next;
    next.catch((err) => this.#failed((err as Error).message));
    return next;
  }

  /** Counts a failed start: no new child before the backoff has passed. */
  #failed(why: string): void {
    this.#lastError = why;
    this.#retryAt = Date.now() +
      Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** this.#failures++);
  }

  async #start(): Promise<Session> {
    const [cmd, ...pre] = this.#o.agentCommand;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, {
        args: [...pre, ...STDIO_ARGS],
        env: this.#o.env,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      throw new LocalAgentError(`cannot run ${cmd}: ${(err as Error).message}`, { cause: err });
    }
    this.#starts++;
    this.#stderr = "";
    let ready!: () => void;
    let notReady!: (e: Error) => void;
    const isReady = new Promise<void>((res, rej) => (ready = res, notReady = rej));
    const s: Session = {
      child,
      writer: child.stdin.getWriter(),
      pending: new Map(),
      ended: Promise.resolve(),
      dead: false,
      readyAt: 0,
      killed: false,
    };
    const stderrDone = this.#drainStderr(child.stderr);
    const stdoutDone = this.#readLines(child.stdout, (line) => {
      // readyAt is set here, not when #start resolves: an agent that exits right after its
      // ready line may be seen dead before that, and must still count as a crash loop.
      if (line.trim() === '{"ready":true}') {
        s.readyAt = Date.now();
        return ready();
      }
      this.#answer(s, line);
    });
    s.ended = Promise.all([child.status, stdoutDone, stderrDone]).then(([st]) => {
      const why = `exited with code ${st.code}${st.signal ? ` (${st.signal})` : ""}` +
        (this.#stderr.trim() ? `: ${this.#stderr.trim().split("\n").pop()}` : "");
      notReady(new LocalAgentError(`local agent ${why}`));
      this.#died(s, why);
      // An agent that crashes right after it started would be restarted at every command.
      if (!s.killed && s.readyAt > 0 && Date.now() - s.readyAt < CRASH_LOOP_MS) {
        this.#failed(`local agent ${why}`);
      } else {
        this.#failures = 0; // it ran well: the next start is not a retry of a bad one
      }
    });
    const timer = setTimeout(
      () => notReady(new LocalAgentError(`local agent not ready in ${this.#o.startTimeoutMs} ms`)),
      this.#o.startTimeoutMs,
    );
    try {
      await isReady;
    } catch (err) {
      this.#kill(s);
      await s.ended;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return s;
  }

  #answer(s: Session, line: string): void {
    let msg: { id?: number; code?: number; stdout?: string; stderr?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not an answer (the agent never prints anything else on stdout)
    }
    const p = msg.id === undefined ? undefined : s.pending.get(msg.id);
    if (p === undefined) return; // timed out already, or a complaint about a bad line
    s.pending.delete(msg.id!);
    clearTimeout(p.timer);
    p.resolve({ code: Number(msg.code), stdout: msg.stdout ?? "", stderr: msg.stderr ?? "" });
  }

  #died(s: Session, why: string): void {
    if (s.dead) return;
    s.dead = true;
    for (const p of s.pending.values()) {
      clearTimeout(p.timer);
      p.reject(
        new LocalAgentError(
          `local agent ${why} while '${
            p.argv.slice(1, 3).join(" ")
          }' ran; it may have taken effect`,
        ),
      );
    }
    s.pending.clear();
    this.#kill(s, false);
  }

  /** SIGKILLs the child; `deliberate` (default) marks it as not a crash. */
  #kill(s: Session, deliberate = true): void {
    if (deliberate) s.killed = true;
    try {
      s.child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
  }

  async #readLines(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
    let buffered = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        buffered += text;
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.trim() !== "") onLine(line);
        }
      }
    } catch {
      // The pipe broke with the child: its exit is reported through `status`.
    }
  }

  async #drainStderr(stream: ReadableStream<Uint8Array>) {
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL);
      }
    } catch {
      // As above.
    }
  }
}
