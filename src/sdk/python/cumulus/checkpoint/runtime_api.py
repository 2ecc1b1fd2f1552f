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

from cumulus._url import default_ca_pem, is_tls_url
from cumulus.checkpoint.report import TOKEN_METADATA_KEY, _target, job_channel

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
        self.target = _target(target)
        #: ``grpcs://``/``https://``: calls go over TLS, verified against ``ca_pem`` (else the system store).
        self.tls = is_tls_url(target)
        self._ca_pem = ca_pem
        self.job_id = job_id
        self._token = token
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
        env = os.environ if env is None else env
        url = env.get("CUMULUS_ORCHESTRATOR_URL", "")
        env_job = env.get("CUMULUS_JOB_ID", "")
        token = env.get("CUMULUS_JOB_TOKEN", "")
        if not (url and env_job and token) or (job_id is not None and job_id != env_job):
            return None
        kwargs.setdefault("ca_pem", default_ca_pem(env) if is_tls_url(url) else None)
        return cls(url, env_job, token, **kwargs)

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
            return call(request, timeout=self.timeout, metadata=((TOKEN_METADATA_KEY, self._token),))
        finally:
            if not self._keep:
                channel.close()

    def _open(self) -> Any:
        def make() -> Any:
            return job_channel(self.target, self.tls, self._ca_pem)

        if not self._keep:
            return make()
        with self._lock:
            # A forked child never uses its parent's channel.
            if self._channel is None or self._pid != os.getpid():
                self._channel, self._pid = make(), os.getpid()
            return self._channel
