import assert from "node:assert/strict";
import { firstHostAddress } from "./swarm_client.ts";

Deno.test("firstHostAddress: the gateway Docker gives a bridge of its default pool", () => {
  const cases: Array<[string, string | null]> = [
    ["172.17.0.0/16", "172.17.0.1"],
    ["172.17.5.9/16", "172.17.0.1"],
    ["10.1.2.0/24", "10.1.2.1"],
    ["192.168.255.128/25", "192.168.255.129"],
    ["10.0.0.0/8", "10.0.0.1"],
    ["10.0.0.0/31", null],
    ["fd00::/64", null],
    ["300.1.1.0/24", null],
    ["", null],
  ];
  for (const [subnet, want] of cases) assert.equal(firstHostAddress(subnet), want, subnet);
});
