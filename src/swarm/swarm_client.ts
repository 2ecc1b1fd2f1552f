/**
 * Everything Cumulus asks of the Docker Engine API of the Swarm manager:
 * images, services, tasks, logs and nodes. Knows nothing about jobs.
 * @module
 */
import type Docker from "dockerode";
import { InvalidArgumentError, UnavailableError } from "../core/mod.ts";
import { type ContainerEvent, JsonLineSplitter, parseContainerEvent } from "./events.ts";
import { decodeAll, type DockerFrame, FrameDecoder } from "./frames.ts";
import type { RegistryAuth } from "./registry_auth.ts";

/**
 * Most processes a job's container may hold at once (Swarm's
 * `Resources.Limits.Pids`): a fork bomb stops there instead of filling the
 * worker's process table. Ample for data loaders and compilers.
 */
export const JOB_PIDS_LIMIT = 4096;

/**
 * A service to create: one container, run once, on the host network. Every
 * job container runs with no Linux capabilities (an empty bounding set too),
 * so a job whose image runs as root is still no more than an ordinary user on
 * the worker (no raw sockets, no ports below 1024, no mounts, no ptrace of
 * other processes, and setuid binaries gain nothing), with at most
 * {@link JOB_PIDS_LIMIT} processes. (`no-new-privileges` is not settable on a
 * Swarm service through API 1.41, Debian's Docker 20.10.)
 */
export interface ServiceRequest {
  name: string;
  /** Image reference; pass an image id (sha256:…) to skip registry pulls. */
  image: string;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  /** Swarm placement constraints ("node.id==…", "node.labels.x==y"). */
  constraints: string[];
  /** Seconds between SIGTERM and SIGKILL when the task is stopped. */
  stopGracePeriodS: number;
  workdir?: string;
  /** Container user (uid[:gid]); "" keeps the image's. */
  user?: string;
  /** Named volumes (created on the node on first use) mounted into the container. */
  volumes?: Array<{ name: string; target: string; labels: Record<string, string> }>;
  /** CPU cores (a float; Swarm's NanoCPUs): a CFS quota, not a reservation. */
  cpu?: number;
  /** Memory limit in bytes; past it the kernel's OOM killer ends the job's processes. */
  memoryBytes?: number;
  /** Mount the image's root filesystem read-only. */
  readOnlyRoot?: boolean;
  /**
   * Writable in-memory mounts, each capped at `sizeBytes`, mode 1777 (any uid
   * may write) and, unlike Swarm's own tmpfs mounts, not `noexec`: each is an
   * anonymous volume of the local driver with tmpfs options (Swarm's
   * `TmpfsOptions` take no mount flags before API 1.46, and compilers such as
   * torch.compile's load what they build in /tmp). Removed with the container.
   */
  tmpfs?: Array<{ target: string; sizeBytes: number; labels: Record<string, string> }>;
  /** The network to join: "host" (the default) or a Swarm-scoped network's name. */
  network?: string;
  /** Credentials the nodes use to pull `image` (sent as the service's registry auth). */
  registryAuth?: RegistryAuth;
}

/** The state of a service's (single) task. */
export interface TaskInfo {
  id: string;
  /** Swarm task state: new … running, complete, failed, shutdown, rejected, orphaned, remove. */
  state: string;
  /** Process exit code when the container exited. */
  exitCode: number | null;
  /** Swarm's error text (rejections, start failures). */
  err: string;
  message: string;
  nodeId: string;
  containerId: string;
  /**
   * What Swarm wants of the task: "running" until it decides to stop it
   * (a drain, a removal, a node lost), then "shutdown" and the like, set
   * before the container is stopped. "" when unknown.
   */
  desiredState?: string;
}

/** A service Cumulus created, as listed back. */
export interface ServiceInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
}

/** A Swarm node. */
export interface NodeInfo {
  id: string;
  hostname: string;
  state: string;
  availability: string;
  role: string;
  labels: Record<string, string>;
  address: string;
  /** CPUs the node reports (0: unknown). */
  cpus: number;
}

