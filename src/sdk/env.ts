/**
 * Environment lookups of the SDK, injectable for tests and safe without
 * `--allow-env` (a variable that cannot be read counts as unset).
 * @module
 */

/** An environment lookup. */
export type EnvLookup = (name: string) => string | undefined;

/** `Deno.env.get`, or undefined when the variable cannot be read (no --allow-env). */
export function denoEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
