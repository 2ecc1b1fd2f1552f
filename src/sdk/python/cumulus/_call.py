"""The call payload: what ``spec.function`` carries from the client to the runtime.

``spec.function`` holds a small *envelope*, a plain pickle of a dict of
built-in values (so reading it needs no user code), that says

* ``call``: the cloudpickle'd ``(function, args, kwargs)``, inline when small,
  or ``None`` when it travels in the bundle at :data:`CALL_PATH` (big arguments
  would otherwise bloat every job listing),
* ``bundle``: whether the runtime must fetch the bundle first (``files=``,
  local modules, or the call itself),
* ``python``: the client's Python version (cloudpickle needs the same minor
  version on both sides; the runtime warns when they differ).

The runtime also accepts a bare cloudpickle'd ``(function, args, kwargs)``
tuple in ``spec.function`` (what the proto comment describes), for clients
that build it themselves.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import platform
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from cumulus.errors import NotPicklableError

__all__ = [
    "ENVELOPE_FORMAT",
    "CALL_PATH",
    "MODULES_DIR",
    "INLINE_CALL_LIMIT",
    "CallEnvelope",
    "PayloadError",
    "pickle_call",
    "defining_module",
    "python_version",
    "split_call",
]

#: Format tag of the envelope dict.
ENVELOPE_FORMAT = "cumulus.call/1"
#: Bundle path of the pickled call when it is not inline.
CALL_PATH = ".cumulus/call.pkl"
#: Bundle directory holding the caller's local modules (put on ``sys.path``).
MODULES_DIR = ".cumulus/python"
#: Largest pickled call kept inline in ``spec.function``.
INLINE_CALL_LIMIT = 64 * 1024

# register_pickle_by_value is process-wide: two submits at once must not
# unregister each other's modules mid-pickle.
_PICKLE_LOCK = threading.Lock()


class PayloadError(Exception):
    """``spec.function`` is not a call payload this runtime understands."""


@dataclass(frozen=True)
class CallEnvelope:
    """The decoded envelope (see the module docstring)."""

    call: Optional[bytes]
    bundle: bool
    python: str = ""

    def to_bytes(self) -> bytes:
        """The plain-pickle bytes stored in ``spec.function``."""
        data = {"format": ENVELOPE_FORMAT, "call": self.call, "bundle": self.bundle, "python": self.python}
        return pickle.dumps(data, protocol=4)

    @classmethod
    def from_bytes(cls, data: bytes) -> "CallEnvelope":
        """Decode ``spec.function``; a bare ``(fn, args, kwargs)`` pickle becomes an inline call.

        Raises :class:`PayloadError` for anything else.
        """
        try:
            value = pickle.loads(data)
        except Exception as err:
            raise PayloadError(f"spec.function is not a pickle: {type(err).__name__}: {err}") from None
        if isinstance(value, dict) and value.get("format") == ENVELOPE_FORMAT:
            call = value.get("call")
            if call is not None and not isinstance(call, bytes):
                raise PayloadError("envelope field 'call' is not bytes")
            if call is None and not value.get("bundle"):
                raise PayloadError("envelope has neither an inline call nor a bundle")
            return cls(call=call, bundle=bool(value.get("bundle")), python=str(value.get("python", "")))
        if isinstance(value, tuple) and len(value) == 3 and callable(value[0]):
            return cls(call=data, bundle=False)
        raise PayloadError(f"spec.function holds a {type(value).__name__}, not a Cumulus call payload")


def defining_module(fn: Callable[..., Any]) -> Optional[str]:
    """Name of the module that defines ``fn`` (through partials, bound methods, callable objects)."""
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.ismethod(target):
        target = target.__func__
    if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.isbuiltin(target)):
        target = type(target)
    name = getattr(target, "__module__", None)
    return name if isinstance(name, str) else None


def _dumps(obj: Any) -> bytes:
    import cloudpickle  # the client's only hard need for it; imported on first use

    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _culprit(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Tuple[str, Any, BaseException]:
    """Which part of the call does not pickle, and why (pickled one at a time)."""
    parts: Iterable[Tuple[str, Any]] = [("the function", fn)]
    parts = list(parts) + [(f"argument {i}", a) for i, a in enumerate(args)]
    parts += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
    for what, obj in parts:
        try:
            _dumps(obj)
        except Exception as err:  # noqa: BLE001 - any pickling failure names the culprit
            return what, obj, err
    raise AssertionError("every part pickles alone")  # pragma: no cover


def pickle_call(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    by_value: Sequence[ModuleType] = (),
) -> bytes:
    """cloudpickle ``(fn, args, kwargs)``, with the modules ``by_value`` pickled by value.

    Raises :class:`~cumulus.errors.NotPicklableError` naming the function,
    argument or keyword argument that cannot be pickled.
    """
    import cloudpickle

    call = (fn, tuple(args), dict(kwargs))
    with _PICKLE_LOCK:
        already = set(cloudpickle.list_registry_pickle_by_value())
        registered = []
        for module in by_value:
            if module.__name__ not in already:
                cloudpickle.register_pickle_by_value(module)
                registered.append(module)
        try:
            try:
                return _dumps(call)
            except Exception as err:  # noqa: BLE001 - pickle raises many types
                first: BaseException = err
            try:
                what, obj, cause = _culprit(fn, args, kwargs)
            except AssertionError:
                what, obj, cause = "the call", call, first
            raise NotPicklableError(
                f"cannot send the job: {what} ({type(obj).__module__}.{type(obj).__qualname__}) "
                f"cannot be pickled: {type(cause).__name__}: {cause}",
                what=what,
            ) from cause
        finally:
            for module in registered:
                cloudpickle.unregister_pickle_by_value(module)


def python_version() -> str:
    """``major.minor.micro`` of this interpreter."""
    return platform.python_version()


def split_call(call: bytes) -> Tuple[Optional[bytes], Dict[str, bytes]]:
    """Inline the call when small, else return it as a bundle file at :data:`CALL_PATH`."""
    if len(call) <= INLINE_CALL_LIMIT:
        return call, {}
    return None, {CALL_PATH: call}
