/**
 * Usage texts of `cumulus` and each subcommand (printed by --help / -h).
 * @module
 */

const GLOBAL = `Global flags (accepted by every client command, before or after it):
  --url ADDR    orchestrator address, host:port or grpc://host:port
                (default: $CUMULUS_ORCHESTRATOR_URL, else 127.0.0.1:50051)
  --json        machine-readable output on stdout
  -h, --help    show help`;

/** Usage text of each subcommand, by name. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  run: `Usage: cumulus run [flags] [--] CMD [ARG...]

Packs the current directory, submits it as a job that runs CMD (argv, no
shell: use sh -c '...' for one), streams the job's stdout to stdout and its
stderr to stderr, and exits with the job's exit code.

Flags:
  --image IMAGE            container image (default: the orchestrator's default image)
  --gpu-memory F|SIZE      fraction of one GPU's memory, 0 < F < 1 (default 0.25), a size
                           such as 20GiB or 512MiB, or a whole number N: N whole GPUs
  --gpus N                 N whole GPUs (1..8) on one worker, injected together
  --duration DURATION      partition lifetime: seconds or 90s, 10m, 2h, 1h30m (default 3600)
  --env KEY=VALUE          environment variable for the job; --env KEY copies the
                           local value (repeatable)
  --name NAME              display name of the job
  --user USER              ignored by orchestrators with user tokens: a job
                           belongs to the token's user (kept for old servers)
  --constraint EXPR        Swarm placement constraint, e.g. node.labels.gpu==h100
                           (repeatable)
  --workdir DIR            working directory inside the container (absolute)
  --cpu N                  CPU cores for the job, e.g. 0.5 or 8 (default and most: the
                           orchestrator's job_cpu_default and job_cpu_max)
  --memory SIZE            memory limit, e.g. 512M or 8GiB; past it the job fails
                           with MEMORY_EXCEEDED (default: job_memory_default, 4GiB)
  --image-user             run as the image's own user, not the job uid (only where
                           the orchestrator's allow_image_user is on)
  --no-bundle              send no files (the image must hold the code)
  --max-bundle-size SIZE   largest compressed bundle, e.g. 500K, 100M, 1G (default 100M)
  --detach                 print the job id once submitted and exit 0
  --progress               show progress on stderr even when it is not a terminal
  --max-attempts N         attempts in total when the job's container or worker is lost
                           (default: the orchestrator's, 3); 1 turns resuming off
  --resume-on-expiry       when the duration runs out, resume from the job's last
                           reported checkpoint if attempts remain (each gets a new duration)
  --result-retention DURATION
                           keep the job's result this long after it ends (default and
                           most: the orchestrator's result_retention, 7d)

The bundle honours .gitignore and .cumulusignore files (also in subdirectories;
.cumulusignore may re-include with !pattern); .git is never sent.
Ctrl-C once cancels the job (and waits for it to end); twice stops waiting.

Exit status: the job's exit code; 130 if the job was cancelled, 124 if it
expired, 1 if it failed without an exit code or on any other error, 2 on a
usage error.
With --json, stdout carries only the final job record as JSON (the job's
stdout goes to stderr with its stderr); with --detach --json, the submitted
job record.

Examples:
  cumulus run -- python3 train.py --epochs 10
  cumulus run --gpu-memory 0.5 --duration 2h --env SEED=1 -- sh -c 'echo $SEED'
  cumulus run --detach --name nightly -- ./nightly.sh

${GLOBAL}`,

  jobs: `Usage: cumulus jobs [flags]

Lists jobs, newest first.

Flags:
  --state STATE    only jobs in this state (repeatable or comma-separated):
                   QUEUED, SCHEDULED, RUNNING, SUCCEEDED, FAILED, CANCELLED,
                   EXPIRED, RESUMING (any case)
  --user USER      only jobs of this user (admins; others see only their own)
  --limit N        at most N jobs (default 100)
  --all            every job (all pages; overrides --limit)

Columns: ID, NAME, STATE, EXIT (exit code), USER, AGE (since submission),
DURATION (run time), COMMAND. With --json: a JSON array of job records.

Examples:
  cumulus jobs --state running,queued
  cumulus jobs --all --json

${GLOBAL}`,

  logs: `Usage: cumulus logs [flags] JOB

Prints a job's output: its stdout lines to stdout, its stderr lines to stderr.

Flags:
  -f, --follow     keep printing new lines until the job ends (reconnects by
                   itself if the orchestrator restarts; no line is lost or repeated)
  --after N        start after line number N (lines are numbered from 1)

With --json: one JSON object per line: {"seq", "stream", "timeMs", "text"}.

Examples:
  cumulus logs -f j-0123456789ab
  cumulus logs --after 100 --json j-0123456789ab

${GLOBAL}`,

  token: `Usage: cumulus token create USER [--admin] [--expires D]
       cumulus token list
       cumulus token revoke ID|USER

Manages user tokens (needs an admin token). 'create' prints the new token's
secret once on stdout (with --json, a JSON object with "token"); only its
SHA-256 is stored. --expires takes seconds or a duration (90m, 30d). 'list'
shows every token's id, user, creation and status, never a secret. 'revoke'
takes a token id, or a user name to revoke all of that user's tokens.

Examples:
  cumulus token create alice --expires 30d
  cumulus token revoke alice

${GLOBAL}`,

  login: `Usage: cumulus login [--token T]

Checks a user token with the orchestrator and saves it in the credentials
file (CUMULUS_CREDENTIALS, else $XDG_CONFIG_HOME/cumulus/credentials, else
~/.config/cumulus/credentials; mode 0600), where the CLI and both SDKs find
it. Without --token, reads the token from stdin (not echoed on a terminal).
CUMULUS_TOKEN, when set, wins over the file.

${GLOBAL}`,

  kill: `Usage: cumulus kill JOB [JOB...]

Cancels jobs: removes their containers and marks them CANCELLED. Prints each
job's new state (with --json, a JSON array of job records). Exits 1 if any
job could not be cancelled (unknown, or already finished).

${GLOBAL}`,

  worker: `Usage: cumulus worker add [--expires D]
       cumulus worker drain NAME [--now]
       cumulus worker remove NAME

Adds and takes out workers that join with one command (needs an admin
token). 'add' makes a single-use join token (default life 1h; --expires
takes seconds or a duration) and prints the line to run as root on the new
machine: cumulus-agent join --orchestrator URL --token T [--ca-fingerprint FP],
which installs the agent, registers, joins the swarm and starts the daemon
(add --install-docker on a machine without Docker). 'drain' stops new jobs on the worker and lets running ones finish; with
--now they stop at once and resume elsewhere from their checkpoints.
'remove' forgets the worker, its pinned SSH host key and its used join
token, and removes its Swarm node. With --json: a JSON object.

Examples:
  cumulus worker add --expires 30m
  cumulus worker drain gpu-7 --now
  cumulus worker remove gpu-7

${GLOBAL}`,

  workers: `Usage: cumulus workers

Lists the Swarm nodes that can run jobs.

Columns: ID, HOSTNAME, STATE, AVAILABILITY, ROLE, JOBS (running Cumulus
jobs), ADDRESS, LABELS. With --json: a JSON array of workers.

${GLOBAL}`,

  version: `Usage: cumulus version

Prints the CLI version (with --json: {"version", "deno", "v8", "typescript"}).

${GLOBAL}`,

  up: `Usage: cumulus up [--port N] [--data-dir DIR] [--no-demo] [--image-from REGISTRY]
                  [--install-prereqs] [--json]

Starts the embedded default on this machine and leaves it running: this
machine's Docker engine as Swarm manager and only worker (a single-node Swarm
is initialised if needed), an S3 server (s3rver, run by this same program)
for L2 checkpoints with its objects in DIR/s3, the orchestrator (SQLite store
in DIR) and the agent daemon when this
build has 'cumulus agent serve' (Chronos state in DIR/chronos unless
CHRONOS_STATE_DIR is set). Pid files and logs go to DIR/up/. Pieces
that are already running are reused, so a second 'up' is quick.
Then, unless --no-demo, runs the demo: a PyTorch training job
(examples/demo/train.py) checkpointing every 25 steps, whose container is
removed midway; the job resumes from its checkpoint by itself. Prints the
job's result and a summary (job, state, worker, partition, attempts, time).

What the machine must bring is checked first, one line each with the command
that installs it: a Docker engine, and to build the job image the docker
client, debootstrap and root. The job image is CUMULUS_JOB_IMAGE or
cumulus-job:latest when the engine has it; else pulled from --image-from;
else built from what this copy carries (as 'cumulus image build': minutes).

Flags:
  --port N          orchestrator gRPC port on 127.0.0.1 (default
                    $ORCHESTRATOR_PORT, else 50051)
  --data-dir DIR    data directory (default from a checkout ./cumulus-data; a
                    built executable $XDG_DATA_HOME/cumulus or
                    ~/.local/share/cumulus)
  --no-demo         start the pieces only
  --image-from REGISTRY
                    without a job image, pull REGISTRY/cumulus-job:latest
  --install-prereqs as root, run the commands that install what is missing
  --json            progress on stderr, one JSON report on stdout
  -h, --help        show this help
  (--url ADDR does not apply: up serves its own orchestrator on --port)

Environment: SWARM_MANAGER (Docker engine, default /run/cumulus-docker.sock
if present, else /var/run/docker.sock), CUMULUS_JOB_IMAGE, CUMULUS_JOB_REPO
(repository of a built job image, default cumulus-job),
ORCHESTRATOR_METRICS_PORT (default: any free port).

Exit status: 0 when everything started and the demo SUCCEEDED, 1 otherwise,
2 on a usage error. Stop everything with 'cumulus down'.

Examples:
  cumulus up
  cumulus up --no-demo --port 50052 --data-dir /srv/cumulus`,

  down: `Usage: cumulus down [--data-dir DIR] [--json]

Stops what 'cumulus up' started with this data dir (agent daemon,
orchestrator, S3 server: SIGTERM, then SIGKILL after 15 s) and keeps the
data: job records, logs, results and checkpoints stay in DIR. Stopping what
is not running is not an error.

Flags:
  --data-dir DIR    data directory given to 'cumulus up' (default: as up's)
  --json            print {"dataDir", "stopped": {piece: pid or null}}
  -h, --help        show this help
  (--url ADDR does not apply: down finds the processes by their pid files)`,

  status: `Usage: cumulus status [--data-dir DIR] [--json]

Shows what 'cumulus up' started with this data dir: each piece (S3 server,
orchestrator, agent daemon), whether it runs, since when, how often its
supervisor restarted it after a crash, and the last crash (when, how it ended,
its last log line). Every crash is also in the piece's log under DIR/up/.

Flags:
  --data-dir DIR    data directory given to 'cumulus up' (default: as up's)
  --json            print {"dataDir", "pieces": [...]}
  -h, --help        show this help
  (--url ADDR does not apply: status reads the pid and crash files in DIR/up)`,

  certs: `Usage: cumulus certs [--dir DIR] [--host H ...] [--json]

Makes a private CA (ECDSA P-256, 10 years) and a server certificate it signs
(1 year) for the orchestrator's TLS, with the names clients dial: localhost,
127.0.0.1 and ::1, plus each --host. Keeps a CA that has more than 30 days
left and its key; reissues the certificate when it lacks a host, is near its
end or the CA changed. Keys are written mode 0600. 'cumulus up' does this
itself in DIR/tls of its data dir.

Flags:
  --dir DIR         where the files go (default ./cumulus-data/tls)
  --host H          a DNS name or IP address clients dial (repeatable)
  --json            print {"paths", "caFingerprint", "caCreated", "serverCreated", "hosts", ...}
  -h, --help        show this help
  (--url ADDR does not apply: certs works on files)

Examples:
  cumulus certs --dir /etc/cumulus/tls --host orch.example --host 10.0.0.5`,

  image: `Usage: cumulus image build [--repo REPO] [--force] [--install-prereqs] [--json]
       cumulus image load FILE [--json]

Makes the job image on this machine's Docker engine (what 'cumulus up' does
by itself when it finds none).

build: the base image (debootstrap --variant=minbase bookworm from this
machine's Debian mirror, read from /etc/apt/sources; CUMULUS_DEBIAN_MIRROR
overrides it; skipped when cumulus-base:bookworm exists), then the job image
from the Dockerfile and the cumulus Python package this copy carries, tagged
REPO:<content hash> and REPO:latest. Progress lines on stderr; prints the
image name. Needs the docker client, debootstrap and root (checked first).
load: 'docker load' of FILE (a 'docker save' archive); prints the names.

Flags:
  --repo REPO          repository of the built image (default
                       $CUMULUS_JOB_REPO, else cumulus-job)
  --force              rebuild the job image even when cached
  --install-prereqs    as root, install what is missing first
  --json               print {"image"} or {"images"}
  -h, --help           show this help
  (--url ADDR does not apply: image talks to this machine's Docker engine)

Examples:
  cumulus image build
  cumulus image load cumulus-job.tar`,

  orchestrator: `Usage: cumulus orchestrator [flags]

Runs the orchestrator (the gRPC control point). Its flags and configuration
are described by 'cumulus orchestrator --help'.`,

  agent: `Usage: cumulus agent SUBCOMMAND [flags]

Runs the worker agent (partition commands, expiry daemon). Its subcommands are
described by 'cumulus agent --help'.`,
};

/** Top-level usage text. */
export const MAIN_HELP = `Usage: cumulus COMMAND [flags]

Cumulus sends code to remote GPU machines as Docker Swarm services.

Commands:
  run            run a command on a worker with the current directory's files
  jobs           list jobs
  logs           print (and follow) a job's output
  kill           cancel jobs
  token          create, list and revoke user tokens (admin)
  login          save a user token for the CLI and SDKs
  workers        list worker nodes
  worker         add (join line), drain and remove workers (admin)
  up             start an orchestrator + local worker here and run the demo
  down           stop what 'cumulus up' started (keeps the data)
  status         what 'cumulus up' started: running since, restarts, crashes
  image          build the job image, or load it from a file
  certs          make a private CA and the orchestrator's TLS certificate
  version        print the version
  orchestrator   run the orchestrator server
  agent          run the worker agent
  help [COMMAND] show help

Exit status: 0 on success, 1 on an error (the message is one line on stderr,
"cumulus: ..."), 2 on a usage error; 'cumulus run' exits with the job's code.

${GLOBAL}

Run 'cumulus COMMAND --help' for a command's flags.`;