/** What a worker needs to join the swarm. */
export interface SwarmJoinInfo {
  /** Swarm's worker join token (a secret: never logged). */
  workerToken: string;
  /** A manager's `host:port`. */
  managerAddress: string;
}

/** A node's availability for new tasks. */
export type NodeAvailability = "active" | "pause" | "drain";

/** How long node CPU counts are reused before they are read again. */
const NODE_CPUS_TTL_MS = 30_000;

/** Task states after which the task never runs again. */
export const TERMINAL_TASK_STATES: ReadonlySet<string> = new Set([
  "complete",
  "failed",
  "shutdown",
  "rejected",
  "orphaned",
  "remove",
]);

function statusCode(err: unknown): number {
  return (err as { statusCode?: number })?.statusCode ?? 0;
}

/** The first host address of an IPv4 subnet ("172.17.0.0/16" → "172.17.0.1"), or null. */
export function firstHostAddress(subnet: string): string | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet);
  if (!m) return null;
  const bits = Number(m[5]);
  const octets = m.slice(1, 5).map(Number);
  if (bits > 30 || octets.some((o) => o > 255)) return null;
  const ip = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - bits);
  const first = ip - (ip % size) + 1;
  return [24, 16, 8, 0].map((sh) => Math.floor(first / 2 ** sh) % 256).join(".");
}

/** Label of a network made for jobs: the config `job_network` it stands for. */
export const JOB_NETWORK_LABEL = "cumulus.jobs.network";
/** Label of a network made for jobs: its generation (0, then one more per renewal). */
export const JOB_NETWORK_GENERATION_LABEL = "cumulus.jobs.generation";

/** A network made for jobs, as {@link SwarmClient.listJobNetworks} sees it. */
export interface JobNetworkInfo {
  id: string;
  name: string;
  /** "swarm" for one that can carry services. */
  scope: string;
  /** 0 for the first (and for a network made without the label), one more per renewal. */
  generation: number;
}

/** A service was to join a network that is gone (removed meanwhile). */
export class NetworkGoneError extends UnavailableError {
  /** The network's name. */
  readonly network: string;
  /** @param network the network's name */
  constructor(network: string, options?: ErrorOptions) {
    super(`network ${network} is gone`, options);
    this.name = "NetworkGoneError";
    this.network = network;
  }
}

function wrap(what: string, err: unknown): UnavailableError {
  const msg = (err as Error)?.message ?? String(err);
  return new UnavailableError(`docker ${what} failed: ${msg.split("\n")[0]}`, { cause: err });
}

/** Typed access to the Swarm manager's Docker API. */
export class SwarmClient {
  /** The underlying dockerode client (for benchmarks and tests). */
  readonly docker: Docker;
  /** CPUs of each node, read at most every {@link NODE_CPUS_TTL_MS}. */
  #nodeCpus: { at: number; cpus: Map<string, number> } | null = null;

  /** Wraps a dockerode client. */
  constructor(docker: Docker) {
    this.docker = docker;
  }

