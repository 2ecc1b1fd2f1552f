/**
 * The documentation stays true and complete:
 * - every runnable shell block in README.md and docs/*.md runs green against a
 *   real orchestrator (convention below);
 * - docs/config.md is exactly what scripts/gen-config-doc.ts writes, and
 *   names every config key;
 * - docs/cli.md names every command and every flag of the CLI's help texts;
 * - relative links between the docs resolve.
 *
 * Convention: a ```sh or ```bash block is a runnable command and is run,
 * unless the line before its fence is `<!-- no-run: REASON -->` (the reason
 * is required). Output shown with a prompt goes in ```console blocks, which
 * are never run. Each block runs as one `bash -e -o pipefail` script in its
 * own empty temp dir, with `cumulus` on PATH (this checkout's CLI),
 * CUMULUS_ORCHESTRATOR_URL pointing at the test's orchestrator,
 * PYTHONPATH at the Python SDK and CUMULUS_SDK at the TypeScript SDK.
 * A block after `<!-- run: downloaded -->` is run as a user who downloaded
 * the built executable types it: the built `cumulus` alone in that empty
 * dir, under `env -i` (PATH=/usr/bin:/bin, a fresh HOME; its own orchestrator
 * port through ORCHESTRATOR_PORT), and whatever it started is stopped after.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { CONFIG_KEYS } from "../src/config/mod.ts";
import { COMMAND_HELP, MAIN_HELP } from "../src/cli/help.ts";
import { ORCHESTRATOR_HELP } from "../src/cli/orchestrator.ts";
import { AGENT_USAGE } from "../src/agent/mod.ts";
import { CONFIG_DOC_PATH, formatMarkdown, renderConfigDoc } from "../scripts/gen-config-doc.ts";
import { startStack } from "./helpers/stack.ts";
import { freePort } from "./helpers/process.ts";
import {
  cleanupStandalone,
  defaultDataDir,
  makeStandalone,
  standaloneEnv,
} from "./helpers/standalone.ts";

const ROOT = resolve(new URL("../", import.meta.url).pathname);
const read = (p: string) => Deno.readTextFileSync(`${ROOT}/${p}`);

/** README.md and every docs/*.md, by repository path. */
function docFiles(): string[] {
  const files = ["README.md"];
  for (const e of Deno.readDirSync(`${ROOT}/docs`)) {
    if (e.isFile && e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  return files.sort();
}

/** A fenced code block. */
interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /** The no-run reason, or null when the block is to be run. */
  noRun: string | null;
  /** How it runs: with this checkout's CLI, or as the downloaded executable. */
  runAs: "checkout" | "downloaded";
}

/** The fenced blocks of a markdown text. */
export function fencedBlocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(\S*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith(fence); i++) body.push(lines[i]);
    let prev = start - 1;
    while (prev >= 0 && lines[prev].trim() === "") prev--;
    const marker = prev >= 0 ? /^<!--\s*no-run:\s*(.*?)\s*-->$/.exec(lines[prev].trim()) : null;
    const downloaded = prev >= 0 && /^<!--\s*run:\s*downloaded\s*-->$/.test(lines[prev].trim());
    blocks.push({
      file,
      line: start + 1,
      lang: open[2],
      code: body.join("\n"),
      noRun: marker ? marker[1] : null,
      runAs: downloaded ? "downloaded" : "checkout",
    });
  }
  return blocks;
}

const allBlocks = docFiles().flatMap((f) => fencedBlocks(f, read(f)));
const shellBlocks = allBlocks.filter((b) => b.lang === "sh" || b.lang === "bash");

Deno.test("fencedBlocks: runnable unless marked no-run with a reason", () => {
  const md = [
    "```sh",
    "echo a",
    "```",
    "<!-- no-run: needs a GPU -->",
    "",
    "```sh",
    "nvidia-smi",
    "```",
    "<!-- no-run: -->",
    "```bash",
    "echo c",
    "```",
    "<!-- run: downloaded -->",
    "```sh",
    "./cumulus up",
    "```",
  ].join("\n");
  const b = fencedBlocks("x.md", md);
  assert.deepEqual(b.map((x) => [x.line, x.lang, x.code, x.noRun, x.runAs]), [
    [1, "sh", "echo a", null, "checkout"],
    [6, "sh", "nvidia-smi", "needs a GPU", "checkout"],
    [10, "bash", "echo c", "", "checkout"],
    [14, "sh", "./cumulus up", null, "downloaded"],
  ]);
});

Deno.test("every no-run shell block says why, and no shell block shows a prompt", () => {
  for (const b of shellBlocks) {
    assert.notEqual(b.noRun, "", `${b.file}:${b.line}: no-run needs a reason`);
    assert.ok(
      !/^\$ /m.test(b.code),
      `${b.file}:${b.line}: a block with "$ " prompts and output is a console block`,
    );
  }
  assert.ok(shellBlocks.filter((b) => b.noRun === null).length >= 5, "too few runnable blocks");
});

