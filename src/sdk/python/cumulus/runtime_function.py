"""Function mode of the job runtime: ``python3 -m cumulus.runtime --function``.

1. ``FetchFunction``: the call payload (see :mod:`cumulus._call`); then, when
   it says so, ``FetchBundle`` into the working directory (``files=``, the
   caller's local modules, a large call).
2. ``chdir`` to the working directory; put the shipped modules
   (``.cumulus/python``) and the working directory first on ``sys.path``.
   For a fraction of a GPU, cap the ML frameworks' allocators to the
   partition (:func:`cumulus.gpu.apply_memory_cap`).
3. Unpickle and call ``fn(*args, **kwargs)`` in the main thread
   (:func:`cumulus._function_child.execute`). No gRPC channel is open
   meanwhile in that process, so a function that forks (data loaders,
   multiprocessing) inherits none.
4. ``ReportResult``: the return value (kind ``pickle``) or the exception
   (kind ``error``, see :mod:`cumulus._outcome`), pickled to a temporary file
   first so its size is known and a large result is never held twice.

With ``CUMULUS_LOG_STREAM=1`` (:func:`run_function_streamed`) steps 3 runs in
a child process that imports no gRPC (:mod:`cumulus._function_child`) and
this process does 1, 2's fetching and 4 and streams the child's output:
streaming from the function's own process would lose the last lines when the
function crashes it. Without it (:func:`run_function`) one process does all.

Exit codes are listed in :mod:`cumulus.runtime`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from typing import IO, Iterator, Mapping, Optional, Tuple

import grpc

from cumulus._call import CALL_PATH, CallEnvelope, PayloadError
from cumulus._function_child import FunctionChild, execute
from cumulus._runtime_wire import encode_result_chunk, encode_result_header
from cumulus.runtime import (
    REPORT_RESULT_METHOD,
    TOKEN_METADATA_KEY,
    BundleError,
    RuntimeConfig,
    RuntimeFailure,
    WorkdirError,
    extract_bundle,
    fetch_bundle,
    fetch_function,
    is_unavailable,
    new_channel,
    open_channel,
    status_failure,
)

__all__ = ["run_function", "run_function_streamed", "report_result"]

_PROG = "cumulus-runtime"
_CHUNK = 1024 * 1024


def _prepare(config: RuntimeConfig, channel: grpc.Channel, payload: bytes) -> CallEnvelope:
    """Decode the payload and fetch the bundle it needs into the working directory."""
    try:
        envelope = CallEnvelope.from_bytes(payload)
    except PayloadError as err:
        raise BundleError(str(err)) from None
    if envelope.bundle:
        stream = fetch_bundle(config, channel)
        try:
            extract_bundle(stream, config.workdir, config.bundle_limits)
        finally:
            stream.close()
    else:
        try:
            os.makedirs(config.workdir, exist_ok=True)
        except OSError as err:
            raise WorkdirError(f"cannot create workdir {config.workdir}: {err.strerror}") from None
    return envelope


def _call_source(envelope: CallEnvelope, workdir: str) -> Tuple[Optional[bytes], str]:
    """The inline call, or the path of the bundle's call file."""
    if envelope.call is not None:
        return envelope.call, ""
    return None, os.path.join(workdir, *CALL_PATH.split("/"))


def _chunks(header: bytes, body: IO[bytes]) -> Iterator[bytes]:
    """ReportResult's requests, encoded: the header, then the body in chunks."""
    yield header
    while True:
        block = body.read(_CHUNK)
        if not block:
            return
        yield encode_result_chunk(block)


