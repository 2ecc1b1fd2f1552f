"""Find the caller's local Python modules: the ones a job container cannot import.

A module is *local* when it was loaded from a ``.py`` file outside the Python
installation (standard library, ``site-packages``/``dist-packages``) and is not
part of ``cumulus`` itself: the user's scripts, notebooks' helper files, an
editable install of their project. Those are pickled by value and their source
files travel in the job bundle; everything else is expected in the job image.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from types import ModuleType
from typing import Dict, FrozenSet, List, Mapping, Optional

__all__ = ["LocalModule", "local_modules", "is_system_path"]

_SYSTEM_PARTS = frozenset({"site-packages", "dist-packages"})


@dataclass(frozen=True)
class LocalModule:
    """A local module: its name, its loaded object, its source file and bundle path."""

    name: str
    module: ModuleType
    path: str
    #: Path relative to the bundle's module root, e.g. ``pkg/util.py``.
    arcname: str


def _system_dirs() -> FrozenSet[str]:
    dirs = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            dirs.add(os.path.realpath(paths[key]))
    try:
        dirs.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenvs lack it
        pass
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        dirs.add(os.path.realpath(user_site))
    # The SDK itself is in the image; shipping it would shadow the image's copy.
    dirs.add(os.path.realpath(os.path.dirname(os.path.abspath(__file__))))
    return frozenset(dirs)


def is_system_path(path: str, system_dirs: Optional[FrozenSet[str]] = None) -> bool:
    """True when ``path`` belongs to the Python installation or the ``cumulus`` package."""
    real = os.path.realpath(path)
    if _SYSTEM_PARTS.intersection(real.split(os.sep)):
        return True
    for d in system_dirs if system_dirs is not None else _system_dirs():
        if real == d or real.startswith(d + os.sep):
            return True
    return False


def _arcname(name: str, path: str) -> Optional[str]:
    """Where the file goes under the module root, or None when its path does not match its name."""
    parts = name.split(".")
    base = os.path.basename(path)
    rel = parts + ["__init__.py"] if base == "__init__.py" else parts[:-1] + [parts[-1] + ".py"]
    norm = os.path.normpath(os.path.abspath(path)).split(os.sep)
    # The file must sit at <root>/<a>/<b>/<c>.py, or an import in the container would not find it.
    if norm[-len(rel):] != rel:
        return None
    return "/".join(rel)


def local_modules(modules: Optional[Mapping[str, ModuleType]] = None) -> List[LocalModule]:
    """Every loaded local module (see the module docstring), sorted by name.

    ``__main__`` is skipped: cloudpickle already pickles its functions by value,
    and a file named after it would not be importable anyway.
    """
    loaded: Mapping[str, ModuleType] = dict(sys.modules if modules is None else modules)
    system = _system_dirs()
    found: Dict[str, LocalModule] = {}
    for name, module in loaded.items():
        if module is None or name in ("__main__", "__mp_main__") or name.split(".")[0] == "cumulus":
            continue
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py") or not os.path.isfile(path):
            continue
        if is_system_path(path, system):
            continue
        arcname = _arcname(name, path)
        if arcname is None:
            continue
        found[name] = LocalModule(name=name, module=module, path=os.path.abspath(path), arcname=arcname)
    return [found[n] for n in sorted(found)]
