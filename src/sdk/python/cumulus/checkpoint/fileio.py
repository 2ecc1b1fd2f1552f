"""Durable file writes with the sha256 computed alongside, and verification.

:class:`HashingWriter` is the file object every adapter writes through. It
hashes on a helper thread while the calling thread writes, so a checkpoint
costs about one write of its bytes, not a write plus a second pass to hash
them (``hashlib`` and file writes both release the GIL for large buffers).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from pathlib import Path
from typing import Any, Optional, Union

from cumulus.checkpoint.errors import CorruptCheckpointError
from cumulus.checkpoint.manifest import FileRecord

__all__ = ["HashingWriter", "sha256_file", "verify_file", "fsync_dir", "datasync"]

# Writes smaller than this are gathered before they are written and hashed:
# pickle emits many small frames, and a syscall per frame would dominate.
_SMALL = 256 * 1024
# Large buffers are written and hashed in pieces of this size, so hashing the
# previous piece overlaps writing the next one.
_PIECE = 4 * 1024 * 1024
_READ = 4 * 1024 * 1024
_DONE = object()

PathLike = Union[str, "os.PathLike[str]"]


def datasync(fd: int) -> None:
    """Flush a file's data (and the metadata needed to read it back) to disk."""
    # fdatasync skips timestamps, which nothing here reads back.
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def fsync_dir(path: PathLike) -> None:
    """Make a directory's entries (created or renamed files) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HashingWriter:
    """A binary, write-only file that knows its size and sha256 when closed.

    The file is created exclusively (it must not exist). :meth:`close`
    flushes the data to disk and returns the :class:`FileRecord`. Buffers
    handed to :meth:`write` must not change until :meth:`close` returns.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._hash = hashlib.sha256()
        self._size = 0
        self._pending = bytearray()
        self._queue: Optional["queue.Queue[Any]"] = None
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self.record: Optional[FileRecord] = None

    # The file-object surface that pickle, numpy and joblib use.
    def writable(self) -> bool:
        """Always true: this is a write-only file."""
        return True

    def seekable(self) -> bool:
        """Always false: writers must stream (numpy and joblib check this)."""
        return False

    def tell(self) -> int:
        """Bytes written so far."""
        return self._size + len(self._pending)

    def flush(self) -> None:
        """Nothing to do before :meth:`close`; present for file-object callers."""

    def write(self, data: Any) -> int:
        """Append ``data`` (any contiguous buffer); returns its length in bytes."""
        view = memoryview(data)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B")
        n = view.nbytes
        if n < _SMALL:
            self._pending += view
            if len(self._pending) >= _SMALL:
                self._write_pending()
            return n
        self._write_pending()
        for start in range(0, n, _PIECE):
            self._emit(view[start : start + _PIECE])
        return n

    def close(self) -> FileRecord:
        """Write what is left, flush to disk, close; returns the file's record."""
        if self.record is not None:
            return self.record
        if self._fd is None:
            raise ValueError("write to a closed HashingWriter")
        try:
            self._write_pending()
            datasync(self._fd)
            if self._thread is not None:
                assert self._queue is not None
                self._queue.put(_DONE)
                self._thread.join()
            if self._error is not None:
                raise self._error
        finally:
            os.close(self._fd)
            self._fd = None
        self.record = FileRecord(self.path.name, self._size, self._hash.hexdigest())
        return self.record

    def abort(self) -> None:
        """Close without the durability work (the caller discards the file)."""
        if self._thread is not None and self._queue is not None:
            self._queue.put(_DONE)
            self._thread.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "HashingWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        data = bytes(self._pending)
        self._pending = bytearray()
        self._emit(memoryview(data))

    def _emit(self, piece: memoryview) -> None:
        if self._fd is None:
            raise ValueError("write to a closed HashingWriter")
        if len(piece) >= _SMALL:
            self._hash_async(piece)
        elif self._queue is not None:
            self._queue.put(piece)  # keep the hash in file order
        else:
            self._hash.update(piece)
        self._size += len(piece)
        while len(piece):
            written = os.write(self._fd, piece)
            piece = piece[written:]

    def _hash_async(self, piece: memoryview) -> None:
        if self._queue is None:
            # A small bound: the writer never runs more than a few pieces ahead.
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._hash_loop, name="cumulus-ckpt-sha256", daemon=True)
            self._thread.start()
        self._queue.put(piece)

    def _hash_loop(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._hash.update(item)
                except BaseException as err:  # surfaced by close()
                    self._error = err


def sha256_file(path: PathLike) -> FileRecord:
    """Size and sha256 of an existing file (read in large blocks)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_READ)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            size += n
    return FileRecord(Path(path).name, size, h.hexdigest())


def verify_file(path: PathLike, expected: FileRecord) -> None:
    """Raise :class:`CorruptCheckpointError` unless ``path`` matches ``expected``."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise CorruptCheckpointError(f"{expected.name}: missing") from None
    if size != expected.size:
        raise CorruptCheckpointError(f"{expected.name}: size {size}, manifest says {expected.size}")
    actual = sha256_file(path)
    if actual.sha256 != expected.sha256:
        raise CorruptCheckpointError(f"{expected.name}: sha256 differs from the manifest")
