"""Client checks that happen before anything is sent (no orchestrator needed), and the
GPU request submit() puts on the wire (to a real gRPC server on loopback)."""

from __future__ import annotations

import socket
from concurrent import futures
from typing import Any, Dict, Iterator, List, Tuple

import grpc
from pathlib import Path

import pytest

import cumulus
from cumulus import CumulusClient, InvalidUrlError, OrchestratorUnavailable
from cumulus.client import GpuRequest, gpu_request


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_default_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CUMULUS_ORCHESTRATOR_URL", raising=False)
    # No `cumulus up` record either (one on this machine would be the default).
    monkeypatch.setenv("CUMULUS_CONFIG_DIR", str(tmp_path))
    assert CumulusClient().url == "127.0.0.1:50051"
    monkeypatch.setenv("CUMULUS_ORCHESTRATOR_URL", "grpc://box:7")
    assert CumulusClient().url == "box:7"


def test_bad_url_is_refused_at_construction() -> None:
    with pytest.raises(InvalidUrlError, match="unsupported scheme"):
        CumulusClient("ftp://box")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"gpu_memory": "half"}, ValueError, "gpu_memory: must be a fraction .* or a size like '20GiB'"),
        ({"gpu_memory": "20"}, ValueError, "got '20'"),
        ({"gpu_memory": [0.5]}, TypeError, "gpu_memory: must be a number, got list"),
        ({"gpu_memory": 1.5}, ValueError, r"^gpu_memory: must be a fraction in \(0, 1\) or a whole number of GPUs 1\.\.8, got 1\.5$"),
        ({"gpu_memory": 0}, ValueError, "^gpu_memory: .*got 0$"),
        ({"gpu_memory": -0.1}, ValueError, "^gpu_memory: .*got -0.1$"),
        ({"gpu_memory": float("nan")}, ValueError, "^gpu_memory: .*got nan$"),
        ({"gpu_memory": 9}, ValueError, "^gpu_memory: .*1..8, got 9$"),
        ({"gpu_count": 0}, ValueError, r"^gpu_count: must be 1\.\.8, got 0$"),
        ({"gpu_count": 9}, ValueError, r"^gpu_count: must be 1\.\.8, got 9$"),
        ({"gpu_count": 2.0}, TypeError, "^gpu_count: must be an int, got float$"),
        ({"gpu_count": True}, TypeError, "^gpu_count: must be an int, got bool$"),
        (
            {"gpu_memory": 0.5, "gpu_count": 2}, ValueError,
            r"^gpu_memory: a fraction of a GPU is for one GPU; ask whole GPUs with gpu_count, "
            r"got gpu_memory=0\.5 with gpu_count=2$",
        ),
        ({"gpu_memory": "20GiB", "gpu_count": 4}, ValueError, "^gpu_memory: a fraction of a GPU is for one GPU"),
        ({"gpu_memory": 2, "gpu_count": 4}, ValueError, "^gpu_memory: 2 whole GPUs disagrees with gpu_count=4"),
        ({"duration": True}, TypeError, "duration: must be a number, got bool"),
        ({"env": {"A": 1}}, TypeError, "env must map str to str"),
        ({"files": ["no-such-file-here.txt"]}, FileNotFoundError, "no-such-file-here.txt"),
    ],
)
def test_bad_options_fail_before_connecting(kwargs: Dict[str, Any], error: type, message: str) -> None:
    # Nothing listens there: getting as far as connecting would raise OrchestratorUnavailable.
    client = CumulusClient(f"127.0.0.1:{_closed_port()}")
    with pytest.raises(error, match=message):
        client.submit(lambda: 1, **kwargs)


@pytest.mark.parametrize(
    "gpu_memory, gpu_count, expected",
    [
        (None, None, GpuRequest(0.25, "", 1)),
        (0.5, None, GpuRequest(0.5, "", 1)),
        (0.5, 1, GpuRequest(0.5, "", 1)),
        ("20GiB", None, GpuRequest(0.0, "20GiB", 1)),
        (" 512 MiB ", 1, GpuRequest(0.0, "512 MiB", 1)),
        (1, None, GpuRequest(1.0, "", 1)),
        (1.0, None, GpuRequest(1.0, "", 1)),
        (4, None, GpuRequest(4.0, "", 4)),
        (8.0, None, GpuRequest(8.0, "", 8)),
        (None, 1, GpuRequest(1.0, "", 1)),
        (None, 2, GpuRequest(2.0, "", 2)),
        (2, 2, GpuRequest(2.0, "", 2)),
        (1, 4, GpuRequest(4.0, "", 4)),
    ],
    ids=[
        "default", "fraction", "fraction-count-1", "size", "size-count-1", "one-whole", "one-whole-float",
        "four-as-memory", "eight-as-float", "count-1", "count-2", "agreeing", "whole-each-of-4",
    ],
)
def test_gpu_request_resolves_fractions_and_whole_gpus(
    gpu_memory: Any, gpu_count: Any, expected: GpuRequest,
) -> None:
    got = gpu_request(gpu_memory, gpu_count)
    assert got == expected
    assert got.whole_gpus == (expected.gpu_memory >= 1)


