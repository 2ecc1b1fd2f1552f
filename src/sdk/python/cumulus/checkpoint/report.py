"""Best-effort reports of completed checkpoints to the orchestrator.

Inside a Cumulus job (``CUMULUS_ORCHESTRATOR_URL``, ``CUMULUS_JOB_ID`` and
``CUMULUS_JOB_TOKEN`` set), every checkpoint durable on L1 and every one
complete in L2 is reported with ``Runtime.ReportCheckpoint`` (step, tier,
location). The orchestrator keeps the newest on the job's record
(``cumulus jobs --json``: ``lastCheckpoint``) and uses it to decide whether a
job whose duration is over resumes (``retry.resume_on_expiry``).

Reports never get in training's way: :meth:`CheckpointReporter.report` only
queues (a bounded queue; the oldest report goes when it is full), one daemon
thread sends them with a short timeout, and a failure is logged once and
dropped. A report cut by an orchestrator restart (UNAVAILABLE) is sent again with backoff for up to ``retry_timeout`` seconds
(default 60) first: the orchestrator keeps the newest report, so a repeat is
harmless. An orchestrator that does not take reports (older versions, a bad
token) turns reporting off for the process. Outside a job nothing is sent.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any, Deque, Mapping, Optional, Tuple

from cumulus._retry import DEFAULT_RETRY_TIMEOUT, Backoff, Retrier
from cumulus._url import default_ca_pem, grpc_target, is_tls_url, new_channel

__all__ = ["CheckpointReporter", "JobEndpoint", "reporter_for", "REPORT_TIMEOUT", "TOKEN_METADATA_KEY"]

_log = logging.getLogger("cumulus.checkpoint")

#: Seconds one report may take before it is given up.
REPORT_TIMEOUT = 2.0
#: Metadata key carrying the job's token on Runtime calls.
TOKEN_METADATA_KEY = "x-cumulus-job-token"
_METHOD = "/cumulus.v1.Runtime/ReportCheckpoint"
_MAX_QUEUED = 16
_MAX_LOCATION = 1024
# Answers meaning "this orchestrator will never take reports from us".
_FINAL_CODES = ("UNIMPLEMENTED", "UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION", "NOT_FOUND")
# The answer an orchestrator restart gives (refused or reset connection): the
# report is sent again. A hanging orchestrator (DEADLINE_EXCEEDED) is not retried.
_RETRY_CODES = ("UNAVAILABLE",)


class JobEndpoint:
    """Where a job's own calls go and as which job: the orchestrator's address
    (TLS for ``grpcs://``/``https://``, verified against ``ca_pem``, else the
    system store) and the job's id and token."""

    def __init__(self, url: str, job_id: str, token: str, ca_pem: Optional[bytes] = None) -> None:
        self.url = url
        self.target = grpc_target(url)
        self.tls = is_tls_url(url)
        self.ca_pem = ca_pem
        self.job_id = job_id
        self.token = token
        #: gRPC metadata of every call: the job token.
        self.metadata = ((TOKEN_METADATA_KEY, token),)

    @classmethod
    def from_env(cls, env: Mapping[str, str], job_id: Optional[str] = None) -> Optional["JobEndpoint"]:
        """The endpoint when ``env`` names an orchestrator, a job and its token, else ``None``;
        with ``job_id``, ``None`` also when the environment's job is another one (the token
        is only good for its own job)."""
        url = env.get("CUMULUS_ORCHESTRATOR_URL", "")
        env_job = env.get("CUMULUS_JOB_ID", "")
        token = env.get("CUMULUS_JOB_TOKEN", "")
        if not (url and env_job and token) or (job_id is not None and job_id != env_job):
            return None
        return cls(url, env_job, token, default_ca_pem(env) if is_tls_url(url) else None)

    def channel(self) -> Any:
        """A new channel to the orchestrator."""
        return new_channel(self.target, self.tls, [("grpc.enable_http_proxy", 0)], self.ca_pem)


