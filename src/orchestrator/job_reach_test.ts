import assert from "node:assert/strict";
import { ConfigError } from "../config/mod.ts";
import { type JobReachInput, planJobReach } from "./job_reach.ts";

const base: JobReachInput = {
  listenHost: "127.0.0.1",
  advertiseAddress: "",
  jobNetwork: "cumulus-jobs",
  port: 50051,
  bridgeGateway: "172.17.0.1",
};

Deno.test("planJobReach(): where jobs dial, by listen host, network and advertise address", () => {
  const cases: Array<[Partial<JobReachInput>, string, string, string | null]> = [
    // Loopback orchestrator, bridged jobs: also bind the bridge gateway.
    [{}, "172.17.0.1:50051", "172.17.0.1", "172.17.0.1:50051"],
    [{ listenHost: "localhost" }, "172.17.0.1:50051", "172.17.0.1", "172.17.0.1:50051"],
    // Wildcard: already listening there.
    [{ listenHost: "0.0.0.0" }, "172.17.0.1:50051", "172.17.0.1", null],
    // A host address: jobs reach it through the bridge's NAT.
    [{ listenHost: "10.0.0.5" }, "10.0.0.5:50051", "10.0.0.5", null],
    [{ listenHost: "fd00::5" }, "[fd00::5]:50051", "fd00::5", null],
    // Host networking: loopback as before.
    [{ jobNetwork: "host" }, "127.0.0.1:50051", "127.0.0.1", null],
    [{ jobNetwork: "host", bridgeGateway: null }, "127.0.0.1:50051", "127.0.0.1", null],
    // The operator's address wins.
    [{ advertiseAddress: "orch.example:443" }, "orch.example:443", "orch.example", null],
    [
      { advertiseAddress: "grpcs://10.1.2.3:7000", bridgeGateway: null },
      "grpcs://10.1.2.3:7000",
      "10.1.2.3",
      null,
    ],
  ];
  for (const [over, address, host, extraBind] of cases) {
    assert.deepEqual(
      planJobReach({ ...base, ...over }),
      { address, host, extraBind },
      JSON.stringify(over),
    );
  }
});

Deno.test("planJobReach(): bridged jobs without a bridge to reach a loopback orchestrator is a config error", () => {
  assert.throws(
    () => planJobReach({ ...base, bridgeGateway: null }),
    (e: unknown) =>
      e instanceof ConfigError && /advertise_address/.test(e.message) &&
      /job_network: host/.test(e.message),
  );
});
