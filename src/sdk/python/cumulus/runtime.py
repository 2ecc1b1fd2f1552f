"""Job-container runtime: fetch the job's bundle, then run the job's command or function.

Run inside the job image as::

    python3 -m cumulus.runtime -- CMD [ARGS...]     # command mode
    python3 -m cumulus.runtime --function           # function mode (Python SDK jobs)

Command mode calls ``/cumulus.v1.Runtime/FetchBundle`` on the orchestrator,
extracts the streamed gzipped tar into the working directory, ``chdir``\\ s
there and ``os.execvp``\\ s CMD. Because of the exec, CMD keeps the runtime's
pid: signals reach it directly and the container's exit code is CMD's own.

Function mode (:mod:`cumulus.runtime_function`) fetches the call payload
(``FetchFunction``), the bundle when the payload says there is one, calls the
function in the working directory and streams its pickled return value or
exception back (``ReportResult``).

Environment:

``CUMULUS_ORCHESTRATOR_URL``
    ``host:port`` of the orchestrator's gRPC server (required).
``CUMULUS_JOB_ID``
    The job's id (required).
``CUMULUS_JOB_TOKEN``
    The job's secret, sent as ``x-cumulus-job-token`` metadata (required; never
    printed). It stays in CMD's environment so ``cumulus.checkpoint`` can
    report to the orchestrator.
``CUMULUS_WORKDIR``
    Where the bundle is extracted and CMD runs (default ``/workspace``).
``CUMULUS_CONNECT_TIMEOUT``
    Seconds to wait for the orchestrator to accept the connection (default 30),
    so a job started while the orchestrator restarts still gets its bundle.
``CUMULUS_RETRY_TIMEOUT``
    Seconds a call cut by an orchestrator restart (UNAVAILABLE) is tried
    again, with backoff from 0.1 s doubling to 2 s (default 60). FetchBundle and
    FetchFunction resume after the bytes already received, ReportResult sends
    the whole result again (the orchestrator stores it once).
``CUMULUS_BUNDLE_MAX_BYTES``, ``CUMULUS_BUNDLE_MAX_FILES``
    How far the bundle may expand (default ``4G`` and 100000 files,
    directories and links): past either, extraction stops with exit code
    ``EXIT_BAD_BUNDLE`` and a message naming the limit, so a small gzip that
    expands without end cannot fill the worker's disk.
``CUMULUS_RUNTIME_DEBUG``
    ``1`` prints one line about the fetched bundle on stderr.
``CUMULUS_LOG_STREAM``
    ``1`` (set by the orchestrator): CMD, or function mode, runs as a child
    whose stdout/stderr this process streams over ``Runtime.StreamLogs``
    (:mod:`cumulus._logstream`); the child's exit status is the runtime's. In
    function mode this process does every gRPC call and the child, started
    before gRPC is imported, only runs the function (:mod:`cumulus._function_child`).
``CUMULUS_GPU_MEMORY``, ``CUMULUS_GPU_COUNT``, ``CUMULUS_DURATION``, ``CUMULUS_DEADLINE_MS``, ``CUMULUS_ATTEMPT``
    The job's partition and deadline, for the job's code (see :mod:`cumulus.context`).
``CUMULUS_PARTITION_IDS``, ``CUMULUS_GPU_DEVICES``, ``CUMULUS_GPU_UUIDS``, ``CUMULUS_GPU_MEMORY_BYTES``
    The job's partitions and GPUs (see :mod:`cumulus.context`). In function
    mode a fraction of a GPU also caps the ML frameworks' allocators before
    the function is loaded (:mod:`cumulus.gpu`); a command calls
    :func:`cumulus.gpu.apply_memory_cap` itself if it wants that second layer.

An empty stream (no chunk carries data) means the job has no bundle: nothing is
extracted. When a chunk carries ``total_bytes`` > 0, the stream must deliver
exactly that many bytes.

A bundle is rejected as a whole (exit 65, CMD does not run) when any member
has an absolute path or a ``..`` component, is a symlink or hard link that
resolves outside the working directory, or is a device file or FIFO.

Exit codes before CMD runs (after the exec the exit code is CMD's own), and
of function mode:

===  ==================================================================
 0   ``--help``; function mode: the function returned and its value was stored
 1   function mode: the function raised; the exception was stored as the result
64   usage: no command, an unknown option, or a required environment variable missing
65   bad bundle: not a gzipped tar, truncated, or an unsafe member; function
     mode also: the call payload cannot be read or unpickled (e.g. a module the
     function needs is missing in the image; the error is stored as the result)
69   orchestrator unreachable, or the connection dropped mid-stream
70   function mode: the return value cannot be pickled (a ``TypeError`` saying
     so is stored as the result)
73   the working directory cannot be created or written
74   function mode: the orchestrator refused the result (over
     ``max_result_bytes``; the job is FAILED with that reason)
76   the orchestrator answered with another error (e.g. NOT_FOUND)
77   bad token: the orchestrator said UNAUTHENTICATED or PERMISSION_DENIED
126  CMD found but cannot be executed (as a shell reports it)
127  CMD not found (as a shell reports it)
===  ==================================================================

In function mode ``sys.exit(n)`` inside the function ends the job with exit
code ``n`` and no result, as it would end a local script.

Each failure prints one line, ``cumulus-runtime: error: ...``, on stderr.
"""

