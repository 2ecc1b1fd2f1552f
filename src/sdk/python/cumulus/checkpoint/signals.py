"""Preemption: what happens between SIGTERM and SIGKILL.

A job's container gets SIGTERM when it is killed, when its partition
expires, or when its node is drained; SIGKILL follows after the stop grace
period (``CUMULUS_STOP_GRACE_PERIOD`` seconds, default 10). Within it:

1. **Final checkpoint.** When a :class:`~cumulus.checkpoint.Checkpointer`
   with ``save_on_preempt=True`` (the default) is in use, the handler only
   takes note; the next ``maybe_save(state, step)`` -- the end of a training
   step, where the state is consistent -- saves that step. Without one, the
   hooks run at once.
2. **Hooks** registered with :func:`on_preempt` run, in order, on a helper
   thread, together bounded by 60 % of the grace period (a hook still
   running then is abandoned).
3. **L2 flush**: pending uploads get until one second before the grace period
   ends.
4. The process exits with status 143 (128 + SIGTERM), as if the signal had
   killed it, so the orchestrator sees a preemption, not a failure.

A step boundary that does not come within 60 % of the grace period (a very
long step, or a loop that stopped calling ``maybe_save``) does not block the
exit: the hooks then run from a watchdog thread.

The handler is installed on first use (``on_preempt``, a ``Checkpointer``),
from the main thread, and replaces any earlier SIGTERM handler.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, TypeVar

from cumulus.checkpoint.errors import CheckpointConfigError

__all__ = [
    "EXIT_PREEMPTED",
    "on_preempt",
    "preempted",
    "install",
    "critical",
    "register_flusher",
    "want_safe_points",
    "run_preemption",
]

_log = logging.getLogger("cumulus.checkpoint")

#: Exit status after a preemption: 128 + SIGTERM.
EXIT_PREEMPTED = 143
_HOOK_SHARE = 0.6
_FLUSH_MARGIN = 1.0

F = TypeVar("F", bound=Callable[[], Any])

_lock = threading.RLock()
_hooks: List[Callable[[], Any]] = []
_flushers: "weakref.WeakSet[Any]" = weakref.WeakSet()
_installed = False
_safe_points = 0
_requested = threading.Event()
_started = False
_signal_time = 0.0
_depth = 0
_deferred = False


def _grace() -> float:
    raw = os.environ.get("CUMULUS_STOP_GRACE_PERIOD", "")
    try:
        value = float(raw) if raw else 10.0
    except ValueError:
        value = 10.0
    return value if value > 0 else 10.0


def on_preempt(fn: F) -> F:
    """Run ``fn()`` when the job is preempted (SIGTERM); usable as a decorator.

    Hooks run in registration order on a helper thread while the main thread
    is paused, so they see a stable state. Typical use: save a final
    checkpoint when there is no :class:`~cumulus.checkpoint.Checkpointer`.
    Must first be called from the main thread (it installs the handler).

    >>> @on_preempt                                   # doctest: +SKIP
    ... def final() -> None:
    ...     save({"model": model}, step)
    """
    if not callable(fn):
        raise CheckpointConfigError("on_preempt: fn must be callable")
    install()
    with _lock:
        _hooks.append(fn)
    return fn


def preempted() -> bool:
    """True once SIGTERM was received (the process is about to exit)."""
    return _requested.is_set()


def install() -> None:
    """Install the SIGTERM handler (idempotent; main thread only the first time)."""
    global _installed
    with _lock:
        if _installed:
            return
        if threading.current_thread() is not threading.main_thread():
            raise CheckpointConfigError(
                "cumulus.checkpoint: the preemption handler must be installed from the main thread "
                "(call on_preempt() or create the Checkpointer there first)"
            )
        signal.signal(signal.SIGTERM, _handler)
        _installed = True


def want_safe_points() -> None:
    """Called by a Checkpointer: the final checkpoint waits for its next ``maybe_save``.

    Off the main thread (where no handler can be installed) it warns and does
    nothing: the Checkpointer then works without a final checkpoint on SIGTERM.
    """
    global _safe_points
    try:
        install()
    except CheckpointConfigError:
        _log.warning(
            "cumulus.checkpoint: Checkpointer created outside the main thread: no final checkpoint on "
            "SIGTERM unless on_preempt() is called from the main thread"
        )
        return
    with _lock:
        _safe_points += 1


def register_flusher(obj: Any) -> None:
    """``obj.flush(timeout)`` runs (weakly referenced) in step 3 of the sequence."""
    _flushers.add(obj)


@contextmanager
def critical() -> Iterator[None]:
    """A section of the main thread (a save or restore) the sequence must not start in."""
    global _depth, _deferred
    main = threading.current_thread() is threading.main_thread()
    if main:
        _depth += 1
    try:
        yield
    finally:
        if main:
            _depth -= 1
            if _depth == 0 and _deferred:
                _deferred = False
                run_preemption()


def _handler(signum: int, frame: Any) -> None:
    global _signal_time, _deferred
    if _requested.is_set():
        return  # a second SIGTERM: the sequence is under way
    _signal_time = time.monotonic()
    _requested.set()
    grace = _grace()
    if _safe_points:
        _log.warning(
            "cumulus.checkpoint: SIGTERM: saving a final checkpoint at the next step (%.1fs grace)", grace
        )
        threading.Thread(target=_watchdog, name="cumulus-ckpt-preempt", daemon=True).start()
        return
    _log.warning("cumulus.checkpoint: SIGTERM: running %d preemption hook(s) (%.1fs grace)", len(_hooks), grace)
    if _depth > 0:
        _deferred = True  # a save is half done on this very thread: finish it first
        return
    run_preemption()


def _watchdog() -> None:
    deadline = _signal_time + _HOOK_SHARE * _grace()
    time.sleep(max(0.0, deadline - time.monotonic()))
    with _lock:
        if _started:
            return
    _log.warning("cumulus.checkpoint: no step boundary within the grace period; running the hooks now")
    run_preemption()


def run_preemption() -> None:
    """Hooks, then the L2 flush, then exit 143 (see the module docstring).

    Never returns, except to a second caller off the main thread (the
    sequence is then running elsewhere).
    """
    global _started
    with _lock:
        if _started:
            if threading.current_thread() is threading.main_thread():
                # The watchdog runs the sequence; keep this thread out of the way.
                while True:
                    time.sleep(1)
            return
        _started = True
    if not _signal_time:
        _set_signal_time()
    grace = _grace()
    hooks_deadline = _signal_time + _HOOK_SHARE * grace
    flush_deadline = max(hooks_deadline, _signal_time + grace - _FLUSH_MARGIN)
    with _lock:
        hooks = list(_hooks)
    for fn in hooks:
        remaining = hooks_deadline - time.monotonic()
        if remaining <= 0 or not _run_bounded(fn, remaining):
            _log.warning("cumulus.checkpoint: preemption hooks ran out of time; going on without them")
            break
    for flusher in list(_flushers):
        remaining = max(0.0, flush_deadline - time.monotonic())
        try:
            if not flusher.flush(timeout=remaining):
                _log.warning(
                    "cumulus.checkpoint: L2 flush incomplete after the grace period; "
                    "the newest checkpoints stay on L1 only"
                )
        except Exception:
            _log.exception("cumulus.checkpoint: L2 flush failed")
    _log.warning("cumulus.checkpoint: preempted; exiting with status %d", EXIT_PREEMPTED)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    # os._exit: user code may catch SystemExit, and non-daemon threads would
    # keep the process alive into SIGKILL.
    os._exit(EXIT_PREEMPTED)


def _set_signal_time() -> None:
    global _signal_time
    _signal_time = time.monotonic()


def _run_bounded(fn: Callable[[], Any], timeout: float) -> bool:
    """Run ``fn`` on a helper thread; False when it is still running after ``timeout``."""

    def call() -> None:
        try:
            fn()
        except BaseException:
            _log.exception("cumulus.checkpoint: preemption hook %s failed", getattr(fn, "__name__", fn))

    worker = threading.Thread(target=call, name="cumulus-ckpt-hook", daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()
