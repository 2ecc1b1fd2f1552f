"""What a running job knows about itself: its partition, its GPUs and its deadline.

Inside a job container the orchestrator sets these environment variables:

============================  ===========================================================
``CUMULUS_JOB_ID``            the job's id (``j-`` + 12 hex digits)
``CUMULUS_GPU_MEMORY``        fraction of one GPU's memory granted (0 < f < 1), or 1 for
                              whole GPUs
``CUMULUS_GPU_COUNT``         GPUs granted (1 for a fraction of one GPU)
``CUMULUS_DURATION``          the partition's lifetime in seconds
``CUMULUS_DEADLINE_MS``       Unix epoch milliseconds when the partition expires
``CUMULUS_ATTEMPT``           1 for the first run, higher when the job was placed again
``CUMULUS_PARTITION_ID``      the first GPU partition (set where a worker agent made one)
``CUMULUS_PARTITION_IDS``     every partition of the job, comma-separated, in GPU order
``CUMULUS_GPU_DEVICE``        the first partition's Chronos device index on the worker
``CUMULUS_GPU_DEVICES``       every Chronos device index, comma-separated, in GPU order
============================  ===========================================================

On a worker with device access, Cumulus's OCI runtime wrapper adds what the
container really got:

==============================  =========================================================
``CUMULUS_GPU_UUIDS``           the GPUs' UUIDs (``GPU-…``), comma-separated, in the order
                                ``CUDA_VISIBLE_DEVICES`` numbers them from 0
``CUMULUS_GPU_MEMORY_BYTES``    the partition's size in bytes (per GPU)
==============================  =========================================================

:func:`current_job` reads them into a :class:`JobContext`:

>>> from cumulus import current_job                      # doctest: +SKIP
>>> ctx = current_job()                                  # doctest: +SKIP
>>> batch = 256 if ctx and ctx.gpu_memory >= 0.5 else 64  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

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


def _items(env: Mapping[str, str], key: str) -> Tuple[str, ...]:
    """The non-empty comma-separated items of ``env[key]`` (none when unset)."""
    return tuple(item.strip() for item in env.get(key, "").split(",") if item.strip())


def _indexes(env: Mapping[str, str], key: str) -> Optional[Tuple[int, ...]]:
    """``env[key]`` as comma-separated device indexes; ``None`` when unset or malformed."""
    items = _items(env, key)
    if not items or not all(item.isdigit() for item in items):
        return None
    return tuple(int(item) for item in items)


@dataclass(frozen=True)
class JobContext:
    """The running job's id, partitions, GPUs and deadline (see the module docstring).

    Attributes:
        job_id: The job's id.
        gpu_memory: Fraction of one GPU's memory granted; 1 for whole GPUs, 0 when unknown.
        gpu_count: GPUs granted.
        duration: The partition's lifetime in seconds.
        deadline: Unix epoch seconds when the partition expires (0 when unknown).
        attempt: 1 for the first run, higher when the job was placed again.
        partition_id: The first GPU partition, or ``None`` where no agent made one.
        device: The first partition's Chronos device index on the worker, or ``None``.
        partition_ids: Every partition of the job, in GPU order.
        devices: Every Chronos device index, in GPU order.
        gpu_uuids: The UUIDs of the GPUs the container got, in the order
            ``CUDA_VISIBLE_DEVICES`` numbers them (empty on workers without
            device access).
        gpu_memory_bytes: The partition's size in bytes per GPU, or ``None``
            where the worker did not say.
    """

    job_id: str
    gpu_memory: float
    gpu_count: int
    duration: float
    deadline: float
    attempt: int
    partition_id: Optional[str] = None
    device: Optional[int] = None
    partition_ids: Tuple[str, ...] = ()
    devices: Tuple[int, ...] = ()
    gpu_uuids: Tuple[str, ...] = ()
    gpu_memory_bytes: Optional[int] = None

    @property
    def whole_gpus(self) -> bool:
        """True when the job holds whole GPUs rather than a fraction of one."""
        return self.gpu_memory >= 1.0

    def seconds_left(self, now: Optional[float] = None) -> float:
        """Seconds until the deadline.

        Args:
            now: Unix epoch seconds to count from (default: the current time).

        Returns:
            The seconds left (negative once passed); ``inf`` when the deadline is unknown.
        """
        if not self.deadline:
            return float("inf")
        return self.deadline - (time.time() if now is None else now)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Optional["JobContext"]:
        """Read the context from environment variables.

        Malformed values read as unknown (the defaults) rather than raising:
        job code asks for its context to adapt, not to fail.

        Args:
            env: The environment, e.g. ``os.environ``.

        Returns:
            The context, or ``None`` outside a job (no ``CUMULUS_JOB_ID``).
        """
        job_id = env.get("CUMULUS_JOB_ID", "")
        if not job_id:
            return None
        device_number = _int(env, "CUMULUS_GPU_DEVICE", -1)
        device = device_number if device_number >= 0 else None
        devices = _indexes(env, "CUMULUS_GPU_DEVICES")
        if devices is None:
            devices = (device,) if device is not None else ()
        partition_id = env.get("CUMULUS_PARTITION_ID") or None
        partition_ids = _items(env, "CUMULUS_PARTITION_IDS") or ((partition_id,) if partition_id else ())
        memory_bytes = _int(env, "CUMULUS_GPU_MEMORY_BYTES", -1)
        return cls(
            job_id=job_id,
            gpu_memory=_float(env, "CUMULUS_GPU_MEMORY", 0.0),
            gpu_count=_int(env, "CUMULUS_GPU_COUNT", len(devices) or 1),
            duration=_float(env, "CUMULUS_DURATION", 0.0),
            deadline=_float(env, "CUMULUS_DEADLINE_MS", 0.0) / 1000.0,
            attempt=_int(env, "CUMULUS_ATTEMPT", 1),
            partition_id=partition_id or (partition_ids[0] if partition_ids else None),
            device=device if device is not None else (devices[0] if devices else None),
            partition_ids=partition_ids,
            devices=devices,
            gpu_uuids=_items(env, "CUMULUS_GPU_UUIDS"),
            gpu_memory_bytes=memory_bytes if memory_bytes >= 0 else None,
        )


def current_job() -> Optional[JobContext]:
    """This process's job context.

    Returns:
        The :class:`JobContext` from ``os.environ``, or ``None`` when not
        running inside a Cumulus job.
    """
    return JobContext.from_env(os.environ)
