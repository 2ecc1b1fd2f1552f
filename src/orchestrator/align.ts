/**
 * Aligns a re-read Docker log with what is already stored, so lines seen
 * before an orchestrator restart (or before a drain) are not stored twice.
 * Docker replays a service's log in the same order every time; the last stored
 * line is found again by its exact timestamp, stream and text.
 * @module
 */
import type { LastLine } from "../logs/mod.ts";
import type { DockerFrame } from "../swarm/mod.ts";

/** How far past the last stored line's time to look for it before giving up. */
export const ALIGN_SLACK_MS = 2000;

function same(f: DockerFrame, last: LastLine): boolean {
  return last.origin.kind === "docker" && f.ts === last.origin.ts && f.stream === last.stream &&
    f.text === last.text;
}

/** Streaming aligner: feed frames in order; it returns only the new ones. */
export class Aligner {
  #last: LastLine | null;
  #lastMs: number;
  #matched: boolean;
  /** True when alignment gave up (the stored line was never seen again). */
  gaveUp = false;

  /** `last` is the last stored line, or null when nothing is stored yet. */
  constructor(last: LastLine | null, lastTimeMs = 0) {
    this.#last = last;
    this.#lastMs = lastTimeMs;
    this.#matched = last === null;
  }

  /** True once the stored tail was found (or nothing was stored). */
  get matched(): boolean {
    return this.#matched;
  }

  /** Returns the frames of `frames` that come after the stored tail. */
  feed(frames: DockerFrame[]): DockerFrame[] {
    if (this.#matched) return frames;
    const last = this.#last!;
    for (let i = frames.length - 1; i >= 0; i--) {
      if (same(frames[i], last)) {
        this.#matched = true;
        return frames.slice(i + 1);
      }
    }
    // Not in this batch. A frame clearly newer than the stored tail means the
    // tail is gone from Docker's log (rotated); take everything from there on.
    const idx = frames.findIndex((f) => f.timeMs > this.#lastMs + ALIGN_SLACK_MS);
    if (this.#lastMs > 0 && idx >= 0) {
      this.#matched = true;
      this.gaveUp = true;
      return frames.slice(idx);
    }
    return [];
  }
}
