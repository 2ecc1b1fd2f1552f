"""cumulus._logstream.LogStreamer against a real in-process gRPC StreamLogs
server: a child process prints, the server stores lines by index the way
the orchestrator does (resends skipped, acks after storing)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent import futures
from typing import Iterator, List, Optional, Tuple

import grpc
import pytest

from bundle_helpers import PACKAGE_DIR, pb2
from runtime_server import LogServer


@pytest.fixture()
def log_server() -> Iterator[Tuple[LogServer, str]]:
    state = LogServer()
    handler = grpc.method_handlers_generic_handler(
        "cumulus.v1.Runtime",
        {
            "StreamLogs": grpc.stream_stream_rpc_method_handler(
                state.stream_logs,
                request_deserializer=pb2.LogBatch.FromString,
                response_serializer=pb2.LogAck.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield state, f"127.0.0.1:{port}"
    finally:
        server.stop(0)


CHILD = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {pkg!r})
    import grpc
    from cumulus._logstream import LogStreamer
    channel = grpc.insecure_channel({url!r})
    s = LogStreamer(channel, "job-1", 1, "tok", give_up_after=3).start()
    out = os.fdopen(1, "wb", closefd=False)
    for i in range({n}):
        out.write(b"line %d\\n" % i)
    out.flush()
    os.write(2, b"to stderr\\n")
    os.write(1, b"bad \\xff byte\\n")
    os.write(1, b"y" * (150 * 1024))  # one line of 150 KiB with no newline at all
    if {sigterm}:
        import signal
        from cumulus._pipes import keep_running
        signal.signal(signal.SIGTERM, keep_running)
        os.kill(os.getpid(), signal.SIGTERM)
    ok = s.close(timeout=20, exit_code={exit_code})
    sys.__stderr__.write("CLOSED %s %s\\n" % (ok, s.error))
    """
)


def run_child(url: str, n: int, exit_code: Optional[int] = None, sigterm: bool = False) -> subprocess.CompletedProcess:
    code = CHILD.format(pkg=str(PACKAGE_DIR), url=url, n=n, exit_code=exit_code, sigterm=sigterm)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)


def check_lines(lines: List[Tuple[int, bytes]], n: int) -> None:
    # Order holds within a stream; the two pipes are read by two threads, so
    # stderr may land anywhere among stdout's lines.
    out = [t for s, t in lines if s == 0]
    assert out[:n] == [b"line %d" % i for i in range(n)]
    assert out[n] == b"bad \xff byte"  # bytes as written: the orchestrator repairs UTF-8
    assert [len(t) for t in out[n + 1:]] == [64 * 1024, 64 * 1024, 22 * 1024]
    assert all(t == b"y" * len(t) for t in out[n + 1:])
    assert [t for s, t in lines if s == 1] == [b"to stderr"]


def test_every_line_arrives_once_in_order_as_bytes(log_server: Tuple[LogServer, str]) -> None:
    state, url = log_server
    proc = run_child(url, 200_000)
    assert proc.returncode == 0, proc.stderr
    assert b"CLOSED True None" in proc.stderr
    assert proc.stdout == b""  # nothing fell back to the container log
    check_lines(state.lines, 200_000)
    assert len(state.lines) == 200_000 + 2 + 3
    # Many lines per batch, not one message per line.
    assert state.batches < 200


def test_a_dropped_call_is_resumed_from_the_last_ack(log_server: Tuple[LogServer, str]) -> None:
    state, url = log_server
    state.fail_first_call_after = 3
    proc = run_child(url, 100_000)
    assert proc.returncode == 0, proc.stderr
    assert b"CLOSED True None" in proc.stderr
    assert state.calls >= 2
    check_lines(state.lines, 100_000)
    assert len(state.lines) == 100_000 + 2 + 3


def test_a_refused_stream_falls_back_to_the_original_output(log_server: Tuple[LogServer, str]) -> None:
    state, url = log_server
    state.refuse = grpc.StatusCode.UNAUTHENTICATED
    proc = run_child(url, 1000)
    assert proc.returncode == 0, proc.stderr
    assert b"CLOSED False log stream refused" in proc.stderr
    out = proc.stdout.split(b"\n")
    assert out[:1000] == [b"line %d" % i for i in range(1000)]
    assert b"bad \xff byte" in out
    assert b"to stderr" in proc.stderr


def test_the_exit_code_is_announced_after_every_line(log_server: Tuple[LogServer, str]) -> None:
    state, url = log_server
    state.fail_first_call_after = 2  # and again on the call that resumes
    proc = run_child(url, 50_000, exit_code=3)
    assert proc.returncode == 0, proc.stderr
    assert b"CLOSED True None" in proc.stderr
    check_lines(state.lines, 50_000)
    assert state.ends == [(50_000 + 2 + 3, 3)]


def test_no_end_is_announced_without_an_exit_code_or_after_a_sigterm(log_server: Tuple[LogServer, str]) -> None:
    state, url = log_server
    assert run_child(url, 10).returncode == 0
    proc = run_child(url, 10, exit_code=0, sigterm=True)
    assert proc.returncode == 0, proc.stderr
    assert b"CLOSED True None" in proc.stderr
    assert state.ends == []  # a stopped job's exit is Swarm's to explain
    assert len(state.lines) == 10 + 2 + 3  # the same indexes twice: stored once
