/**
 * The two call shapes server.ts builds handlers from, driven by a stand-in
 * call object (the gRPC wire is exercised by the integration tests): an
 * upload keeps chunks in a temporary file, refuses past its limit, and
 * leaves no file when it fails or the client leaves; a server stream ends
 * when its body returns and turns a throw into the stream's status.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { InvalidArgumentError, ResourceExhaustedError } from "../core/mod.ts";
import { type HandlerDeps, serverStream, upload, type UploadSteps } from "./server.ts";

async function depsIn(dir: string): Promise<HandlerDeps> {
  await Deno.mkdir(dir, { recursive: true });
  return {
    tmpDir: dir,
    log: () => {},
    observe: () => {},
  } as unknown as HandlerDeps;
}

/** A client-streaming call: emits the given messages, then `end` (or `cancelled`). */
function clientCall(msgs: Array<Record<string, unknown>>, finish: "end" | "cancelled" = "end") {
  const call = Object.assign(new EventEmitter(), { metadata: { get: () => [] } });
  const answer = new Promise<{ err: unknown; res: unknown }>((resolve) => {
    queueMicrotask(() => {
      for (const m of msgs) call.emit("data", m);
      call.emit(finish);
      if (finish === "cancelled") resolve({ err: "no answer", res: null });
    });
    call.on("answered", resolve);
  });
  const cb = (err: unknown, res?: unknown) => call.emit("answered", { err, res });
  return { call, cb, answer };
}

const chunk = (n: number) => ({ payload: "chunk", chunk: new Uint8Array(n).fill(7) });

function steps(
  seen: Array<{ bytes: number; content: number }>,
  maxBytes = 10,
): UploadSteps<string, string> {
  return {
    first: "header",
    header: (msg) => {
      if (msg.payload !== "header") throw new InvalidArgumentError("header", "first");
      return "h";
    },
    maxBytes,
    tooLarge: (_h, size) => new ResourceExhaustedError(`too large: ${size}`),
    finish: async (_h, up) => {
      const data = up ? await Deno.readFile(up.path) : new Uint8Array();
      seen.push({ bytes: up?.bytes ?? 0, content: data.reduce((a, b) => a + b, 0) });
      if (up) await Deno.remove(up.path);
      return "ok";
    },
  };
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out;
}

Deno.test("upload: chunks arrive in one temporary file, handed to finish with their size", async () => {
  const dir = await Deno.makeTempDir();
  const seen: Array<{ bytes: number; content: number }> = [];
  const d = await depsIn(dir);
  const { call, cb, answer } = clientCall([{ payload: "header" }, chunk(4), chunk(6)]);
  // deno-lint-ignore no-explicit-any
  upload(d, "T", steps(seen))(call as any, cb);
  const { err, res } = await answer;
  assert.equal(err, null);
  assert.equal(res, "ok");
  assert.deepEqual(seen, [{ bytes: 10, content: 70 }]);
  assert.deepEqual(await files(dir), []);
  await Deno.remove(dir, { recursive: true });
});

const refusals: Array<[string, Array<Record<string, unknown>>, RegExp]> = [
  ["past the limit", [{ payload: "header" }, chunk(6), chunk(6)], /too large: more than 10/],
  ["a second header", [{ payload: "header" }, { payload: "header" }], /after the header/],
  ["no header", [], /header: missing/],
  ["a bad first message", [{ payload: "chunk" }], /header: first/],
];
for (const [name, msgs, want] of refusals) {
  Deno.test(`upload: refused for ${name}, and no file is left`, async () => {
    const dir = await Deno.makeTempDir();
    const seen: Array<{ bytes: number; content: number }> = [];
    const d = await depsIn(dir);
    const { call, cb, answer } = clientCall(msgs);
    // deno-lint-ignore no-explicit-any
    upload(d, "T", steps(seen))(call as any, cb);
    const { err } = await answer;
    assert.match(String((err as Error)?.message ?? err), want);
    assert.deepEqual(seen, [], "finish is not called");
    await new Promise((r) => setTimeout(r, 20)); // the removal is not awaited by the handler
    assert.deepEqual(await files(dir), []);
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("upload: a client that leaves mid-upload gets no answer and leaves no file", async () => {
  const dir = await Deno.makeTempDir();
  const seen: Array<{ bytes: number; content: number }> = [];
  const d = await depsIn(dir);
  const { call, cb, answer } = clientCall([{ payload: "header" }, chunk(3)], "cancelled");
  // deno-lint-ignore no-explicit-any
  upload(d, "T", steps(seen))(call as any, cb);
  assert.equal((await answer).err, "no answer");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, []);
  assert.deepEqual(await files(dir), []);
  await Deno.remove(dir, { recursive: true });
});

/** A server-streaming call that records what the handler did to it. */
function streamCall() {
  const did: string[] = [];
  const call = Object.assign(new EventEmitter(), {
    request: { jobId: "j" },
    write: (m: unknown) => did.push(`write ${m}`),
    end: () => did.push("end"),
  });
  call.on("error", (e: Error) => did.push(`error ${e.message}`));
  return { call, did };
}

/** Deps of a handler that needs no directory. */
const quiet = { log: () => {}, observe: () => {} } as unknown as HandlerDeps;

Deno.test("serverStream: the stream ends when the body returns; a throw is its status", async () => {
  const d = quiet;
  const ok = streamCall();
  await serverStream(d, "S", (_req, call) => {
    call.write("a");
    return Promise.resolve();
    // deno-lint-ignore no-explicit-any
  })(ok.call as any);
  assert.deepEqual(ok.did, ["write a", "end"]);
  const bad = streamCall();
  await serverStream(d, "S", () => Promise.reject(new InvalidArgumentError("x", "bad")))(
    // deno-lint-ignore no-explicit-any
    bad.call as any,
  );
  assert.equal(bad.did.length, 1);
  assert.match(bad.did[0], /^error .*x: bad/);
});

Deno.test("serverStream: nothing is written to a client that left", async () => {
  const d = quiet;
  const gone = streamCall();
  await serverStream(d, "S", (_req, _call, signal) => {
    gone.call.emit("cancelled");
    assert.equal(signal.aborted, true);
    return Promise.reject(new Error("after the client left"));
  })(
    // deno-lint-ignore no-explicit-any
    gone.call as any,
  );
  assert.deepEqual(gone.did, []);
});
