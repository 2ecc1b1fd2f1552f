/**
 * Builds a dockerode client for the Swarm manager address in the config.
 * @module
 */
import Docker from "dockerode";
import { InvalidArgumentError } from "../core/mod.ts";

/**
 * Connects to a Docker Engine API: a unix socket path (`/run/docker.sock` or
 * `unix:///run/docker.sock`), `tcp://host:port`, or `ssh://user@host[:port]`.
 */
export function connectDocker(manager: string): Docker {
  if (manager.startsWith("/") || manager.startsWith("unix://")) {
    return new Docker({ socketPath: manager.replace(/^unix:\/\//, "") });
  }
  let url: URL;
  try {
    url = new URL(manager);
  } catch {
    throw new InvalidArgumentError("swarm_manager", `not a socket path or URL: ${manager}`);
  }
  if (url.protocol === "tcp:" || url.protocol === "http:") {
    return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: "http" });
  }
  if (url.protocol === "ssh:") {
    return new Docker({
      protocol: "ssh",
      host: url.hostname,
      port: Number(url.port || 22),
      username: decodeURIComponent(url.username || "root"),
    } as Docker.DockerOptions);
  }
  throw new InvalidArgumentError("swarm_manager", `unsupported scheme ${url.protocol}`);
}