from __future__ import annotations

import io
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Generator, Iterable, Iterator, List, Mapping, NoReturn, Optional, Sequence, cast

from cumulus._bytes import format_bytes, parse_bytes
from cumulus._retry import DEFAULT_RETRY_TIMEOUT, Backoff, Retrier
from cumulus._url import default_ca_pem, grpc_target, is_tls_url, new_channel as _new_channel

# grpc, protobuf and tarfile are imported where used: a function job's runtime
# imports this module, then starts the function's process before it pays for
# them (see run()), and that process imports this module for its exit codes.
if TYPE_CHECKING:
    import tarfile

    import grpc

__all__ = [
    "FETCH_BUNDLE_METHOD",
    "FETCH_FUNCTION_METHOD",
    "REPORT_RESULT_METHOD",
    "TOKEN_METADATA_KEY",
    "EXIT_FUNCTION_RAISED",
    "EXIT_USAGE",
    "EXIT_BAD_BUNDLE",
    "EXIT_SOFTWARE",
    "EXIT_RESULT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_WORKDIR",
    "EXIT_ORCHESTRATOR_ERROR",
    "EXIT_BAD_TOKEN",
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "RuntimeFailure",
    "UsageError",
    "BundleError",
    "UnreachableError",
    "WorkdirError",
    "OrchestratorError",
    "TokenError",
    "CommandError",
    "ResultRefusedError",
    "RuntimeConfig",
    "BundleStats",
    "status_failure",
    "is_unavailable",
    "open_channel",
    "new_channel",
    "probe",
    "fetch_bundle",
    "fetch_function",
    "extract_bundle",
    "exec_command",
    "main",
]

#: Full gRPC method path of the bundle download.
FETCH_BUNDLE_METHOD = "/cumulus.v1.Runtime/FetchBundle"
#: Full gRPC method path of the call payload download (function mode).
FETCH_FUNCTION_METHOD = "/cumulus.v1.Runtime/FetchFunction"
#: Full gRPC method path of the result upload (function mode).
REPORT_RESULT_METHOD = "/cumulus.v1.Runtime/ReportResult"
#: Metadata key that carries the job's token on every Runtime call.
TOKEN_METADATA_KEY = "x-cumulus-job-token"

#: Exit codes (sysexits.h values where one fits; 126/127 as a shell).
EXIT_FUNCTION_RAISED = 1
EXIT_USAGE = 64
EXIT_BAD_BUNDLE = 65
EXIT_SOFTWARE = 70
EXIT_RESULT_REFUSED = 74
EXIT_UNREACHABLE = 69
EXIT_WORKDIR = 73
EXIT_ORCHESTRATOR_ERROR = 76
EXIT_BAD_TOKEN = 77
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

_DEFAULT_WORKDIR = "/workspace"
_DEFAULT_CONNECT_TIMEOUT = 30.0
# Bundle chunks are small, but a generous limit keeps a future chunk-size change harmless.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_PROG = "cumulus-runtime"


class RuntimeFailure(Exception):
    """A failure before CMD runs; ``code`` is stable, ``exit_code`` is the process exit."""

    code = "RUNTIME_FAILURE"
    exit_code = 70


