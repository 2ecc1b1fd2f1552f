/**
 * Issue 8: the TypeScript SDK works imported by URL with no install. The
 * repository is served over HTTP on loopback; a separate `deno run` script in
 * an empty temp dir (no deno.json, no node_modules) imports
 * `http://127.0.0.1:<port>/src/sdk/mod.ts` and runs a job on a real
 * orchestrator.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { startStack } from "./helpers/stack.ts";

const ROOT = resolve(new URL("../", import.meta.url).pathname);

const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".js": "application/javascript",
  ".json": "application/json",
};

/** Serves files under ROOT read-only; records the paths asked for. */
function serveRepo(served: string[]): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    const file = resolve(ROOT, "." + path);
    if (!file.startsWith(ROOT + "/")) return new Response("forbidden", { status: 403 });
    served.push(path);
    try {
      const body = await Deno.readFile(file);
      const ext = file.slice(file.lastIndexOf("."));
      return new Response(body, {
        headers: { "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

const SCRIPT = (sdkUrl: string) => `
import { CumulusClient } from "${sdkUrl}";

const client = new CumulusClient(Deno.env.get("CUMULUS_ORCHESTRATOR_URL"));
try {
  const job = await client.submit({
    command: ["sh", "-c", "echo hello from a job; echo 6 times 7 is $((6 * 7))"],
    gpuMemory: 0.25,
    duration: 60,
    name: "sdk-by-url",
  });
  for await (const line of job.logs()) console.log("LOG " + line.text);
  const final = await job.wait();
  console.log("STATE " + final.state + " " + final.exitCode);
  Deno.exit(final.state === "SUCCEEDED" ? 0 : 3);
} finally {
  client.close();
}
`;

Deno.test({
  name: "a Deno script importing src/sdk/mod.ts over HTTP runs a job end to end",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const served: string[] = [];
    const server = serveRepo(served);
    const stack = await startStack();
    const dir = await Deno.makeTempDir({ prefix: "cumulus-sdk-url-" });
    try {
      const host = `127.0.0.1:${server.addr.port}`;
      await Deno.writeTextFile(`${dir}/use_sdk.ts`, SCRIPT(`http://${host}/src/sdk/mod.ts`));
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-config",
          "--quiet",
          `--allow-import=${host}`,
          // Always fetch over HTTP, never from an earlier run's cache.
          `--reload=http://${host}`,
          "--allow-net",
          "--allow-env",
          "use_sdk.ts",
        ],
        cwd: dir,
        env: { ...stack.env, NPM_CONFIG_REGISTRY: Deno.env.get("NPM_CONFIG_REGISTRY") ?? "" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `script failed (${out.code}):\n${stdout}\n${stderr}`);
      assert.deepEqual(
        stdout.trim().split("\n"),
        ["LOG hello from a job", "LOG 6 times 7 is 42", "STATE SUCCEEDED 0"],
      );
      assert.ok(served.includes("/src/sdk/mod.ts"), "mod.ts was not fetched over HTTP");
      assert.ok(served.includes("/src/sdk/client.ts"), "its relative imports were not fetched");
      // Nothing was installed beside the script.
      const entries = [];
      for await (const e of Deno.readDir(dir)) entries.push(e.name);
      assert.deepEqual(entries, ["use_sdk.ts"]);
    } finally {
      await stack.stop();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
