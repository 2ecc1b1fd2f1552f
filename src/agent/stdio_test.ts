import assert from "node:assert/strict";
import type { AgentIo } from "./commands.ts";
import { serveStdio } from "./stdio.ts";

function input(lines: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      // Split mid-line on purpose: lines may arrive in pieces.
      const text = new TextEncoder().encode(lines.join("\n") + "\n");
      c.enqueue(text.subarray(0, 7));
      c.enqueue(text.subarray(7));
      c.close();
    },
  });
}

const io: AgentIo = { stdout: () => {}, stderr: () => {}, env: () => undefined };

Deno.test("serve --stdio answers each request by id, one at a time, and refuses what ssh-dispatch refuses", async () => {
  const out: string[] = [];
  let running = 0;
  let most = 0;
  const code = await serveStdio(
    input([
      JSON.stringify({ id: 1, argv: ["cumulus-agent", "partition", "list", "--json"] }),
      JSON.stringify({ id: 2, argv: ["cumulus-agent", "serve", "--stdio"] }),
      "not json",
      JSON.stringify({ id: 3, argv: ["gpus"] }),
    ]),
    (l) => out.push(l),
    io,
    async (argv, cio) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      cio.stdout(argv.join(" "));
      running--;
      return 0;
    },
  );
  assert.equal(code, 0);
  assert.equal(most, 1, "one command at a time");
  const msgs = out.map((l) => JSON.parse(l));
  assert.deepEqual(msgs[0], { ready: true });
  const byId = new Map(msgs.filter((m) => m.id !== undefined).map((m) => [m.id, m]));
  assert.deepEqual(byId.get(1), { id: 1, code: 0, stdout: "partition list --json", stderr: "" });
  assert.equal(byId.get(2).code, 2);
  assert.match(byId.get(2).stderr, /not an allowed agent command/);
  assert.equal(byId.get(3).stdout, "gpus");
  assert.ok(msgs.some((m) => typeof m.error === "string" && m.error.includes("bad request line")));
});
