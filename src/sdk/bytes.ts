/**
 * Byte sizes as people write them ("512K", "100MiB", "1.5GB", "20G") and back,
 * for flags, job specs and messages: the one size grammar and the one
 * formatter of the CLI, the orchestrator, the agent and both SDKs (the others
 * import it through src/core/bytes.ts). The Python twin
 * (src/sdk/python/cumulus/_bytes.py) passes the same table of cases
 * (tests/fixtures/bytes_cases.json). It imports nothing.
 * @module
 */

/**
 * Bytes per unit, by lower-cased suffix. One letter (K, M, G, T, as Docker's
 * `--memory` reads them), `Ki`… and `KiB`… are binary; `KB`… decimal.
 */
const UNIT_BYTES: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  ki: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/** How sizes are described in error messages, beside the text that failed. */
export const BYTES_GRAMMAR =
  "a number with an optional unit: B, K/KiB, M/MiB, G/GiB, T/TiB (binary) or KB, MB, GB, TB (decimal)";

/** Options of {@link parseBytesText}. */
export interface ParseBytesOptions {
  /**
   * Refuse a bare number (where a bare number means something else, such as
   * a count of whole GPUs). Default false.
   */
  requireUnit?: boolean;
}

/**
 * Parses a size into whole bytes: a number (digits, optionally a decimal
 * fraction) and an optional unit, case-insensitive, spaces allowed around
 * and between. Returns null for anything else, including negative numbers,
 * exponents and sizes past 2^53. Zero parses; callers that need a positive
 * size check it.
 * @example
 * parseBytesText("100M"); // 104857600
 * parseBytesText("1.5GB"); // 1500000000
 */
export function parseBytesText(text: string, options: ParseBytesOptions = {}): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(text.trim());
  if (!m) return null;
  const unit = UNIT_BYTES[m[2].toLowerCase()];
  if (unit === undefined || (options.requireUnit && m[2] === "")) return null;
  // Round, not floor: 1.15 * 1000 is 1149.999… in binary floating point.
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

const FORMAT_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * Formats a byte count for people with binary units: whole bytes below 1 KiB,
 * one decimal below 100 of a unit, whole units from 100. The text parses back
 * with {@link parseBytesText} (to within that rounding).
 * @example
 * formatBytes(1536); // "1.5 KiB"
 * formatBytes(20 * 1024 ** 3); // "20.0 GiB"
 * formatBytes(512 * 1024 ** 2); // "512 MiB"
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} B`;
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < FORMAT_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  let text = value >= 99.95 ? value.toFixed(0) : value.toFixed(1);
  // 1023.6 KiB would print as "1024 KiB": say "1.0 MiB" instead.
  if (Number(text) >= 1024 && unit < FORMAT_UNITS.length - 1) {
    unit++;
    text = (value / 1024).toFixed(1);
  }
  return `${text} ${FORMAT_UNITS[unit]}`;
}
