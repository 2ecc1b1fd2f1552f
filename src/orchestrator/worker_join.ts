/**
 * Workers that join with one command (docs/workers.md "Adding a worker"):
 * an admin makes a single-use join token (`CreateJoinToken`), the new
 * machine's agent registers with it (`WorkerJoin.JoinWorker`, authenticated
 * by that token alone) and gets what `docker swarm join` needs; its SSH host
 * key is pinned before the orchestrator ever connects. `DrainWorker` and
 * `RemoveWorker` take it out again. Whether a join is accepted is
 * {@link decideJoin}, a pure function of the stored token and worker.
 * @module
 */
import {
  DEFAULT_JOIN_TOKEN_TTL_S,
  FailedPreconditionError,
  formatSshTarget,
  InvalidArgumentError,
  joinCommandLine,
  newJoinToken,
  NotFoundError,
  type ParsedToken,
  parseHostKey,
  parseJoinToken,
  parseSshTarget,
  sameHash,
  UnauthenticatedError,
  WORKER_NAME_RE,
} from "../core/mod.ts";
import type { JoinDecision, JoinTokenRecord, WorkerRecord, WorkerStore } from "../store/mod.ts";
import type { SwarmClient } from "../swarm/mod.ts";
import { fingerprint, type KnownHosts } from "../ssh/mod.ts";
import { nodeOfWorker } from "../workers/mod.ts";
import { principalOf, requireAdmin } from "./auth.ts";
import { type HandlerDeps, unary } from "./server.ts";

/** What a refused join is told to do. */
export const JOIN_HINT = "create a new one with `cumulus worker add`";
/** The longest a join token may live (s): a week. */
export const MAX_JOIN_TOKEN_TTL_S = 7 * 24 * 3600;

/** What the worker handlers need besides {@link HandlerDeps}. */
export interface WorkerJoinDeps {
  workers: WorkerStore;
  swarm: SwarmClient;
  /** The pinned host keys the SSH pool checks (`<data dir>/known_hosts`). */
  knownHosts: KnownHosts;
  /** The orchestrator's SSH public key line, "" when no ssh_key_path is set. */
  sshPublicKey: () => string;
  /** SHA-256 of the orchestrator's CA (`AB:CD:…`), "" without TLS. */
  caFingerprint: string;
  /** The address new workers dial when the caller names none. */
  orchestratorUrl: string;
  /** Called with the node of a removed worker (drops cached agents). */
  onRemoved?: (nodeId: string) => void;
  /** Config `registry` ("" = none). */
  registry?: string;
  /** The registry's CA (PEM), read from config `registry_ca_file` ("" = none). */
  registryCaPem?: () => Promise<string>;
}

/** A join request, parsed at the edge. */
export interface JoinRequest {
  name: string;
  sshTarget: string;
  /** `type base64`. */
  hostKey: string;
}

/**
 * Decides a join: refuse (unknown, wrong, expired or spent token; a name
 * taken by another host key), store the worker, or leave it unchanged (the
 * same worker joining again, with its own spent token or a new one).
 */
export function decideJoin(
  parsed: ParsedToken,
  token: JoinTokenRecord | null,
  current: WorkerRecord | null,
  req: JoinRequest,
  now: number,
): JoinDecision {
  const refuse = (error: Error): JoinDecision => ({ kind: "refuse", error });
  if (!token || !sameHash(parsed.hash, token.hash)) {
    return refuse(new UnauthenticatedError(`invalid join token: ${JOIN_HINT}`));
  }
  const same = current !== null && current.hostKey === req.hostKey &&
    current.sshTarget === req.sshTarget;
  if (token.usedAt > 0) {
    // Running the same join line again changes nothing and still succeeds.
    if (token.usedBy === req.name && same) return { kind: "unchanged", worker: current };
    return refuse(
      new UnauthenticatedError(`join token ${token.id} was already used: ${JOIN_HINT}`),
    );
  }
  if (token.expiresAt <= now) {
    return refuse(
      new UnauthenticatedError(
        `join token ${token.id} expired at ${
          new Date(token.expiresAt).toISOString()
        }: ${JOIN_HINT}`,
      ),
    );
  }
  if (current && current.hostKey !== req.hostKey) {
    return refuse(
      new FailedPreconditionError(
        `worker ${req.name} already joined with another host key: ` +
          `run \`cumulus worker remove ${req.name}\` first`,
      ),
    );
  }
  if (same) return { kind: "unchanged", worker: current };
  return {
    kind: "store",
    worker: {
      name: req.name,
      sshTarget: req.sshTarget,
      hostKey: req.hostKey,
      addedAt: current?.addedAt ?? now,
      state: "active",
    },
  };
}

function requireName(name: unknown): string {
  const n = String(name ?? "");
  if (!WORKER_NAME_RE.test(n)) {
    throw new InvalidArgumentError(
      "name",
      `must be 1-63 letters, digits or ._- (starting with a letter or digit), got ${
        JSON.stringify(n.slice(0, 80))
      }`,
    );
  }
  return n;
}

const URL_RE =
  /^(?:grpcs?:\/\/|https:\/\/)?[A-Za-z0-9.\-]+(?::\d{1,5})?$|^(?:grpcs?:\/\/)?\[[0-9a-fA-F:]+\](?::\d{1,5})?$/;

function knownWorker(w: WorkerJoinDeps, name: unknown): WorkerRecord {
  const n = requireName(name);
  const rec = w.workers.get(n);
  if (!rec) throw new NotFoundError(`worker ${n} not found (joined workers: cumulus workers)`);
  return rec;
}