class UsageError(RuntimeFailure):
    """No command, or a required environment variable is missing."""

    code = "USAGE"
    exit_code = EXIT_USAGE


class BundleError(RuntimeFailure):
    """The bundle is not a valid gzipped tar, is truncated, or has an unsafe member."""

    code = "BAD_BUNDLE"
    exit_code = EXIT_BAD_BUNDLE


class UnreachableError(RuntimeFailure):
    """The orchestrator did not accept the connection, or dropped it."""

    code = "UNREACHABLE"
    exit_code = EXIT_UNREACHABLE


class WorkdirError(RuntimeFailure):
    """The working directory cannot be created or written."""

    code = "WORKDIR"
    exit_code = EXIT_WORKDIR


class OrchestratorError(RuntimeFailure):
    """The orchestrator answered FetchBundle with an unexpected gRPC status."""

    code = "ORCHESTRATOR_ERROR"
    exit_code = EXIT_ORCHESTRATOR_ERROR


class TokenError(RuntimeFailure):
    """The orchestrator refused the job token."""

    code = "BAD_TOKEN"
    exit_code = EXIT_BAD_TOKEN


class ResultRefusedError(RuntimeFailure):
    """The orchestrator refused the function's result (RESOURCE_EXHAUSTED: over its limit)."""

    code = "RESULT_REFUSED"
    exit_code = EXIT_RESULT_REFUSED


class CommandError(RuntimeFailure):
    """CMD could not be executed; ``exit_code`` is 126 or 127 as in a shell."""

    code = "COMMAND"

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


#: Default cap on the bytes a bundle may expand to (CUMULUS_BUNDLE_MAX_BYTES).
DEFAULT_BUNDLE_MAX_BYTES = 4 * 1024**3
#: Default cap on a bundle's members: files, directories, links (CUMULUS_BUNDLE_MAX_FILES).
DEFAULT_BUNDLE_MAX_FILES = 100_000


@dataclass(frozen=True)
class BundleLimits:
    """How far a bundle may expand: a 100 MiB gzip can hold terabytes of zeros."""

    max_bytes: int = DEFAULT_BUNDLE_MAX_BYTES
    max_files: int = DEFAULT_BUNDLE_MAX_FILES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BundleLimits":
        """Reads CUMULUS_BUNDLE_MAX_BYTES (a size: ``4G``, ``500MiB``) and
        CUMULUS_BUNDLE_MAX_FILES; raises :class:`UsageError` for a bad value."""
        raw_bytes = env.get("CUMULUS_BUNDLE_MAX_BYTES") or str(DEFAULT_BUNDLE_MAX_BYTES)
        max_bytes = parse_bytes(raw_bytes)
        if not max_bytes:
            raise UsageError(f"CUMULUS_BUNDLE_MAX_BYTES must be a size > 0 such as 4G, got {raw_bytes!r}")
        raw_files = env.get("CUMULUS_BUNDLE_MAX_FILES") or str(DEFAULT_BUNDLE_MAX_FILES)
        if not raw_files.isdigit() or int(raw_files) < 1:
            raise UsageError(f"CUMULUS_BUNDLE_MAX_FILES must be an integer > 0, got {raw_files!r}")
        return cls(max_bytes=max_bytes, max_files=int(raw_files))


