"""Which loaded modules count as local (shipped with the job)."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest

import cumulus.runtime
from cumulus._modules import is_system_path, local_modules


def _module(name: str, path: Path) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    return mod


def test_user_modules_and_packages_are_local(tmp_path: Path) -> None:
    (tmp_path / "proj/sub").mkdir(parents=True)
    for rel in ("helper.py", "proj/__init__.py", "proj/sub/__init__.py", "proj/sub/tool.py"):
        (tmp_path / rel).write_text("")
    modules = {
        "helper": _module("helper", tmp_path / "helper.py"),
        "proj": _module("proj", tmp_path / "proj/__init__.py"),
        "proj.sub": _module("proj.sub", tmp_path / "proj/sub/__init__.py"),
        "proj.sub.tool": _module("proj.sub.tool", tmp_path / "proj/sub/tool.py"),
    }
    found = {m.name: m.arcname for m in local_modules(modules)}
    assert found == {
        "helper": "helper.py",
        "proj": "proj/__init__.py",
        "proj.sub": "proj/sub/__init__.py",
        "proj.sub.tool": "proj/sub/tool.py",
    }


def test_installed_stdlib_main_and_cumulus_modules_are_not_local(tmp_path: Path) -> None:
    site = tmp_path / "lib/python3/site-packages"
    site.mkdir(parents=True)
    (site / "thirdparty.py").write_text("")
    (tmp_path / "script.py").write_text("")
    (tmp_path / "ext.so").write_text("")
    modules = {
        "json": json,  # standard library
        "thirdparty": _module("thirdparty", site / "thirdparty.py"),
        "__main__": _module("__main__", tmp_path / "script.py"),
        "cumulus.runtime": cumulus.runtime,
        "ext": _module("ext", tmp_path / "ext.so"),  # compiled: not shippable as source
        "builtin_like": types.ModuleType("builtin_like"),  # no __file__
        "renamed": _module("renamed", tmp_path / "script.py"),  # file name does not match the module name
        "gone": _module("gone", tmp_path / "deleted.py"),
    }
    assert local_modules(modules) == []


def test_this_test_module_is_local_and_pytest_is_not() -> None:
    names = {m.name for m in local_modules()}
    assert "test_modules" in names
    assert not any(n == "pytest" or n.startswith(("_pytest", "cumulus", "grpc")) for n in names)


@pytest.mark.parametrize("path, expected", [
    (json.__file__, True),
    (pytest.__file__, True),
    (cumulus.runtime.__file__, True),
    (__file__, False),
    (os.path.join("/opt", "x", "dist-packages", "y.py"), True),
])
def test_system_paths(path: str, expected: bool) -> None:
    assert is_system_path(path) is expected
