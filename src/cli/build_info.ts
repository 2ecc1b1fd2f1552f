/**
 * Build stamp of this copy of Cumulus. scripts/build.sh rewrites this file in the copy it
 * packages (never in the checkout), so a checkout reports "dev" and a built executable reports
 * the git commit it was built from.
 * @module
 */

/** Git commit the executables were built from (`-dirty` when the tree had changes); "dev". */
export const BUILD_COMMIT: string = "dev";