@dataclass(frozen=True)
class RuntimeConfig:
    """Settings read from the container's environment (see the module docstring)."""

    target: str
    job_id: str
    token: str = field(repr=False)
    workdir: str = _DEFAULT_WORKDIR
    connect_timeout: float = _DEFAULT_CONNECT_TIMEOUT
    debug: bool = False
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT
    bundle_limits: BundleLimits = BundleLimits()
    #: The orchestrator serves TLS (a ``grpcs://`` address).
    tls: bool = False
    #: The CA to verify it against (``CUMULUS_CA_PEM`` or ``CUMULUS_CA_FILE``); ``None``: the system store.
    ca_pem: Optional[bytes] = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RuntimeConfig":
        """Parse and validate the environment; raises :class:`UsageError`."""
        missing = [
            name
            for name in ("CUMULUS_ORCHESTRATOR_URL", "CUMULUS_JOB_ID", "CUMULUS_JOB_TOKEN")
            if not env.get(name)
        ]
        if missing:
            raise UsageError(f"missing environment variable(s): {', '.join(missing)}")
        raw_timeout = env.get("CUMULUS_CONNECT_TIMEOUT") or str(_DEFAULT_CONNECT_TIMEOUT)
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise UsageError(f"CUMULUS_CONNECT_TIMEOUT must be a number > 0, got {raw_timeout!r}")
        raw_retry = env.get("CUMULUS_RETRY_TIMEOUT") or str(DEFAULT_RETRY_TIMEOUT)
        try:
            retry = float(raw_retry)
        except ValueError:
            retry = -1.0
        if not retry >= 0:
            raise UsageError(f"CUMULUS_RETRY_TIMEOUT must be a number >= 0, got {raw_retry!r}")
        return cls(
            target=grpc_target(env["CUMULUS_ORCHESTRATOR_URL"]),
            job_id=env["CUMULUS_JOB_ID"],
            token=env["CUMULUS_JOB_TOKEN"],
            workdir=os.path.abspath(env.get("CUMULUS_WORKDIR") or _DEFAULT_WORKDIR),
            connect_timeout=timeout,
            debug=env.get("CUMULUS_RUNTIME_DEBUG") == "1",
            retry_timeout=retry,
            bundle_limits=BundleLimits.from_env(env),
            tls=is_tls_url(env["CUMULUS_ORCHESTRATOR_URL"]),
            ca_pem=default_ca_pem(env) if is_tls_url(env["CUMULUS_ORCHESTRATOR_URL"]) else None,
        )

    def retrier(self) -> Retrier:
        """A fresh retry state for one call (see ``CUMULUS_RETRY_TIMEOUT``)."""
        return Retrier(Backoff(budget=self.retry_timeout))


@dataclass
class BundleStats:
    """What :func:`extract_bundle` did."""

    compressed_bytes: int = 0
    #: Bytes of regular files written.
    expanded_bytes: int = 0
    files: int = 0
    dirs: int = 0
    links: int = 0


def status_failure(err: grpc.RpcError, method: str = "FetchBundle") -> RuntimeFailure:
    """The :class:`RuntimeFailure` for a failed Runtime call."""
    import grpc

    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or "no details"
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return TokenError(f"orchestrator refused the job token ({code.name}: {details})")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return UnreachableError(f"orchestrator connection failed ({code.name}: {details})")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and method == "ReportResult":
        return ResultRefusedError(f"the orchestrator refused the result: {details}")
    name = code.name if code is not None else "UNKNOWN"
    return OrchestratorError(f"{method} failed ({name}: {details})")


def open_channel(config: RuntimeConfig) -> grpc.Channel:
    """A channel to the orchestrator, connected within ``config.connect_timeout`` s.

    Raises :class:`UnreachableError`; the caller closes the channel.
    """
    channel = new_channel(config)
    if not probe(channel, config.connect_timeout, wait_for_ready=True):
        channel.close()
        raise _unreachable(config)
    return channel


def new_channel(config: RuntimeConfig) -> grpc.Channel:
    """A channel to the orchestrator, not yet connected (its first call connects)."""
    options = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        # The orchestrator is reached directly (host network); a proxy from the env would break it.
        ("grpc.enable_http_proxy", 0),
        # Reconnect within ~2 s of a restarted orchestrator (grpc's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    return _new_channel(config.target, config.tls, options, config.ca_pem)


def _unreachable(config: RuntimeConfig) -> UnreachableError:
    return UnreachableError(
        f"orchestrator unreachable at {config.target} (no connection within {config.connect_timeout:g} s)"
    )


#: Method the connection probe calls: any answer, even UNIMPLEMENTED, proves a live server.
HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"


def probe(channel: grpc.Channel, timeout: float, wait_for_ready: bool) -> bool:
    """True when a gRPC server answers on ``channel`` within ``timeout`` seconds.

    Calls ``grpc.health.v1.Health/Check``; every status but UNAVAILABLE and
    DEADLINE_EXCEEDED counts as an answer. With ``wait_for_ready`` it keeps
    trying to connect until the timeout (an orchestrator that is restarting);
    without, a refused connection fails at once. (Not
    ``grpc.channel_ready_future``: its connectivity watcher makes every later
    ``channel.close()`` block for up to 200 ms.)
    """
    import grpc

    check = channel.unary_unary(
        HEALTH_CHECK_METHOD,
        request_serializer=lambda _: b"",  # an empty HealthCheckRequest: the whole server
        response_deserializer=lambda raw: raw,
    )
    try:
        check(b"", timeout=timeout, wait_for_ready=wait_for_ready)
    except grpc.RpcError as err:
        code = err.code() if hasattr(err, "code") else None
        return code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return True


