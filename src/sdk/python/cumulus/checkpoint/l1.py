"""L1: checkpoints in a local directory, written atomically.

Layout: ``<root>/<step:012d>/`` holding the entry files and ``manifest.json``.
A step is written into ``<root>/.tmp-<step>-<pid>-<random>/``; every file and
then the directory are synced to disk, and only then is it renamed to its
final name, so a crash (or SIGKILL, or a full disk) never leaves a step
directory that looks complete but is not. ``restore`` still verifies sizes
and sha256 against the manifest, which catches later damage.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Set, Tuple

from cumulus.checkpoint.errors import CorruptCheckpointError
from cumulus.checkpoint.fileio import datasync, fsync_dir, verify_file
from cumulus.checkpoint.manifest import MANIFEST_NAME, Manifest, parse_step_name, step_name

__all__ = ["L1Store"]

_log = logging.getLogger("cumulus.checkpoint")
_TMP = ".tmp-"
_OLD = ".old-"
_CORRUPT = ".corrupt-"


class L1Store:
    """The checkpoints of one job in directory ``root`` (created on first write)."""

    def __init__(self, root: Path, key: Optional[bytes] = None) -> None:
        self.root = Path(root)
        #: The job's checkpoint key: every manifest read must verify with it (None: not checked).
        self.key = key

    def step_dir(self, step: int) -> Path:
        """The final directory of ``step``."""
        return self.root / step_name(step)

    def new_temp_dir(self, step: int) -> Path:
        """A fresh private directory beside the steps, for writing or downloading one."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{_TMP}{step_name(step)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def write(self, step: int, fill: Callable[[Path], Manifest]) -> Manifest:
        """Create step ``step``: ``fill(tmp_dir)`` writes (and syncs) the entry files and
        returns the manifest, which is written last; then the directory is published."""
        tmp = self.new_temp_dir(step)
        try:
            manifest = fill(tmp)
            self.publish(tmp, manifest)
            return manifest
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def publish(self, tmp: Path, manifest: Manifest) -> Path:
        """Write ``manifest`` into ``tmp``, sync, and rename ``tmp`` to the step's directory."""
        path = tmp / MANIFEST_NAME
        with open(path, "xb") as f:
            f.write(manifest.to_json())
            f.flush()
            datasync(f.fileno())
        fsync_dir(tmp)
        final = self.step_dir(manifest.step)
        old: Optional[Path] = None
        if final.exists():
            # Saving a step again (e.g. right after a restore): the new one wins.
            old = self.root / f"{_OLD}{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def steps(self) -> List[int]:
        """Steps that have a directory, newest first (validity not checked)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        found = (parse_step_name(n) for n in names)
        return sorted((s for s in found if s is not None), reverse=True)

    def read_manifest(self, step: int) -> Manifest:
        """The manifest of ``step`` (files not checked); :class:`CorruptCheckpointError` if none."""
        try:
            data = (self.step_dir(step) / MANIFEST_NAME).read_bytes()
        except FileNotFoundError:
            raise CorruptCheckpointError(f"step {step}: no manifest") from None
        manifest = Manifest.from_json(data, self.key)
        if manifest.step != step:
            raise CorruptCheckpointError(f"step {step}: manifest says step {manifest.step}")
        return manifest

    def verify(self, step: int) -> Manifest:
        """The manifest of ``step`` once every file matches its size and sha256."""
        manifest = self.read_manifest(step)
        directory = self.step_dir(step)
        if len(manifest.files) <= 1:
            for record in manifest.files:
                verify_file(directory / record.name, record)
            return manifest
        # Hashing releases the GIL: large checkpoints verify on several cores.
        workers = min(4, os.cpu_count() or 1, len(manifest.files))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cumulus-ckpt-verify") as pool:
            for future in [pool.submit(verify_file, directory / r.name, r) for r in manifest.files]:
                future.result()
        return manifest

    def newest_valid(self, above: int = -1) -> Optional[Tuple[int, Manifest]]:
        """The newest step that verifies (and is greater than ``above``).

        Damaged steps on the way are moved aside (``.corrupt-*``, removed by
        :meth:`prune`) so that nothing counts them again.
        """
        for step in self.steps():
            if step <= above:
                return None
            try:
                return step, self.verify(step)
            except CorruptCheckpointError as err:
                _log.warning("cumulus.checkpoint: L1 checkpoint of step %d is damaged (%s); skipping it", step, err)
                self._quarantine(step)
            except OSError as err:
                _log.warning("cumulus.checkpoint: L1 checkpoint of step %d unreadable (%s); skipping it", step, err)
        return None

    def prune(self, keep_last: int, protect: Iterable[int] = ()) -> List[int]:
        """Delete all but the newest ``keep_last`` steps (never those in ``protect``),
        and leftovers of interrupted writes. Returns the deleted steps."""
        keep: Set[int] = set(protect)
        deleted: List[int] = []
        doomed: List[Path] = []
        for i, step in enumerate(self.steps()):
            if i < keep_last or step in keep:
                continue
            moved = self._move_aside(step, _OLD)
            if moved is not None:
                doomed.append(moved)
                deleted.append(step)
        self._remove_leftovers(skip=doomed)
        if doomed:
            # A rename takes a step out at once; deleting gigabytes is left
            # to a thread so that save() does not wait for it (the interpreter
            # waits for it at exit: non-daemon). A crash
            # meanwhile leaves ``.old-*`` directories, removed next time.
            threading.Thread(
                target=_remove_all, args=(doomed,), name="cumulus-ckpt-prune", daemon=False
            ).start()
        return deleted

    def delete(self, step: int) -> None:
        """Remove ``step`` now."""
        moved = self._move_aside(step, _OLD)
        if moved is not None:
            shutil.rmtree(moved, ignore_errors=True)

    def _move_aside(self, step: int, prefix: str) -> Optional[Path]:
        directory = self.step_dir(step)
        target = self.root / f"{prefix}{directory.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(directory, target)
        except OSError:
            return None
        return target

    def _quarantine(self, step: int) -> None:
        self._move_aside(step, _CORRUPT)

    def _remove_leftovers(self, skip: Iterable[Path] = ()) -> None:
        # Only this process writes this job's directory (one attempt runs at
        # a time), and no write is in flight while prune runs: any temporary
        # directory here is from a crashed attempt.
        mine = f"-{os.getpid()}-"
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return
        skipped = {p.name for p in skip}
        for name in names:
            stale_tmp = name.startswith(_TMP) and mine not in name
            old = name.startswith(_OLD) or name.startswith(_CORRUPT)
            if (stale_tmp or old) and name not in skipped:
                shutil.rmtree(self.root / name, ignore_errors=True)


def _remove_all(paths: List[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
