/**
 * Who is calling: every `cumulus.v1.Cumulus` call carries a user token in
 * the `authorization` metadata (`Bearer cu_<id>_<secret>`); {@link withAuth}
 * checks it in one place before any handler runs and records the caller for
 * the handler ({@link principalOf}). The Runtime service keeps its per-job
 * tokens and health stays open.
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import {
  newToken,
  parseToken,
  PermissionDeniedError,
  sameHash,
  UnauthenticatedError,
} from "../core/mod.ts";
import type { TokenRecord, TokenStore } from "../store/mod.ts";
import { toRpcError } from "../rpc/mod.ts";

/** The authenticated caller of one call. */
export interface Principal {
  user: string;
  admin: boolean;
  /** The token's public id. */
  tokenId: string;
}

/** Metadata key of user tokens (lowercase: HTTP/2 header names are). */
export const AUTH_KEY = "authorization";
/** What an unauthenticated caller is told to do. */
export const LOGIN_HINT = "run `cumulus login` or set CUMULUS_TOKEN";

/**
 * Decides who a token belongs to: a pure check of the token against its
 * stored record at `now`.
 * @returns The principal.
 * @throws {UnauthenticatedError} Unknown, wrong, expired or revoked.
 */
export function checkToken(
  text: string,
  lookup: (id: string) => TokenRecord | null,
  now: number,
): Principal {
  const parsed = parseToken(text);
  const rec = parsed ? lookup(parsed.id) : null;
  if (!parsed || !rec || !sameHash(parsed.hash, rec.hash)) {
    throw new UnauthenticatedError(`invalid token: ${LOGIN_HINT}`);
  }
  if (rec.revokedAt > 0) {
    throw new UnauthenticatedError(`token ${rec.id} was revoked: ${LOGIN_HINT}`);
  }
  if (rec.expiresAt > 0 && rec.expiresAt <= now) {
    throw new UnauthenticatedError(
      `token ${rec.id} expired at ${new Date(rec.expiresAt).toISOString()}: ${LOGIN_HINT}`,
    );
  }
  return { user: rec.user, admin: rec.admin, tokenId: rec.id };
}

/** The token text of a call's metadata, or "" when it carries none. */
export function bearerToken(metadata: grpc.Metadata): string {
  return bearerOf(String(metadata.get(AUTH_KEY)[0] ?? ""));
}

/** The token of an `authorization: Bearer …` value, or "". */
export function bearerOf(value: string): string {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m ? m[1] : "";
}

/**
 * The caller of an HTTP request (the /metrics endpoint) by the same user
 * tokens as gRPC calls, in its `authorization: Bearer` header.
 * @throws {UnauthenticatedError} As {@link checkToken}.
 */
export function httpCaller(req: Request, tokens: TokenStore, now: number): Principal {
  return checkToken(bearerOf(req.headers.get(AUTH_KEY) ?? ""), (id) => tokens.get(id), now);
}

const principals = new WeakMap<object, Principal>();

/**
 * The caller of `call`, as {@link withAuth} recorded it.
 * @throws {UnauthenticatedError} When the call was not authenticated (a handler outside withAuth).
 */
export function principalOf(call: object): Principal {
  const p = principals.get(call);
  if (!p) throw new UnauthenticatedError(`missing token: ${LOGIN_HINT}`);
  return p;
}

/** The caller of `call` as {@link withAuth} recorded it, or null (not an authenticated call). */
export function callerOf(call: object): Principal | null {
  return principals.get(call) ?? null;
}

/**
 * Refuses non-admins.
 * @throws {PermissionDeniedError}
 */
export function requireAdmin(p: Principal, what: string): void {
  if (!p.admin) throw new PermissionDeniedError(`${what} needs an admin token`);
}

/** Options of {@link withAuth}. */
export interface AuthOptions {
  tokens: TokenStore;
  now: () => number;
  /** Called for every refused call (metrics). */
  onRefused?: (method: string) => void;
}

/**
 * Wraps every handler of a service so that it runs only for a call with a
 * valid user token; the others end at once with UNAUTHENTICATED.
 */
export function withAuth(
  handlers: grpc.UntypedServiceImplementation,
  opts: AuthOptions,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(handlers)) {
    const fn = handler as (...args: unknown[]) => unknown;
    out[method] =
      ((call: { metadata: grpc.Metadata; emit(e: string, v: unknown): void }, cb?: unknown) => {
        let p: Principal;
        try {
          const text = bearerToken(call.metadata);
          if (text === "") throw new UnauthenticatedError(`missing token: ${LOGIN_HINT}`);
          p = checkToken(text, (id) => opts.tokens.get(id), opts.now());
        } catch (err) {
          opts.onRefused?.(method);
          const e = toRpcError(err);
          // Unary and client-streaming calls answer through the callback;
          // server-streaming and bidi ones through the call.
          if (typeof cb === "function") (cb as (e: unknown) => void)(e);
          else call.emit("error", e);
          return;
        }
        principals.set(call, p);
        return cb === undefined ? fn(call) : fn(call, cb);
      }) as grpc.UntypedHandleCall;
  }
  return out;
}

/** What {@link bootstrapAdmin} did. */
export type BootstrapOutcome =
  | { kind: "env"; id: string; created: boolean }
  | { kind: "file"; id: string; path: string }
  | { kind: "none" };

/**
 * The first admin. A token given in `CUMULUS_ADMIN_TOKEN` is stored as an
 * admin token of `user` (kept across restarts; one revoked stays revoked);
 * otherwise, while the store holds no token at all, a new admin token is
 * written to `file` (mode 0600) for the operator to pick up.
 */
export async function bootstrapAdmin(
  tokens: TokenStore,
  opts: { envToken: ParsedTokenLike | null; user: string; file: string; now: number },
): Promise<BootstrapOutcome> {
  if (opts.envToken) {
    const created = tokens.insert({
      id: opts.envToken.id,
      user: opts.user,
      admin: true,
      hash: opts.envToken.hash,
      createdAt: opts.now,
      expiresAt: 0,
    });
    return { kind: "env", id: opts.envToken.id, created };
  }
  if (tokens.count() > 0) return { kind: "none" };
  const t = newToken();
  tokens.insert({
    id: t.id,
    user: opts.user,
    admin: true,
    hash: t.hash,
    createdAt: opts.now,
    expiresAt: 0,
  });
  await Deno.writeTextFile(opts.file, t.token + "\n", { mode: 0o600 });
  await Deno.chmod(opts.file, 0o600);
  return { kind: "file", id: t.id, path: opts.file };
}

/** A parsed token (id and hash). */
export interface ParsedTokenLike {
  id: string;
  hash: string;
}
