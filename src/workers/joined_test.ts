import assert from "node:assert/strict";
import type { NodeInfo } from "../swarm/mod.ts";
import { nodeOfWorker, workerOfNode } from "./joined.ts";

function node(id: string, hostname: string, address: string, state = "ready"): NodeInfo {
  return {
    id,
    hostname,
    address,
    state,
    availability: "active",
    role: "worker",
    labels: {},
    cpus: 1,
  };
}

const w1 = { name: "w1", target: { user: "cumulus", host: "10.0.0.2", port: 22 } };

Deno.test("nodeOfWorker() finds a worker's node by hostname, else by address", () => {
  const table: [string, NodeInfo[], string | null][] = [
    ["by hostname", [node("a", "w1", "10.0.0.9"), node("b", "x", "10.0.0.2")], "a"],
    ["shared hostname: by address", [node("a", "h", "10.0.0.1"), node("b", "h", "10.0.0.2")], "b"],
    ["up before down", [node("a", "h", "10.0.0.2", "down"), node("b", "h", "10.0.0.2")], "b"],
    ["only down", [node("a", "h", "10.0.0.2", "down")], "a"],
    ["none", [node("a", "h", "10.0.0.1")], null],
  ];
  for (const [name, nodes, want] of table) {
    assert.equal(nodeOfWorker(w1, nodes)?.id ?? null, want, name);
  }
});

Deno.test("workerOfNode() finds the joined worker serving a node", () => {
  const w2 = { name: "w2", target: { user: "cumulus", host: "10.0.0.3", port: 22 } };
  assert.equal(workerOfNode({ hostname: "w2", address: "10.0.0.2" }, [w1, w2]), w2);
  assert.equal(workerOfNode({ hostname: "h", address: "10.0.0.2" }, [w1, w2]), w1);
  assert.equal(workerOfNode({ hostname: "h", address: "10.0.0.7" }, [w1, w2]), null);
});
