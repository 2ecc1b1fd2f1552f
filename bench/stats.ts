/**
 * Small statistics helpers for benchmarks.
 * @module
 */

/** The q-quantile (0..1) of `xs` by nearest rank. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[idx];
}

/** Formats a number with `d` decimals. */
export function fmt(x: number, d = 1): string {
  return Number.isFinite(x) ? x.toFixed(d) : "n/a";
}
