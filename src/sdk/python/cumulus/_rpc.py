"""The client's gRPC connection to the orchestrator and the error mapping.

One channel per :class:`~cumulus.CumulusClient`. The first call checks the
connection (at most ``connect_timeout`` seconds; a refused connection fails at
once), so a wrong address is a clear :class:`~cumulus.errors.OrchestratorUnavailable`
instead of a hang. gRPC statuses become the typed errors of :mod:`cumulus.errors`.

Once an orchestrator has answered, calls that are safe to repeat
(:data:`IDEMPOTENT_METHODS`) ride out a restart: UNAVAILABLE is retried with
capped exponential backoff (:mod:`cumulus._retry`) for ``retry_timeout``
seconds. SubmitJob and CancelJob are never repeated: a retry could create a
second job, or report the cancellation of a job the first call already ended.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Type, TypeVar

import grpc

from cumulus._proto import cumulus_pb2 as pb2
from cumulus._retry import DEFAULT_RETRY_TIMEOUT, Backoff, Retrier
from cumulus._url import is_loopback, new_channel
from cumulus.errors import (
    CumulusError,
    CumulusTimeoutError,
    FailedPreconditionError,
    InvalidSpecError,
    JobNotFoundError,
    OrchestratorUnavailable,
    ResourceExhaustedError,
    UnauthenticatedError,
)

__all__ = ["Rpc", "translate_error", "SERVICE", "IDEMPOTENT_METHODS", "RECONNECT_OPTIONS"]

_T = TypeVar("_T")

#: Full name of the client-facing service.
SERVICE = "/cumulus.v1.Cumulus/"
#: Method of the first-call connection check (grpc.health.v1).
HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Methods repeated after UNAVAILABLE: reads, and WatchJob (resumed from its last sequence).
IDEMPOTENT_METHODS = frozenset({"GetJob", "ListJobs", "ListWorkers", "ListPartitions", "GetResult", "WatchJob"})
#: Channel options that reconnect within about 2 s of a restarted orchestrator
#: (grpc's default backoff grows to 120 s, longer than any retry budget).
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

_STATUS_ERRORS: Dict[grpc.StatusCode, Type[CumulusError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidSpecError,
    grpc.StatusCode.NOT_FOUND: JobNotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: OrchestratorUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: CumulusTimeoutError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}

# Method name -> (request serializer, response deserializer).
_METHODS: Dict[str, Any] = {
    "SubmitJob": (pb2.SubmitJobRequest.SerializeToString, pb2.SubmitJobResponse.FromString),
    "GetJob": (pb2.GetJobRequest.SerializeToString, pb2.Job.FromString),
    "WatchJob": (pb2.WatchJobRequest.SerializeToString, pb2.WatchJobEvent.FromString),
    "CancelJob": (pb2.CancelJobRequest.SerializeToString, pb2.CancelJobResponse.FromString),
    "GetResult": (pb2.GetResultRequest.SerializeToString, pb2.ResultChunk.FromString),
}


def translate_error(err: grpc.RpcError, target: str) -> CumulusError:
    """The typed error for a failed call (the orchestrator's message kept as is)."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or "no details"
    cls = _STATUS_ERRORS.get(code) if code is not None else None  # type: ignore[arg-type]
    if cls is OrchestratorUnavailable:
        return OrchestratorUnavailable(f"orchestrator at {target} unavailable: {details}")
    if cls is not None:
        return cls(details)
    name = code.name if code is not None else "UNKNOWN"
    return CumulusError(f"{name}: {details}", code=name)


# What grpc (C core) reports when the server's certificate does not verify.
_TLS_FAILURE = "Ssl handshake failed"


class Rpc:
    """A channel to one orchestrator with typed calls."""

    def __init__(
        self,
        target: str,
        connect_timeout: float,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        token: str = "",
        *,
        tls: bool = False,
        ca_pem: Optional[bytes] = None,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            *RECONNECT_OPTIONS,
        ]
        if is_loopback(target):
            # A proxy from the environment cannot reach this machine's loopback.
            options.append(("grpc.enable_http_proxy", 0))
        self.target = target
        self.connect_timeout = connect_timeout
        #: The retry policy of idempotent calls.
        self.backoff = Backoff(budget=retry_timeout)
        self.tls = tls
        self._channel = new_channel(target, tls, options, ca_pem)
        #: Sent with every Cumulus call: the user token (the health check needs none).
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._connected = False
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the channel; calls in flight fail with CANCELLED."""
        self._channel.close()

    def ensure_connected(self) -> None:
        """Check once that an orchestrator answers; raise OrchestratorUnavailable if not.

        A refused connection fails at once; a peer that accepts but never
        speaks gRPC fails after ``connect_timeout`` seconds.
        """
        with self._lock:
            if self._connected:
                return
            check = self._channel.unary_unary(
                HEALTH_CHECK_METHOD,
                request_serializer=lambda _: b"",  # an empty HealthCheckRequest: the whole server
                response_deserializer=lambda raw: raw,
            )
            try:
                check(b"", timeout=self.connect_timeout)
            except grpc.RpcError as err:
                # Any status but these two is an answer (an older server may say UNIMPLEMENTED).
                if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise OrchestratorUnavailable(
                        f"orchestrator at {self.target} did not answer within {self.connect_timeout:g} s "
                        "(is the address right, and does a Cumulus orchestrator listen there?)"
                    ) from None
                if err.code() == grpc.StatusCode.UNAVAILABLE and self.tls and _TLS_FAILURE in (err.details() or ""):
                    raise OrchestratorUnavailable(
                        f"cannot connect to the orchestrator at {self.target}: TLS handshake failed "
                        f"({err.details()}); is CUMULUS_CA_FILE the CA that signed its certificate, "
                        "and does the certificate name this host?"
                    ) from None
                if err.code() == grpc.StatusCode.UNAVAILABLE:
                    raise OrchestratorUnavailable(
                        f"cannot connect to the orchestrator at {self.target}: {err.details()} "
                        "(is `cumulus orchestrator` running there? set CUMULUS_ORCHESTRATOR_URL "
                        "or pass CumulusClient(url))"
                    ) from None
            self._connected = True

    def _callable(self, kind: str, method: str) -> Callable[..., Any]:
        ser, de = _METHODS[method]
        factory = getattr(self._channel, kind)
        return factory(SERVICE + method, request_serializer=ser, response_deserializer=de)

    def retrying(self, attempt: Callable[[], _T]) -> _T:
        """``attempt()``, repeated after :class:`OrchestratorUnavailable` within the retry budget.

        Only for operations safe to repeat. An orchestrator that never answered
        (the first connection check failed) is reported at once: that is a
        wrong address or a stopped orchestrator, not a restart.

        Raises:
            OrchestratorUnavailable: Still unreachable when the budget ran out.
        """
        retrier = Retrier(self.backoff)
        while True:
            try:
                return attempt()
            except OrchestratorUnavailable:
                if not self._connected:
                    raise
                delay = retrier.next_delay()
                if delay is None:
                    raise
                time.sleep(delay)

    def unary(self, method: str, request: Any, timeout: Optional[float] = 30.0) -> Any:
        """A unary call; raises the typed error. Idempotent methods ride out a restart."""
        self.ensure_connected()

        def attempt() -> Any:
            try:
                return self._callable("unary_unary", method)(request, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as err:
                raise translate_error(err, self.target) from None

        return self.retrying(attempt) if method in IDEMPOTENT_METHODS else attempt()

    def client_stream(self, method: str, requests: Iterable[Any]) -> Any:
        """A client-streaming call (no deadline: uploads take as long as they take)."""
        self.ensure_connected()
        try:
            return self._callable("stream_unary", method)(iter(requests), metadata=self._metadata)
        except grpc.RpcError as err:
            raise translate_error(err, self.target) from None

    def server_stream(self, method: str, request: Any, timeout: Optional[float] = None) -> "Stream":
        """Start a server-streaming call; iterate the returned :class:`Stream`."""
        self.ensure_connected()
        call = self._callable("unary_stream", method)(request, timeout=timeout, metadata=self._metadata)
        return Stream(call, self.target)


class Stream:
    """Iterator over a server stream that raises typed errors and can be cancelled."""

    def __init__(self, call: Any, target: str) -> None:
        self._call = call
        self._target = target
        self._cancelled = False

    def __iter__(self) -> Iterator[Any]:
        try:
            for message in self._call:
                yield message
        except grpc.RpcError as err:
            if self._cancelled:
                return
            raise translate_error(err, self._target) from None

    def cancel(self) -> None:
        """Stop the stream (the iterator ends)."""
        self._cancelled = True
        self._call.cancel()
