"""What every framework adapter implements, and the writer it saves through."""

from __future__ import annotations

import importlib
import os
import re
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from concurrent.futures import Future
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from cumulus.checkpoint.errors import FrameworkMissingError
from cumulus.checkpoint.fileio import HashingWriter, sha256_file
from cumulus.checkpoint.manifest import FileRecord

__all__ = ["Adapter", "EntryWriter", "loaded", "class_path", "require", "stem_for"]


def loaded(*modules: str) -> bool:
    """True when any of ``modules`` is already imported.

    Detection never imports a framework: an object of a framework can only
    exist once its module was imported, so a cheap ``sys.modules`` check
    keeps ``import cumulus.checkpoint`` free of ML dependencies.
    """
    return any(m in sys.modules for m in modules)


def require(module: str, key: str) -> Any:
    """Import ``module`` for restoring entry ``key``; :class:`FrameworkMissingError` if absent."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise FrameworkMissingError(
            f"checkpoint entry {key!r} needs {module}, which cannot be imported here: {err}"
        ) from None


def class_path(obj: Any) -> Tuple[str, str]:
    """(module, qualified name) of ``obj``'s class."""
    cls = type(obj)
    return cls.__module__, cls.__qualname__


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class EntryWriter:
    """Creates the files of one ``state`` entry inside a step's temporary directory.

    File names are ``<stem><suffix>``; the stem is the entry's key made safe
    for a file name (and unique within the step).
    """

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.stem = stem
        self._open: List[HashingWriter] = []
        self._paths: List[Path] = []
        self._deferred: List["Future[Any]"] = []
        self.records: List[FileRecord] = []

    def defer(self, futures: Iterable["Future[Any]"]) -> None:
        """Writes still running elsewhere (shard threads): :meth:`finish` waits for them.

        Lets the next entry of a step start writing while this one's shards
        are still being written and synced.
        """
        self._deferred.extend(futures)

    def _wait_deferred(self) -> Optional[BaseException]:
        error: Optional[BaseException] = None
        for future in self._deferred:
            err = future.exception()  # waits
            if err is not None and error is None:
                error = err
        self._deferred = []
        return error

    def open(self, suffix: str) -> HashingWriter:
        """A new file to stream into; it is closed (and synced) by :meth:`finish`."""
        writer = HashingWriter(self.directory / (self.stem + suffix))
        self._open.append(writer)
        return writer

    def path(self, suffix: str) -> Path:
        """A path for frameworks that write files themselves; hashed by :meth:`finish`."""
        path = self.directory / (self.stem + suffix)
        self._paths.append(path)
        return path

    def finish(self) -> List[FileRecord]:
        """Close every file, make it durable and return the records in creation order."""
        error = self._wait_deferred()
        if error is not None:
            raise error
        for writer in self._open:
            self.records.append(writer.close())
        for path in self._paths:
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
            self.records.append(sha256_file(path))
        return self.records

    def abort(self) -> None:
        """Release open files after a failure (the directory is discarded)."""
        self._wait_deferred()
        for writer in self._open:
            writer.abort()


def stem_for(key: str, taken: Dict[str, str]) -> str:
    """A file-name stem for ``key``, unique among ``taken`` (stem -> key)."""
    base = _UNSAFE.sub("_", key)[:80] or "entry"
    if base[0] in "-.":
        base = "_" + base
    stem = base
    n = 1
    while stem in taken:
        n += 1
        stem = f"{base}_{n}"
    taken[stem] = key
    return stem


class Adapter(ABC):
    """Saves and loads one family of objects (one framework)."""

    #: The ``framework`` names (manifest entry field) this adapter handles.
    frameworks: Tuple[str, ...] = ()

    @abstractmethod
    def detect(self, obj: Any) -> Optional[str]:
        """The framework name to save ``obj`` under, or ``None`` when it is not ours."""

    @abstractmethod
    def save(self, obj: Any, framework: str, out: EntryWriter) -> Dict[str, Any]:
        """Write ``obj`` through ``out``; returns JSON-able metadata for the manifest."""

    @abstractmethod
    def load(
        self,
        key: str,
        framework: str,
        meta: Mapping[str, Any],
        files: Mapping[str, Path],
        target: Any,
    ) -> Any:
        """The restored value; loads into ``target`` in place when it can (``None``: no target)."""
