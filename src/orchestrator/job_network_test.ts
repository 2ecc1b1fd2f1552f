import assert from "node:assert/strict";
import type { JobNetworkInfo } from "../swarm/mod.ts";
import { generationName, newestNetwork, sameNetwork, staleNetworkId } from "./job_network.ts";

Deno.test("staleNetworkId: the id in Swarm's stale-network rejection, and nothing else", () => {
  const cases: Array<[string, string | null]> = [
    ["network xl3n1ccbsgenfqy1d3j5ga3hp exists", "xl3n1ccbsgenfqy1d3j5ga3hp"],
    [
      "starting container failed: network 1hn2257drrx07x8iyax4q704s exists",
      "1hn2257drrx07x8iyax4q704s",
    ],
    ["network cumulus-jobs not found", null],
    ["No such image: cumulus-job@sha256:abc", null],
    ["network sandbox join failed: subnet exists", null],
    ["", null],
  ];
  for (const [err, want] of cases) assert.equal(staleNetworkId(err), want, err);
});

Deno.test("generationName: the config name first, then numbered", () => {
  assert.equal(generationName("cumulus-jobs", 0), "cumulus-jobs");
  assert.equal(generationName("cumulus-jobs", 1), "cumulus-jobs-1");
  assert.equal(generationName("n", 12), "n-12");
});

const net = (id: string, generation: number): JobNetworkInfo => ({
  id,
  name: generationName("j", generation),
  scope: "swarm",
  generation,
});

Deno.test("newestNetwork: the highest generation, whatever the order", () => {
  assert.equal(newestNetwork([]), null);
  assert.equal(newestNetwork([net("a", 0)])?.id, "a");
  assert.equal(newestNetwork([net("a", 0), net("c", 2), net("b", 1)])?.id, "c");
  assert.equal(newestNetwork([net("c", 2), net("a", 0)])?.id, "c");
});

Deno.test("sameNetwork: full ids and the short prefixes Docker prints", () => {
  const n = net("xl3n1ccbsgenfqy1d3j5ga3hp", 0);
  assert.equal(sameNetwork(n, "xl3n1ccbsgenfqy1d3j5ga3hp"), true);
  assert.equal(sameNetwork(n, "xl3n1ccbsgen"), true);
  assert.equal(sameNetwork(n, "1hn2257drrx07x8iyax4q704s"), false);
  assert.equal(sameNetwork(n, ""), false);
});
