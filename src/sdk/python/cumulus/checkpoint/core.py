"""CheckpointManager: save to L1, queue for L2, restore from the newest valid tier."""

from __future__ import annotations

import atexit
import logging
import shutil
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from cumulus.checkpoint import signals
from cumulus.checkpoint.adapters import EntryWriter, adapter_for, detect, stem_for
from cumulus.checkpoint.config import CheckpointConfig
from cumulus.checkpoint.errors import (
    CheckpointConfigError,
    CheckpointUnavailableError,
    CorruptCheckpointError,
    UnsupportedValueError,
)
from cumulus.checkpoint.l1 import L1Store
from cumulus.checkpoint.l2 import S3Store, make_s3_client
from cumulus.checkpoint.manifest import Entry, FileRecord, Manifest, check_step
from cumulus.checkpoint.report import CheckpointReporter, reporter_for
from cumulus.checkpoint.runtime_api import RuntimeApi
from cumulus.checkpoint.uploader import Backoff, L2Uploader
from cumulus.checkpoint.worker_backend import WorkerBackend

__all__ = ["Checkpoint", "CheckpointManager", "DEFAULT_KEEP_LAST"]

_log = logging.getLogger("cumulus.checkpoint")

#: Checkpoints kept per tier unless told otherwise.
DEFAULT_KEEP_LAST = 3

_managers: "weakref.WeakSet[CheckpointManager]" = weakref.WeakSet()
_atexit_registered = False


def _flush_all_at_exit() -> None:
    # Daemon threads (the uploaders) still run while atexit callbacks do.
    for manager in list(_managers):
        manager.flush_at_exit()


def _track(manager: "CheckpointManager") -> None:
    global _atexit_registered
    _managers.add(manager)
    if _atexit_registered:
        return
    _atexit_registered = True
    # boto3 uploads through concurrent.futures, which refuses new work once
    # the interpreter starts shutting down -- before plain atexit callbacks
    # run. threading's own exit hooks run earlier, newest first, so one
    # registered now (after boto3 imported concurrent.futures) still finds
    # the executors working. Where that hook does not exist, the flush falls
    # back to non-threaded transfers (see flush_at_exit).
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_flush_all_at_exit)
            return
        except RuntimeError:  # already shutting down
            pass
    atexit.register(_flush_all_at_exit)


@dataclass
class Checkpoint:
    """A restored checkpoint.

    ``state`` maps each saved key to its loaded value: the very object from
    ``into`` when it was loaded in place (PyTorch modules, optimizers,
    schedulers, tensors and NumPy arrays of the same shape, XGBoost and
    LightGBM boosters), else a new object.
    """

    step: int
    state: Dict[str, Any]
    #: ``"l1"`` or ``"l2"`` (downloaded into L1 first).
    source: str
    manifest: Manifest
    path: Path
    frameworks: Dict[str, str] = field(default_factory=dict)


