/**
 * gRPC plumbing: proto loading, status mapping, wire conversions.
 * @module
 */
export {
  type CumulusProto,
  HEALTH_PROTO_PATH,
  loadCumulusProto,
  loadHealthProto,
  PROTO_OPTIONS,
  PROTO_PATH,
} from "./proto.ts";
export { MAX_DETAILS_CHARS, type RpcError, statusFor, toRpcError } from "./status.ts";
export {
  HIDDEN_ENV_VALUE,
  jobToWire,
  lineToWire,
  type WireJob,
  type WireJobOptions,
  type WireLogLine,
} from "./wire.ts";
export { encodeLinesEvent } from "./log_codec.ts";
