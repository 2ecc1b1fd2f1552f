"""A submitted job: its state, log, result, and cancellation.

:meth:`cumulus.CumulusClient.submit` returns a :class:`Job`; ``run`` is
``submit`` followed by :meth:`Job.result` with the log streamed to the
caller's ``sys.stdout``/``sys.stderr``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Iterator, List, Optional, Sequence, Tuple

from cumulus._outcome import KIND_ERROR, KIND_VALUE, decode_error, decode_value
from cumulus._proto import cumulus_pb2 as pb2
from cumulus._retry import Retrier
from cumulus._rpc import Rpc
from cumulus.errors import (
    CumulusError,
    CumulusTimeoutError,
    JobCancelled,
    JobFailed,
    OrchestratorUnavailable,
)

__all__ = ["TERMINAL_STATES", "LogLine", "JobInfo", "Job"]

#: States a job never leaves.
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})
#: Log lines a JobFailed error carries.
FAILURE_TAIL_LINES = 20
_MISSING = object()


@dataclass(frozen=True)
class LogLine:
    """One line of a job's output."""

    #: 1-based, gap-free per job: resume a log with ``after_seq=seq``.
    seq: int
    #: ``"stdout"`` or ``"stderr"``.
    stream: str
    #: Unix epoch milliseconds when the worker saw the line.
    time_ms: int
    text: str


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of a job as the orchestrator knows it."""

    id: str
    state: str
    exit_code: Optional[int]
    reason: str
    created_at_ms: int
    started_at_ms: int
    finished_at_ms: int
    attempts: int
    node_id: str
    log_seq: int
    has_result: bool
    #: True for a Python function job (``run``/``submit``), False for a command
    #: (from ``Job.function_bytes``: the orchestrator never sends the pickled call back).
    is_function: bool
    name: str
    #: Fraction of one GPU's memory asked for (0 when given as a size); 1 for whole GPUs.
    gpu_memory: float = 0.0
    #: Absolute GPU memory asked for, as the orchestrator stored it (e.g. ``"1073741824B"``), or "".
    gpu_memory_size: str = ""
    #: Seconds the result is kept after the job ends (0: forever).
    result_retention: float = 0.0
    #: When the result was removed after its retention (Unix epoch ms), 0 while it is kept.
    result_removed_at_ms: int = 0
    #: Attempts the job may have in total (lost container or worker, expiry with resume).
    max_attempts: int = 0
    #: True when the job resumes from its last checkpoint once its duration runs out.
    resume_on_expiry: bool = False
    #: GPUs asked for: 1 for a share of one GPU, N for N whole GPUs.
    gpu_count: int = 1
    #: The current attempt's partitions, one per GPU, in GPU order (empty before placement).
    partition_ids: Tuple[str, ...] = ()
    #: The worker's Chronos device index of each of those GPUs, in the same order.
    gpu_devices: Tuple[int, ...] = ()
    #: Why the job ended, as a code for programs (``reason`` is for people): "",
    #: ``"GPU_MEMORY_EXCEEDED"`` (it ran out of its GPU partition's memory),
    #: ``"MEMORY_EXCEEDED"`` (the OOM killer ended it past its ``memory`` limit)
    #: or ``"RESULT_REFUSED"`` (its result exceeded ``max_result_bytes``).
    reason_code: str = ""
    #: CPU cores of the job's container (0 for a job stored before limits existed).
    cpu: float = 0.0
    #: Memory limit of the job's container as stored (e.g. ``"4294967296B"``), or "".
    memory: str = ""

    @property
    def whole_gpus(self) -> bool:
        """True when the job asked whole GPUs rather than a share of one."""
        return not self.gpu_memory_size and self.gpu_memory >= 1

    @property
    def partition_id(self) -> str:
        """The first partition of the current attempt ("" before placement)."""
        return self.partition_ids[0] if self.partition_ids else ""

    @property
    def done(self) -> bool:
        """True once the job is in a final state."""
        return self.state in TERMINAL_STATES

    @classmethod
    def from_wire(cls, job: pb2.Job) -> "JobInfo":
        """Convert the wire message."""
        return cls(
            id=job.id,
            state=pb2.JobState.Name(job.state),
            exit_code=job.exit_code if job.has_exit_code else None,
            reason=job.reason,
            created_at_ms=job.created_at_ms,
            started_at_ms=job.started_at_ms,
            finished_at_ms=job.finished_at_ms,
            attempts=job.attempts,
            node_id=job.node_id,
            log_seq=job.log_seq,
            has_result=job.has_result,
            # spec.function: an orchestrator older than function_bytes echoes the bytes.
            is_function=job.function_bytes > 0 or len(job.spec.function) > 0,
            name=job.spec.name,
            gpu_memory=job.spec.gpu_memory,
            gpu_memory_size=job.spec.gpu_memory_size,
            result_retention=job.spec.result_retention,
            result_removed_at_ms=job.result_removed_at_ms,
            max_attempts=job.spec.retry.max_attempts,
            resume_on_expiry=job.spec.retry.resume_on_expiry,
            gpu_count=job.spec.gpu_count or 1,
            # An orchestrator older than partition_ids sends only the first partition.
            partition_ids=tuple(job.partition_ids) or ((job.partition_id,) if job.partition_id else ()),
            gpu_devices=tuple(job.gpu_devices) or ((job.gpu_device,) if job.partition_id else ()),
            reason_code=job.reason_code,
            cpu=job.spec.cpu,
            memory=job.spec.memory,
        )


def _line(wire: pb2.LogLine) -> LogLine:
    stream = "stderr" if wire.stream == pb2.STDERR else "stdout"
    return LogLine(seq=wire.seq, stream=stream, time_ms=wire.time_ms, text=wire.text)


class Job:
    """Handle of one job. Cheap: every property asks the orchestrator afresh."""

    def __init__(self, rpc: Rpc, job_id: str) -> None:
        self._rpc = rpc
        self.id = job_id
        self._result: Any = _MISSING

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    # -- state -------------------------------------------------------------

    def info(self) -> JobInfo:
        """The job now (GetJob)."""
        return JobInfo.from_wire(self._rpc.unary("GetJob", pb2.GetJobRequest(job_id=self.id)))

    @property
    def status(self) -> str:
        """The job's state now: ``QUEUED``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ..."""
        return self.info().state

    def cancel(self) -> JobInfo:
        """Cancel the job (its container is stopped). Raises FailedPreconditionError once it ended."""
        response = self._rpc.unary("CancelJob", pb2.CancelJobRequest(job_id=self.id))
        return JobInfo.from_wire(response.job)

    # -- log and events ------------------------------------------------------

    def _events(
        self, after_seq: int, no_logs: bool, follow: bool, deadline: Optional[float]
    ) -> Iterator[Tuple[List[LogLine], Optional[JobInfo]]]:
        """WatchJob events, resumed after a dropped connection without loss or repeats.

        While the orchestrator is unreachable (a restart), the stream is opened
        again after the last line delivered, with the client's backoff, until
        its retry budget or ``deadline`` runs out.
        """
        cursor = after_seq
        retrier = Retrier(self._rpc.backoff)
        while True:
            timeout = None if deadline is None else max(0.001, deadline - time.monotonic())
            request = pb2.WatchJobRequest(job_id=self.id, after_seq=cursor, no_logs=no_logs, no_follow=not follow)
            try:
                for event in self._rpc.server_stream("WatchJob", request, timeout=timeout):
                    retrier.reset()
                    lines = [_line(w) for w in event.lines if w.seq > cursor]
                    if lines:
                        cursor = lines[-1].seq
                    yield lines, (JobInfo.from_wire(event.job) if event.HasField("job") else None)
                return
            except OrchestratorUnavailable:
                delay = retrier.next_delay()
                if delay is None or (deadline is not None and time.monotonic() + delay > deadline):
                    raise
                time.sleep(delay)

    def logs(self, follow: bool = True, after_seq: int = 0) -> Iterator[LogLine]:
        """The job's log lines from ``after_seq`` on; with ``follow``, until the job ends."""
        for lines, _ in self._events(after_seq, no_logs=False, follow=follow, deadline=None):
            yield from lines

    def _follow(
        self, on_lines: Optional[Callable[[List[LogLine]], None]], timeout: Optional[float]
    ) -> JobInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for lines, _ in self._events(0, no_logs=on_lines is None, follow=True, deadline=deadline):
                if lines and on_lines is not None:
                    on_lines(lines)
        except CumulusTimeoutError:
            pass
        info = self.info()
        if not info.done:
            raise CumulusTimeoutError(f"job {self.id} is still {info.state} after {timeout:g} s")
        return info

    def wait(self, timeout: Optional[float] = None) -> JobInfo:
        """Block until the job ends; return its final :class:`JobInfo`.

        Raises :class:`~cumulus.errors.CumulusTimeoutError` (a ``TimeoutError``)
        when ``timeout`` seconds pass first; the job keeps running.
        """
        return self._follow(None, timeout)

    def tail(self, n: int = FAILURE_TAIL_LINES) -> List[LogLine]:
        """The job's last ``n`` stored log lines."""
        info = self.info()
        start = max(0, info.log_seq - n)
        lines: List[LogLine] = []
        for batch, _ in self._events(start, no_logs=False, follow=False, deadline=None):
            lines.extend(batch)
        return lines[-n:]

    # -- result --------------------------------------------------------------

    def _fetch_result(self) -> Tuple[str, bytes]:
        """GetResult, read again from the start when the connection drops (a restart)."""

        def attempt() -> Tuple[str, int, bytes]:
            kind = ""
            total = -1
            buf = bytearray()
            for chunk in self._rpc.server_stream("GetResult", pb2.GetResultRequest(job_id=self.id)):
                if not kind and chunk.kind:
                    kind = chunk.kind
                    total = chunk.total_bytes
                buf += chunk.data
            return kind, total, bytes(buf)

        kind, total, data = self._rpc.retrying(attempt)
        if total >= 0 and len(data) != total:
            raise CumulusError(f"result of job {self.id} truncated: {len(data)} of {total} bytes", code="DATA_LOSS")
        return kind or KIND_VALUE, data

    def result(self, timeout: Optional[float] = None) -> Any:
        """Wait for the job, then return the function's return value.

        Raises the function's own exception (its type, with the remote
        traceback in the message) when it raised, :class:`~cumulus.errors.JobFailed`
        when the job ended without a result (exit, kill, expiry; with the exit
        code and the last log lines), :class:`~cumulus.errors.JobCancelled` when
        it was cancelled. A command job (not a function) that succeeded returns ``None``.
        A result removed after its retention raises :class:`~cumulus.errors.JobNotFoundError`
        saying so.
        """
        return self._outcome(self.wait(timeout), None)

    def _outcome(self, info: JobInfo, tail: Optional[Sequence[str]]) -> Any:
        if self._result is not _MISSING:
            return self._result
        if info.has_result:
            kind, data = self._fetch_result()
            if kind == KIND_ERROR:
                raise decode_error(data, self.id)
            if info.state == "SUCCEEDED":
                self._result = decode_value(data)
                return self._result
        if info.state == "SUCCEEDED" and not info.is_function:
            self._result = None
            return None
        lines = list(tail) if tail is not None else [line.text for line in self.tail()]
        reason = info.reason
        if info.state == "SUCCEEDED":
            reason = "the job exited with code 0 but sent no result"
        cls = JobCancelled if info.state == "CANCELLED" else JobFailed
        raise cls(self.id, info.state, info.exit_code, reason, lines, info.reason_code)

    def _run_streaming(self, timeout: Optional[float] = None) -> Any:
        """``result()`` with the log written to sys.stdout/sys.stderr as it arrives."""
        tail: Deque[str] = deque(maxlen=FAILURE_TAIL_LINES)

        def write(lines: List[LogLine]) -> None:
            out, err = sys.stdout, sys.stderr
            for line in lines:
                (err if line.stream == "stderr" else out).write(line.text + "\n")
                tail.append(line.text)
            out.flush()
            err.flush()

        info = self._follow(write, timeout)
        # The watch ran to the log's end, so the streamed tail is the log's tail.
        return self._outcome(info, list(tail))
