"""Typed errors of the Cumulus Python SDK.

Every error the SDK raises on purpose is a :class:`CumulusError` with a stable
``code`` (a gRPC status name where one fits). Where a built-in exception means
the same thing, the error also subclasses it, so ordinary ``except`` clauses
work: a bad ``gpu_memory`` is a :class:`ValueError`, an unreachable
orchestrator a :class:`ConnectionError`, a wait that ran out a
:class:`TimeoutError`.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

__all__ = [
    "CumulusError",
    "InvalidSpecError",
    "InvalidUrlError",
    "NotPicklableError",
    "JobNotFoundError",
    "ResourceExhaustedError",
    "FailedPreconditionError",
    "OrchestratorUnavailable",
    "CumulusTimeoutError",
    "UnauthenticatedError",
    "JobFailed",
    "JobCancelled",
    "RemoteError",
]


class CumulusError(Exception):
    """Base class of every error the SDK raises on purpose; ``code`` is stable."""

    code = "UNKNOWN"

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidSpecError(CumulusError, ValueError):
    """The orchestrator refused the job spec (``INVALID_ARGUMENT``).

    The message starts with the field, e.g. ``spec.gpu_memory: must be a
    fraction in (0, 1], got 2``; an image the Swarm manager does not have is
    reported here too (``spec.image``).
    """

    code = "INVALID_ARGUMENT"


class InvalidUrlError(CumulusError, ValueError):
    """The orchestrator address is not ``host:port`` (or ``grpc://host:port``)."""

    code = "INVALID_URL"


class NotPicklableError(CumulusError, TypeError):
    """The function, an argument or a keyword argument cannot be pickled.

    Raised before anything is sent to the orchestrator; ``what`` names the
    culprit (``"the function"``, ``"argument 0"``, ``"keyword argument 'x'"``).
    """

    code = "NOT_PICKLABLE"

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class JobNotFoundError(CumulusError, LookupError):
    """No such job, or the job has no result (``NOT_FOUND``)."""

    code = "NOT_FOUND"


class ResourceExhaustedError(CumulusError):
    """A limit was hit: bundle size, queue length (``RESOURCE_EXHAUSTED``)."""

    code = "RESOURCE_EXHAUSTED"


class FailedPreconditionError(CumulusError):
    """The operation does not fit the job's state, e.g. cancelling a finished job."""

    code = "FAILED_PRECONDITION"


class UnauthenticatedError(CumulusError, PermissionError):
    """No valid user token (missing, wrong, expired or revoked): ``UNAUTHENTICATED``.

    Run ``cumulus login``, set ``CUMULUS_TOKEN`` or pass ``CumulusClient(token=...)``.
    """

    code = "UNAUTHENTICATED"


class OrchestratorUnavailable(CumulusError, ConnectionError):
    """The orchestrator cannot be reached (wrong address, not running, network)."""

    code = "UNAVAILABLE"


class CumulusTimeoutError(CumulusError, TimeoutError):
    """A wait with a ``timeout`` ran out before the job ended."""

    code = "DEADLINE_EXCEEDED"


class JobFailed(CumulusError):
    """The job ended without a result: its process exited, was killed, or expired.

    Attributes: ``job_id``, ``state`` (``FAILED``, ``CANCELLED``, ``EXPIRED``),
    ``exit_code`` (``None`` when the process never exited on its own),
    ``reason`` (the orchestrator's words), ``last_lines`` (the job's last
    log lines, oldest first) and ``reason_code`` (the same reason as a code for
    programs, e.g. ``"EXIT_CODE"``, ``"KILLED"``, ``"EXPIRED"``,
    ``"GPU_MEMORY_EXCEEDED"`` when the job ran out of its GPU partition's
    memory, ``"RESULT_REFUSED"`` when its result was larger than the
    orchestrator's ``max_result_bytes``; the full list is in
    docs/sdk-python.md, "Reason codes").
    """

    code = "JOB_FAILED"

    def __init__(
        self,
        job_id: str,
        state: str,
        exit_code: Optional[int],
        reason: str,
        last_lines: Sequence[str] = (),
        reason_code: str = "",
    ) -> None:
        self.job_id = job_id
        self.state = state
        self.exit_code = exit_code
        self.reason = reason
        self.last_lines: Tuple[str, ...] = tuple(last_lines)
        self.reason_code = reason_code
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"job {self.job_id} {self.state} without a result: {self.reason or 'no reason given'}"
        if self.exit_code is not None and f"code {self.exit_code}" not in self.reason:
            head += f" (exit code {self.exit_code})"
        if not self.last_lines:
            return head + "; it printed nothing"
        tail = "\n".join(f"  | {line}" for line in self.last_lines)
        return f"{head}; last {len(self.last_lines)} log line(s):\n{tail}"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.job_id, self.state, self.exit_code, self.reason, self.last_lines, self.reason_code))


class JobCancelled(JobFailed):
    """The job was cancelled (by :meth:`cumulus.Job.cancel`, the CLI or another client)."""

    code = "CANCELLED"


class RemoteError(CumulusError):
    """The remote function raised an exception whose type cannot be rebuilt here.

    ``type_name`` is the remote type (``module.QualName``), ``remote_message``
    its message and ``remote_traceback`` the formatted remote traceback, which
    the message also contains.
    """

    code = "REMOTE_ERROR"

    def __init__(self, type_name: str, remote_message: str, remote_traceback: str) -> None:
        self.type_name = type_name
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        super().__init__(f"{type_name}: {remote_message}\n\n{remote_traceback}".rstrip())

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.type_name, self.remote_message, self.remote_traceback))
