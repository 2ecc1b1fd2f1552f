"""Cumulus: run Python functions and commands on shared remote GPUs.

>>> from cumulus import CumulusClient                     # doctest: +SKIP
>>> CumulusClient().run(lambda a, b: a + b, 2, 3, gpu_memory=0.5, duration=60)  # doctest: +SKIP
5

Importing this package has no side effects and loads nothing else: the names
below are imported on first use (so ``import cumulus`` stays cheap inside job
containers, where ``python3 -m cumulus.runtime`` needs none of the client).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from cumulus.client import CumulusClient
    from cumulus.context import JobContext, current_job
    from cumulus.errors import (
        CumulusError,
        CumulusTimeoutError,
        FailedPreconditionError,
        InvalidSpecError,
        InvalidUrlError,
        JobCancelled,
        JobFailed,
        JobNotFoundError,
        NotPicklableError,
        OrchestratorUnavailable,
        RemoteError,
        ResourceExhaustedError,
        UnauthenticatedError,
    )
    from cumulus.gpu import MemoryCap, apply_memory_cap
    from cumulus.job import Job, JobInfo, LogLine

#: Version of the ``cumulus`` Python package.
__version__ = "0.1.0"

_LAZY: Dict[str, str] = {
    "CumulusClient": "cumulus.client",
    "Job": "cumulus.job",
    "JobInfo": "cumulus.job",
    "LogLine": "cumulus.job",
    "JobContext": "cumulus.context",
    "current_job": "cumulus.context",
    "MemoryCap": "cumulus.gpu",
    "apply_memory_cap": "cumulus.gpu",
    "CumulusError": "cumulus.errors",
    "CumulusTimeoutError": "cumulus.errors",
    "FailedPreconditionError": "cumulus.errors",
    "InvalidSpecError": "cumulus.errors",
    "InvalidUrlError": "cumulus.errors",
    "JobCancelled": "cumulus.errors",
    "JobFailed": "cumulus.errors",
    "JobNotFoundError": "cumulus.errors",
    "NotPicklableError": "cumulus.errors",
    "OrchestratorUnavailable": "cumulus.errors",
    "RemoteError": "cumulus.errors",
    "ResourceExhaustedError": "cumulus.errors",
    "UnauthenticatedError": "cumulus.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cumulus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))
