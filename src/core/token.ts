/**
 * User tokens: their text form and the hash the orchestrator stores. A token
 * reads `cu_<id>_<secret>`: `id` (12 hex digits) names the token in listings
 * and revocations, `secret` (32 random bytes, base64url) is the credential.
 * Only the SHA-256 of the whole token is stored.
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "./errors.ts";

/** A user token's id and the hash of its text. */
export interface ParsedToken {
  /** The public id (12 hex digits). */
  id: string;
  /** SHA-256 of the whole token text, hex. */
  hash: string;
}

/** The prefixes of the two kinds of token: user tokens (`cu`) and join tokens (`cuj`). */
export type TokenPrefix = "cu" | "cuj";

/** `<prefix>_<12 hex digits>_<43 base64url characters>`. */
function tokenRe(prefix: TokenPrefix): RegExp {
  return new RegExp(`^${prefix}_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$`);
}
const TOKEN_RE: Readonly<Record<TokenPrefix, RegExp>> = { cu: tokenRe("cu"), cuj: tokenRe("cuj") };
/** A token id's grammar. */
export const TOKEN_ID_RE: RegExp = /^[0-9a-f]{12}$/;
/** A user name's grammar (also what job records and listings carry). */
export const USER_NAME_RE: RegExp = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * A new random token of the kind `prefix` names (a user token by default).
 * @returns The token text (shown once) with its id and hash.
 */
export function newToken(prefix: TokenPrefix = "cu"): ParsedToken & { token: string } {
  const id = hex(crypto.getRandomValues(new Uint8Array(6)));
  const token = `${prefix}_${id}_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
  return { token, id, hash: hashToken(token) };
}

/** SHA-256 of a token's text, hex. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Parses a token's text of the kind `prefix` names (a user token by default), or returns
 * null when it is not one (the caller refuses it without saying why: a wrong token is a
 * wrong token).
 */
export function parseToken(text: string, prefix: TokenPrefix = "cu"): ParsedToken | null {
  const m = TOKEN_RE[prefix].exec(text);
  return m ? { id: m[1], hash: hashToken(text) } : null;
}

/**
 * Parses a token given in configuration (CUMULUS_ADMIN_TOKEN).
 * @throws {InvalidArgumentError} When it does not read `cu_<12 hex>_<43 base64url>`.
 */
export function requireToken(field: string, text: string): ParsedToken {
  const t = parseToken(text.trim());
  if (!t) {
    throw new InvalidArgumentError(
      field,
      "not a Cumulus token (cu_<12 hex digits>_<43 characters>)",
    );
  }
  return t;
}

/** Whether two hex hashes are equal, in time independent of where they differ. */
export function sameHash(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
