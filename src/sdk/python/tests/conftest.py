"""Fixtures shared by the runtime tests."""

from __future__ import annotations

from concurrent import futures
from typing import Iterator

import grpc
import pytest

from bundle_helpers import BundleServer, pb2


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
