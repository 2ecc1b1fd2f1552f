"""The job bundle a Python call ships: ``files=``, local modules, a large call.

The bundle is a gzipped tar extracted by the runtime into the job's working
directory (``/workspace``), which is also the function's current directory, so
``files=["data/train.csv"]`` is read as ``open("data/train.csv")`` remotely too.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from cumulus._call import MODULES_DIR
from cumulus._modules import LocalModule

__all__ = ["FilesArg", "BundleFile", "resolve_files", "build_bundle", "iter_chunks"]

PathArg = Union[str, "os.PathLike[str]"]
#: What ``files=`` accepts: one path, a list of paths, or ``{remote name: local path}``.
FilesArg = Union[None, PathArg, Sequence[PathArg], Mapping[str, PathArg]]

# Never worth shipping, and large in practice.
_SKIP_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"})
_RESERVED = ".cumulus"
_SPOOL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class BundleFile:
    """One local path (file or directory) and its name in the working directory."""

    arcname: str
    path: str


def _clean_arcname(name: str, given: object) -> str:
    norm = os.path.normpath(name).replace(os.sep, "/")
    if norm in ("", ".") or norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise ValueError(
            f"files: {given!r} is outside the current directory; "
            "pass {'remote/name': local_path} to choose where it goes"
        )
    if norm == _RESERVED or norm.startswith(_RESERVED + "/"):
        raise ValueError(f"files: {given!r}: the name {_RESERVED!r} is reserved for Cumulus")
    return norm


def resolve_files(files: FilesArg, cwd: Optional[str] = None) -> List[BundleFile]:
    """Validate ``files=`` and name each entry in the job's working directory.

    A relative path keeps its path (relative to ``cwd``); an absolute path goes
    to its base name; a mapping names each entry. Raises :class:`ValueError`
    for names outside the working directory, :class:`FileNotFoundError` for a
    missing path.
    """
    if files is None:
        return []
    base = os.path.abspath(cwd or os.getcwd())
    pairs: List[Tuple[str, PathArg]] = []
    if isinstance(files, Mapping):
        pairs = [(str(k), v) for k, v in files.items()]
    elif isinstance(files, (str, os.PathLike)):
        pairs = [("", files)]
    else:
        pairs = [("", f) for f in files]
    out: Dict[str, BundleFile] = {}
    for name, local in pairs:
        local_str = os.fspath(local)
        path = local_str if os.path.isabs(local_str) else os.path.join(base, local_str)
        if not os.path.exists(path):
            raise FileNotFoundError(f"files: no such file or directory: {local_str!r}")
        if not name:
            rel = os.path.relpath(path, base)
            name = os.path.basename(os.path.normpath(path)) if os.path.isabs(local_str) else rel
        arcname = _clean_arcname(name, local_str)
        out[arcname] = BundleFile(arcname=arcname, path=os.path.abspath(path))
    return list(out.values())


def _filter(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
    if os.path.basename(info.name) in _SKIP_NAMES or info.name.endswith(".pyc"):
        return None
    # Owner names of this machine mean nothing in the container.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def build_bundle(
    files: Sequence[BundleFile],
    modules: Sequence[LocalModule] = (),
    extra: Mapping[str, bytes] = {},
) -> Optional[IO[bytes]]:
    """Write the bundle (gzipped tar) to a spooled temporary file, rewound.

    Links inside ``files`` are followed (their contents are shipped), since a
    link leading outside the working directory would make the runtime refuse
    the whole bundle. Returns ``None`` when there is nothing to ship.
    """
    if not files and not modules and not extra:
        return None
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    with tarfile.open(fileobj=out, mode="w:gz", dereference=True, compresslevel=6) as archive:
        for f in files:
            archive.add(f.path, arcname=f.arcname, recursive=True, filter=_filter)
        for m in modules:
            archive.add(m.path, arcname=f"{MODULES_DIR}/{m.arcname}", recursive=False, filter=_filter)
        for name, data in extra.items():
            _add_bytes(archive, name, data)
    out.seek(0)
    return out  # type: ignore[return-value]


def iter_chunks(fileobj: IO[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """Read ``fileobj`` to its end in chunks of ``size`` bytes."""
    while True:
        block = fileobj.read(size)
        if not block:
            return
        yield block
