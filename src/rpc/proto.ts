/**
 * Loads proto/cumulus.proto into grpc-js service definitions. The options are
 * part of the wire convention shared with the SDKs: camelCase fields, int64 as
 * JS numbers, enums as their names, defaults filled in.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

/** proto-loader options used by every Cumulus peer. */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  arrays: true,
  objects: true,
};

/** Path of the wire contract inside the repository (or the compiled bundle). */
export const PROTO_PATH: string = fileURLToPath(
  new URL("../../proto/cumulus.proto", import.meta.url),
);

/** The loaded `cumulus.v1` services. */
export interface CumulusProto {
  /** Client-facing service definition. */
  Cumulus: grpc.ServiceClientConstructor;
  /** Service called by job containers. */
  Runtime: grpc.ServiceClientConstructor;
  /** Service called by joining workers (authenticated by their join token). */
  WorkerJoin: grpc.ServiceClientConstructor;
}

/** Path of the standard health-checking protocol. */
export const HEALTH_PROTO_PATH: string = fileURLToPath(
  new URL("../../proto/health.proto", import.meta.url),
);

let cached: CumulusProto | null = null;
let health: grpc.ServiceClientConstructor | null = null;

/** Loads (once) the `grpc.health.v1.Health` service definition. */
export function loadHealthProto(): grpc.ServiceClientConstructor {
  if (health) return health;
  const def = protoLoader.loadSync(HEALTH_PROTO_PATH, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  health = pkg.grpc.health.v1.Health;
  return health;
}

/** Loads (once) and returns the `cumulus.v1` service definitions. */
export function loadCumulusProto(): CumulusProto {
  if (cached) return cached;
  const def = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    cumulus: { v1: CumulusProto };
  };
  cached = pkg.cumulus.v1;
  return cached;
}