def is_unavailable(err: grpc.RpcError) -> bool:
    """True for a failure an orchestrator restart causes (the call may be tried again)."""
    import grpc

    code = err.code() if hasattr(err, "code") else None
    return code == grpc.StatusCode.UNAVAILABLE


def _fetch_stream(
    config: RuntimeConfig,
    channel: Optional[grpc.Channel],
    method: str,
    request: bytes,
    what: str,
    connect: bool = False,
) -> Generator[bytes, None, None]:
    """Yield the data of a BundleChunk stream, checking the announced byte count.

    A stream cut by UNAVAILABLE (an orchestrator restart) is asked again
    within ``config.retry_timeout`` and the bytes already yielded are skipped:
    the orchestrator serves the same stored bytes each time. With ``connect``
    the first call waits up to ``config.connect_timeout`` for the channel to
    connect (the job of :func:`probe`, without its round trip).
    """
    import grpc

    from cumulus._runtime_wire import decode_bundle_chunk

    own = channel is None
    chan = open_channel(config) if channel is None else channel
    try:
        # ``request`` is encoded already (cumulus._runtime_wire: no protobuf import).
        call = chan.unary_stream(f"/cumulus.v1.Runtime/{method}", response_deserializer=decode_bundle_chunk)
        retrier = config.retrier()
        expected = 0
        received = 0
        while True:
            if connect:
                responses = call(
                    request,
                    metadata=((TOKEN_METADATA_KEY, config.token),),
                    wait_for_ready=True,
                    timeout=config.connect_timeout,
                )
            else:
                responses = call(request, metadata=((TOKEN_METADATA_KEY, config.token),))
            skip = received  # bytes of this attempt already yielded by an earlier one
            try:
                for data, total_bytes in responses:
                    if not expected and total_bytes:
                        expected = total_bytes
                    if skip:
                        cut = min(skip, len(data))
                        data, skip = data[cut:], skip - cut
                    if data:
                        received += len(data)
                        retrier.reset()
                        yield data
                break
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else None
                if connect and not received and code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise _unreachable(config) from None
                connect = False
                delay = retrier.next_delay() if is_unavailable(err) else None
                if delay is None:
                    raise status_failure(err, method) from None
                responses.cancel()
                time.sleep(delay)
        if expected and received != expected:
            raise BundleError(f"{what} truncated: received {received} of {expected} bytes")
    finally:
        if own:
            chan.close()


def fetch_bundle(config: RuntimeConfig, channel: Optional[grpc.Channel] = None) -> Generator[bytes, None, None]:
    """Yield the job bundle's bytes as the orchestrator streams them.

    Without ``channel``, waits up to ``config.connect_timeout`` seconds for a
    connection of its own, then follows the stream to its end. Raises
    :class:`UnreachableError`, :class:`TokenError`, :class:`OrchestratorError`,
    or :class:`BundleError` when the byte count disagrees with ``total_bytes``.
    """
    from cumulus._runtime_wire import encode_job_request

    return _fetch_stream(config, channel, "FetchBundle", encode_job_request(config.job_id), "bundle")


