"""The job's Runtime calls for its checkpoints: presigned S3 URLs and its signing key.

Inside a Cumulus job the runtime holds no S3 keys. The orchestrator signs
each S3 request of the job's L2 checkpoints (``Runtime.PresignCheckpoint``;
only keys under the job's own ``<prefix>/<job id>/``, 15 minutes) and hands
out the job's checkpoint key (``Runtime.CheckpointKey``), both authenticated
by the job's token.
"""

from __future__ import annotations

import os
import threading
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from cumulus.checkpoint.report import JobEndpoint

__all__ = ["RuntimeApi", "SignRequest"]

#: ``(method, key, query, headers)`` of one S3 request to presign.
SignRequest = Tuple[str, str, Mapping[str, str], Mapping[str, str]]

_PRESIGN = "/cumulus.v1.Runtime/PresignCheckpoint"
_KEY = "/cumulus.v1.Runtime/CheckpointKey"


class RuntimeApi:
    """The two checkpoint calls of one job.

    ``keep_channel``: keep one channel open (the upload worker, which never
    forks); otherwise a channel per call, so that a training process that
    forks (data loader workers) holds no gRPC channel.
    """

    def __init__(
        self,
        target: str,
        job_id: str,
        token: str,
        *,
        timeout: float = 10.0,
        keep_channel: bool = False,
        ca_pem: Optional[bytes] = None,
    ):
        self.endpoint = JobEndpoint(target, job_id, token, ca_pem)
        self.job_id = job_id
        self.timeout = timeout
        self._keep = keep_channel
        self._channel: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, env: Optional[Mapping[str, str]] = None, job_id: Optional[str] = None, **kwargs: Any
    ) -> Optional["RuntimeApi"]:
        """The API when ``env`` (default ``os.environ``) names an orchestrator, a job and its
        token (and, given ``job_id``, that job), else ``None``."""
        ep = JobEndpoint.from_env(os.environ if env is None else env, job_id)
        return None if ep is None else cls(ep.url, ep.job_id, ep.token, ca_pem=ep.ca_pem, **kwargs)

    def presign(self, requests: Sequence[SignRequest]) -> List[str]:
        """One presigned URL per request; raises ``grpc.RpcError`` (PERMISSION_DENIED
        for a request outside the job's prefix)."""
        from cumulus._proto import cumulus_pb2 as pb2

        msg = pb2.PresignCheckpointRequest(job_id=self.job_id)
        for method, key, query, headers in requests:
            msg.requests.add(method=method, key=key, query=dict(query), headers=dict(headers))
        reply = self._call(_PRESIGN, msg, pb2.PresignCheckpointResponse)
        return list(reply.urls)

    def checkpoint_key(self) -> bytes:
        """The job's checkpoint signing key; raises ``grpc.RpcError``."""
        from cumulus._proto import cumulus_pb2 as pb2

        reply = self._call(_KEY, pb2.CheckpointKeyRequest(job_id=self.job_id), pb2.CheckpointKeyResponse)
        if len(reply.key) < 16:
            raise ValueError("the orchestrator sent no checkpoint key")
        return bytes(reply.key)

    def close(self) -> None:
        """Close the kept channel, if any."""
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = None

    def _call(self, method: str, request: Any, reply_type: Any) -> Any:
        channel = self._open()
        try:
            call = channel.unary_unary(
                method, request_serializer=type(request).SerializeToString, response_deserializer=reply_type.FromString
            )
            return call(request, timeout=self.timeout, metadata=self.endpoint.metadata)
        finally:
            if not self._keep:
                channel.close()

    def _open(self) -> Any:
        def make() -> Any:
            return self.endpoint.channel()

        if not self._keep:
            return make()
        with self._lock:
            # A forked child never uses its parent's channel.
            if self._channel is None or self._pid != os.getpid():
                self._channel, self._pid = make(), os.getpid()
            return self._channel
