"""Checkpoint settings, read once from the environment into a typed config.

The orchestrator sets these inside a job container (all optional locally):

==========================  ===============================================================
``CUMULUS_JOB_ID``          the job's id; names the L1 directory and the L2 key prefix
``CUMULUS_ATTEMPT``         1, 2, ... (a resumed attempt refuses to start from nothing
                            when S3 is unreachable, see :func:`cumulus.checkpoint.restore`)
``CUMULUS_CHECKPOINT_DIR``  the L1 directory (default ``./.cumulus-checkpoints/<job>``,
                            ``<job>`` being ``local`` outside a job)
``CUMULUS_S3_BUCKET``       enables L2 when set
``CUMULUS_S3_REGION``       the bucket's region (default ``us-east-1``)
``CUMULUS_S3_ENDPOINT``     URL of an S3-compatible server (path-style addressing is used)
``CUMULUS_S3_PREFIX``       key prefix (default ``cumulus``)
``CUMULUS_S3_PRESIGN``      ``1`` inside a Cumulus job: every S3 request is presigned by the
                            orchestrator (``Runtime.PresignCheckpoint``), the job holds no keys
``AWS_ACCESS_KEY_ID``,      credentials outside a job, read by boto3 itself (never stored or
``AWS_SECRET_ACCESS_KEY``   logged here); ignored when ``CUMULUS_S3_PRESIGN`` is set
``CUMULUS_STOP_GRACE_PERIOD``  seconds between SIGTERM and SIGKILL (default 10): the
                            preemption sequence fits inside it
==========================  ===============================================================
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from cumulus.checkpoint.errors import CheckpointConfigError

__all__ = ["S3Settings", "CheckpointConfig", "DEFAULT_PREFIX", "DEFAULT_REGION", "LOCAL_JOB"]

#: L2 key prefix when ``CUMULUS_S3_PREFIX`` is unset.
DEFAULT_PREFIX = "cumulus"
#: Region when ``CUMULUS_S3_REGION`` is unset (what S3-compatible servers expect).
DEFAULT_REGION = "us-east-1"
#: The job name used outside a Cumulus job.
LOCAL_JOB = "local"
_DEFAULT_STOP_GRACE = 10.0
# A job id becomes a directory name and an S3 key segment: keep it boring.
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class S3Settings:
    """Where L2 checkpoints go. Credentials are optional: boto3 reads ``AWS_*`` itself."""

    bucket: str
    region: str = DEFAULT_REGION
    endpoint: Optional[str] = None
    prefix: str = DEFAULT_PREFIX
    access_key_id: Optional[str] = field(default=None, repr=False)
    # repr=False: a config printed in a log must never show the secret.
    secret_access_key: Optional[str] = field(default=None, repr=False)
    #: Requests are presigned by the orchestrator (inside a job) instead of signed here.
    presign: bool = False


@dataclass(frozen=True)
class CheckpointConfig:
    """Everything :class:`~cumulus.checkpoint.CheckpointManager` needs to know."""

    directory: Path
    job_id: str = LOCAL_JOB
    attempt: int = 1
    s3: Optional[S3Settings] = None
    #: Seconds between SIGTERM and SIGKILL granted by the orchestrator.
    stop_grace_period: float = _DEFAULT_STOP_GRACE

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None) -> "CheckpointConfig":
        """Read the variables of the module docstring; raises :class:`CheckpointConfigError`."""
        env = os.environ if env is None else env
        job_id = env.get("CUMULUS_JOB_ID", "") or LOCAL_JOB
        if not _JOB_ID.match(job_id):
            raise CheckpointConfigError(f"CUMULUS_JOB_ID: not a valid job id: {job_id!r}")
        attempt = _positive_int(env, "CUMULUS_ATTEMPT", 1)
        raw_dir = env.get("CUMULUS_CHECKPOINT_DIR", "")
        base = Path.cwd() if cwd is None else cwd
        directory = Path(raw_dir) if raw_dir else base / ".cumulus-checkpoints" / job_id
        grace = _positive_float(env, "CUMULUS_STOP_GRACE_PERIOD", _DEFAULT_STOP_GRACE)
        bucket = env.get("CUMULUS_S3_BUCKET", "")
        s3 = None
        if bucket:
            prefix = env.get("CUMULUS_S3_PREFIX", "").strip("/") or DEFAULT_PREFIX
            s3 = S3Settings(
                bucket=bucket,
                region=env.get("CUMULUS_S3_REGION", "") or DEFAULT_REGION,
                endpoint=env.get("CUMULUS_S3_ENDPOINT", "") or None,
                prefix=prefix,
                presign=env.get("CUMULUS_S3_PRESIGN", "") == "1",
            )
        return cls(directory=directory, job_id=job_id, attempt=attempt, s3=s3, stop_grace_period=grace)


def _positive_int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise CheckpointConfigError(f"{key}: not an integer: {raw!r}") from None
    if value < 1:
        raise CheckpointConfigError(f"{key}: must be >= 1, got {value}")
    return value


def _positive_float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CheckpointConfigError(f"{key}: not a number: {raw!r}") from None
    if not value > 0:
        raise CheckpointConfigError(f"{key}: must be > 0, got {value}")
    return value
