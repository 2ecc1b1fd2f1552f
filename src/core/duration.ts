/**
 * Durations as people write them ("90s", "10m", "1h30m", "7d") and back, for
 * config values and messages. Seconds are the unit everywhere inside.
 * @module
 */

const UNITS: ReadonlyArray<[suffix: string, seconds: number]> = [
  ["d", 86400],
  ["h", 3600],
  ["m", 60],
  ["s", 1],
];
const UNIT_SECONDS: Readonly<Record<string, number>> = Object.fromEntries(UNITS);

/**
 * Parses a duration into seconds: a plain number of seconds ("3600", "0.5")
 * or numbers with units s, m, h, d in any combination ("90s", "1h30m", "7d").
 * Returns null for anything else (including negative values).
 * @example
 * parseDurationText("1h30m"); // 5400
 */
export function parseDurationText(text: string): number | null {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  let total = 0;
  let consumed = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) {
    if (m.index !== consumed) return null;
    total += Number(m[1]) * UNIT_SECONDS[m[2]];
    consumed += m[0].length;
  }
  return t !== "" && consumed === t.length ? total : null;
}

/**
 * Formats seconds the way {@link parseDurationText} reads them, largest units
 * first; a fraction of a second stays in seconds.
 * @example
 * formatSeconds(604800); // "7d"
 * formatSeconds(5400); // "1h30m"
 */
export function formatSeconds(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds <= 0) return `${seconds}s`;
  let rest = seconds;
  let out = "";
  for (const [suffix, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${suffix}`;
    rest -= n * size;
  }
  return out;
}
