"""Fixtures: an in-process Runtime server for the runtime tests, a real orchestrator for end-to-end tests."""

from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING, Iterator

import grpc
import pytest

from bundle_helpers import BundleServer, pb2
from runtime_server import RuntimeServer, start_runtime_server

if TYPE_CHECKING:
    from cumulus import CumulusClient
    from orchestrator_proc import Orchestrator

#: max_result_bytes of the end-to-end orchestrator.
E2E_MAX_RESULT_BYTES = 64 * 1024 * 1024


@pytest.fixture
def server() -> Iterator[RuntimeServer]:
    """The in-process Runtime server (runtime_server.py) the job runtime talks to in unit tests."""
    state = RuntimeServer()
    grpc_server = start_runtime_server(state)
    try:
        yield state
    finally:
        grpc_server.stop(grace=None)


@pytest.fixture
def bundle_server() -> Iterator[BundleServer]:
    """A real grpc server on a random loopback port serving FetchBundle."""
    state = BundleServer()
    handler = grpc.method_handlers_generic_handler(
        "cumulus.v1.Runtime",
        {
            "FetchBundle": grpc.unary_stream_rpc_method_handler(
                state.fetch,
                request_deserializer=pb2.FetchBundleRequest.FromString,
                response_serializer=pb2.BundleChunk.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    state.url = f"127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.stop(grace=None)


@pytest.fixture(scope="session")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator["Orchestrator"]:
    """One real orchestrator process for the end-to-end tests (see orchestrator_proc).

    Results are capped at 64 MiB so one orchestrator serves both the 50 MB
    result test and the over-the-limit test.
    """
    from orchestrator_proc import start_orchestrator

    try:
        orch = start_orchestrator(
            tmp_path_factory.mktemp("orchestrator"),
            {"CUMULUS_MAX_RESULT_BYTES": str(E2E_MAX_RESULT_BYTES)},
        )
    except RuntimeError as err:
        pytest.fail(f"end-to-end tests need Deno and Docker: {err}", pytrace=False)
    try:
        yield orch
    finally:
        orch.stop()


@pytest.fixture
def client(orchestrator: "Orchestrator") -> Iterator["CumulusClient"]:
    """A CumulusClient connected to the session's orchestrator."""
    from cumulus import CumulusClient

    c = CumulusClient(orchestrator.url)
    try:
        yield c
    finally:
        c.close()
