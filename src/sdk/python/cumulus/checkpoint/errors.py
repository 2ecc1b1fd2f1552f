"""Typed errors of :mod:`cumulus.checkpoint`; each has a stable ``code``."""

from __future__ import annotations

from cumulus.errors import CumulusError

__all__ = [
    "CheckpointError",
    "UnsupportedValueError",
    "CorruptCheckpointError",
    "CheckpointUnavailableError",
    "FrameworkMissingError",
    "CheckpointConfigError",
    "UnsignedCheckpointError",
    "BadSignatureError",
]


class CheckpointError(CumulusError):
    """Base class of every error :mod:`cumulus.checkpoint` raises on purpose."""

    code = "CHECKPOINT_ERROR"


class UnsupportedValueError(CheckpointError, TypeError):
    """A value in ``state`` cannot be saved (no adapter fits and it does not pickle).

    ``key`` names the entry of ``state`` at fault.
    """

    code = "CHECKPOINT_UNSUPPORTED_VALUE"

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's manifest or files do not match (size, sha256, format)."""

    code = "CHECKPOINT_CORRUPT"


class UnsignedCheckpointError(CorruptCheckpointError):
    """A checkpoint's manifest carries no signature (made before checkpoints were signed).

    Never loaded: restore goes on to an older signed checkpoint, else starts fresh.
    """

    code = "CHECKPOINT_UNSIGNED"


class BadSignatureError(CorruptCheckpointError):
    """A checkpoint's manifest signature does not verify with the job's key.

    Forged, altered, or another job's: never loaded (restore goes on to an
    older valid checkpoint, else starts fresh).
    """

    code = "CHECKPOINT_BAD_SIGNATURE"


class CheckpointUnavailableError(CheckpointError, ConnectionError):
    """A resumed attempt found no valid L1 checkpoint and S3 (L2) did not answer.

    Raised instead of returning ``None`` so that a job never silently starts
    again from step 0 while its checkpoints sit in an unreachable bucket.
    """

    code = "CHECKPOINT_UNAVAILABLE"


class FrameworkMissingError(CheckpointError, ImportError):
    """A checkpoint entry needs a framework (e.g. ``torch``) that is not installed."""

    code = "CHECKPOINT_FRAMEWORK_MISSING"


class CheckpointConfigError(CheckpointError, ValueError):
    """A ``CUMULUS_*`` checkpoint setting or an argument is invalid; the message names it."""

    code = "CHECKPOINT_CONFIG"
