"""The process that runs a function job's function, and how the runtime starts it.

With ``CUMULUS_LOG_STREAM=1`` the job runtime (``python3 -m cumulus.runtime
--function``, the *parent*) does every gRPC call of the job and the *child*
(``python3 -m cumulus._function_child``) only runs the user's function:

1. The parent points fds 1 and 2 at pipes and spawns the child at once,
   before it imports gRPC, so the two interpreters start side by side. It
   hands the child two private pipes and an anonymous outcome file.
2. The child imports what unpickling needs and waits on the control pipe.
   Meanwhile the parent connects, streams the pipes (:mod:`cumulus._logstream`),
   fetches the call and the bundle and extracts it.
3. The parent writes the order to the control pipe and closes it: the working
   directory, the bundle's call file or the inline call. An empty order (the
   parent failed first) makes the child exit quietly.
4. The child enters the working directory, caps the GPU allocators, unpickles
   and calls the function, writes the outcome (:mod:`cumulus._outcome`) to the
   outcome file, says its kind on the done pipe and exits with the exit code
   listed in :mod:`cumulus.runtime` (running the user's ``atexit`` handlers)
   while the parent already reports the result.

This module imports no gRPC or protobuf, at start-up or later: the function
starts with neither loaded unless it imports them. The unstreamed function
mode calls :func:`execute` in its own process.
"""

from __future__ import annotations

import os
import signal
import sys
from types import TracebackType
from typing import IO, Any, Mapping, Optional, Sequence, Tuple

from cumulus._pipes import OutputPipes, flush_stdio, keep_running
from cumulus.runtime import EXIT_BAD_BUNDLE, EXIT_FUNCTION_RAISED, EXIT_SOFTWARE, WorkdirError

__all__ = ["FunctionChild", "execute", "load_call", "main"]

_PROG = "cumulus-runtime"
_MODULES_DIR = (".cumulus", "python")  # cumulus._call.MODULES_DIR, without importing that module


class FunctionChild:
    """The parent's handle on the child: its pipes, outcome file and pid."""

    def __init__(self, pid: int, pipes: OutputPipes, control: int, done: int, outcome: IO[bytes]) -> None:
        self.pid = pid
        #: The captured fds 1 and 2 the child writes to; the log streamer takes them.
        self.pipes = pipes
        #: The file the child writes the outcome to (read it after :meth:`outcome`).
        self.outcome_file = outcome
        self._control: Optional[int] = control
        self._done: Optional[int] = done
        self._status: Optional[int] = None

    @classmethod
    def spawn(cls, env: Mapping[str, str]) -> "FunctionChild":
        """Redirects fds 1 and 2 into pipes and starts the child with ``env``.

        Installs a SIGTERM handler in this process (see :func:`cumulus._pipes.keep_running`).
        Raises OSError when the child cannot be started (fds 1 and 2 restored).
        """
        import tempfile  # before the pipes: nothing below may fail with fds 1 and 2 taken

        outcome = tempfile.TemporaryFile()
        signal.signal(signal.SIGTERM, keep_running)
        pipes = OutputPipes()
        control_r, control_w = os.pipe()
        done_r, done_w = os.pipe()
        passed = (control_r, done_w, outcome.fileno())
        for fd in passed:
            os.set_inheritable(fd, True)
        argv = [sys.executable, "-m", "cumulus._function_child", *map(str, passed)]
        try:
            # posix_spawn, not subprocess: no import, and a vfork-fast start. Python
            # ignores SIGPIPE; the child starts with the defaults, as with Popen.
            pid = os.posix_spawn(sys.executable, argv, env, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        except OSError:
            for fd in (control_w, done_r):
                os.close(fd)
            outcome.close()
            pipes.forward()
            raise
        finally:
            os.close(control_r)
            os.close(done_w)
        os.set_inheritable(outcome.fileno(), False)
        return cls(pid, pipes, control_w, done_r, outcome)

    def send(self, workdir: str, call: Optional[bytes], call_path: str = "") -> bool:
        """Hands the child its order: the inline ``call``, or the file at ``call_path``.

        False when the child is gone already (e.g. ended by SIGTERM).
        """
        order = os.fsencode(workdir) + b"\0" + os.fsencode(call_path) + b"\0" + (call or b"")
        fd = self._take_control()
        if fd is None:
            return False
        try:
            view = memoryview(order)
            while view:
                view = view[os.write(fd, view):]
        except BrokenPipeError:
            return False
        finally:
            os.close(fd)
        return True

    def cancel(self) -> None:
        """Closes the control pipe without an order: the child exits quietly."""
        fd = self._take_control()
        if fd is not None:
            os.close(fd)

    def outcome(self) -> Optional[str]:
        """Waits until the child wrote its outcome: ``"pickle"``, ``"error"``, or
        None when it ends without one (``sys.exit``, a crash, a signal)."""
        if self._done is None:
            return None
        data = b""
        try:
            while True:  # the child writes once and exits; EOF ends it either way
                chunk = os.read(self._done, 16)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self._done)
            self._done = None
        return data.decode() or None

    def wait(self) -> int:
        """Waits for the child to end; its exit code, 128 + N when signal N ended it."""
        if self._status is None:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            self._status = code if code >= 0 else 128 - code
        return self._status

    def abandon(self) -> int:
        """Ends the child before it got an order, then points fds 1 and 2 back
        at the originals with what the child printed (for a failure before
        streaming started). Returns the child's exit code."""
        self.cancel()
        self.pipes.forward()  # until the child closed its ends: it never blocks on a full pipe
        return self.wait()

    def _take_control(self) -> Optional[int]:
        fd, self._control = self._control, None
        return fd