  /** Checks the engine answers and is a Swarm manager; throws UnavailableError. */
  async ping(): Promise<void> {
    let info: { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
    try {
      info = await this.docker.info();
    } catch (err) {
      throw wrap("info", err);
    }
    if (info.Swarm?.LocalNodeState !== "active" || !info.Swarm?.ControlAvailable) {
      throw new UnavailableError(
        "the Docker engine is not a Swarm manager (run `docker swarm init`)",
      );
    }
  }

  /** The local image id for `ref`, or null when the manager has no such image. */
  async resolveImage(ref: string): Promise<string | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return info.Id;
    } catch (err) {
      if (statusCode(err) === 404) return null;
      // The engine refused the reference itself: the caller's input, not an outage.
      if (statusCode(err) === 400) {
        const msg = ((err as Error)?.message ?? String(err)).split("\n")[0];
        throw new InvalidArgumentError("spec.image", `the Docker engine refused it: ${msg}`);
      }
      throw wrap("image inspect", err);
    }
  }

  /**
   * Creates the service, or returns the id of the existing one with the same
   * name (so a retried create after a crash does not make two).
   */
  async createService(req: ServiceRequest): Promise<string> {
    const cpu = req.cpu ? await this.#fitCpu(req.cpu, req.constraints) : 0;
    const spec = {
      Name: req.name,
      Labels: req.labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: req.image,
          // Args, not Command: Command would replace the image ENTRYPOINT (tini, which
          // forwards SIGTERM to the job and reaps zombies).
          Args: req.command,
          Env: Object.entries(req.env).map(([k, v]) => `${k}=${v}`),
          Labels: req.labels,
          StopGracePeriod: Math.round(req.stopGracePeriodS * 1e9),
          ...(req.workdir ? { Dir: req.workdir } : {}),
          ...(req.user ? { User: req.user } : {}),
          CapabilityDrop: ["ALL"],
          // Honoured by engines whose API has it (newer than 1.41); Debian's
          // Docker 20.10 drops the field (checked), see docs/security.md.
          Privileges: { NoNewPrivileges: true },
          ...(req.readOnlyRoot ? { ReadOnly: true } : {}),
          Mounts: [
            ...(req.volumes ?? []).map((v) => ({
              Type: "volume",
              Source: v.name,
              Target: v.target,
              VolumeOptions: { Labels: v.labels },
            })),
            ...(req.tmpfs ?? []).map((t) => ({
              Type: "volume",
              Target: t.target,
              VolumeOptions: {
                Labels: t.labels,
                DriverConfig: {
                  Name: "local",
                  Options: { type: "tmpfs", device: "tmpfs", o: `size=${t.sizeBytes},mode=1777` },
                },
              },
            })),
          ],
        },
        RestartPolicy: { Condition: "none", MaxAttempts: 0 },
        // Limits only, no reservations: Cumulus places jobs itself (Chronos
        // partitions, max_concurrent_jobs), and a reservation Swarm cannot meet
        // would leave the task pending instead of failing it.
        Resources: {
          Limits: {
            Pids: JOB_PIDS_LIMIT,
            ...(cpu ? { NanoCPUs: Math.round(cpu * 1e9) } : {}),
            ...(req.memoryBytes ? { MemoryBytes: req.memoryBytes } : {}),
          },
        },
        Placement: { Constraints: req.constraints },
        Networks: [{ Target: req.network || "host" }],
      },
      Mode: { Replicated: { Replicas: 1 } },
    };
    try {
      // The auth goes in X-Registry-Auth, so that Swarm hands it to the nodes that pull.
      const svc = req.registryAuth
        // deno-lint-ignore no-explicit-any
        ? await this.docker.createService(req.registryAuth as any, spec as any)
        // deno-lint-ignore no-explicit-any
        : await this.docker.createService(spec as any);
      return (svc as { id: string }).id;
    } catch (err) {
      if (statusCode(err) === 409) {
        const existing = await this.findService(req.name);
        if (existing) return existing.id;
      }
      // A Swarm manager answers 500 "network NAME not found" (404 on some versions).
      const msg = (err as Error)?.message ?? "";
      if (req.network && req.network !== "host" && /network \S+ not found/.test(msg)) {
        throw new NetworkGoneError(req.network, { cause: err });
      }
      throw wrap("service create", err);
    }
  }

  /**
   * `cpu` capped at the CPUs of the node the constraints name, else of the
   * smallest node: Docker refuses a task whose CPU limit passes its node's
   * count ("Range of CPUs is from 0.01 to 2.00"), and a limit of every CPU
   * there is no limit anyway. Uncapped when the nodes cannot be read.
   */
  async #fitCpu(cpu: number, constraints: string[]): Promise<number> {
    if (!this.#nodeCpus || Date.now() - this.#nodeCpus.at > NODE_CPUS_TTL_MS) {
      try {
        const cpus = new Map<string, number>();
        for (const n of await this.listNodes()) if (n.cpus > 0) cpus.set(n.id, n.cpus);
        this.#nodeCpus = { at: Date.now(), cpus };
      } catch {
        return cpu;
      }
    }
    const pinned = constraints.map((c) => /^node\.id\s*==\s*(\S+)$/.exec(c)?.[1]).find(Boolean);
    const all = [...this.#nodeCpus.cpus.values()];
    const most = pinned && this.#nodeCpus.cpus.has(pinned)
      ? this.#nodeCpus.cpus.get(pinned)!
      : all.length > 0
      ? Math.min(...all)
      : Infinity;
    return Math.min(cpu, most);
  }

  /** The service with this name or id, or null. */
  async findService(nameOrId: string): Promise<ServiceInfo | null> {
    try {
      const s = await this.docker.getService(nameOrId).inspect();
      return { id: s.ID, name: s.Spec?.Name ?? "", labels: s.Spec?.Labels ?? {} };
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw wrap("service inspect", err);
    }
  }

  /** Services carrying label `key` (any value). */
  async listServices(labelKey: string): Promise<ServiceInfo[]> {
    try {
      const list = await this.docker.listServices({ filters: { label: [labelKey] } });
      return list.map((s) => ({
        id: s.ID ?? "",
        name: s.Spec?.Name ?? "",
        labels: s.Spec?.Labels ?? {},
      }));
    } catch (err) {
      throw wrap("service list", err);
    }
  }

  /** Removes a service; a missing one is not an error. Returns true when it existed. */
  async removeService(id: string): Promise<boolean> {
    try {
      await this.docker.getService(id).remove();
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw wrap("service remove", err);
    }
  }

  /**
   * Stops a container on the manager's own engine (SIGTERM, then SIGKILL after
   * `graceS`). Swarm alone takes seconds to stop a removed service's task.
   * Returns false when the container is not on this engine or already gone.
   */
  async stopContainer(containerId: string, graceS: number): Promise<boolean> {
    try {
      await this.docker.getContainer(containerId).stop({ t: Math.ceil(graceS) });
      return true;
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || code === 304) return false;
      throw wrap("container stop", err);
    }
  }

  /** The newest task of a service, or null when Swarm has not made one yet. */
  async serviceTask(serviceId: string): Promise<TaskInfo | null> {
    let tasks: Docker.Task[];
    try {
      tasks = await this.docker.listTasks({ filters: { service: [serviceId] } });
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw wrap("task list", err);
    }
    if (tasks.length === 0) return null;
    type RawTask = {
      ID: string;
      CreatedAt?: string;
      NodeID?: string;
      DesiredState?: string;
      Status?: {
        State?: string;
        Err?: string;
        Message?: string;
        ContainerStatus?: { ExitCode?: number; ContainerID?: string };
      };
    };
    const raw = tasks as unknown as RawTask[];
    const t = raw.sort((a, b) => String(b.CreatedAt).localeCompare(String(a.CreatedAt)))[0];
    const cs = t.Status?.ContainerStatus ?? {};
    return {
      id: t.ID,
      state: t.Status?.State ?? "",
      exitCode: typeof cs.ExitCode === "number" && TERMINAL_TASK_STATES.has(t.Status?.State ?? "")
        ? cs.ExitCode
        : null,
      err: t.Status?.Err ?? "",
      message: t.Status?.Message ?? "",
      nodeId: t.NodeID ?? "",
      containerId: cs.ContainerID ?? "",
      desiredState: t.DesiredState ?? "",
    };
  }

  /**
   * Follows a service's log from `sinceSec` (Unix seconds, fractional) and
   * yields decoded frames in batches until `signal` aborts. Docker keeps the
   * stream open after the task ends; the caller decides when to stop.
   */
  async *followLogs(
    serviceId: string,
    opts: { sinceSec?: number; signal: AbortSignal },
  ): AsyncGenerator<DockerFrame[]> {
    let stream: NodeJS.ReadableStream & { destroy?: () => void };
    try {
      stream = await this.docker.getService(serviceId).logs({
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        ...(opts.sinceSec ? { since: opts.sinceSec } : {}),
        // deno-lint-ignore no-explicit-any
      } as any) as any;
    } catch (err) {
      throw wrap("service logs", err);
    }
    const onAbort = () => stream.destroy?.();
    if (opts.signal.aborted) onAbort();
    opts.signal.addEventListener("abort", onAbort, { once: true });
    const dec = new FrameDecoder();
    try {
      for await (const chunk of stream as AsyncIterable<Uint8Array>) {
        const frames = dec.push(chunk);
        if (frames.length) yield frames;
      }
    } catch (err) {
      if (!opts.signal.aborted) throw wrap("service logs", err);
    } finally {
      opts.signal.removeEventListener("abort", onAbort);
      stream.destroy?.();
    }
  }

  /** Reads the last `tail` lines of a service's log (all lines when omitted). */
  async readLogs(serviceId: string, tail?: number): Promise<DockerFrame[]> {
    try {
      const buf = await this.docker.getService(serviceId).logs({
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: tail === undefined ? "all" : String(tail),
        // deno-lint-ignore no-explicit-any
      } as any) as unknown as Uint8Array;
      return decodeAll(buf);
    } catch (err) {
      throw wrap("service logs", err);
    }
  }

  /**
   * Opens the manager engine's stream of container start and die events of
   * containers labelled `label` (`key=value`); resolves once the engine has
   * answered, so nothing that happens after that is missed. The iterable
   * ends when `signal` aborts or the engine ends the stream (the caller
   * reconnects). Only containers on the manager's own node are seen.
   */
  async containerEvents(
    label: string,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ContainerEvent>> {
    let stream: NodeJS.ReadableStream & { destroy?: () => void };
    try {
      stream = await this.docker.getEvents({
        filters: { type: ["container"], event: ["start", "die"], label: [label] },
        // deno-lint-ignore no-explicit-any
      } as any) as any;
    } catch (err) {
      throw wrap("events", err);
    }
    return (async function* () {
      const onAbort = () => stream.destroy?.();
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      const split = new JsonLineSplitter();
      try {
        for await (const chunk of stream as AsyncIterable<Uint8Array>) {
          for (const raw of split.push(chunk)) {
            const ev = parseContainerEvent(raw);
            if (ev) yield ev;
          }
        }
      } catch (err) {
        if (!signal.aborted) throw wrap("events", err);
      } finally {
        signal.removeEventListener("abort", onAbort);
        stream.destroy?.();
      }
    })();
  }

  /**
   * Reads the last `tail` lines of a container on the manager's own engine
   * (a task's container log is complete when it dies; the service log, relayed
   * through Swarm, lags it). Empty when the container is not on this engine.
   */
  async readContainerLogs(containerId: string, tail: number): Promise<DockerFrame[]> {
    try {
      const buf = await this.docker.getContainer(containerId).logs({
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail,
      }) as unknown as Uint8Array;
      return decodeAll(buf);
    } catch (err) {
      if (statusCode(err) === 404) return [];
      throw wrap("container logs", err);
    }
  }

  /**
   * Whether the kernel's OOM killer ended a process of a container on the
   * manager's own engine (Docker's `State.OOMKilled`; Swarm's task status does
   * not say). Null when the container is not on this engine or already gone.
   */
  async containerOomKilled(containerId: string): Promise<boolean | null> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return info.State?.OOMKilled === true;
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw wrap("container inspect", err);
    }
  }

  /** Names of volumes on the manager's engine carrying label `key`=`value`. */
  async listVolumes(
    key: string,
    value: string,
  ): Promise<Array<{ name: string; labels: Record<string, string> }>> {
    try {
      const res = await this.docker.listVolumes({ filters: { label: [`${key}=${value}`] } });
      return (res.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
    } catch (err) {
      throw wrap("volume list", err);
    }
  }

  /** Removes a volume; false when it is missing or still in use. */
  async removeVolume(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).remove();
      return true;
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || code === 409) return false;
      throw wrap("volume remove", err);
    }
  }

  /**
   * Docker's default bridge gateway on the manager's host (an address of the host that
   * containers on any bridge reach, 172.17.0.1 as a rule), or null when the engine runs
   * without one (`dockerd --bridge=none`).
   */
  async bridgeGateway(): Promise<string | null> {
    try {
      const net = await this.docker.getNetwork("bridge").inspect();
      const configs: Array<{ Gateway?: string; Subnet?: string }> = net?.IPAM?.Config ?? [];
      const gw = configs.find((c) => c.Gateway)?.Gateway;
      if (gw) return String(gw);
      // An engine started with its default pool lists only the subnet: the gateway is
      // then the subnet's first address (docker0's, 172.17.0.1/16 as a rule).
      const subnet = configs.find((c) => c.Subnet && !c.Subnet.includes(":"))?.Subnet;
      return subnet ? firstHostAddress(subnet) : null;
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw wrap("network inspect", err);
    }
  }

  /**
   * The networks made for jobs under config name `base` (label
   * {@link JOB_NETWORK_LABEL}), and a network named `base` itself (made by an
   * older orchestrator or by the operator), with their scope and generation.
   */
  async listJobNetworks(base: string): Promise<JobNetworkInfo[]> {
    let nets: Array<{ Id: string; Name: string; Scope?: string; Labels?: Record<string, string> }>;
    try {
      nets = await this.docker.listNetworks({
        filters: { label: [`${JOB_NETWORK_LABEL}=${base}`] },
      });
      if (!nets.some((n) => n.Name === base)) {
        // The name filter matches substrings: keep the exact name only.
        const named = await this.docker.listNetworks({ filters: { name: [base] } });
        nets = nets.concat(named.filter((n) => n.Name === base));
      }
    } catch (err) {
      throw wrap("network ls", err);
    }
    return nets.map((n) => ({
      id: n.Id,
      name: n.Name,
      scope: n.Scope ?? "",
      generation: Number(n.Labels?.[JOB_NETWORK_GENERATION_LABEL] ?? 0) || 0,
    }));
  }

  /**
   * Creates a Swarm-scoped bridge for jobs: local to each node (it never leaves
   * the node, so no overlay and no encryption). Returns its id, or null when a
   * network of that name exists. (Containers on it reach each other: a
   * Swarm-scoped bridge ignores driver options such as `enable_icc`, checked
   * on Docker 20.10; only per-node `--config-only` networks could carry them.)
   */
  async createJobNetwork(name: string, base: string, generation: number): Promise<string | null> {
    try {
      const net = await this.docker.createNetwork({
        Name: name,
        Driver: "bridge",
        Scope: "swarm",
        CheckDuplicate: true,
        Labels: {
          [JOB_NETWORK_LABEL]: base,
          [JOB_NETWORK_GENERATION_LABEL]: String(generation),
        },
      } as never);
      return String((net as { id: string }).id);
    } catch (err) {
      // A Swarm manager answers a taken name with 500 "name conflicts with an existing object".
      const msg = (err as Error)?.message ?? "";
      if (statusCode(err) === 409 || /name conflicts|already exists/.test(msg)) return null;
      throw wrap("network create", err);
    }
  }

  /** Removes a network; false when it is gone already or still in use. */
  async removeNetwork(idOrName: string): Promise<boolean> {
    try {
      await this.docker.getNetwork(idOrName).remove();
      return true;
    } catch (err) {
      const code = statusCode(err);
      // 403/409, or a Swarm manager's 400 "is in use by service": still used; 404: gone.
      const inUse = code === 400 && /in use/.test((err as Error)?.message ?? "");
      if (code === 403 || code === 404 || code === 409 || inUse) return false;
      throw wrap("network rm", err);
    }
  }

  /** The Swarm node id of the engine this client talks to (the manager's own node). */
  async localNodeId(): Promise<string> {
    try {
      const info = await this.docker.info();
      return String(info.Swarm?.NodeID ?? "");
    } catch (err) {
      throw wrap("info", err);
    }
  }

  /**
   * Sets node labels: keys starting with `prefix` are replaced by `labels`, other labels
   * stay. Does nothing when they are already equal. Only a manager can do this.
   */
  async setNodeLabels(
    nodeId: string,
    prefix: string,
    labels: Record<string, string>,
  ): Promise<void> {
    try {
      const node = this.docker.getNode(nodeId);
      // deno-lint-ignore no-explicit-any
      const info: any = await node.inspect();
      const current: Record<string, string> = info.Spec?.Labels ?? {};
      const next: Record<string, string> = {};
      for (const [k, v] of Object.entries(current)) if (!k.startsWith(prefix)) next[k] = v;
      Object.assign(next, labels);
      const same = Object.keys(next).length === Object.keys(current).length &&
        Object.entries(next).every(([k, v]) => current[k] === v);
      if (same) return;
      await node.update({ version: info.Version.Index, ...info.Spec, Labels: next });
    } catch (err) {
      throw wrap("node update", err);
    }
  }

  /** Swarm nodes. */
  async listNodes(): Promise<NodeInfo[]> {
    try {
      const nodes = await this.docker.listNodes();
      // deno-lint-ignore no-explicit-any
      return nodes.map((n: any) => ({
        id: n.ID,
        hostname: n.Description?.Hostname ?? "",
        state: n.Status?.State ?? "unknown",
        availability: n.Spec?.Availability ?? "",
        role: n.Spec?.Role ?? "",
        labels: n.Spec?.Labels ?? {},
        address: n.Status?.Addr ?? "",
        cpus: Number(n.Description?.Resources?.NanoCPUs ?? 0) / 1e9,
      }));
    } catch (err) {
      throw wrap("node list", err);
    }
  }
  /**
   * What a new worker needs to join this swarm: the worker join token and the
   * address of this manager (`host:2377`, as Swarm advertises it).
   * @throws {UnavailableError} When the engine does not answer or is no manager.
   */
  async joinInfo(): Promise<SwarmJoinInfo> {
    let token = "";
    let address = "";
    try {
      // deno-lint-ignore no-explicit-any
      const swarm: any = await this.docker.swarmInspect();
      token = String(swarm.JoinTokens?.Worker ?? "");
      // deno-lint-ignore no-explicit-any
      const info: any = await this.docker.info();
      const self = String(info.Swarm?.NodeID ?? "");
      const managers: { NodeID?: string; Addr?: string }[] = info.Swarm?.RemoteManagers ?? [];
      address = String(
        managers.find((m) => m.NodeID === self)?.Addr ?? managers[0]?.Addr ??
          (info.Swarm?.NodeAddr ? `${info.Swarm.NodeAddr}:2377` : ""),
      );
    } catch (err) {
      throw wrap("swarm inspect", err);
    }
    if (token === "" || address === "") {
      throw new UnavailableError("docker swarm inspect: no worker join token or manager address");
    }
    return { workerToken: token, managerAddress: address };
  }

  /** Sets a node's availability (`active`, `pause` or `drain`); nothing when it already is. */
  async setNodeAvailability(nodeId: string, availability: NodeAvailability): Promise<void> {
    try {
      const node = this.docker.getNode(nodeId);
      // deno-lint-ignore no-explicit-any
      const info: any = await node.inspect();
      if (info.Spec?.Availability === availability) return;
      await node.update({ version: info.Version.Index, ...info.Spec, Availability: availability });
    } catch (err) {
      throw wrap("node update", err);
    }
  }

  /** Removes a node from the swarm, even while it is up; false when there is no such node. */
  async removeNode(nodeId: string): Promise<boolean> {
    try {
      await this.docker.getNode(nodeId).remove({ force: true });
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw wrap("node rm", err);
    }
  }
}
