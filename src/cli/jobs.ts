/**
 * `cumulus jobs`: list jobs as a table or JSON.
 * @module
 */
import { JOB_STATES, type JobRecord, type JobState } from "../sdk/mod.ts";
import { boolFlag, listFlag, positiveIntFlag, stringFlag, UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";
import { formatJobs, jobJson } from "./format.ts";

/** Jobs shown when --limit is not given. */
export const DEFAULT_JOBS_LIMIT = 100;

/** Turns `--state running,queued --state FAILED` into validated states. */
export function parseStates(values: readonly string[]): JobState[] {
  const out: JobState[] = [];
  for (const value of values) {
    for (const part of value.split(",")) {
      const s = part.trim().toUpperCase();
      if (s === "") continue;
      if (!(JOB_STATES as readonly string[]).includes(s)) {
        throw new UsageError(
          `--state: unknown state ${JSON.stringify(part.trim())} (one of ${JOB_STATES.join(", ")})`,
        );
      }
      if (!out.includes(s as JobState)) out.push(s as JobState);
    }
  }
  return out;
}

/** Runs `cumulus jobs`. */
export async function jobsCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("jobs", argv, [
    { name: "state", type: "string", multiple: true },
    { name: "user", type: "string" },
    { name: "limit", type: "string" },
    { name: "all", type: "boolean" },
  ], ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) {
    throw new UsageError(`jobs takes no arguments, got ${JSON.stringify(args.positionals[0])}`);
  }
  const states = parseStates(listFlag(args.flags, "state"));
  const limitText = stringFlag(args.flags, "limit");
  const all = boolFlag(args.flags, "all");
  const limit = all
    ? Infinity
    : limitText === undefined
    ? DEFAULT_JOBS_LIMIT
    : positiveIntFlag("limit", limitText);
  const user = stringFlag(args.flags, "user");

  const client = clientFor(ctx, args.url);
  const jobs: JobRecord[] = [];
  try {
    let pageToken = "";
    do {
      const page = await client.listJobs({
        states,
        user,
        pageSize: Math.min(1000, limit - jobs.length),
        pageToken,
      });
      jobs.push(...page.jobs.slice(0, limit - jobs.length));
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && jobs.length < limit);
  } finally {
    client.close();
  }
  if (args.json) {
    await ctx.io.stdout.write(JSON.stringify(jobs.map(jobJson), null, 2) + "\n");
  } else {
    await ctx.io.stdout.write(formatJobs(jobs, ctx.io.now()));
  }
  return 0;
}