def _enter_workdir(workdir: str) -> None:
    try:
        os.chdir(workdir)
    except OSError as err:
        raise WorkdirError(f"cannot enter workdir {workdir}: {err.strerror}") from None
    modules = os.path.join(workdir, *_MODULES_DIR)
    for path in (workdir, modules):  # modules end up first
        if path not in sys.path:
            sys.path.insert(0, path)


def load_call(call: Optional[bytes], call_path: str) -> Tuple[Any, tuple, dict]:
    """Unpickle ``(fn, args, kwargs)`` from ``call``, or from the file at ``call_path`` when None."""
    import pickle

    data = call
    if data is None:
        with open(call_path, "rb") as f:
            data = f.read()
    fn, args, kwargs = pickle.loads(data)
    if not callable(fn):
        raise TypeError(f"the job's function is a {type(fn).__name__}, not a callable")
    return fn, tuple(args), dict(kwargs)


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


def _write_error(out: IO[bytes], exc: BaseException, tb: Optional[TracebackType]) -> str:
    from cumulus._outcome import KIND_ERROR, encode_error

    data = encode_error(exc, tb)
    out.seek(0)
    out.truncate()
    out.write(data)
    return KIND_ERROR


def execute(workdir: str, call: Optional[bytes], call_path: str, out: IO[bytes]) -> Tuple[int, Optional[str]]:
    """Enter ``workdir``, load the call, run it and write its outcome to ``out``.

    Returns the exit code (see :mod:`cumulus.runtime`) and the kind of the
    outcome written (None: no result, as after ``sys.exit``). Raises
    :class:`~cumulus.runtime.WorkdirError` and ``KeyboardInterrupt``.
    """
    from cumulus._outcome import KIND_VALUE, dump_value
    from cumulus.gpu import apply_memory_cap

    _enter_workdir(workdir)
    # Before unpickling: the call's arguments may already hold GPU tensors.
    apply_memory_cap()
    try:
        fn, args, kwargs = load_call(call, call_path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is reported as the result
        print(
            f"{_PROG}: error: cannot load the function: {_first_line(exc)} "
            "(is every module it uses installed in the job image or shipped with it?)",
            file=sys.stderr,
        )
        return EXIT_BAD_BUNDLE, _write_error(out, exc, exc.__traceback__)
    try:
        value = fn(*args, **kwargs)
    except SystemExit as exc:
        flush_stdio()
        return _exit_code(exc), None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's exception is the result
        flush_stdio()
        print(f"{_PROG}: the function raised {_first_line(exc)}", file=sys.stderr)
        # Skip the runtime's frames: the user's traceback starts in their function.
        return EXIT_FUNCTION_RAISED, _write_error(out, exc, _user_frames(exc.__traceback__))
    flush_stdio()
    try:
        dump_value(value, out)
    except Exception as exc:  # noqa: BLE001 - pickling fails in many ways
        err = TypeError(
            f"the function returned a {type(value).__module__}.{type(value).__qualname__}, "
            f"which cannot be pickled: {type(exc).__name__}: {exc}"
        )
        print(f"{_PROG}: error: {err}", file=sys.stderr)
        return EXIT_SOFTWARE, _write_error(out, err, None)
    return 0, KIND_VALUE


def _read_order(fd: int) -> Optional[Tuple[str, Optional[bytes], str]]:
    """(workdir, inline call or None, call file) from the control pipe; None for no order."""
    data = bytearray()
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    parts = bytes(data).split(b"\0", 2)
    if len(parts) != 3 or not parts[0]:
        return None
    workdir, call_path, call = parts
    return os.fsdecode(workdir), (None if call_path else call), os.fsdecode(call_path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The child's entry point: ``python3 -m cumulus._function_child CONTROL DONE OUTCOME`` (fds)."""
    control, done, outcome_fd = (int(a) for a in (sys.argv[1:] if argv is None else argv))
    del sys.argv[1:]  # the function sees a plain command line, not the runtime's fds
    for fd in (control, done, outcome_fd):
        os.set_inheritable(fd, False)  # the function's own subprocesses get none of them
    # What unpickling and reporting need, loaded while the parent fetches the call.
    import cloudpickle  # noqa: F401

    import cumulus._outcome  # noqa: F401
    import cumulus.gpu  # noqa: F401

    order = _read_order(control)
    if order is None:
        os._exit(0)  # the parent failed before the call: it reports that, quietly for us
    workdir, call, call_path = order
    try:
        with os.fdopen(outcome_fd, "wb") as out:
            try:
                code, kind = execute(workdir, call, call_path, out)
            except WorkdirError as err:
                print(f"{_PROG}: error: {err}", file=sys.stderr)
                return err.exit_code
    except KeyboardInterrupt:
        return 130
    if kind is not None:
        os.write(done, kind.encode())
    os.close(done)
    return code


if __name__ == "__main__":
    sys.exit(main())
