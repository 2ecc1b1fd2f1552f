"""A streamed function job (``CUMULUS_LOG_STREAM=1``, as the orchestrator runs
it) as real processes against the real in-process Runtime server: the parent
runtime does all gRPC, the child runs only the function. What both modes share
is in test_runtime_function.py; this is what only the two-process shape has."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest

from bundle_helpers import runtime_env
from cumulus import runtime
from cumulus._call import CallEnvelope, pickle_call, python_version
from cumulus._outcome import decode_value
from orchestrator_proc import free_port
from runtime_server import LogServer, RuntimeServer

THIS_MODULE = sys.modules[__name__]


def payload(fn: Any, *args: Any) -> bytes:
    call = pickle_call(fn, args, {}, by_value=[THIS_MODULE])
    return CallEnvelope(call=call, bundle=False, python=python_version()).to_bytes()


def streamed_env(server: RuntimeServer, workdir: Path, **env: str) -> dict:
    """As the orchestrator sets it (PYTHONUNBUFFERED too), with StreamLogs served."""
    if server.logs is None:
        server.logs = LogServer()
    return runtime_env(server, workdir, CUMULUS_LOG_STREAM="1", PYTHONUNBUFFERED="1", **env)


def start(server: RuntimeServer, workdir: Path, **env: str) -> subprocess.Popen:
    """The runtime in its own process group, as tini -g sees the job."""
    return subprocess.Popen(
        [sys.executable, "-m", "cumulus.runtime", "--function"],
        env=streamed_env(server, workdir, **env),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def logged(server: RuntimeServer) -> List[str]:
    assert server.logs is not None
    return [line.decode() for _, line in server.logs.lines]


def wait_for_line(server: RuntimeServer, line: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while line not in logged(server):
        assert proc.poll() is None, f"the runtime ended early with {proc.returncode}"
        assert time.monotonic() < deadline, f"{line!r} never reached the log stream: {logged(server)}"
        time.sleep(0.02)


# The functions below run in the child. No asserts in them: pytest rewrites
# asserts into calls to its own module.


def loaded_rpc_modules() -> List[str]:
    return sorted(m for m in sys.modules if m.split(".")[0] == "grpc" or m.startswith("google.protobuf"))


def what_the_function_sees() -> Any:
    return loaded_rpc_modules(), sys.argv[1:]


def print_then_crash(how: str) -> None:
    print("printed before the crash")
    os.write(2, b"to stderr, unbuffered\n")
    if how == "exit":
        os._exit(3)
    import ctypes

    ctypes.string_at(0)  # SIGSEGV


def wait_for_sigterm(handle: bool) -> str:
    stop = []
    if handle:
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("started")
    while not stop:
        time.sleep(0.01)
    print("stopping")
    return "stopped cleanly"


def save_a_checkpoint(step: int) -> int:
    from cumulus import checkpoint

    checkpoint.save({"step": step}, step)  # reported from the child's thread, flushed as it exits
    return step


def test_the_function_starts_without_grpc_or_protobuf_loaded(server: RuntimeServer, tmp_path: Path) -> None:
    server.function = payload(what_the_function_sees)
    proc = finish(start(server, tmp_path / "w"))
    assert proc.returncode == 0, proc.stderr
    assert decode_value(server.results[0][1]) == ([], [])  # nor the runtime's fds on its command line
    assert server.calls == ["FetchFunction", "ReportResult"]
    assert server.health_checks == 0


@pytest.mark.parametrize("how, code", [("exit", 3), ("segfault", 128 + signal.SIGSEGV)])
def test_a_crashing_child_loses_no_printed_line(server: RuntimeServer, tmp_path: Path, how: str, code: int) -> None:
    server.function = payload(print_then_crash, how)
    proc = finish(start(server, tmp_path / "w"))
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # everything went over the log stream
    assert sorted(logged(server)) == ["printed before the crash", "to stderr, unbuffered"]
    assert server.results == []


@pytest.mark.parametrize(
    "handle, code, lines, values",
    [
        (False, 128 + signal.SIGTERM, ["started"], []),
        # The timebox flow: SIGTERM asks the function to wrap up; the parent stays to report.
        (True, 0, ["started", "stopping"], ["stopped cleanly"]),
    ],
)
def test_sigterm_to_the_group_reaches_the_function_and_the_runtime_stays(
    server: RuntimeServer, tmp_path: Path, handle: bool, code: int, lines: List[str], values: List[str]
) -> None:
    server.function = payload(wait_for_sigterm, handle)
    proc = start(server, tmp_path / "w")
    wait_for_line(server, "started", proc)
    os.killpg(proc.pid, signal.SIGTERM)
    done = finish(proc)
    assert done.returncode == code, done.stderr
    assert logged(server) == lines
    assert [decode_value(data) for _, data in server.results] == values


def test_an_unreachable_orchestrator_exits_69_and_the_child_quietly(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    server = RuntimeServer(url=f"127.0.0.1:{port}")
    started = time.monotonic()
    proc = finish(start(server, tmp_path / "w", CUMULUS_CONNECT_TIMEOUT="1"))
    assert proc.returncode == runtime.EXIT_UNREACHABLE
    # One line, the parent's: no traceback from the child it sent away.
    assert proc.stderr == f"cumulus-runtime: error: orchestrator unreachable at 127.0.0.1:{port} (no connection within 1 s)\n"
    assert proc.stdout == ""
    assert time.monotonic() - started < 15


def test_a_result_cut_by_a_restart_is_sent_again_on_the_same_channel(server: RuntimeServer, tmp_path: Path) -> None:
    """The log stream shares the channel; resuming cut fetches is test_retry's (the same code)."""
    server.function = payload(what_the_function_sees)
    server.unavailable_results = 2
    proc = finish(start(server, tmp_path / "w"))
    assert proc.returncode == 0, proc.stderr
    assert server.calls == ["FetchFunction"] + ["ReportResult"] * 3
    assert [decode_value(data) for _, data in server.results] == [([], [])]


def test_a_checkpoint_saved_in_the_function_is_reported_from_the_child(server: RuntimeServer, tmp_path: Path) -> None:
    """cumulus.checkpoint reports on a channel of its own (importing grpc then), with the job's env."""
    server.function = payload(save_a_checkpoint, 7)
    proc = finish(start(server, tmp_path / "w", CUMULUS_CHECKPOINT_DIR=str(tmp_path / "ckpt")))
    assert proc.returncode == 0, proc.stderr
    assert decode_value(server.results[0][1]) == 7
    assert server.checkpoints == [(7, "l1")]
    assert (tmp_path / "ckpt").is_dir()
