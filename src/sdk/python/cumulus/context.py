"""What a running job knows about itself: its partition and its deadline.

Inside a job container the orchestrator sets these environment variables:

=========================  ==========================================================
``CUMULUS_JOB_ID``         the job's id (``j-`` + 12 hex digits)
``CUMULUS_GPU_MEMORY``     fraction of one device's memory granted (0 < f <= 1)
``CUMULUS_GPU_COUNT``      devices granted
``CUMULUS_DURATION``       the partition's lifetime in seconds
``CUMULUS_DEADLINE_MS``    Unix epoch milliseconds when the partition expires
``CUMULUS_ATTEMPT``        1 for the first run, higher when the job was placed again
``CUMULUS_PARTITION_ID``   the GPU partition (set where a worker agent made one)
``CUMULUS_DEVICE``         the partition's device index (set with the partition)
=========================  ==========================================================

:func:`current_job` reads them into a :class:`JobContext`:

>>> from cumulus import current_job                      # doctest: +SKIP
>>> ctx = current_job()                                  # doctest: +SKIP
>>> batch = 256 if ctx and ctx.gpu_memory >= 0.5 else 64  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping, Optional

__all__ = ["JobContext", "current_job"]


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    try:
        return float(env.get(key, ""))
    except ValueError:
        return default


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    try:
        return int(env.get(key, ""))
    except ValueError:
        return default


@dataclass(frozen=True)
class JobContext:
    """The running job's id, partition and deadline (see the module docstring)."""

    job_id: str
    gpu_memory: float
    gpu_count: int
    duration: float
    #: Unix epoch seconds when the partition expires (0 when unknown).
    deadline: float
    attempt: int
    partition_id: Optional[str] = None
    device: Optional[int] = None

    def seconds_left(self, now: Optional[float] = None) -> float:
        """Seconds until the deadline (negative once passed); ``inf`` when unknown."""
        if not self.deadline:
            return float("inf")
        return self.deadline - (time.time() if now is None else now)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Optional["JobContext"]:
        """The context from ``env``, or ``None`` outside a job (no ``CUMULUS_JOB_ID``)."""
        job_id = env.get("CUMULUS_JOB_ID", "")
        if not job_id:
            return None
        device = _int(env, "CUMULUS_DEVICE", -1)
        return cls(
            job_id=job_id,
            gpu_memory=_float(env, "CUMULUS_GPU_MEMORY", 0.0),
            gpu_count=_int(env, "CUMULUS_GPU_COUNT", 1),
            duration=_float(env, "CUMULUS_DURATION", 0.0),
            deadline=_float(env, "CUMULUS_DEADLINE_MS", 0.0) / 1000.0,
            attempt=_int(env, "CUMULUS_ATTEMPT", 1),
            partition_id=env.get("CUMULUS_PARTITION_ID") or None,
            device=device if device >= 0 else None,
        )


def current_job() -> Optional[JobContext]:
    """This process's job, or ``None`` when not running inside a Cumulus job."""
    return JobContext.from_env(os.environ)
