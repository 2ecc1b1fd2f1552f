"""extract_bundle on the real file system: what it writes and what it refuses."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import List

import pytest

from bundle_helpers import member, tar_gz
from cumulus.runtime import BundleError, extract_bundle


def chunks(data: bytes, size: int = 7) -> List[bytes]:
    """Split into tiny chunks so reads straddle chunk edges."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_files_dirs_and_inside_links_are_extracted(tmp_path: Path) -> None:
    data = tar_gz(
        {"a.txt": b"A", "d/b.txt": b"B"},
        extra=[
            member("d/e", tarfile.DIRTYPE, mode=0o700),
            member("d/to-a", tarfile.SYMTYPE, "../a.txt"),
            member("hard-b", tarfile.LNKTYPE, "d/b.txt"),
            member("self", tarfile.SYMTYPE, "."),
        ],
    )
    stats = extract_bundle(chunks(data), str(tmp_path))
    assert (tmp_path / "d/to-a").read_text() == "A"
    assert (tmp_path / "hard-b").read_text() == "B"
    assert (tmp_path / "d/e").is_dir()
    assert (stats.files, stats.dirs, stats.links) == (2, 1, 3)
    assert stats.compressed_bytes == len(data)


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    extract_bundle([tar_gz({"tool": b"#!/bin/sh\n"}, mode=0o6755)], str(tmp_path))
    assert (tmp_path / "tool").stat().st_mode & 0o7777 == 0o755


def test_later_member_replaces_earlier_file_but_not_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    work = tmp_path / "w"
    # "f" first points (inside) at "g"; then a regular file "f" must replace the link, not write through it.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        archive.addfile(member("f", tarfile.SYMTYPE, "g"))
        for name, content in [("g", b"g0"), ("f", b"new")]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    data = buf.getvalue()
    extract_bundle([data], str(work))
    assert not (work / "f").is_symlink()
    assert (work / "f").read_text() == "new"
    assert (work / "g").read_text() == "g0"
    assert outside.read_text() == "untouched"


@pytest.mark.parametrize(
    "members, message",
    [
        ([member("../x", tarfile.REGTYPE)], "'..'"),
        ([member("/x", tarfile.REGTYPE)], "absolute path"),
        ([member("l", tarfile.SYMTYPE, "..")], "points outside"),
        ([member("l", tarfile.SYMTYPE, "/tmp")], "absolute target"),
        ([member("h", tarfile.LNKTYPE, "/etc/passwd")], "absolute path"),
        ([member("h", tarfile.LNKTYPE, "missing")], "not an extracted file"),
        ([member("c", tarfile.CHRTYPE)], "device file"),
        ([member("b", tarfile.BLKTYPE)], "device file"),
        ([member("p", tarfile.FIFOTYPE)], "FIFO"),
        # A dangling link that looks inside, made to escape by a later, innocent-looking link.
        ([member("a", tarfile.SYMTYPE, "b/../escaped"), member("b", tarfile.SYMTYPE, ".")], "resolves outside"),
        # A write routed through a link to the parent of the workdir.
        ([member("up", tarfile.SYMTYPE, "d/.."), member("d", tarfile.SYMTYPE, "."), member("up/x", tarfile.DIRTYPE)], "outside"),
        ([member("d", tarfile.DIRTYPE), member("d", tarfile.REGTYPE)], "replace a directory"),
    ],
    ids=[
        "dotdot", "absolute", "symlink-up", "symlink-absolute", "hardlink-absolute",
        "hardlink-missing", "chr", "blk", "fifo", "dangling-chain", "write-through-chain", "dir-replaced",
    ],
)
def test_unsafe_members_are_rejected(tmp_path: Path, members: list, message: str) -> None:
    work = tmp_path / "w"
    with pytest.raises(BundleError, match=message):
        extract_bundle([tar_gz({"ok": b"ok"}, extra=members)], str(work))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    assert not (tmp_path / "escaped").exists()


def test_not_gzip_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a valid gzipped tar"):
        extract_bundle([b"plain text, not gzip"], str(tmp_path))


def test_truncated_gzip_is_a_bundle_error(tmp_path: Path) -> None:
    data = tar_gz({"big": os.urandom(100_000)})
    with pytest.raises(BundleError):
        extract_bundle([data[:50_000]], str(tmp_path))


def test_empty_stream_extracts_nothing(tmp_path: Path) -> None:
    work = tmp_path / "w"
    stats = extract_bundle([b"", b""], str(work))
    assert work.is_dir() and list(work.iterdir()) == []
    assert stats.compressed_bytes == 0
