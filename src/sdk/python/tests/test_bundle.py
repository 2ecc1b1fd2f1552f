"""The bundle a Python call ships, extracted by the runtime's own extractor."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from cumulus._bundle import build_bundle, iter_chunks, resolve_files
from cumulus._call import MODULES_DIR
from cumulus._modules import LocalModule
from cumulus.runtime import extract_bundle


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data/nested").mkdir(parents=True)
    (root / "data/nested/a.csv").write_text("a")
    (root / "data/__pycache__").mkdir()
    (root / "data/__pycache__/x.pyc").write_text("compiled")
    (root / "config.yaml").write_text("lr: 1")
    (root / "outside.txt").write_text("abs")
    (tmp_path / "elsewhere.txt").write_text("up")
    os.symlink(root / "outside.txt", root / "data/link.txt")
    return root


def test_relative_absolute_and_named_entries(project: Path) -> None:
    got = resolve_files(["data", "config.yaml", str(project / "outside.txt")], cwd=str(project))
    assert [(f.arcname, Path(f.path).name) for f in got] == [
        ("data", "data"), ("config.yaml", "config.yaml"), ("outside.txt", "outside.txt"),
    ]
    named = resolve_files({"conf/settings.yaml": project / "config.yaml"}, cwd=str(project))
    assert [f.arcname for f in named] == ["conf/settings.yaml"]
    assert [f.arcname for f in resolve_files("config.yaml", cwd=str(project))] == ["config.yaml"]
    assert resolve_files(None) == []


@pytest.mark.parametrize(
    "files, error, message",
    [
        (["missing.txt"], FileNotFoundError, "no such file or directory: 'missing.txt'"),
        (["../elsewhere.txt"], ValueError, "outside the current directory"),
        ({"../up.yaml": "config.yaml"}, ValueError, "outside the current directory"),
        ({".cumulus/x": "config.yaml"}, ValueError, "reserved"),
    ],
)
def test_bad_entries(project: Path, files: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_files(files, cwd=str(project))  # type: ignore[arg-type]


def test_bundle_extracts_with_links_followed_and_caches_skipped(project: Path, tmp_path: Path) -> None:
    mod_file = tmp_path / "helper.py"
    mod_file.write_text("X = 1\n")
    module = LocalModule(name="helper", module=types.ModuleType("helper"), path=str(mod_file), arcname="helper.py")
    bundle = build_bundle(resolve_files(["data", "config.yaml"], cwd=str(project)), [module], {".cumulus/call.pkl": b"C"})
    assert bundle is not None
    work = tmp_path / "work"
    extract_bundle(iter_chunks(bundle, 100), str(work))
    files = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    assert files == [".cumulus/call.pkl", f"{MODULES_DIR}/helper.py", "config.yaml", "data/link.txt", "data/nested/a.csv"]
    assert not (work / "data/link.txt").is_symlink()
    assert (work / "data/link.txt").read_text() == "abs"


def test_nothing_to_ship_is_no_bundle() -> None:
    assert build_bundle([], [], {}) is None
