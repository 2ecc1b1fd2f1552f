/**
 * Test fixture: binds a gRPC server to a free loopback port, plaintext.
 * @module
 */
import * as grpc from "@grpc/grpc-js";

/** Binds `server` to 127.0.0.1 on a free port and resolves with the port. */
export function bindLoopback(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
}