Deno.test({
  name: "runnable shell blocks in README.md and docs/ run green against a real orchestrator",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const stack = await startStack();
    const bin = await Deno.makeTempDir({ prefix: "cumulus-docs-bin-" });
    try {
      await Deno.writeTextFile(
        `${bin}/cumulus`,
        `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}/main.ts" "$@"\n`,
      );
      await Deno.chmod(`${bin}/cumulus`, 0o755);
      const env = {
        PATH: `${bin}:${Deno.env.get("PATH")}`,
        CUMULUS_ORCHESTRATOR_URL: stack.url,
        PYTHONPATH: `${ROOT}/src/sdk/python`,
        CUMULUS_SDK: `file://${ROOT}/src/sdk/mod.ts`,
      };
      for (const b of shellBlocks.filter((x) => x.noRun === null && x.runAs === "downloaded")) {
        await t.step(`${b.file}:${b.line} (downloaded cumulus)`, () => runDownloaded(b));
      }
      for (const b of shellBlocks.filter((x) => x.noRun === null && x.runAs === "checkout")) {
        await t.step(`${b.file}:${b.line}`, async () => {
          const dir = await Deno.makeTempDir({ prefix: "cumulus-docs-" });
          try {
            const out = await new Deno.Command("bash", {
              args: ["-e", "-o", "pipefail", "-c", b.code],
              cwd: dir,
              env,
              stdout: "piped",
              stderr: "piped",
              signal: AbortSignal.timeout(90_000),
            }).output();
            assertRan(b, out);
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        });
      }
    } finally {
      await stack.stop();
      await Deno.remove(bin, { recursive: true });
    }
  },
});

/** Asserts that block `b` exited 0, showing its code and output when it did not. */
function assertRan(b: Block, out: Deno.CommandOutput): void {
  const dec = new TextDecoder();
  assert.equal(
    out.code,
    0,
    `${b.file}:${b.line} exited ${out.code}:\n${b.code}\n--- stdout\n${
      dec.decode(out.stdout)
    }\n--- stderr\n${dec.decode(out.stderr)}`,
  );
}

/**
 * Runs a `run: downloaded` block: the built `cumulus` alone in an empty directory, a clean
 * environment with its own orchestrator port, and nothing it started left running.
 */
async function runDownloaded(b: Block): Promise<void> {
  const s = await makeStandalone("cumulus-docs-downloaded-");
  const dataDir = defaultDataDir(s);
  try {
    const out = await new Deno.Command("bash", {
      args: ["-e", "-o", "pipefail", "-c", b.code],
      cwd: s.dir,
      clearEnv: true,
      env: standaloneEnv(s, { ORCHESTRATOR_PORT: String(freePort()) }),
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(240_000),
    }).output();
    assertRan(b, out);
  } finally {
    const jobIds = await demoJobIds(dataDir);
    await cleanupStandalone(s, [dataDir], jobIds);
    await Deno.remove(s.root, { recursive: true }).catch(() => {});
  }
}

/** Ids of the jobs in a stopped orchestrator's log (to remove their services and volumes). */
async function demoJobIds(dataDir: string): Promise<string[]> {
  const log = await Deno.readTextFile(`${dataDir}/up/orchestrator.log`).catch(() => "");
  return [...new Set(log.match(/\bj-[0-9a-f]{12}\b/g) ?? [])];
}

Deno.test("docs/config.md is what scripts/gen-config-doc.ts writes", async () => {
  assert.equal(
    read(CONFIG_DOC_PATH),
    await formatMarkdown(renderConfigDoc()),
    "docs/config.md is stale: run deno run -A scripts/gen-config-doc.ts",
  );
});

Deno.test("docs/config.md names every config key and its environment variable", () => {
  const doc = read(CONFIG_DOC_PATH);
  for (const k of Object.values(CONFIG_KEYS)) {
    const row = doc.split("\n").find((l) => l.startsWith(`| \`${k.yaml}\` `));
    assert.ok(row, `docs/config.md lacks ${k.yaml}`);
    assert.ok(row.includes(`\`${k.env}\``), `docs/config.md row of ${k.yaml} lacks ${k.env}`);
  }
});

/** Long flags (`--name`) in a help text. */
function flagsOf(text: string): string[] {
  return [...new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]))];
}

Deno.test("docs/cli.md documents every command and every flag of the help texts", () => {
  const doc = read("docs/cli.md");
  const texts: Record<string, string> = {
    ...COMMAND_HELP,
    cumulus: MAIN_HELP,
    "orchestrator --help": ORCHESTRATOR_HELP,
    "agent --help": AGENT_USAGE,
  };
  for (const cmd of Object.keys(COMMAND_HELP)) {
    assert.ok(doc.includes(`## \`cumulus ${cmd}`), `docs/cli.md has no section for ${cmd}`);
  }
  const missing: string[] = [];
  for (const [where, text] of Object.entries(texts)) {
    for (const flag of flagsOf(text)) {
      if (!new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(doc)) missing.push(`${flag} (${where})`);
    }
  }
  assert.deepEqual(missing, [], "flags in help texts but not in docs/cli.md");
});

Deno.test("README lists every CLI command", () => {
  const readme = read("README.md");
  for (const cmd of Object.keys(COMMAND_HELP)) {
    assert.ok(readme.includes(`\`cumulus ${cmd}`), `README lacks cumulus ${cmd}`);
  }
});

Deno.test("README and docs/contributing.md name every folder under src/", () => {
  const readme = read("README.md");
  const contributing = read("docs/contributing.md");
  let folders = 0;
  for (const e of Deno.readDirSync(new URL("../src/", import.meta.url))) {
    if (!e.isDirectory) continue;
    folders++;
    assert.ok(readme.includes(`\`src/${e.name}\``), `README's layout lacks src/${e.name}`);
    assert.ok(contributing.includes(`\`src/${e.name}/\``), `contributing.md lacks src/${e.name}/`);
  }
  assert.ok(folders >= 10, `only ${folders} folders under src/`);
});

Deno.test("relative links in README.md and docs/ resolve", () => {
  const broken: string[] = [];
  for (const f of docFiles()) {
    const base = f.includes("/") ? f.slice(0, f.lastIndexOf("/") + 1) : "";
    for (const m of read(f).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue;
      try {
        Deno.statSync(resolve(ROOT, base + target));
      } catch {
        broken.push(`${f}: ${target}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});