def report_result(
    config: RuntimeConfig, kind: str, body: IO[bytes], size: int, channel: Optional[grpc.Channel] = None
) -> None:
    """Stream ``size`` bytes of ``body`` as the job's result of ``kind``.

    On ``channel``, or on a channel of its own (opened and closed here) when None.

    Raises :class:`~cumulus.runtime.ResultRefusedError` when the orchestrator
    refuses it as too large, other :class:`~cumulus.runtime.RuntimeFailure`\\ s
    when it cannot be reached or refuses the token.

    A call cut by UNAVAILABLE (an orchestrator restart) is sent again from
    the start of ``body`` (which must be seekable) within
    ``config.retry_timeout`` seconds: the orchestrator replaces the stored
    result with the same bytes, so a repeat is harmless.
    """
    chan = open_channel(config) if channel is None else channel
    try:
        # Requests encoded by cumulus._runtime_wire; the (empty) reply is not read.
        call = chan.stream_unary(REPORT_RESULT_METHOD)
        header = encode_result_header(config.job_id, kind, size)
        start = body.tell()
        retrier = config.retrier()
        while True:
            try:
                call(_chunks(header, body), metadata=((TOKEN_METADATA_KEY, config.token),))
                return
            except grpc.RpcError as err:
                delay = retrier.next_delay() if is_unavailable(err) else None
                if delay is None:
                    raise status_failure(err, "ReportResult") from None
                time.sleep(delay)
                body.seek(start)
    finally:
        if channel is None:
            chan.close()


def _report_file(config: RuntimeConfig, kind: str, body: IO[bytes], channel: Optional[grpc.Channel] = None) -> None:
    """Report the outcome ``body`` holds from its start to its end."""
    size = body.seek(0, os.SEEK_END)
    body.seek(0)
    report_result(config, kind, body, size, channel)


def _warn_version(envelope: CallEnvelope) -> None:
    here = platform.python_version()
    if envelope.python and envelope.python.split(".")[:2] != here.split(".")[:2]:
        print(
            f"{_PROG}: warning: the function was pickled by Python {envelope.python}, this is {here}; "
            "cloudpickle needs the same minor version on both sides",
            file=sys.stderr,
        )


def run_function(config: RuntimeConfig) -> int:
    """Fetch, load, call, report in this process; returns the process exit code (see :mod:`cumulus.runtime`)."""
    channel = open_channel(config)
    try:
        envelope = _prepare(config, channel, fetch_function(config, channel))
    finally:
        channel.close()
    _warn_version(envelope)
    call, call_path = _call_source(envelope, config.workdir)
    with tempfile.TemporaryFile() as out:
        code, kind = execute(config.workdir, call, call_path, out)
        if kind is not None:
            _report_file(config, kind, out)
    return code


def _print_failure(failure: RuntimeFailure) -> int:
    print(f"{_PROG}: error: {failure}", file=sys.stderr)
    return failure.exit_code


def run_function_streamed(config: RuntimeConfig, env: Mapping[str, str], child: FunctionChild) -> int:
    """The parent of a streamed function job: all gRPC here, the function in ``child``.

    One channel carries the call, the bundle, the log and the result. Returns
    the exit code: the child's, or the parent's own failure's once the child
    started (printed into the streamed log). Raises
    :class:`~cumulus.runtime.RuntimeFailure` when the call cannot be fetched,
    after the child ended quietly and fds 1 and 2 are restored.
    """
    from cumulus._logstream import LogStreamer

    attempt = int(env.get("CUMULUS_ATTEMPT", "1") or "1")
    channel = new_channel(config)
    try:
        try:
            # Waits for the connection itself: no separate probe round trip.
            payload = fetch_function(config, channel, connect=True)
        except BaseException:
            child.abandon()
            raise
        streamer = LogStreamer(channel, config.job_id, attempt, config.token).start(child.pipes)
        code: Optional[int] = None  # None: no end to announce (the parent itself failed)
        try:
            code = _supervise(config, channel, child, payload)
        finally:
            child.cancel()  # a no-op after the order; else the child exits quietly
            child.wait()
            streamer.close(timeout=30, exit_code=code)
        return code
    finally:
        child.outcome_file.close()
        channel.close()


def _supervise(config: RuntimeConfig, channel: grpc.Channel, child: FunctionChild, payload: bytes) -> int:
    """Hand the call to the child, report its outcome; the exit code."""
    try:
        envelope = _prepare(config, channel, payload)
    except RuntimeFailure as failure:
        return _print_failure(failure)
    _warn_version(envelope)
    call, call_path = _call_source(envelope, config.workdir)
    if not child.send(config.workdir, call, call_path):
        return child.wait()  # it ended before its order (SIGTERM)
    kind = child.outcome()
    if kind is not None:
        # While the child exits (its atexit handlers, the interpreter's teardown).
        try:
            _report_file(config, kind, child.outcome_file, channel)
        except RuntimeFailure as failure:
            child.wait()
            return _print_failure(failure)
    return child.wait()
