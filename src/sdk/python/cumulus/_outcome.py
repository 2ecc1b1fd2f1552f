"""Encoding of a function's outcome as a job result, and decoding it back.

Result kinds (``ResultHeader.kind`` / ``ResultChunk.kind``):

``pickle``
    The return value, cloudpickle'd.
``error``
    The raised exception, as a plain pickle of a dict of built-in values:
    ``type`` (``module.QualName``), ``message``, ``traceback`` (formatted,
    without the runtime's own frames) and ``exception`` (the cloudpickle'd
    exception object, or ``None`` when it does not pickle). Keeping the
    exception in its own bytes means a client that cannot rebuild it still gets
    the type name, message and traceback.
"""

from __future__ import annotations

import pickle
import traceback
from types import TracebackType
from typing import IO, Any, Optional

from cumulus.errors import CumulusError, RemoteError

__all__ = [
    "KIND_VALUE",
    "KIND_ERROR",
    "ERROR_FORMAT",
    "RemoteTraceback",
    "dump_value",
    "encode_error",
    "decode_value",
    "decode_error",
]

KIND_VALUE = "pickle"
KIND_ERROR = "error"
ERROR_FORMAT = "cumulus.error/1"


class RemoteTraceback(CumulusError):
    """Set as ``__cause__`` of a rebuilt exception whose message cannot carry the traceback."""

    code = "REMOTE_TRACEBACK"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def dump_value(value: Any, out: IO[bytes]) -> None:
    """cloudpickle ``value`` into ``out`` (streamed, so a large result is not held twice)."""
    import cloudpickle

    cloudpickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the error
        return f"<unprintable {type(exc).__name__}>"


def encode_error(exc: BaseException, tb: Optional[TracebackType] = None) -> bytes:
    """The ``error`` result for ``exc``; ``tb`` is the traceback to show (default: the exception's)."""
    import cloudpickle

    kind = type(exc)
    formatted = "".join(traceback.format_exception(kind, exc, tb if tb is not None else exc.__traceback__))
    exc_bytes: Optional[bytes]
    try:
        dumped = cloudpickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(dumped)  # an exception with an odd __init__ may dump but not load
        exc_bytes = dumped
    except Exception:  # noqa: BLE001 - fall back to type name + message + traceback
        exc_bytes = None
    data = {
        "format": ERROR_FORMAT,
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": _safe_str(exc),
        "traceback": formatted,
        "exception": exc_bytes,
    }
    return pickle.dumps(data, protocol=4)


def decode_value(data: bytes) -> Any:
    """The return value from a ``pickle`` result."""
    return pickle.loads(data)


def _attach(exc: BaseException, tb_text: str, job_id: str) -> BaseException:
    header = f"Remote traceback (job {job_id}):\n{tb_text.rstrip()}"
    try:
        exc.remote_traceback = tb_text  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - exceptions with __slots__ keep no attributes
        pass
    # A plain exception's message is its args: put the traceback there, as promised.
    # Types with their own __str__ (KeyError, OSError, ...) would garble or ignore
    # new args, so they get the traceback as their cause (printed above them).
    if type(exc).__str__ is BaseException.__str__:
        exc.args = (f"{_safe_str(exc)}\n\n{header}",)
    else:
        exc.__cause__ = RemoteTraceback(header)
        if hasattr(exc, "add_note"):
            exc.add_note(f"(remote exception from job {job_id}; its traceback is the cause above)")
    return exc


def decode_error(data: bytes, job_id: str) -> BaseException:
    """The exception to raise for an ``error`` result.

    The original exception when its type can be rebuilt here (importable, or
    pickled by value), with the remote traceback in its message; otherwise a
    :class:`~cumulus.errors.RemoteError` naming the remote type.
    """
    try:
        info = pickle.loads(data)
    except Exception as err:  # noqa: BLE001
        return RemoteError("unknown", f"undecodable error result ({type(err).__name__}: {err})", "")
    if not isinstance(info, dict) or info.get("format") != ERROR_FORMAT:
        return RemoteError("unknown", "error result in an unknown format", "")
    tb_text = str(info.get("traceback") or "")
    exc: Any = None
    raw = info.get("exception")
    if isinstance(raw, bytes):
        try:
            exc = pickle.loads(raw)
        except Exception:  # noqa: BLE001 - the type is not importable here
            exc = None
    if not isinstance(exc, BaseException):
        return RemoteError(str(info.get("type")), str(info.get("message")), tb_text)
    return _attach(exc, tb_text, job_id)