async function nodeIdOf(w: WorkerJoinDeps, rec: WorkerRecord): Promise<string> {
  const target = parseSshTarget(rec.sshTarget);
  const node = nodeOfWorker({ name: rec.name, target }, await w.swarm.listNodes());
  return node?.id ?? "";
}

/** Admin calls of `cumulus.v1.Cumulus` about joined workers (inside withAuth). */
export function workerAdminHandlers(d: HandlerDeps, w: WorkerJoinDeps) {
  return {
    CreateJoinToken: unary(
      d,
      "CreateJoinToken",
      (req: { expiresS: number; orchestratorUrl: string }, call) => {
        requireAdmin(principalOf(call), "creating a join token");
        const ttl = Number(req.expiresS ?? 0) || DEFAULT_JOIN_TOKEN_TTL_S;
        if (!Number.isFinite(ttl) || ttl < 0 || ttl > MAX_JOIN_TOKEN_TTL_S) {
          throw new InvalidArgumentError(
            "expires_s",
            `must be 0 (1 hour) to ${MAX_JOIN_TOKEN_TTL_S}, got ${req.expiresS}`,
          );
        }
        const url = String(req.orchestratorUrl ?? "") || w.orchestratorUrl;
        if (!URL_RE.test(url)) {
          throw new InvalidArgumentError(
            "orchestrator_url",
            `must be [grpc://|grpcs://]host[:port], got ${JSON.stringify(url.slice(0, 80))}`,
          );
        }
        const t = newJoinToken();
        const now = d.now();
        const expiresAt = now + Math.ceil(ttl * 1000);
        w.workers.insertJoinToken({ id: t.id, hash: t.hash, createdAt: now, expiresAt });
        d.log(`join token ${t.id} created, expires ${new Date(expiresAt).toISOString()}`);
        return Promise.resolve({
          token: t.token,
          expiresAtMs: expiresAt,
          command: joinCommandLine(url, t.token, w.caFingerprint),
          caFingerprint: w.caFingerprint,
        });
      },
    ),
    DrainWorker: unary(d, "DrainWorker", async (req: { name: string; now: boolean }, call) => {
      requireAdmin(principalOf(call), "draining a worker");
      const rec = knownWorker(w, req.name);
      const nodeId = await nodeIdOf(w, rec);
      // Without --now running jobs finish (pause: no new tasks); with it Swarm stops them
      // and the orchestrator resumes them elsewhere from their checkpoints.
      if (nodeId !== "") await w.swarm.setNodeAvailability(nodeId, req.now ? "drain" : "pause");
      w.workers.setState(rec.name, "draining");
      d.log(`worker ${rec.name} draining${req.now ? " now" : ""} (node ${nodeId || "none"})`);
      return { nodeId };
    }),
    RemoveWorker: unary(d, "RemoveWorker", async (req: { name: string }, call) => {
      requireAdmin(principalOf(call), "removing a worker");
      const rec = knownWorker(w, req.name);
      const nodeId = await nodeIdOf(w, rec);
      // The node first: when Swarm refuses, the record stays for another try.
      if (nodeId !== "") await w.swarm.removeNode(nodeId);
      const target = parseSshTarget(rec.sshTarget);
      w.knownHosts.unpin(target.host, target.port);
      w.workers.remove(rec.name);
      if (nodeId !== "") w.onRemoved?.(nodeId);
      d.log(`worker ${rec.name} removed (node ${nodeId || "none"})`);
      return { nodeId };
    }),
  };
}

/** Handlers of `cumulus.v1.WorkerJoin`: authenticated by the join token in the request. */
export function workerJoinHandlers(d: HandlerDeps, w: WorkerJoinDeps) {
  return {
    JoinWorker: unary(
      d,
      "JoinWorker",
      async (
        req: { joinToken: string; name: string; sshTarget: string; sshHostKey: string },
      ) => {
        // The token first: a caller without one learns nothing else.
        const parsed = parseJoinToken(String(req.joinToken ?? ""));
        if (!parsed) throw new UnauthenticatedError(`invalid join token: ${JOIN_HINT}`);
        const name = requireName(req.name);
        const target = parseSshTarget(String(req.sshTarget ?? ""));
        const key = parseHostKey(String(req.sshHostKey ?? ""));
        const request = {
          name,
          sshTarget: formatSshTarget(target),
          hostKey: `${key.type} ${key.base64}`,
        };
        // What the answer needs, before anything is stored.
        const swarm = await w.swarm.joinInfo();
        const sshKey = w.sshPublicKey();
        const now = d.now();
        const previous = w.workers.get(name);
        const decision = w.workers.join(
          parsed.id,
          name,
          now,
          (token, current) => decideJoin(parsed, token, current, request, now),
        );
        if (decision.kind === "refuse") throw decision.error;
        const blob = Uint8Array.from(atob(key.base64), (c) => c.charCodeAt(0));
        if (previous && previous.sshTarget !== request.sshTarget) {
          // Moved: its old address keeps no pin of its key.
          const old = parseSshTarget(previous.sshTarget);
          w.knownHosts.unpin(old.host, old.port);
        }
        w.knownHosts.pin(target.host, target.port, key.type, key.base64);
        d.log(
          decision.kind === "store"
            ? `worker ${name} joined: ssh ${request.sshTarget}, host key ${
              fingerprint(blob)
            } pinned`
            : `worker ${name} joined again: unchanged`,
        );
        return {
          swarmJoinToken: swarm.workerToken,
          managerAddress: swarm.managerAddress,
          orchestratorSshKey: sshKey,
          registry: w.registry ?? "",
          registryCaPem: w.registry && w.registryCaPem ? await w.registryCaPem() : "",
        };
      },
    ),
  };
}