class CheckpointReporter:
    """Sends ``(step, tier, location)`` reports of one job on a background thread."""

    def __init__(
        self,
        target: str,
        job_id: str,
        token: str,
        *,
        timeout: float = REPORT_TIMEOUT,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        ca_pem: Optional[bytes] = None,
    ) -> None:
        self.endpoint = JobEndpoint(target, job_id, token, ca_pem)
        self.target = self.endpoint.target
        self.tls = self.endpoint.tls
        self.job_id = job_id
        self.timeout = timeout
        self._backoff = Backoff(budget=retry_timeout)
        self._cond = threading.Condition()
        self._queue: Deque[Tuple[int, str, str]] = collections.deque()
        self._busy = False
        self._thread: Optional[threading.Thread] = None
        self._warned = False
        #: False once the orchestrator refused reports for good.
        self.enabled = True
        #: Reports the orchestrator accepted, as ``(step, tier)`` (the newest 64).
        self.sent: Deque[Tuple[int, str]] = collections.deque(maxlen=64)
        #: Reports given up (failed or dropped from a full queue).
        self.failed = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str], job_id: Optional[str] = None) -> Optional["CheckpointReporter"]:
        """A reporter when ``env`` names an orchestrator, a job and its token, else ``None``
        (see :meth:`JobEndpoint.from_env`)."""
        ep = JobEndpoint.from_env(env, job_id)
        return None if ep is None else cls(ep.url, ep.job_id, ep.token, ca_pem=ep.ca_pem)

    # -- called by the training thread (or the uploader's) --------------------
    def report(self, step: int, tier: str, location: str = "") -> None:
        """Queue a report; never blocks, never raises."""
        try:
            location = location if len(location.encode()) <= _MAX_LOCATION else ""
            with self._cond:
                if not self.enabled:
                    return
                if len(self._queue) >= _MAX_QUEUED:
                    self._queue.popleft()
                    self.failed += 1
                self._queue.append((int(step), tier, location))
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="cumulus-ckpt-report", daemon=True)
                    self._thread.start()
                self._cond.notify_all()
        except Exception as err:  # pragma: no cover - e.g. no threads left at shutdown
            _log.debug("cumulus.checkpoint: checkpoint report of step %s not queued: %s", step, err)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued report was sent or given up; False when ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    # -- the sender thread ------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                item = self._queue.popleft()
                self._busy = True
            try:
                self._send(*item)
                with self._cond:
                    self.sent.append((item[0], item[1]))
            except Exception as err:
                self._failed(item, err)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, step: int, tier: str, location: str) -> None:
        import grpc  # only jobs that checkpoint inside Cumulus need gRPC

        retrier = Retrier(self._backoff)
        while True:
            try:
                self._send_once(step, tier, location)
                return
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else None
                delay = retrier.next_delay() if getattr(code, "name", "") in _RETRY_CODES else None
                if delay is None:
                    raise
                time.sleep(delay)

    def _send_once(self, step: int, tier: str, location: str) -> None:
        from cumulus._proto import cumulus_pb2 as pb2

        # A channel per report: reports are rare, and no channel stays open
        # in a training process that may fork (data loader workers).
        channel = self.endpoint.channel()
        try:
            call = channel.unary_unary(
                _METHOD,
                request_serializer=pb2.ReportCheckpointRequest.SerializeToString,
                response_deserializer=pb2.ReportCheckpointResponse.FromString,
            )
            request = pb2.ReportCheckpointRequest(job_id=self.job_id, step=step, tier=tier, location=location)
            call(request, timeout=self.timeout, metadata=self.endpoint.metadata)
        finally:
            channel.close()

    def _failed(self, item: Tuple[int, str, str], err: Exception) -> None:
        code = getattr(err, "code", None)
        name = getattr(code() if callable(code) else None, "name", "") or type(err).__name__
        details = getattr(err, "details", None)
        text = details() if callable(details) else None
        if not text:
            text = str(err).splitlines()[0] if str(err) else name
        with self._cond:
            self.failed += 1
            if name in _FINAL_CODES:
                self.enabled = False
                self._queue.clear()
        if name in _FINAL_CODES:
            _log.warning(
                "cumulus.checkpoint: the orchestrator at %s does not take checkpoint reports (%s: %s); "
                "not reporting any more (checkpoints are unaffected)",
                self.target,
                name,
                text,
            )
        elif not self._warned:
            self._warned = True
            _log.warning(
                "cumulus.checkpoint: could not report checkpoint step %d (%s) to the orchestrator at %s (%s: %s); "
                "checkpoints are unaffected, later reports are tried again",
                item[0],
                item[1],
                self.target,
                name,
                text,
            )
        else:
            _log.debug("cumulus.checkpoint: report of step %d (%s) failed: %s", item[0], item[1], name)
        # Let a restarting orchestrator come back before the next report.
        time.sleep(min(0.2, self.timeout))


def reporter_for(job_id: str, env: Optional[Mapping[str, str]] = None) -> Optional[CheckpointReporter]:
    """The reporter of ``job_id`` from the environment (``os.environ`` by default), or ``None``."""
    return CheckpointReporter.from_env(os.environ if env is None else env, job_id)