def fetch_function(config: RuntimeConfig, channel: Optional[grpc.Channel] = None, *, connect: bool = False) -> bytes:
    """The job's ``spec.function`` bytes (FetchFunction); errors as :func:`fetch_bundle`.

    With ``connect`` (on a channel from :func:`new_channel`) the call itself
    waits up to ``config.connect_timeout`` s for the connection and raises
    :class:`UnreachableError` as :func:`open_channel` does.
    """
    from cumulus._runtime_wire import encode_job_request

    request = encode_job_request(config.job_id)
    return b"".join(_fetch_stream(config, channel, "FetchFunction", request, "function payload", connect))


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (tarfile's stream mode reads it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.consumed += n
        return n

    def drain(self) -> None:
        """Read to the end, so the stream's own checks (byte count, status) run."""
        self.consumed += len(self._buf)
        self._buf = b""
        for chunk in self._chunks:
            self.consumed += len(chunk)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _member_parts(name: str) -> List[str]:
    """Validated path components of a tar member name (empty for the root itself)."""
    if name.startswith("/") or name.startswith("\\"):
        raise BundleError(f"bundle member has an absolute path: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"bundle member escapes the workdir with '..': {name!r}")
    return parts


def _ensure_dir(root: str, parts: Sequence[str]) -> str:
    """Create root/parts... one level at a time; every level must resolve inside root.

    Checking each level against the real file system (not the name) is what stops
    a chain of earlier in-bundle symlinks from leading a write outside the root.
    """
    cur = root
    for part in parts:
        nxt = os.path.join(cur, part)
        if os.path.lexists(nxt):
            real = os.path.realpath(nxt)
            if not _inside(root, real):
                raise BundleError(f"bundle path leads outside the workdir through a link: {nxt!r}")
            if not os.path.isdir(real):
                raise BundleError(f"bundle path uses a non-directory as a directory: {nxt!r}")
            cur = real
            continue
        try:
            os.mkdir(nxt, 0o755)
        except OSError as err:
            raise WorkdirError(f"cannot create {nxt}: {err.strerror}") from None
        cur = nxt
    return cur


def _clear_slot(path: str, display: str) -> None:
    """Remove a file or link in the way of a new member; a directory there is a conflict."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        raise BundleError(f"bundle member would replace a directory: {display!r}")
    try:
        os.unlink(path)
    except OSError as err:
        raise WorkdirError(f"cannot replace {path}: {err.strerror}") from None


def _write_file(src: IO[bytes], path: str, member: tarfile.TarInfo) -> None:
    try:
        # O_NOFOLLOW: the slot was cleared, so a link appearing here is never followed.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as dst:
            while True:
                block = src.read(1 << 16)
                if not block:
                    break
                dst.write(block)
        # Never setuid/setgid/sticky; the owner can always read and write.
        os.chmod(path, (member.mode & 0o777) | 0o600)
        os.utime(path, (member.mtime, member.mtime))
    except OSError as err:
        raise WorkdirError(f"cannot write {path}: {err.strerror}") from None


def extract_bundle(chunks: Iterable[bytes], dest: str, limits: BundleLimits = BundleLimits()) -> BundleStats:
    """Safely extract a gzipped tar given as byte chunks into ``dest``.

    Rejects (with :class:`BundleError`) absolute names, ``..`` components, links
    that resolve outside ``dest``, device files or FIFOs, and a bundle that
    expands past ``limits`` (checked before each member is written). An empty
    stream extracts nothing. Raises :class:`WorkdirError` when ``dest`` is not
    writable.
    """
    import tarfile

    stats = BundleStats()
    iterator = iter(chunks)
    first = next(iterator, None)
    while first is not None and not first:
        first = next(iterator, None)
    try:
        os.makedirs(dest, exist_ok=True)
    except OSError as err:
        raise WorkdirError(f"cannot create workdir {dest}: {err.strerror}") from None
    if first is None:
        return stats
    root = os.path.realpath(dest)
    head: bytes = first

    def _all() -> Iterator[bytes]:
        yield head
        yield from iterator

    reader = _ChunkReader(_all())
    symlinks: List[str] = []
    try:
        with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|gz") as archive:
            for member in archive:
                _check_limits(member, stats, limits)
                _extract_member(archive, member, root, stats, symlinks)
        reader.drain()
    except (tarfile.TarError, zlib.error, EOFError) as err:
        raise BundleError(f"bundle is not a valid gzipped tar: {err}") from None
    # Links were checked when made, but a later member can change what an earlier
    # dangling link resolves to: check them all again against the final tree.
    for link in symlinks:
        if not _inside(root, os.path.realpath(link)):
            os.unlink(link)
            raise BundleError(f"bundle symlink resolves outside the workdir: {link!r}")
    stats.compressed_bytes = reader.consumed
    return stats


def _check_limits(member: tarfile.TarInfo, stats: BundleStats, limits: BundleLimits) -> None:
    if stats.files + stats.dirs + stats.links + 1 > limits.max_files:
        raise BundleError(
            f"bundle has more than {limits.max_files} files, directories and links "
            "(the limit CUMULUS_BUNDLE_MAX_FILES)"
        )
    if member.isreg() and stats.expanded_bytes + member.size > limits.max_bytes:
        raise BundleError(
            f"bundle expands to more than {format_bytes(limits.max_bytes)} "
            f"(the limit CUMULUS_BUNDLE_MAX_BYTES) at {member.name!r}"
        )


def _extract_member(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: str,
    stats: BundleStats,
    symlinks: List[str],
) -> None:
    name = member.name
    if member.ischr() or member.isblk():
        raise BundleError(f"bundle member is a device file: {name!r}")
    if member.isfifo():
        raise BundleError(f"bundle member is a FIFO: {name!r}")
    parts = _member_parts(name)
    if not parts:
        return  # the archive's own "." entry
    if member.isdir():
        _ensure_dir(root, parts)
        stats.dirs += 1
        return
    parent = _ensure_dir(root, parts[:-1])
    path = os.path.join(parent, parts[-1])
    if member.isreg():
        _clear_slot(path, name)
        src = archive.extractfile(member)
        if src is None:
            raise BundleError(f"bundle member has no data: {name!r}")
        _write_file(src, path, member)
        stats.files += 1
        stats.expanded_bytes += member.size
    elif member.issym():
        target = member.linkname
        if not target or target.startswith("/"):
            raise BundleError(f"bundle symlink has an absolute target: {name!r} -> {target!r}")
        lexical = os.path.normpath(os.path.join(parent, target))
        if not _inside(root, lexical):
            raise BundleError(f"bundle symlink points outside the workdir: {name!r} -> {target!r}")
        _clear_slot(path, name)
        try:
            os.symlink(target, path)
        except OSError as err:
            raise WorkdirError(f"cannot create symlink {path}: {err.strerror}") from None
        if not _inside(root, os.path.realpath(path)):
            os.unlink(path)
            raise BundleError(f"bundle symlink resolves outside the workdir: {name!r} -> {target!r}")
        symlinks.append(path)
        stats.links += 1
    elif member.islnk():
        # Hard link names are archive paths of an earlier member.
        target_parts = _member_parts(member.linkname)
        target = os.path.join(root, *target_parts) if target_parts else root
        real = os.path.realpath(target)
        if not _inside(root, real) or not os.path.isfile(real) or os.path.islink(target):
            raise BundleError(
                f"bundle hard link target is not an extracted file: {name!r} -> {member.linkname!r}"
            )
        _clear_slot(path, name)
        try:
            os.link(real, path, follow_symlinks=False)
        except OSError as err:
            raise WorkdirError(f"cannot create hard link {path}: {err.strerror}") from None
        stats.links += 1
    else:
        raise BundleError(f"bundle member has an unsupported type: {name!r}")


def exec_command(argv: Sequence[str]) -> NoReturn:
    """Replace this process with ``argv`` (searched on PATH like a shell).

    Raises :class:`CommandError` with exit code 127 (not found) or 126 (not
    executable); on success it never returns.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], list(argv))
    except FileNotFoundError:
        raise CommandError(f"command not found: {argv[0]}", EXIT_NOT_FOUND) from None
    except PermissionError:
        raise CommandError(f"permission denied: {argv[0]}", EXIT_NOT_EXECUTABLE) from None
    except OSError as err:
        raise CommandError(f"cannot execute {argv[0]}: {err.strerror}", EXIT_NOT_EXECUTABLE) from None
    raise AssertionError("os.execvp returned")  # pragma: no cover


