/**
 * Decoder for Docker's multiplexed log stream (8-byte header per frame:
 * stream type, 3 zero bytes, big-endian payload length) with `timestamps=true`
 * payloads of the form "<RFC3339Nano> <text>\n".
 * @module
 */

/** One log line as Docker delivered it. */
export interface DockerFrame {
  stream: "stdout" | "stderr";
  /** Docker's timestamp exactly as sent. */
  ts: string;
  /** Epoch milliseconds parsed from `ts`. */
  timeMs: number;
  /** The line without its trailing newline. */
  text: string;
}

const decoder = new TextDecoder();

/** Parses Docker's RFC 3339 timestamp (nanoseconds allowed) to epoch ms. */
export function parseDockerTime(ts: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return NaN;
  const ms = m[2] ? m[2].slice(0, 4).padEnd(4, "0") : "";
  return Date.parse(`${m[1]}${ms}${m[3]}`);
}

function toFrame(streamType: number, payload: Uint8Array): DockerFrame {
  let s = decoder.decode(payload);
  if (s.endsWith("\n")) s = s.slice(0, -1);
  const sp = s.indexOf(" ");
  const ts = sp > 0 ? s.slice(0, sp) : "";
  const timeMs = ts ? parseDockerTime(ts) : NaN;
  const valid = Number.isFinite(timeMs);
  return {
    stream: streamType === 2 ? "stderr" : "stdout",
    ts: valid ? ts : "",
    timeMs: valid ? timeMs : Date.now(),
    text: valid ? s.slice(sp + 1) : s,
  };
}

/** Incremental decoder: feed chunks, get complete frames. */
export class FrameDecoder {
  #buf: Uint8Array = new Uint8Array(0);

  /** Adds a chunk and returns every frame completed by it. */
  push(chunk: Uint8Array): DockerFrame[] {
    let buf: Uint8Array;
    if (this.#buf.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    const out: DockerFrame[] = [];
    let off = 0;
    while (buf.length - off >= 8) {
      const type = buf[off];
      const len = ((buf[off + 4] << 24) >>> 0) + (buf[off + 5] << 16) + (buf[off + 6] << 8) +
        buf[off + 7];
      if (buf.length - off - 8 < len) break;
      out.push(toFrame(type, buf.subarray(off + 8, off + 8 + len)));
      off += 8 + len;
    }
    this.#buf = off === buf.length ? new Uint8Array(0) : buf.slice(off);
    return out;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.#buf.length;
  }
}

/** Decodes a complete buffer (a non-follow log read). */
export function decodeAll(buf: Uint8Array): DockerFrame[] {
  return new FrameDecoder().push(buf);
}
