"""Function mode of the job runtime: ``python3 -m cumulus.runtime --function``.

1. ``FetchFunction``: the call payload (see :mod:`cumulus._call`); then, when
   it says so, ``FetchBundle`` into the working directory (``files=``, the
   caller's local modules, a large call).
2. ``chdir`` to the working directory; put the shipped modules
   (``.cumulus/python``) and the working directory first on ``sys.path``.
   For a fraction of a GPU, cap the ML frameworks' allocators to the
   partition (:func:`cumulus.gpu.apply_memory_cap`).
3. Unpickle and call ``fn(*args, **kwargs)`` in the main thread. No gRPC
   channel is open meanwhile, so a function that forks (data loaders,
   multiprocessing) inherits none. (With ``CUMULUS_LOG_STREAM=1``,
   :func:`cumulus.runtime.run` runs all of this in a child process whose
   output the parent streams; streaming from this process would lose the
   last lines when the function crashes it.)
4. ``ReportResult``: the return value (kind ``pickle``) or the exception
   (kind ``error``, see :mod:`cumulus._outcome`), pickled to a temporary file
   first so its size is known and a large result is never held twice.

Exit codes are listed in :mod:`cumulus.runtime`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Any, Iterator, Optional, Tuple

import grpc

from cumulus._call import CALL_PATH, MODULES_DIR, CallEnvelope, PayloadError
from cumulus._outcome import KIND_ERROR, KIND_VALUE, dump_value, encode_error
from cumulus._proto import cumulus_pb2 as pb2
from cumulus.gpu import apply_memory_cap
from cumulus.runtime import (
    EXIT_BAD_BUNDLE,
    EXIT_FUNCTION_RAISED,
    EXIT_SOFTWARE,
    REPORT_RESULT_METHOD,
    TOKEN_METADATA_KEY,
    BundleError,
    RuntimeConfig,
    WorkdirError,
    extract_bundle,
    fetch_bundle,
    fetch_function,
    is_unavailable,
    open_channel,
    status_failure,
)

__all__ = ["run_function", "report_result", "load_call"]

_PROG = "cumulus-runtime"
_CHUNK = 1024 * 1024


def _fetch(config: RuntimeConfig) -> CallEnvelope:
    """Fetch the payload (and the bundle it needs) into the working directory."""
    channel = open_channel(config)
    try:
        try:
            envelope = CallEnvelope.from_bytes(fetch_function(config, channel))
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
    finally:
        channel.close()


def _enter_workdir(workdir: str) -> None:
    try:
        os.chdir(workdir)
    except OSError as err:
        raise WorkdirError(f"cannot enter workdir {workdir}: {err.strerror}") from None
    modules = os.path.join(workdir, *MODULES_DIR.split("/"))
    for path in (workdir, modules):  # modules end up first
        if path not in sys.path:
            sys.path.insert(0, path)


def load_call(envelope: CallEnvelope, workdir: str) -> Tuple[Any, tuple, dict]:
    """Unpickle ``(fn, args, kwargs)`` from the envelope or the bundle's call file."""
    import pickle

    data = envelope.call
    if data is None:
        with open(os.path.join(workdir, *CALL_PATH.split("/")), "rb") as f:
            data = f.read()
    fn, args, kwargs = pickle.loads(data)
    if not callable(fn):
        raise TypeError(f"the job's function is a {type(fn).__name__}, not a callable")
    return fn, tuple(args), dict(kwargs)


def _chunks(header: pb2.ResultHeader, body: IO[bytes]) -> Iterator[pb2.ReportResultRequest]:
    yield pb2.ReportResultRequest(header=header)
    while True:
        block = body.read(_CHUNK)
        if not block:
            return
        yield pb2.ReportResultRequest(chunk=block)


def report_result(config: RuntimeConfig, kind: str, body: IO[bytes], size: int) -> None:
    """Stream ``size`` bytes of ``body`` as the job's result of ``kind``.

    Raises :class:`~cumulus.runtime.ResultRefusedError` when the orchestrator
    refuses it as too large, other :class:`~cumulus.runtime.RuntimeFailure`\\ s
    when it cannot be reached or refuses the token.

    A call cut by UNAVAILABLE (an orchestrator restart) is sent again from
    the start of ``body`` (which must be seekable) within
    ``config.retry_timeout`` seconds: the orchestrator replaces the stored
    result with the same bytes, so a repeat is harmless.
    """
    channel = open_channel(config)
    try:
        call = channel.stream_unary(
            REPORT_RESULT_METHOD,
            request_serializer=pb2.ReportResultRequest.SerializeToString,
            response_deserializer=pb2.ReportResultResponse.FromString,
        )
        header = pb2.ResultHeader(job_id=config.job_id, kind=kind, total_bytes=size)
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
        channel.close()


def _report_error(config: RuntimeConfig, exc: BaseException, tb: Optional[TracebackType], code: int) -> int:
    data = encode_error(exc, tb)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        report_result(config, KIND_ERROR, f, len(data))
    return code


def _user_frames(tb: Optional[TracebackType]) -> Optional[TracebackType]:
    """The traceback from the first frame outside this module (None if there is none)."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)  # as the interpreter does for sys.exit("message")
    return 1


def _warn_version(envelope: CallEnvelope) -> None:
    here = platform.python_version()
    if envelope.python and envelope.python.split(".")[:2] != here.split(".")[:2]:
        print(
            f"{_PROG}: warning: the function was pickled by Python {envelope.python}, this is {here}; "
            "cloudpickle needs the same minor version on both sides",
            file=sys.stderr,
        )


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not lose the result
            pass


def run_function(config: RuntimeConfig) -> int:
    """Fetch, load, call, report; returns the process exit code (see :mod:`cumulus.runtime`)."""
    envelope = _fetch(config)
    _enter_workdir(config.workdir)
    _warn_version(envelope)
    # Before unpickling: the call's arguments may already hold GPU tensors.
    apply_memory_cap()
    try:
        fn, args, kwargs = load_call(envelope, config.workdir)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is reported as the result
        print(
            f"{_PROG}: error: cannot load the function: {_first_line(exc)} "
            "(is every module it uses installed in the job image or shipped with it?)",
            file=sys.stderr,
        )
        return _report_error(config, exc, exc.__traceback__, EXIT_BAD_BUNDLE)
    try:
        value = fn(*args, **kwargs)
    except SystemExit as exc:
        _flush()
        return _exit_code(exc)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's exception is the result
        _flush()
        print(f"{_PROG}: the function raised {_first_line(exc)}", file=sys.stderr)
        # Skip the runtime's frames: the user's traceback starts in their function.
        tb = _user_frames(exc.__traceback__)
        return _report_error(config, exc, tb, EXIT_FUNCTION_RAISED)
    _flush()
    with tempfile.TemporaryFile() as f:
        try:
            dump_value(value, f)
        except Exception as exc:  # noqa: BLE001 - pickling fails in many ways
            err = TypeError(
                f"the function returned a {type(value).__module__}.{type(value).__qualname__}, "
                f"which cannot be pickled: {type(exc).__name__}: {exc}"
            )
            print(f"{_PROG}: error: {err}", file=sys.stderr)
            return _report_error(config, err, None, EXIT_SOFTWARE)
        size = f.tell()
        f.seek(0)
        report_result(config, KIND_VALUE, f, size)
    return 0