_USAGE = """usage: python3 -m cumulus.runtime -- CMD [ARGS...]
       python3 -m cumulus.runtime --function

Fetch the job bundle from the orchestrator (CUMULUS_ORCHESTRATOR_URL,
CUMULUS_JOB_ID, CUMULUS_JOB_TOKEN), extract it into CUMULUS_WORKDIR
(default /workspace), then exec CMD there; or, with --function, fetch the
job's pickled Python call, run it there and send back its result. See the
module docstring of cumulus.runtime for all settings and exit codes.
"""

_SYNOPSIS = "usage: python3 -m cumulus.runtime -- CMD [ARGS...] | --function"


def _parse_command(args: Sequence[str]) -> Optional[List[str]]:
    """CMD for command mode, or ``None`` for ``--function``."""
    command = list(args)
    if command and command[0] == "--function":
        if len(command) > 1:
            raise UsageError(f"--function takes no arguments ({_SYNOPSIS})")
        return None
    if command and command[0] == "--":
        command = command[1:]
    elif command and command[0].startswith("-"):
        # Options are reserved for the runtime; never run them as a command by accident.
        raise UsageError(f"unknown option {command[0]} ({_SYNOPSIS})")
    if not command:
        raise UsageError(f"no command given ({_SYNOPSIS})")
    return command


