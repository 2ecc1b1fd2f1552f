"""``python3 -m cumulus.runtime`` as a real process against a real gRPC server."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bundle_helpers import TOKEN, BundleServer, member, run_runtime, runtime_env, tar_gz
from cumulus import runtime
from runtime_server import RuntimeServer


def test_extracts_bundle_and_runs_command_in_workdir(bundle_server: BundleServer, tmp_path: Path) -> None:
    script = b"#!/bin/sh\necho from-script \"$@\"\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, content, mode in [
            ("hello.txt", b"hello bundle\n", 0o644),
            ("sub/deep/data.txt", b"deep\n", 0o600),
            ("bin/run.sh", script, 0o755),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
        archive.addfile(member("link.txt", tarfile.SYMTYPE, "hello.txt"))
    bundle_server.bundle = buf.getvalue()
    work = tmp_path / "work"

    proc = run_runtime(runtime_env(bundle_server, work), "sh", "-c", "pwd; cat link.txt sub/deep/data.txt; ./bin/run.sh a b")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(work), "hello bundle", "deep", "from-script a b"]
    assert proc.stderr == ""
    assert (work / "sub/deep/data.txt").stat().st_mode & 0o777 == 0o600
    assert os.access(work / "bin/run.sh", os.X_OK)
    assert bundle_server.calls == [("job-1", TOKEN)]


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_is_the_commands_own(bundle_server: BundleServer, tmp_path: Path, code: int) -> None:
    bundle_server.bundle = tar_gz({"x": b"x"})
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w"), "sh", "-c", f"echo out; exit {code}")
    assert proc.returncode == code
    assert proc.stdout == "out\n"


def test_command_replaces_the_runtime_process(bundle_server: BundleServer, tmp_path: Path) -> None:
    """exec, not a child: the command has the runtime's pid and receives its signals."""
    bundle_server.bundle = tar_gz({"x": b"x"})
    env = runtime_env(bundle_server, tmp_path / "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cumulus.runtime", "--", "sh", "-c", "echo $$; exec sleep 30"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == proc.pid
        deadline = time.monotonic() + 10
        while b"sleep" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "command never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_empty_bundle_runs_the_command(bundle_server: BundleServer, tmp_path: Path) -> None:
    bundle_server.bundle = b""
    work = tmp_path / "w"
    proc = run_runtime(runtime_env(bundle_server, work), "sh", "-c", "ls -A | wc -l")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


def test_large_bundle_in_many_chunks(bundle_server: BundleServer, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    bundle_server.bundle = tar_gz({"blob.bin": payload})
    bundle_server.chunk_size = 16 * 1024
    work = tmp_path / "w"
    proc = run_runtime(runtime_env(bundle_server, work), "true")
    assert proc.returncode == 0, proc.stderr
    assert (work / "blob.bin").read_bytes() == payload


@pytest.mark.parametrize(
    "extra",
    [
        [member("../evil.txt", tarfile.REGTYPE)],
        [member("/tmp/abs-evil.txt", tarfile.REGTYPE)],
        [member("a/../../evil.txt", tarfile.REGTYPE)],
        [member("out", tarfile.SYMTYPE, "../../outside")],
        [member("etc", tarfile.SYMTYPE, "/etc")],
        [member("hard", tarfile.LNKTYPE, "../outside")],
        [member("dev", tarfile.CHRTYPE)],
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink-out", "symlink-abs", "hardlink-out", "device"],
)
def test_unsafe_bundle_is_rejected_and_command_not_run(
    bundle_server: BundleServer, tmp_path: Path, extra: list
) -> None:
    bundle_server.bundle = tar_gz({"ok.txt": b"ok"}, extra=extra)
    work = tmp_path / "w"
    proc = run_runtime(runtime_env(bundle_server, work), "touch", str(tmp_path / "ran"))
    assert proc.returncode == runtime.EXIT_BAD_BUNDLE
    assert proc.stderr.startswith("cumulus-runtime: error: bundle")
    assert len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "ran").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_bad_token_exits_77_without_printing_the_token(bundle_server: BundleServer, tmp_path: Path) -> None:
    bundle_server.bundle = tar_gz({"x": b"x"})
    wrong = "wrong-token-abcdef"
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w", CUMULUS_JOB_TOKEN=wrong), "true")
    assert proc.returncode == runtime.EXIT_BAD_TOKEN
    assert "UNAUTHENTICATED" in proc.stderr
    assert wrong not in proc.stderr + proc.stdout
    assert bundle_server.calls == [("job-1", wrong)]


def test_unknown_job_exits_76(bundle_server: BundleServer, tmp_path: Path) -> None:
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w", CUMULUS_JOB_ID="nope"), "true")
    assert proc.returncode == runtime.EXIT_ORCHESTRATOR_ERROR
    assert "NOT_FOUND" in proc.stderr


def test_unreachable_orchestrator_exits_69(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = BundleServer(url=f"127.0.0.1:{port}")
    started = time.monotonic()
    proc = run_runtime(runtime_env(server, tmp_path / "w", CUMULUS_CONNECT_TIMEOUT="1"), "true")
    assert proc.returncode == runtime.EXIT_UNREACHABLE
    assert proc.stderr == f"cumulus-runtime: error: orchestrator unreachable at 127.0.0.1:{port} (no connection within 1 s)\n"
    assert time.monotonic() - started < 10


def test_command_not_found_exits_127(bundle_server: BundleServer, tmp_path: Path) -> None:
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w"), "no-such-command-xyz", "arg")
    assert proc.returncode == 127
    assert proc.stderr == "cumulus-runtime: error: command not found: no-such-command-xyz\n"


def test_non_executable_command_exits_126(bundle_server: BundleServer, tmp_path: Path) -> None:
    bundle_server.bundle = tar_gz({"data.txt": b"not a program"})
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w"), "./data.txt")
    assert proc.returncode == 126
    assert "permission denied: ./data.txt" in proc.stderr


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: setattr(s, "bundle", b"this is not gzip at all"),
        lambda s: setattr(s, "bundle", s.bundle[: len(s.bundle) // 2]),
        lambda s: setattr(s, "announce", len(s.bundle) + 10),
    ],
    ids=["not-gzip", "cut-in-half", "fewer-bytes-than-announced"],
)
def test_corrupt_or_truncated_bundle_exits_65(bundle_server: BundleServer, tmp_path: Path, mutate) -> None:
    bundle_server.bundle = tar_gz({"big.bin": os.urandom(200_000)})
    mutate(bundle_server)
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w"), "touch", str(tmp_path / "ran"))
    assert proc.returncode == runtime.EXIT_BAD_BUNDLE, proc.stderr
    assert not (tmp_path / "ran").exists()


def test_missing_environment_exits_64(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": runtime_env(BundleServer(), tmp_path)["PYTHONPATH"]}
    proc = run_runtime(env, "true")
    assert proc.returncode == runtime.EXIT_USAGE
    assert "CUMULUS_ORCHESTRATOR_URL, CUMULUS_JOB_ID, CUMULUS_JOB_TOKEN" in proc.stderr


def test_no_command_exits_64(bundle_server: BundleServer, tmp_path: Path) -> None:
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w"))
    assert proc.returncode == runtime.EXIT_USAGE
    assert "no command given" in proc.stderr
    assert bundle_server.calls == []  # nothing is fetched for a command that cannot run


def test_unknown_option_exits_64_without_fetching(bundle_server: BundleServer, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cumulus.runtime", "--bogus"],
        env=runtime_env(bundle_server, tmp_path / "w"), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == runtime.EXIT_USAGE
    assert proc.stderr.startswith("cumulus-runtime: error: unknown option --bogus")
    assert bundle_server.calls == []


def test_unwritable_workdir_exits_73(bundle_server: BundleServer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    bundle_server.bundle = tar_gz({"x": b"x"})
    proc = run_runtime(runtime_env(bundle_server, blocker / "w"), "true")
    assert proc.returncode == runtime.EXIT_WORKDIR
    assert "cannot create workdir" in proc.stderr


def test_streamed_command_fetches_and_streams_over_one_channel(server: RuntimeServer, tmp_path: Path) -> None:
    # Each channel the runtime opens probes health once: one probe, one channel.
    server.bundle = tar_gz({"hello.txt": b"hello from the bundle\n"})
    proc = run_runtime(runtime_env(server, tmp_path / "w", CUMULUS_LOG_STREAM="1"), "cat", "hello.txt")  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    assert "hello from the bundle" in proc.stdout + proc.stderr
    assert server.health_checks == 1
    assert server.calls == ["FetchBundle"]


def _zeros_tar_gz(size: int) -> bytes:
    """A gzipped tar of one file of ``size`` zero bytes, streamed (about 1000:1)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        archive.addfile(info, io.BytesIO(bytes(size)))
    return buf.getvalue()


def test_gzip_bomb_stops_at_the_expanded_size_limit_before_writing(bundle_server: BundleServer, tmp_path: Path) -> None:
    bundle_server.bundle = _zeros_tar_gz(64 * 1024 * 1024)
    assert len(bundle_server.bundle) < 1024 * 1024  # a small download
    work = tmp_path / "w"
    proc = run_runtime(runtime_env(bundle_server, work, CUMULUS_BUNDLE_MAX_BYTES="16M"), "true")
    assert proc.returncode == runtime.EXIT_BAD_BUNDLE, proc.stderr
    assert "bundle expands to more than 16.0 MiB (the limit CUMULUS_BUNDLE_MAX_BYTES) at 'zeros.bin'" in proc.stderr
    assert not (work / "zeros.bin").exists()


def test_bundle_with_too_many_members_is_refused(bundle_server: BundleServer, tmp_path: Path) -> None:
    bundle_server.bundle = tar_gz({f"f{i}.txt": b"x" for i in range(50)})
    proc = run_runtime(runtime_env(bundle_server, tmp_path / "w", CUMULUS_BUNDLE_MAX_FILES="20"), "true")
    assert proc.returncode == runtime.EXIT_BAD_BUNDLE, proc.stderr
    assert "more than 20 files, directories and links (the limit CUMULUS_BUNDLE_MAX_FILES)" in proc.stderr
    ok = run_runtime(runtime_env(bundle_server, tmp_path / "w2", CUMULUS_BUNDLE_MAX_FILES="50"), "true")
    assert ok.returncode == 0, ok.stderr


def test_bundle_limits_default_and_refuse_bad_values() -> None:
    assert runtime.BundleLimits.from_env({}) == runtime.BundleLimits(4 * 1024**3, 100_000)
    assert runtime.BundleLimits.from_env({"CUMULUS_BUNDLE_MAX_BYTES": "500MiB"}).max_bytes == 500 * 1024**2
    for env in ({"CUMULUS_BUNDLE_MAX_BYTES": "lots"}, {"CUMULUS_BUNDLE_MAX_BYTES": "0"}, {"CUMULUS_BUNDLE_MAX_FILES": "-1"}):
        with pytest.raises(runtime.UsageError):
            runtime.BundleLimits.from_env(env)