class CheckpointManager:
    """Checkpoints of one job: an L1 directory and, when configured, an S3 bucket.

    ``s3_client`` (a boto3 client) may be injected; by default one is built
    from ``config.s3``. Uploads run in a worker process
    (:mod:`~cumulus.checkpoint.upload_worker`) unless ``upload_process`` is
    false or a client is injected. ``restore_wait`` bounds how long
    :meth:`restore` keeps trying an unreachable S3.

    Every manifest is signed with the job's checkpoint key and verified at
    restore (:mod:`~cumulus.checkpoint.manifest`): inside a Cumulus job the
    orchestrator's key for this job (``Runtime.CheckpointKey``), else
    ``signing_key``, else the user's own random key
    (``$XDG_CONFIG_HOME/cumulus/checkpoint.key``, default ``~/.config``; 0600). A checkpoint whose signature does not
    verify, or an unsigned one from before signing, is skipped with a
    warning: restore goes on to an older valid one, else returns ``None``.

    Inside a Cumulus job each completed checkpoint (L1 saved, L2 uploaded) is
    reported to the orchestrator, best-effort (:mod:`~cumulus.checkpoint.report`);
    ``reporter`` replaces the one built from the environment, ``report=False``
    turns reports off.
    """

    def __init__(
        self,
        config: CheckpointConfig,
        *,
        s3_client: Any = None,
        max_pending: int = 4,
        backoff: Optional[Backoff] = None,
        restore_wait: float = 30.0,
        exit_flush_timeout: float = 30.0,
        upload_process: bool = True,
        reporter: Optional[CheckpointReporter] = None,
        report: bool = True,
        signing_key: Optional[bytes] = None,
    ) -> None:
        self.config = config
        self._signing_key = signing_key
        self.reporter = reporter if reporter is not None else (reporter_for(config.job_id) if report else None)
        self.l1 = L1Store(config.directory)
        self.l2: Optional[S3Store] = None
        self.uploader: Optional[L2Uploader] = None
        self.restore_wait = restore_wait
        self.exit_flush_timeout = exit_flush_timeout
        self._lock = threading.RLock()
        if config.s3 is not None:
            client = s3_client if s3_client is not None else make_s3_client(config.s3)
            self.l2 = S3Store(client, config.s3.bucket, config.s3.prefix, config.job_id)
            # Uploads run in a worker process (see upload_worker: no GIL
            # contention with training); an injected client lives in this
            # process, so with one they run on the uploader thread itself.
            backend: Any = self.l2
            if s3_client is None and upload_process:
                backend = WorkerBackend(config.s3, config.job_id)
            on_uploaded = None
            if self.reporter is not None:
                reporter, url = self.reporter, backend.url
                on_uploaded = lambda step: reporter.report(step, "l2", url(step))  # noqa: E731
            self.uploader = L2Uploader(
                backend, self.l1, max_pending=max_pending, backoff=backoff, on_uploaded=on_uploaded
            )
        signals.register_flusher(self)
        _track(self)

    # -- save -------------------------------------------------------------
    def save(self, state: Mapping[str, Any], step: int, keep_last: int = DEFAULT_KEEP_LAST) -> Manifest:
        """Write ``state`` as checkpoint ``step`` to L1 (durably), then queue it for L2.

        Returns once the L1 copy is complete; never waits for S3. Keeps the
        newest ``keep_last`` steps in each tier.
        """
        step = check_step(step)
        if not isinstance(state, Mapping):
            raise CheckpointConfigError(f"state: must be a mapping of names to objects, got {type(state).__name__}")
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise CheckpointConfigError(f"keep_last: must be an integer >= 1, got {keep_last!r}")
        for key in state:
            if not isinstance(key, str) or not key:
                raise CheckpointConfigError(f"state: keys must be non-empty strings, got {key!r}")
        key = self._key()
        with signals.critical(), self._lock:
            manifest = self.l1.write(step, lambda tmp: self._write_entries(state, step, tmp).signed(key))
            protect = self.uploader.in_use() if self.uploader else set()
            if self.uploader is not None:
                self.uploader.submit(step, keep_last)
                protect.add(step)
            self.l1.prune(keep_last, protect=protect)
        if self.reporter is not None:
            self.reporter.report(step, "l1", str(self.l1.step_dir(step)))
        return manifest

    def _write_entries(self, state: Mapping[str, Any], step: int, tmp: Path) -> Manifest:
        entries: List[Entry] = []
        records: List[FileRecord] = []
        stems: Dict[str, str] = {}
        # Two passes: every entry starts writing (large tensor archives go on
        # writing on shard threads), then each is finished (waited for and
        # synced), so one entry's shards overlap the next entry's writes.
        started: List[Tuple[str, str, Any, EntryWriter]] = []
        current: Optional[Tuple[str, str, EntryWriter]] = None
        try:
            for key, value in state.items():
                adapter, framework = detect(value)
                out = EntryWriter(tmp, stem_for(key, stems))
                current = (key, framework, out)
                meta = adapter.save(value, framework, out)
                started.append((key, framework, meta, out))
            current = None
            for key, framework, meta, out in started:
                current = (key, framework, out)
                written = out.finish()
                entries.append(Entry(key, framework, tuple(r.name for r in written), meta))
                records.extend(written)
        except BaseException as err:
            for _, _, _, out in started:
                out.abort()
            if current is not None and all(current[2] is not s[3] for s in started):
                current[2].abort()
            if isinstance(err, (OSError, MemoryError)) or not isinstance(err, Exception) or current is None:
                raise
            key, framework, _ = current
            value = state[key]
            raise UnsupportedValueError(
                f"cannot checkpoint state[{key!r}] ({type(value).__name__}, as {framework}): {err}", key
            ) from err
        return Manifest(
            step=step,
            entries=tuple(entries),
            files=tuple(records),
            job_id=self.config.job_id,
            attempt=self.config.attempt,
        )

    # -- restore ----------------------------------------------------------
    def restore(self, into: Optional[Mapping[str, Any]] = None) -> Optional[Checkpoint]:
        """The newest valid checkpoint, loaded; ``None`` when there is none.

        L1 is checked first (sizes and sha256 against the manifest; damaged
        steps are skipped). When L2 is configured and holds a newer complete
        step -- the job ran on another worker since -- that step is downloaded
        into L1, verified, and used instead. Objects in ``into`` are loaded in
        place where their framework allows it.

        Raises :class:`CheckpointUnavailableError` when this is a resumed
        attempt (``CUMULUS_ATTEMPT`` > 1), L1 has nothing valid, and S3 did
        not answer within ``restore_wait`` seconds.
        """
        self._key()
        with signals.critical(), self._lock:
            found = self._find()
            if found is None:
                return None
            step, manifest, source = found
            state, frameworks = self._load(manifest, into)
            return Checkpoint(step, state, source, manifest, self.l1.step_dir(step), frameworks)

    def _find(self) -> Optional[Tuple[int, Manifest, str]]:
        local = self.l1.newest_valid()
        above = local[0] if local else -1
        if self.l2 is not None:
            try:
                remote = self._newest_remote(above)
            except _S3Unreachable as err:
                if local is None and self.config.attempt > 1:
                    raise CheckpointUnavailableError(
                        f"attempt {self.config.attempt} of job {self.config.job_id}: no valid L1 checkpoint and "
                        f"S3 unreachable for {self.restore_wait:.0f}s ({err}); refusing to start from scratch"
                    ) from None
                _log.warning("cumulus.checkpoint: S3 unreachable during restore (%s); using L1 only", err)
                remote = None
            if remote is not None:
                return remote[0], remote[1], "l2"
        if local is not None:
            return local[0], local[1], "l1"
        return None

    def _newest_remote(self, above: int) -> Optional[Tuple[int, Manifest]]:
        """Download the newest complete L2 step newer than ``above`` into L1."""
        assert self.l2 is not None
        deadline = time.monotonic() + self.restore_wait
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                candidates = list(self.l2.complete_steps(above))
                break
            except Exception as err:
                if time.monotonic() + backoff.peek() > deadline:
                    raise _S3Unreachable(_describe(err)) from None
                time.sleep(backoff.next())
        for step, manifest in candidates:
            tmp = self.l1.new_temp_dir(step)
            try:
                self.l2.download(manifest, tmp)
                self.l1.publish(tmp, manifest)
                _log.info("cumulus.checkpoint: restored step %d from %s", step, self.l2.url(step))
                return step, manifest
            except CorruptCheckpointError as err:
                shutil.rmtree(tmp, ignore_errors=True)
                _log.warning("cumulus.checkpoint: L2 %s is damaged (%s); trying an older one", self.l2.url(step), err)
            except Exception as err:
                shutil.rmtree(tmp, ignore_errors=True)
                raise _S3Unreachable(_describe(err)) from None
        return None

    def _load(self, manifest: Manifest, into: Optional[Mapping[str, Any]]) -> Tuple[Dict[str, Any], Dict[str, str]]:
        directory = self.l1.step_dir(manifest.step)
        state: Dict[str, Any] = {}
        frameworks: Dict[str, str] = {}
        for entry in manifest.entries:
            adapter = adapter_for(entry.framework)
            files = {name: directory / name for name in entry.files}
            target = into.get(entry.key) if into is not None else None
            state[entry.key] = adapter.load(entry.key, entry.framework, entry.meta, files, target)
            frameworks[entry.key] = entry.framework
        if into is not None:
            missing = [k for k in into if k not in state]
            if missing:
                _log.warning(
                    "cumulus.checkpoint: step %d has no entry for %s; left as they are",
                    manifest.step,
                    ", ".join(map(repr, missing)),
                )
        return state, frameworks

    # -- the signing key ----------------------------------------------------
    def _key(self) -> bytes:
        """The job's checkpoint key (fetched once), also set on both stores for reads."""
        with self._lock:
            if self._signing_key is None:
                self._signing_key = self._fetch_key()
            self.l1.key = self._signing_key
            if self.l2 is not None:
                self.l2.key_for_restore = self._signing_key
            return self._signing_key

    def _fetch_key(self) -> bytes:
        api = RuntimeApi.from_env(job_id=self.config.job_id)
        if api is None:
            return _local_key()
        deadline = time.monotonic() + self.restore_wait
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                return api.checkpoint_key()
            except Exception as err:
                # An orchestrator restart: wait for it; anything else is final.
                code = getattr(err, "code", None)
                name = getattr(code(), "name", "") if callable(code) else ""
                if name != "UNAVAILABLE" or time.monotonic() + backoff.peek() > deadline:
                    raise CheckpointUnavailableError(
                        f"job {self.config.job_id}: could not get its checkpoint key from the orchestrator "
                        f"({_describe(err)}); checkpoints can be neither signed nor verified"
                    ) from None
                time.sleep(backoff.next())

    # -- L2 bookkeeping -------------------------------------------------------
    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait for pending L2 uploads; False when ``timeout`` ran out (True without L2).

        Pending checkpoint reports then get what is left of ``timeout``, at
        most a little more than one report's timeout.
        """
        start = time.monotonic()
        done = self.uploader.flush(timeout) if self.uploader is not None else True
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        self._flush_reports(left)
        return done

    def _flush_reports(self, timeout: Optional[float]) -> None:
        if self.reporter is None:
            return
        limit = self.reporter.timeout + 1.0
        self.reporter.flush(limit if timeout is None else min(timeout, limit))

    def close(self, timeout: Optional[float] = 0) -> bool:
        """Stop the uploader after flushing for at most ``timeout`` seconds."""
        return self.uploader.close(timeout) if self.uploader is not None else True

    def flush_at_exit(self) -> None:
        """Interpreter exit: give pending uploads ``exit_flush_timeout`` seconds."""
        if self.uploader is None or not self.uploader.pending():
            self._flush_reports(None)
            return
        self.uploader.prepare_for_exit()
        if not self.uploader.flush(self.exit_flush_timeout):
            _log.warning(
                "cumulus.checkpoint: %d checkpoint(s) not uploaded to S3 at exit (kept on L1): %s",
                self.uploader.pending(),
                self.uploader.last_error or "timed out",
            )
        self._flush_reports(None)


class _S3Unreachable(Exception):
    pass


def _local_key() -> bytes:
    """Outside a Cumulus job: the user's own random key (0600), so that any of
    their runs, on any L1 directory, restores what another one saved."""
    import os
    import secrets

    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    directory = Path(config_home) / "cumulus"
    path = directory / "checkpoint.key"
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / f".checkpoint.key.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # the first writer wins; a racing one reads it
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def _describe(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
