import assert from "node:assert/strict";
import type Docker from "dockerode";
import { FailedPreconditionError, UnavailableError } from "../core/mod.ts";
import { ImagePublisher } from "./image_publisher.ts";

const ID = "sha256:" + "b0".repeat(32);
const DIGEST = "sha256:" + "d1".repeat(32);
const enc = new TextEncoder();

/** An engine that answers tag, push and distribution as Docker 20.10 does; counts pushes. */
function fakeEngine(opts: { pushFails?: number; inRegistry?: string[] } = {}) {
  const calls = { tags: [] as string[], pushes: [] as string[], auths: [] as unknown[] };
  let failures = opts.pushFails ?? 0;
  const docker = {
    getImage(name: string) {
      return {
        tag: (o: { repo: string; tag: string }) => {
          calls.tags.push(`${name} -> ${o.repo}:${o.tag}`);
          return Promise.resolve();
        },
        push: (o: { authconfig: unknown }) => {
          calls.pushes.push(name);
          calls.auths.push(o.authconfig);
          const fail = failures-- > 0;
          return Promise.resolve((async function* () {
            yield enc.encode(JSON.stringify({ status: "Preparing", id: "aaaaaaaaaaaa" }) + "\n");
            yield enc.encode(
              JSON.stringify({
                status: "Pushing",
                id: "aaaaaaaaaaaa",
                progressDetail: { current: 5 << 20, total: 10 << 20 },
              }) + "\n",
            );
            if (fail) {
              yield enc.encode(JSON.stringify({ error: "blob upload unknown" }) + "\n");
              return;
            }
            yield enc.encode(JSON.stringify({ status: "Pushed", id: "aaaaaaaaaaaa" }) + "\n");
            yield enc.encode(JSON.stringify({ aux: { Tag: "x", Digest: DIGEST, Size: 1 } }) + "\n");
          })());
        },
        distribution: () =>
          (opts.inRegistry ?? []).includes(name)
            ? Promise.resolve({ Descriptor: { digest: DIGEST } })
            : Promise.reject(
              Object.assign(new Error("(HTTP code 401) no such image - manifest unknown"), {
                statusCode: 401,
              }),
            ),
      };
    },
  };
  return { docker: docker as unknown as Docker, calls };
}

function publisher(docker: Docker, log: string[] = []) {
  return new ImagePublisher({
    docker,
    registry: "198.18.0.1:5000",
    auths: new Map([["ghcr.io", {
      username: "bot",
      password: "s3cret",
      serveraddress: "ghcr.io",
    }]]),
    log: (m) => log.push(m),
  });
}

Deno.test("ImagePublisher pushes an image once per id and pins the digest", async () => {
  const { docker, calls } = fakeEngine();
  const log: string[] = [];
  const p = publisher(docker, log);
  const [a, b] = await Promise.all([
    p.serviceImage("cumulus-job:latest", ID),
    p.serviceImage("cumulus-job:latest", ID),
  ]);
  assert.equal(a, `198.18.0.1:5000/cumulus-job@${DIGEST}`);
  assert.equal(b, a);
  assert.equal(await p.serviceImage("other:tag", ID), a);
  assert.deepEqual(calls.pushes, [`198.18.0.1:5000/cumulus-job:${"b0".repeat(32)}`]);
  assert.deepEqual(calls.tags, [`${ID} -> 198.18.0.1:5000/cumulus-job:${"b0".repeat(32)}`]);
  assert.ok(
    log.some((m) =>
      /pushed in [\d.]+ s to 198\.18\.0\.1:5000: 10.0 MiB of 10.0 MiB, 1\/1 layers/.test(m)
    ),
    log.join("\n"),
  );
});

Deno.test("ImagePublisher tries a failed push again for the next job", async () => {
  const { docker, calls } = fakeEngine({ pushFails: 1 });
  const p = publisher(docker);
  await assert.rejects(
    p.serviceImage("cumulus-job:latest", ID),
    (err: unknown) => err instanceof UnavailableError && /blob upload unknown/.test(err.message),
  );
  assert.equal(
    await p.serviceImage("cumulus-job:latest", ID),
    `198.18.0.1:5000/cumulus-job@${DIGEST}`,
  );
  assert.equal(calls.pushes.length, 2);
});

Deno.test("ImagePublisher passes registry references through once the registry has them", async () => {
  const { docker, calls } = fakeEngine({ inRegistry: ["ghcr.io/org/train:3"] });
  const log: string[] = [];
  const p = publisher(docker, log);
  assert.ok(p.passesThrough("ghcr.io/org/train:3"));
  assert.ok(!p.passesThrough("cumulus-job:latest"));
  assert.equal(
    await p.serviceImage("ghcr.io/org/train:3", "ghcr.io/org/train:3"),
    "ghcr.io/org/train:3",
  );
  assert.equal(p.authFor("ghcr.io/org/train:3")?.username, "bot");
  assert.equal(p.authFor("cumulus-job:latest"), undefined);
  await assert.rejects(
    p.serviceImage("198.18.0.1:5000/nope:1", "198.18.0.1:5000/nope:1"),
    (err: unknown) =>
      err instanceof FailedPreconditionError &&
      err.message === "image 198.18.0.1:5000/nope:1 not found in registry 198.18.0.1:5000",
  );
  assert.equal(calls.pushes.length, 0);
  assert.ok(!log.join("\n").includes("s3cret"));
});
