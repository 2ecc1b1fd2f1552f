/**
 * `cumulus-agent serve --stdio`: many agent commands over one long-lived SSH channel, because each
 * SSH exec costs ~200 ms here (sshd's per-exec set-up plus the agent's start) while a command in a
 * running agent takes a few ms. JSON lines in and out:
 *
 *   in:  {"id": 7, "argv": ["cumulus-agent", "partition", "list", "--json"]}
 *   out: {"id": 7, "code": 0, "stdout": "...", "stderr": ""}
 *
 * The first line out is `{"ready": true}`. Commands run one at a time, in order, on the session's
 * Chronos handle (`io.chronos`): each takes a few ms and the Chronos lock would serialise them
 * anyway. (Several handles discovering OpenCL at once used to crash PoCL: 8 parallel creates,
 * SIGSEGV; Chronos now discovers one at a time per process, but one handle is cheaper still.)
 * The session also keeps one GPU view (`io.gpu`): the host's GPUs are read once. Answers carry
 * the request's id. Each argv passes the same checks as `ssh-dispatch` (so `serve`
 * itself and `--state-dir` are refused). End of input: the answers still due are written, then
 * exit 0.
 * @module
 */
import type { AgentIo } from "./commands.ts";
import { DispatchRefusedError, parseDispatchCommand } from "./ssh_dispatch.ts";

/** Runs one agent command line with the given io, returning its exit code. */
export type CommandRunnerFn = (argv: string[], io: AgentIo) => Promise<number>;

/** One request line. */
interface Request {
  id: number;
  argv: unknown;
}

/**
 * Serves JSON-line requests from `input` until it ends; writes answers with `write`.
 * @example
 * await serveStdio(Deno.stdin.readable, (l) => processIo.stdout(l), processIo, runAgentCommand);
 */
export async function serveStdio(
  input: ReadableStream<Uint8Array>,
  write: (line: string) => void,
  io: AgentIo,
  run: CommandRunnerFn,
): Promise<number> {
  const inflight = new Set<Promise<void>>();
  const answer = (value: unknown) => write(JSON.stringify(value) + "\n");
  write(JSON.stringify({ ready: true }) + "\n");
  const handle = async (line: string) => {
    let req: Request;
    try {
      req = JSON.parse(line);
      if (typeof req !== "object" || req === null || !Number.isSafeInteger(req.id)) {
        throw new Error("no integer id");
      }
    } catch (err) {
      answer({ error: `bad request line: ${(err as Error).message}` });
      return;
    }
    let out = "";
    let err = "";
    let code: number;
    try {
      const argv = parseDispatchCommand(JSON.stringify(req.argv), { allowStdio: false });
      code = await run(argv, {
        stdout: (t) => void (out += t),
        stderr: (t) => void (err += t),
        env: io.env,
        libraryPath: io.libraryPath,
        chronos: io.chronos,
        gpu: io.gpu,
      });
    } catch (e) {
      if (!(e instanceof DispatchRefusedError)) throw e;
      err = `cumulus-agent: ${e.message}\n`;
      code = e.status;
    }
    answer({ id: req.id, code, stdout: out, stderr: err });
  };
  let queue: Promise<void> = Promise.resolve();
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const chunk of input) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === "") continue;
      const p = queue.then(() => handle(line)).finally(() => inflight.delete(p));
      queue = p.catch(() => {});
      inflight.add(p);
    }
  }
  await Promise.all([...inflight]);
  return 0;
}
