"""The L2 uploader: a background thread that copies finished L1 steps to S3.

Training never waits for S3. :meth:`L2Uploader.submit` only appends to a
bounded queue of pending steps; when the queue is full the oldest pending
step (not the one in flight) is dropped, because a newer checkpoint
supersedes it. Every failure is retried with exponential backoff; while S3 is
unreachable the checkpoints stay on L1 (with one warning per outage), and
the queue drains by itself when S3 answers again.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Optional, Set

from cumulus.checkpoint.errors import CorruptCheckpointError
from cumulus.checkpoint.l1 import L1Store

__all__ = ["L2Uploader", "Backoff"]

_log = logging.getLogger("cumulus.checkpoint")


class Backoff:
    """Exponential backoff delays: ``initial``, doubled each failure, capped at ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        """The delay before the next retry (and grow it)."""
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def peek(self) -> float:
        """The delay :meth:`next` would return, without growing it."""
        return self._next

    def reset(self) -> None:
        """After a success: start from ``initial`` again."""
        self._next = self.initial


class _Item:
    """One queued upload; identity matters (a step saved twice is two items)."""

    __slots__ = ("step", "keep_last", "done")

    def __init__(self, step: int, keep_last: int) -> None:
        self.step = step
        self.keep_last = keep_last
        self.done: Set[str] = set()  # files already stored, kept across retries


