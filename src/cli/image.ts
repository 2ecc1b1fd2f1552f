/**
 * `cumulus image build` and `cumulus image load FILE`: make the job image
 * explicitly (what `cumulus up` does by itself when it finds none).
 * @module
 */
import { UsageError } from "./args.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";
import {
  buildJobImage,
  DEFAULT_JOB_REPO,
  dockerEngineAddress,
  imageExists,
  loadImage,
} from "./job_image.ts";
import { checkPrereqs } from "./up_prereqs.ts";
import { PREREQ_SCOPE } from "./prereqs.ts";
import { connectDocker } from "../swarm/mod.ts";

const FLAGS = [
  { name: "force", type: "boolean" as const },
  { name: "repo", type: "string" as const },
  { name: "install-prereqs", type: "boolean" as const },
];

/** Runs `cumulus image`. */
export async function imageCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("image", argv, FLAGS, ctx);
  if (args.help) return 0;
  const [sub, ...rest] = args.positionals;
  const engine = dockerEngineAddress(ctx.io.env);
  const docker = connectDocker(engine);
  const say = (line: string) => ctx.io.stderr.write(`image: ${line}\n`);
  if (sub === "build") {
    if (rest.length > 0) throw new UsageError("'cumulus image build' takes no arguments");
    const repo = (args.flags.repo as string | undefined) ?? ctx.io.env("CUMULUS_JOB_REPO") ??
      DEFAULT_JOB_REPO;
    if (!/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(repo)) {
      throw new UsageError(`--repo: must be a Docker repository name, got ${repo}`);
    }
    await checkPrereqs(docker, engine, PREREQ_SCOPE.imageBuild, {
      install: Boolean(args.flags["install-prereqs"]),
      env: ctx.io.env,
      say,
    });
    const t0 = ctx.io.now();
    const image = await buildJobImage({
      repo,
      force: Boolean(args.flags.force),
      engine,
      env: Deno.env.toObject(),
      say,
    });
    if (!await imageExists(docker, image)) throw new Error(`${image} missing after the build`);
    await say(`${image} ready in ${((ctx.io.now() - t0) / 1000).toFixed(1)} s`);
    await ctx.io.stdout.write(args.json ? JSON.stringify({ image }) + "\n" : `${image}\n`);
    return 0;
  }
  if (sub === "load") {
    if (rest.length !== 1) throw new UsageError("usage: cumulus image load FILE");
    await checkPrereqs(docker, engine, PREREQ_SCOPE.engine, {
      install: Boolean(args.flags["install-prereqs"]),
      env: ctx.io.env,
      say,
    });
    const images = await loadImage(docker, rest[0], say);
    await ctx.io.stdout.write(
      args.json ? JSON.stringify({ images }) + "\n" : images.map((i) => `${i}\n`).join(""),
    );
    return 0;
  }
  throw new UsageError(
    sub === undefined
      ? "usage: cumulus image build [--repo R] [--force] | cumulus image load FILE"
      : `unknown image command ${JSON.stringify(sub)} (build or load)`,
  );
}
