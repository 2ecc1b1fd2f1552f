"""Point file descriptors 1 and 2 at pipes, keeping the originals to restore.

The job runtime captures a job's output this way before it starts the job's
process (which inherits the pipes), and streams what the pipes carry
(:mod:`cumulus._logstream`). This module imports only :mod:`os` and
:mod:`sys`, so a function job's runtime can capture and spawn the function's
process before it pays for importing gRPC.
"""

from __future__ import annotations

import os
import sys
from typing import List

__all__ = ["OutputPipes", "flush_stdio", "keep_running", "stop_asked"]

_stop_asked = False


def keep_running(signum: int, frame: object) -> None:
    """SIGTERM handler of a runtime parent. SIGTERM reaches the whole process
    group (tini -g): the job's process gets it and ends; the parent stays to
    send its last lines. (A handler, not SIG_IGN, so the job's process does
    not inherit the ignored disposition.) Records that a stop was asked."""
    global _stop_asked
    _stop_asked = True


def stop_asked() -> bool:
    """True once :func:`keep_running` saw a SIGTERM: the job did not end by
    itself alone, so its runtime must not announce its exit as the job's end."""
    return _stop_asked


def flush_stdio() -> None:
    """Flushes ``sys.stdout`` and ``sys.stderr`` (a closed one is skipped)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not stop the caller
            pass


class OutputPipes:
    """Fds 1 and 2 redirected into two fresh pipes (made on construction).

    ``read_fds`` are the pipes' read ends (stdout's first), ``saved`` are
    duplicates of the original fds 1 and 2. Whoever reads ``read_fds`` owns
    and closes them.
    """

    def __init__(self) -> None:
        self.read_fds: List[int] = []
        self.saved: List[int] = []
        for fd in (1, 2):
            r, w = os.pipe()
            self.saved.append(os.dup(fd))
            os.dup2(w, fd)
            os.close(w)
            self.read_fds.append(r)

    def restore(self) -> None:
        """Points fds 1 and 2 back at the originals (closing this process's write ends)."""
        flush_stdio()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)

    def forward(self) -> None:
        """Restores fds 1 and 2, then copies what the pipes hold to the originals.

        For output nobody streams (the runtime failed before it could): every
        other writer must have exited, or this blocks until they do.
        """
        self.restore()
        for r, out in zip(self.read_fds, self.saved):
            try:
                while True:
                    data = os.read(r, 1 << 16)
                    if not data:
                        break
                    view = memoryview(data)
                    while view:
                        view = view[os.write(out, view):]
            finally:
                os.close(r)
        self.read_fds = []
