/**
 * `cumulus certs`: makes (or keeps) a private CA and the orchestrator's server
 * certificate, signed by it for the hosts clients dial.
 * @module
 */
import { listFlag, stringFlag, UsageError } from "./args.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";
import { DEFAULT_UP_DATA_DIR } from "./embedded.ts";
import { CertError, ensureCertificates, tlsDirOf } from "../tls/mod.ts";

const FLAGS = [
  { name: "dir", type: "string" as const },
  { name: "host", type: "string" as const, multiple: true },
];

/** Runs `cumulus certs`; resolves with the exit code. */
export async function certsCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("certs", argv, FLAGS, ctx);
  if (args.help) return 0;
  if (args.url !== undefined || ctx.url !== undefined) {
    throw new UsageError("'cumulus certs' works on files: --url does not apply");
  }
  if (args.positionals.length > 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  }
  const dir = stringFlag(args.flags, "dir") ?? tlsDirOf(DEFAULT_UP_DATA_DIR);
  let report;
  try {
    report = await ensureCertificates({ dir, hosts: listFlag(args.flags, "host") });
  } catch (err) {
    if (err instanceof CertError) throw new UsageError(err.message);
    throw err;
  }
  if (args.json) {
    await ctx.io.stdout.write(JSON.stringify(report) + "\n");
    return 0;
  }
  const p = report.paths;
  await ctx.io.stdout.write(
    [
      `CA           ${p.caCert} (${report.caCreated ? "new" : "kept"}, until ${report.caNotAfter})`,
      `CA key       ${p.caKey}`,
      `certificate  ${p.serverCert} (${
        report.serverCreated ? "new" : "kept"
      }, until ${report.serverNotAfter})`,
      `key          ${p.serverKey}`,
      `names        ${report.hosts.join(", ")}`,
      `CA SHA-256   ${report.caFingerprint}`,
      "",
      "orchestrator config: tls_cert, tls_key and tls_ca as above;",
      `clients: CUMULUS_ORCHESTRATOR_URL=grpcs://HOST:PORT CUMULUS_CA_FILE=${p.caCert}`,
      "",
    ].join("\n"),
  );
  return 0;
}