def run(args: Sequence[str], env: Mapping[str, str]) -> int:
    """Command mode: fetch, extract, chdir and exec (never returns); function
    mode: run the call and return the exit code (streamed: end the process
    with it). Raises :class:`RuntimeFailure`."""
    command = _parse_command(args)
    config = RuntimeConfig.from_env(env)
    if command is None:
        if env.get("CUMULUS_LOG_STREAM") == "1":
            # Stream from a parent that outlives the function: a function that
            # crashes its process (segfault, os._exit, OOM) would take its last,
            # unsent lines with it. The child only runs the function, and
            # starts before this process imports gRPC, so the two start-ups overlap.
            os.environ.pop("CUMULUS_LOG_STREAM", None)
            from cumulus._function_child import FunctionChild
            from cumulus._pipes import flush_stdio

            child = FunctionChild.spawn(os.environ)
            from cumulus.runtime_function import run_function_streamed

            code = run_function_streamed(config, env, child)
            # This process ran no user code and its work is acked: the interpreter's
            # teardown (gRPC's threads, every module) would only delay the job's end.
            flush_stdio()
            os._exit(code)
        from cumulus.runtime_function import run_function  # only function jobs pay for its imports

        return run_function(config)
    # One channel (one connection, one health probe) carries the bundle and,
    # when streaming, the log; an exec'd command gets none, so it is closed first.
    streamed = env.get("CUMULUS_LOG_STREAM") == "1"
    channel = open_channel(config)
    try:
        _fetch_into_workdir(config, channel)
        if streamed:
            return _run_streamed(command, config, env, channel)
    finally:
        channel.close()
    exec_command(command)


def _fetch_into_workdir(config: "RuntimeConfig", channel: grpc.Channel) -> None:
    """Fetches and extracts the bundle into ``config.workdir`` and enters it."""
    started = time.monotonic()
    stream = fetch_bundle(config, channel)
    try:
        stats = extract_bundle(stream, config.workdir, config.bundle_limits)
    finally:
        stream.close()  # ends the call even when extraction stopped early
    try:
        os.chdir(config.workdir)
    except OSError as err:
        raise WorkdirError(f"cannot enter workdir {config.workdir}: {err.strerror}") from None
    if config.debug:
        print(
            f"{_PROG}: bundle {stats.compressed_bytes} bytes, {stats.files} files, "
            f"{stats.dirs} dirs, {stats.links} links in {time.monotonic() - started:.3f} s",
            file=sys.stderr,
        )


def _run_streamed(
    command: List[str], config: "RuntimeConfig", env: Mapping[str, str], channel: Optional[grpc.Channel] = None
) -> int:
    """Runs the command as a child whose output goes over Runtime.StreamLogs
    (see cumulus._logstream) on ``channel`` (a new one if None); returns its exit status."""
    from cumulus._logstream import run_streamed

    attempt = int(env.get("CUMULUS_ATTEMPT", "1") or "1")
    own = channel is None
    chan = open_channel(config) if channel is None else channel
    try:
        return run_streamed(command, chan, config.job_id, attempt, config.token)
    except FileNotFoundError:
        raise CommandError(f"command not found: {command[0]}", EXIT_NOT_FOUND) from None
    except PermissionError:
        raise CommandError(f"permission denied: {command[0]}", EXIT_NOT_EXECUTABLE) from None
    finally:
        if own:
            chan.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python3 -m cumulus.runtime``; returns an exit code on failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0
    try:
        return run(args, os.environ)
    except RuntimeFailure as failure:
        print(f"{_PROG}: error: {failure}", file=sys.stderr)
        return failure.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: function mode
    # imports cumulus.runtime, and its error classes must be the ones caught.
    from cumulus.runtime import main as _main

    sys.exit(_main())
