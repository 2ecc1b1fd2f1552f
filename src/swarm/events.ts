/**
 * Docker's event stream, as the container lifecycle events Cumulus acts on.
 * Swarm reports a task's end to the manager ~100 ms after its container
 * died (and a task list only shows it on the next poll); the engine's own
 * `die` event carries the exit code within milliseconds.
 * @module
 */

/** Swarm's container label naming the service a task's container belongs to. */
export const SERVICE_ID_LABEL = "com.docker.swarm.service.id";
/** Swarm's container label naming the node the container runs on. */
export const NODE_ID_LABEL = "com.docker.swarm.node.id";

/** What happened to a container. */
export type ContainerAction = "start" | "die";

/** One lifecycle event of a container. */
export interface ContainerEvent {
  action: ContainerAction;
  containerId: string;
  /** The container's labels (Swarm's and the service's own). */
  labels: Record<string, string>;
  /** The process's exit code, on `die`. */
  exitCode: number | null;
  /** When the engine saw it, Unix ms. */
  timeMs: number;
}

const ACTIONS: ReadonlySet<string> = new Set<ContainerAction>(["start", "die"]);

/**
 * Parses one event object of `GET /events` (API ≥ 1.22 shape); null for
 * anything that is not a container start or die.
 */
export function parseContainerEvent(raw: unknown): ContainerEvent | null {
  if (typeof raw !== "object" || raw === null) return null;
  const e = raw as {
    Type?: unknown;
    Action?: unknown;
    Actor?: { ID?: unknown; Attributes?: Record<string, unknown> };
    time?: unknown;
    timeNano?: unknown;
  };
  if (e.Type !== "container" || typeof e.Action !== "string" || !ACTIONS.has(e.Action)) {
    return null;
  }
  const attrs = e.Actor?.Attributes ?? {};
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "string" && k !== "exitCode") labels[k] = v;
  }
  const code = attrs.exitCode;
  const exitCode = e.Action === "die" && typeof code === "string" && /^\d+$/.test(code)
    ? Number(code)
    : null;
  const timeMs = typeof e.timeNano === "number"
    ? Math.floor(e.timeNano / 1e6)
    : typeof e.time === "number"
    ? e.time * 1000
    : 0;
  return {
    action: e.Action as ContainerAction,
    containerId: typeof e.Actor?.ID === "string" ? e.Actor.ID : "",
    labels,
    exitCode,
    timeMs,
  };
}

/**
 * Splits a byte stream of concatenated JSON objects (Docker writes one per
 * line) into parsed objects; a line that is not JSON is skipped.
 */
export class JsonLineSplitter {
  #dec = new TextDecoder();
  #buf = "";

  /** Feeds a chunk; returns the complete objects it finished. */
  push(chunk: Uint8Array): unknown[] {
    this.#buf += this.#dec.decode(chunk, { stream: true });
    const lines = this.#buf.split("\n");
    this.#buf = lines.pop() ?? "";
    const out: unknown[] = [];
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // Not an event: ignored rather than ending the stream.
      }
    }
    return out;
  }
}
