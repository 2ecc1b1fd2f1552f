"""A real in-process gRPC server speaking the Runtime service's function-mode
calls (FetchFunction, FetchBundle, ReportResult, StreamLogs, ReportCheckpoint) and health Check,
for testing ``python3 -m cumulus.runtime --function`` as a real process."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Iterator, List, Mapping, Optional, Tuple

import grpc

from bundle_helpers import JOB_ID, TOKEN, pb2
from cumulus import runtime


@dataclass
class LogServer:
    """StreamLogs as the orchestrator serves it: stores (stream, bytes) per line
    index (resends skipped, acks after storing); can drop the first call early."""

    lines: List[Tuple[int, bytes]] = field(default_factory=list)
    batches: int = 0
    #: End the first call with UNAVAILABLE after this many batches (0: never).
    fail_first_call_after: int = 0
    #: Refuse every call with this code (None: accept).
    refuse: object = None
    calls: int = 0
    #: (lines stored before it, exit code) of each last batch received.
    ends: List[Tuple[int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stream_logs(self, requests: Iterator[pb2.LogBatch], context: grpc.ServicerContext) -> Iterator[pb2.LogAck]:
        with self.lock:
            self.calls += 1
            call = self.calls
        if self.refuse is not None:
            context.abort(self.refuse, "refused by test")
        seen = 0
        for batch in requests:
            if batch.last:
                assert not batch.data and batch.first_index == len(self.lines), "the end comes after every line"
                with self.lock:
                    self.ends.append((len(self.lines), batch.exit_code))
                yield pb2.LogAck(accepted=len(self.lines))
                continue
            assert not batch.texts, "the streamer sends data, not texts"
            data = batch.data
            assert data.endswith(b"\n")
            got = data[:-1].split(b"\n")
            assert len(got) == len(batch.streams)
            with self.lock:
                self.batches += 1
                skip = len(self.lines) - batch.first_index
                assert skip >= 0, "a gap in the line indexes"
                for i in range(skip, len(got)):
                    self.lines.append((batch.streams[i], got[i]))
                accepted = len(self.lines)
            seen += 1
            if call == 1 and self.fail_first_call_after and seen >= self.fail_first_call_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "dropped by test")
            yield pb2.LogAck(accepted=accepted)


@dataclass
class RuntimeServer:
    """What the server serves and what it received; tests change the fields."""

    url: str = ""
    function: bytes = b""
    bundle: bytes = b""
    #: ReportResult answers RESOURCE_EXHAUSTED above this many bytes (header or data).
    max_result_bytes: int = 1 << 30
    #: (kind, data) of each accepted result.
    results: List[Tuple[str, bytes]] = field(default_factory=list)
    #: The first FetchFunction/FetchBundle stream longer than this many chunks ends
    #: with UNAVAILABLE after them (0: never), as a restarting orchestrator cuts it.
    cut_stream_after: int = 0
    #: The first this many ReportResult calls end with UNAVAILABLE after reading everything.
    unavailable_results: int = 0
    #: Method names in call order.
    calls: List[str] = field(default_factory=list)
    #: Health/Check calls: the runtime probes once per channel it opens.
    health_checks: int = 0
    #: Serves StreamLogs when set; else it answers UNIMPLEMENTED (an orchestrator without it).
    logs: Optional[LogServer] = None
    #: (step, tier) of each ReportCheckpoint.
    checkpoints: List[Tuple[int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _check(self, method: str, job_id: str, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls.append(method)
        token = dict(context.invocation_metadata()).get(runtime.TOKEN_METADATA_KEY)
        if token != TOKEN:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad job token")
        if job_id != JOB_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown job {job_id}")

    def _stream(self, data: bytes, context: grpc.ServicerContext) -> Iterator[pb2.BundleChunk]:
        size = 64 * 1024
        for n, offset in enumerate(range(0, len(data), size)):
            with self.lock:
                cut = self.cut_stream_after and n == self.cut_stream_after
                self.cut_stream_after = 0 if cut else self.cut_stream_after
            if cut:
                context.abort(grpc.StatusCode.UNAVAILABLE, "orchestrator restarting")
            yield pb2.BundleChunk(data=data[offset:offset + size], total_bytes=len(data) if offset == 0 else 0)

    def fetch_function(self, request: pb2.FetchFunctionRequest, context: grpc.ServicerContext) -> Iterator[pb2.BundleChunk]:
        self._check("FetchFunction", request.job_id, context)
        if not self.function:
            context.abort(grpc.StatusCode.NOT_FOUND, "job has no function")
        yield from self._stream(self.function, context)

    def fetch_bundle(self, request: pb2.FetchBundleRequest, context: grpc.ServicerContext) -> Iterator[pb2.BundleChunk]:
        self._check("FetchBundle", request.job_id, context)
        if not self.bundle:
            context.abort(grpc.StatusCode.NOT_FOUND, "job has no bundle")
        yield from self._stream(self.bundle, context)

    def health_check(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """grpc.health.v1.Health/Check: each runtime channel probes it once when opened."""
        with self.lock:
            self.health_checks += 1
        return b"\x08\x01"  # HealthCheckResponse{status: SERVING}

    def stream_logs(self, requests: Iterator[pb2.LogBatch], context: grpc.ServicerContext) -> Iterator[pb2.LogAck]:
        if self.logs is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "no StreamLogs here")
        return self.logs.stream_logs(requests, context)

    def report_checkpoint(self, request: pb2.ReportCheckpointRequest, context: grpc.ServicerContext) -> pb2.ReportCheckpointResponse:
        self._check("ReportCheckpoint", request.job_id, context)
        with self.lock:
            self.checkpoints.append((request.step, request.tier))
        return pb2.ReportCheckpointResponse()

    def report_result(self, requests: Iterator[pb2.ReportResultRequest], context: grpc.ServicerContext) -> pb2.ReportResultResponse:
        header: Optional[pb2.ResultHeader] = None
        data = bytearray()
        for message in requests:
            if header is None:
                header = message.header
                self._check("ReportResult", header.job_id, context)
                if header.total_bytes > self.max_result_bytes:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"result of {header.total_bytes} bytes exceeds the limit")
                continue
            data += message.chunk
            if len(data) > self.max_result_bytes:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "result exceeds the limit")
        assert header is not None
        with self.lock:
            restarting = self.unavailable_results > 0
            self.unavailable_results -= 1 if restarting else 0
        if restarting:
            context.abort(grpc.StatusCode.UNAVAILABLE, "orchestrator restarting")
        with self.lock:
            self.results.append((header.kind, bytes(data)))
        return pb2.ReportResultResponse()


#: The checkpoint key these fake servers hand every job (the orchestrator derives one per job).
FAKE_CHECKPOINT_KEY = bytes(range(32))


def checkpoint_key_handler() -> grpc.RpcMethodHandler:
    """``Runtime.CheckpointKey`` answering :data:`FAKE_CHECKPOINT_KEY`."""
    return grpc.unary_unary_rpc_method_handler(
        lambda request, context: pb2.CheckpointKeyResponse(key=FAKE_CHECKPOINT_KEY),
        request_deserializer=pb2.CheckpointKeyRequest.FromString,
        response_serializer=pb2.CheckpointKeyResponse.SerializeToString,
    )


def start_runtime_server(state: RuntimeServer) -> grpc.Server:
    """Serve ``state`` on a random loopback port (sets ``state.url``); the caller stops it."""
    handler = grpc.method_handlers_generic_handler(
        "cumulus.v1.Runtime",
        {
            "FetchFunction": grpc.unary_stream_rpc_method_handler(
                state.fetch_function,
                request_deserializer=pb2.FetchFunctionRequest.FromString,
                response_serializer=pb2.BundleChunk.SerializeToString,
            ),
            "FetchBundle": grpc.unary_stream_rpc_method_handler(
                state.fetch_bundle,
                request_deserializer=pb2.FetchBundleRequest.FromString,
                response_serializer=pb2.BundleChunk.SerializeToString,
            ),
            "ReportResult": grpc.stream_unary_rpc_method_handler(
                state.report_result,
                request_deserializer=pb2.ReportResultRequest.FromString,
                response_serializer=pb2.ReportResultResponse.SerializeToString,
            ),
            "ReportCheckpoint": grpc.unary_unary_rpc_method_handler(
                state.report_checkpoint,
                request_deserializer=pb2.ReportCheckpointRequest.FromString,
                response_serializer=pb2.ReportCheckpointResponse.SerializeToString,
            ),
            "CheckpointKey": checkpoint_key_handler(),
            "StreamLogs": grpc.stream_stream_rpc_method_handler(
                state.stream_logs,
                request_deserializer=pb2.LogBatch.FromString,
                response_serializer=pb2.LogAck.SerializeToString,
            ),
        },
    )
    health = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(state.health_check)},  # raw bytes both ways
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),  # a streamed job holds StreamLogs open meanwhile
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    server.add_generic_rpc_handlers((handler, health))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    state.url = f"127.0.0.1:{port}"
    return server


class Presigner:
    """``Runtime.PresignCheckpoint`` as the orchestrator answers it, for one job: requests
    under ``base`` only (others: PERMISSION_DENIED), presigned with ``keys`` (SigV4 query
    signing by botocore) for the S3 server at ``endpoint``. Also hands out the fake key."""

    def __init__(self, endpoint: str, bucket: str, base: str, keys: Tuple[str, str]) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.base = base
        self.keys = keys
        self.url = ""
        #: ``"METHOD key"`` of every request signed.
        self.signed: List[str] = []
        self.refused = 0
        self.lock = threading.Lock()

    def presign(self, request: pb2.PresignCheckpointRequest, context: grpc.ServicerContext) -> pb2.PresignCheckpointResponse:
        from urllib.parse import quote, urlencode

        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        urls = []
        for r in request.requests:
            key = r.key or dict(r.query).get("prefix", "")
            if not key.startswith(self.base):
                with self.lock:
                    self.refused += 1
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{key} outside {self.base}")
            query = urlencode(dict(r.query), quote_via=quote).replace("uploads=", "uploads")
            url = f"{self.endpoint}/{self.bucket}/{quote(r.key)}" + (f"?{query}" if query else "")
            req = AWSRequest(method=r.method, url=url, headers=dict(r.headers))
            S3SigV4QueryAuth(Credentials(*self.keys), "s3", "us-east-1", expires=900).add_auth(req)
            urls.append(req.url)
            with self.lock:
                self.signed.append(f"{r.method} {r.key}")
        return pb2.PresignCheckpointResponse(urls=urls)


def serve_runtime(methods: Mapping[str, grpc.RpcMethodHandler]) -> Tuple[grpc.Server, str]:
    """A started server of ``cumulus.v1.Runtime`` ``methods`` on a random loopback port, and its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("cumulus.v1.Runtime", dict(methods)),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def start_presign_server(state: Presigner) -> grpc.Server:
    """Serve ``state`` (and ``CheckpointKey``) on a random loopback port (sets ``state.url``)."""
    presign = grpc.unary_unary_rpc_method_handler(
        state.presign,
        request_deserializer=pb2.PresignCheckpointRequest.FromString,
        response_serializer=pb2.PresignCheckpointResponse.SerializeToString,
    )
    server, state.url = serve_runtime({"PresignCheckpoint": presign, "CheckpointKey": checkpoint_key_handler()})
    return server
