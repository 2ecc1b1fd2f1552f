"""The retry policy (pure logic, fake clock) and the calls that use it against
real gRPC servers: idempotent client calls and the job runtime's FetchFunction,
FetchBundle and ReportResult ride out UNAVAILABLE; SubmitJob and CancelJob do not."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Iterator, List

import grpc
import pytest

from bundle_helpers import pb2, runtime_env
from cumulus._call import CALL_PATH, CallEnvelope, pickle_call, python_version
from cumulus._outcome import KIND_VALUE, decode_value
from cumulus._retry import Backoff, Retrier
from cumulus._rpc import IDEMPOTENT_METHODS, Rpc
from cumulus.errors import OrchestratorUnavailable
from runtime_server import RuntimeServer

THIS_MODULE = sys.modules[__name__]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "backoff, steps, expected",
    [
        # Doubling from 0.1, capped at 2 s.
        (Backoff(), [0.0] * 7, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]),
        # The last delay ends exactly at the budget, then no more attempts.
        (Backoff(budget=1.0, initial=0.4, maximum=5.0), [0.0, 0.4, 0.6], [0.4, 0.6, None]),
        # A budget of 0 turns retrying off.
        (Backoff(budget=0.0), [0.0], [None]),
        # multiplier 1: a constant delay.
        (Backoff(budget=10.0, initial=0.5, multiplier=1.0), [0.0, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ],
)
def test_retrier_delays_grow_to_the_cap_and_stop_at_the_budget(
    backoff: Backoff, steps: List[float], expected: List[object]
) -> None:
    clock = FakeClock()
    retrier = Retrier(backoff, clock=clock)
    got = []
    for step in steps:
        clock.now += step
        delay = retrier.next_delay()
        got.append(None if delay is None else round(delay, 9))
    assert got == expected


def test_retrier_reset_starts_a_fresh_budget() -> None:
    clock = FakeClock()
    retrier = Retrier(Backoff(budget=1.0), clock=clock)
    assert retrier.next_delay() == 0.1
    clock.now += 5.0
    assert retrier.next_delay() is None
    retrier.reset()
    assert retrier.next_delay() == 0.1 and retrier.failures == 1


@pytest.mark.parametrize(
    "field, value", [("budget", -1.0), ("initial", -0.1), ("maximum", float("nan")), ("multiplier", 0.5)]
)
def test_backoff_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{field}: must be"):
        Backoff(**{field: value})


# -- a client against a real server answering UNAVAILABLE a few times -----------


class FlakyCumulus:
    """A Cumulus service whose GetJob and CancelJob fail ``failures`` times first."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: List[str] = []
        self.lock = threading.Lock()

    def _answer(self, method: str, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls.append(method)
            failing = self.failures > 0
            self.failures -= 1 if failing else 0
        if failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "orchestrator restarting")

    def get_job(self, request: pb2.GetJobRequest, context: grpc.ServicerContext) -> pb2.Job:
        self._answer("GetJob", context)
        return pb2.Job(id=request.job_id, state=pb2.RUNNING)

    def cancel_job(self, request: pb2.CancelJobRequest, context: grpc.ServicerContext) -> pb2.CancelJobResponse:
        self._answer("CancelJob", context)
        return pb2.CancelJobResponse(job=pb2.Job(id=request.job_id, state=pb2.CANCELLED))


@pytest.fixture
def flaky() -> Iterator[tuple]:
    state = FlakyCumulus(failures=3)
    handler = grpc.method_handlers_generic_handler("cumulus.v1.Cumulus", {
        "GetJob": grpc.unary_unary_rpc_method_handler(
            state.get_job, request_deserializer=pb2.GetJobRequest.FromString,
            response_serializer=pb2.Job.SerializeToString),
        "CancelJob": grpc.unary_unary_rpc_method_handler(
            state.cancel_job, request_deserializer=pb2.CancelJobRequest.FromString,
            response_serializer=pb2.CancelJobResponse.SerializeToString),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    rpc = Rpc(f"127.0.0.1:{port}", connect_timeout=4.0)
    try:
        yield state, rpc
    finally:
        rpc.close()
        server.stop(grace=None)


def test_idempotent_calls_ride_out_unavailable(flaky: tuple) -> None:
    state, rpc = flaky
    job = rpc.unary("GetJob", pb2.GetJobRequest(job_id="j-1"))
    assert job.id == "j-1" and state.calls == ["GetJob"] * 4


def test_cancel_is_never_repeated(flaky: tuple) -> None:
    state, rpc = flaky
    assert "CancelJob" not in IDEMPOTENT_METHODS and "SubmitJob" not in IDEMPOTENT_METHODS
    with pytest.raises(OrchestratorUnavailable, match="restarting"):
        rpc.unary("CancelJob", pb2.CancelJobRequest(job_id="j-1"))
    assert state.calls == ["CancelJob"]


def test_the_retry_budget_bounds_the_wait(flaky: tuple) -> None:
    state, rpc = flaky
    state.failures = 10_000
    rpc.backoff = Backoff(budget=0.5)
    with pytest.raises(OrchestratorUnavailable):
        rpc.unary("GetJob", pb2.GetJobRequest(job_id="j-1"))
    assert 3 <= len(state.calls) <= 8, state.calls


def test_an_orchestrator_never_reached_fails_at_once() -> None:
    rpc = Rpc("127.0.0.1:1", connect_timeout=4.0)  # nothing listens on port 1
    try:
        with pytest.raises(OrchestratorUnavailable, match="cannot connect"):
            rpc.unary("GetJob", pb2.GetJobRequest(job_id="j-1"))
    finally:
        rpc.close()


# -- the job runtime against a real Runtime server that cuts its calls ----------


def checksum(n: int) -> int:
    import hashlib

    return int(hashlib.sha256(open("blob.bin", "rb").read()).hexdigest()[:8], 16) + n


def test_runtime_resumes_cut_streams_and_resends_the_result(server: RuntimeServer, tmp_path: Path) -> None:
    import hashlib

    from bundle_helpers import tar_gz

    blob = os.urandom(700 * 1024)  # several 64 KiB chunks, incompressible
    call = pickle_call(checksum, (1,), {}, by_value=[THIS_MODULE])
    server.function = CallEnvelope(call=None, bundle=True, python=python_version()).to_bytes()
    server.bundle = tar_gz({CALL_PATH: call, "blob.bin": blob})
    server.cut_stream_after = 3  # FetchBundle's stream (FetchFunction's is one chunk)
    server.unavailable_results = 2
    proc = subprocess.run(
        [sys.executable, "-m", "cumulus.runtime", "--function"],
        env=runtime_env(server, tmp_path / "w"),  # type: ignore[arg-type]
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "w" / "blob.bin").read_bytes() == blob
    assert server.calls.count("FetchBundle") == 2 and server.calls.count("ReportResult") == 3
    [(kind, data)] = server.results
    assert kind == KIND_VALUE
    assert decode_value(data) == int(hashlib.sha256(blob).hexdigest()[:8], 16) + 1