@pytest.fixture
def submit_server() -> Iterator[Tuple[str, List[Any]]]:
    """A real gRPC server on loopback whose SubmitJob keeps each JobSpec it gets."""
    from cumulus._proto import cumulus_pb2 as pb2

    specs: List[Any] = []

    def submit(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        for request in requests:
            if request.HasField("spec"):
                specs.append(request.spec)
        return pb2.SubmitJobResponse(job_id="j-000000000001")

    handler = grpc.method_handlers_generic_handler("cumulus.v1.Cumulus", {
        "SubmitJob": grpc.stream_unary_rpc_method_handler(
            submit, request_deserializer=pb2.SubmitJobRequest.FromString,
            response_serializer=pb2.SubmitJobResponse.SerializeToString,
        ),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", specs
    finally:
        server.stop(grace=None)


@pytest.mark.parametrize(
    "kwargs, wire",
    [
        ({"gpu_count": 4}, (4.0, "", 4)),
        ({"gpu_memory": 2}, (2.0, "", 2)),
        ({"gpu_memory": 1, "gpu_count": 3}, (3.0, "", 3)),
        ({}, (0.25, "", 1)),
        ({"gpu_memory": 0.5}, (0.5, "", 1)),
        ({"gpu_memory": "20GiB"}, (0.0, "20GiB", 1)),
    ],
    ids=["count-4", "memory-2", "memory-1-count-3", "default", "fraction", "size"],
)
def test_submit_sends_whole_gpus_as_count_and_matching_memory(
    submit_server: Tuple[str, List[Any]], kwargs: Dict[str, Any], wire: Tuple[float, str, int],
) -> None:
    # An integer gpu_memory N >= 1 means N whole GPUs to every orchestrator; with
    # gpu_count=N beside it the two agree, so no reading of the spec can differ.
    url, specs = submit_server
    with CumulusClient(url) as client:
        assert client.submit(lambda: 1, duration=5, **kwargs).id == "j-000000000001"
    assert [(s.gpu_memory, s.gpu_memory_size, s.gpu_count) for s in specs] == [wire]


def test_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="fn must be callable"):
        CumulusClient(f"127.0.0.1:{_closed_port()}").submit(42)  # type: ignore[arg-type]


def test_lazy_exports() -> None:
    assert cumulus.CumulusClient is CumulusClient
    assert "JobFailed" in dir(cumulus) and "JobFailed" in cumulus.__all__
    with pytest.raises(AttributeError):
        cumulus.NoSuchThing  # noqa: B018


def test_connection_error_is_clear() -> None:
    client = CumulusClient(f"localhost:{_closed_port()}", connect_timeout=2)
    with pytest.raises(OrchestratorUnavailable, match=r"cannot connect to the orchestrator at localhost:\d+"):
        client.job("j-000000000000").status


def test_submit_sends_cpu_memory_and_image_user(submit_server: Tuple[str, List[Any]]) -> None:
    url, specs = submit_server
    with CumulusClient(url) as client:
        client.submit(lambda: 1, duration=5, cpu=0.5, memory="512MiB", image_user=True)
        client.submit(lambda: 1, duration=5, memory=1 << 30)
        client.submit(lambda: 1, duration=5)
    assert [(s.cpu, s.memory, s.image_user) for s in specs] == [
        (0.5, "512MiB", True),
        (0.0, f"{1 << 30}B", False),
        (0.0, "", False),
    ]


@pytest.mark.parametrize(
    "kwargs, error",
    [({"memory": "lots"}, ValueError), ({"memory": 1.5}, TypeError), ({"cpu": "2"}, TypeError)],
    ids=["memory-text", "memory-float", "cpu-text"],
)
def test_bad_cpu_or_memory_fails_at_the_call(kwargs: Dict[str, Any], error: type) -> None:
    client = CumulusClient(f"127.0.0.1:{_closed_port()}")
    with pytest.raises(error, match=r"^(cpu|memory): "):
        client.submit(lambda: 1, duration=5, **kwargs)