class L2Uploader:
    """Uploads L1 steps to ``store`` in submission order on one daemon thread.

    ``store`` is an :class:`~cumulus.checkpoint.l2.S3Store` or anything with
    its upload methods (``begin_step``, ``upload_file``, ``put_manifest``,
    ``prune``, ``url``), e.g. the worker process's
    :class:`~cumulus.checkpoint.worker_backend.WorkerBackend`.

    ``max_pending`` bounds the queue. ``on_uploaded(step)`` is called after
    each step is complete in S3 (its manifest stored); its errors are ignored.
    """

    def __init__(
        self,
        store: Any,
        l1: L1Store,
        *,
        max_pending: int = 4,
        backoff: Optional[Backoff] = None,
        clock: Callable[[], float] = time.monotonic,
        on_uploaded: Optional[Callable[[int], None]] = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.store = store
        self.l1 = l1
        self.max_pending = max_pending
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._on_uploaded = on_uploaded
        self._cond = threading.Condition()
        self._pending: Deque[_Item] = collections.deque()
        self._current: Optional[_Item] = None
        self._stop = False
        self._wake = False
        self._thread: Optional[threading.Thread] = None
        self.down_since: Optional[float] = None
        self.last_error: Optional[str] = None
        self.uploaded: Deque[int] = collections.deque(maxlen=64)
        self.dropped: Deque[int] = collections.deque(maxlen=64)

    # -- called by the training thread ----------------------------------
    def submit(self, step: int, keep_last: int) -> None:
        """Queue ``step`` for upload; never blocks on S3."""
        with self._cond:
            # A step saved again replaces its queued (or in-flight) upload.
            self._pending = collections.deque(i for i in self._pending if i.step != step)
            while len(self._pending) >= self.max_pending:
                victim = next((i for i in self._pending if i is not self._current), None)
                if victim is None:
                    break
                self._pending.remove(victim)
                self.dropped.append(victim.step)
                _log.info(
                    "cumulus.checkpoint: L2 upload of step %d skipped: superseded by step %d", victim.step, step
                )
            self._pending.append(_Item(step, keep_last))
            self._ensure_thread()
            self._cond.notify_all()

    def in_use(self) -> Set[int]:
        """Steps pending or uploading: L1 must keep them until they are in S3."""
        with self._cond:
            steps = {i.step for i in self._pending}
            if self._current is not None:
                steps.add(self._current.step)
            return steps

    def pending(self) -> int:
        """Steps not yet in S3 (queued or uploading)."""
        with self._cond:
            return len(self._pending)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every submitted step is in S3; False when ``timeout`` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def prepare_for_exit(self) -> None:
        """Interpreter shutdown: retry at once, with transfers that need no thread pool."""
        with self._cond:
            if _at_shutdown() and hasattr(self.store, "use_threads"):
                self.store.use_threads(False)
            self.backoff.reset()
            self._wake = True
            self._cond.notify_all()

    def close(self, timeout: Optional[float] = 0) -> bool:
        """Stop the thread (after at most ``timeout`` seconds of flushing); True if drained.

        A store with a ``close`` method (the worker process) is closed before
        the thread is joined, which ends a command still in flight.
        """
        drained = self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        closer = getattr(self.store, "close", None)
        if callable(closer):
            closer()
        if self._thread is not None:
            self._thread.join(5)
        return drained

    # -- the uploader thread ---------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="cumulus-ckpt-l2", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or bool(self._pending))
                if self._stop:
                    return
                item = self._current = self._pending[0]
            try:
                stored = self._upload(item)
            except Exception as err:  # every S3 failure is retried
                self._failed(item, err)
                continue
            if stored:
                self._recovered()
                self._after_upload(item)
                self._notify_uploaded(item.step)
            # Last: flush() returning means uploaded *and* pruned.
            self._finish(item, uploaded=stored)

    def _queued(self, item: _Item) -> bool:
        with self._cond:
            return any(i is item for i in self._pending)

    def _upload(self, item: _Item) -> bool:
        """Store every file, then the manifest; False when there is nothing (left) to do."""
        step = item.step
        try:
            manifest = self.l1.read_manifest(step)
        except (CorruptCheckpointError, OSError):
            return False  # pruned or replaced: a newer checkpoint supersedes it
        if not item.done:
            self.store.begin_step(step)
        directory = self.l1.step_dir(step)
        for record in manifest.files:
            if record.name in item.done:
                continue
            path = directory / record.name
            if not path.exists() or not self._queued(item):
                return False
            try:
                self.store.upload_file(step, path, record)
            except FileNotFoundError:
                return False  # the step was pruned or saved again meanwhile
            item.done.add(record.name)
        # Saved again during this upload: the files may be a mix of both
        # versions, so this manifest must not vouch for them.
        if not self._queued(item):
            return False
        self.store.put_manifest(manifest)
        return True

    def _finish(self, item: _Item, uploaded: bool) -> None:
        with self._cond:
            self._pending = collections.deque(i for i in self._pending if i is not item)
            self._current = None
            if uploaded:
                self.uploaded.append(item.step)
            self._cond.notify_all()

    def _notify_uploaded(self, step: int) -> None:
        if self._on_uploaded is None:
            return
        try:
            self._on_uploaded(step)
        except Exception as err:  # a report must never stop uploads
            _log.debug("cumulus.checkpoint: upload callback for step %d failed: %s", step, err)

    def _after_upload(self, item: _Item) -> None:
        try:
            self.store.prune(item.keep_last, current=item.step)
        except Exception as err:  # the next upload prunes again
            _log.warning("cumulus.checkpoint: pruning old L2 checkpoints failed: %s", _describe(err))

    def _failed(self, item: _Item, err: Exception) -> None:
        if self._stop:
            return  # closing: the command was cut on purpose
        self.last_error = _describe(err)
        delay = self.backoff.next()
        if self.down_since is None:
            self.down_since = self._clock()
            _log.warning(
                "cumulus.checkpoint: L2 upload of step %d to %s failed (%s); checkpoints stay on L1 "
                "and uploads resume when S3 answers (retrying with backoff)",
                item.step,
                self.store.url(item.step),
                self.last_error,
            )
        else:
            _log.debug("cumulus.checkpoint: L2 retry of step %d in %.1fs: %s", item.step, delay, self.last_error)
        with self._cond:
            self._current = None
            self._cond.wait_for(lambda: self._stop or self._wake, delay)
            self._wake = False

    def _recovered(self) -> None:
        if self.down_since is not None:
            _log.warning(
                "cumulus.checkpoint: S3 answers again after %.0fs; uploading %d pending checkpoint(s)",
                self._clock() - self.down_since,
                self.pending(),
            )
            self.down_since = None
        self.backoff.reset()


def _at_shutdown() -> bool:
    """True once concurrent.futures refuses new work (interpreter exit)."""
    import concurrent.futures.thread as cft

    return bool(getattr(cft, "_shutdown", False))


def _describe(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
