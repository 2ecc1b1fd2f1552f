"""Framework-agnostic checkpoints: L1 on local disk, L2 in S3, resume after preemption.

>>> from cumulus import checkpoint                                   # doctest: +SKIP
>>> restored = checkpoint.restore(into={"model": model, "opt": opt}) # doctest: +SKIP
>>> start = restored.step + 1 if restored else 0                     # doctest: +SKIP
>>> if restored: checkpoint.set_rng_state(restored.state["rng"])     # doctest: +SKIP
>>> ckpt = checkpoint.Checkpointer(every_n_steps=100)                # doctest: +SKIP
>>> for step in range(start, 10_000):                                # doctest: +SKIP
...     train_one_step()
...     ckpt.maybe_save(lambda: {"model": model, "opt": opt, "rng": checkpoint.rng_state()}, step)

``state`` maps names to objects; adapters save PyTorch modules, optimizers,
schedulers and tensors, TensorFlow/Keras models, scikit-learn estimators,
XGBoost and LightGBM models, NumPy arrays, and any picklable value.
Importing this package imports no ML framework.

Settings come from the environment (see :mod:`cumulus.checkpoint.config`);
:func:`configure` replaces them for the process. Layout, failure behaviour
and one example per framework: ``docs/checkpoints.md``.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Optional

from cumulus.checkpoint.checkpointer import DEFAULT_EVERY_N_STEPS, Checkpointer
from cumulus.checkpoint.config import CheckpointConfig, S3Settings
from cumulus.checkpoint.core import DEFAULT_KEEP_LAST, Checkpoint, CheckpointManager
from cumulus.checkpoint.errors import (
    CheckpointConfigError,
    CheckpointError,
    CheckpointUnavailableError,
    CorruptCheckpointError,
    FrameworkMissingError,
    UnsupportedValueError,
)
from cumulus.checkpoint.manifest import Manifest
from cumulus.checkpoint.rng import rng_state, set_rng_state
from cumulus.checkpoint.signals import EXIT_PREEMPTED, on_preempt, preempted

__all__ = [
    "save",
    "restore",
    "flush",
    "on_preempt",
    "preempted",
    "rng_state",
    "set_rng_state",
    "configure",
    "default_manager",
    "Checkpointer",
    "Checkpoint",
    "CheckpointManager",
    "CheckpointConfig",
    "S3Settings",
    "Manifest",
    "CheckpointError",
    "CheckpointConfigError",
    "CheckpointUnavailableError",
    "CorruptCheckpointError",
    "FrameworkMissingError",
    "UnsupportedValueError",
    "DEFAULT_EVERY_N_STEPS",
    "DEFAULT_KEEP_LAST",
    "EXIT_PREEMPTED",
]

_default: Optional[CheckpointManager] = None
_default_lock = threading.Lock()


def default_manager() -> CheckpointManager:
    """The process-wide manager, built from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CheckpointManager(CheckpointConfig.from_env())
        return _default


def configure(config: Optional[CheckpointConfig] = None, **options: Any) -> CheckpointManager:
    """Replace the process-wide manager (after flushing the old one for up to 10 s).

    ``config`` defaults to the environment; ``options`` go to
    :class:`CheckpointManager` (e.g. ``s3_client=``, ``restore_wait=``).
    """
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close(timeout=10)
    manager = CheckpointManager(config or CheckpointConfig.from_env(), **options)
    with _default_lock:
        _default = manager
    return manager


def save(state: Mapping[str, Any], step: int) -> None:
    """Save ``state`` (names -> objects) as checkpoint ``step``: durable on L1 when it
    returns, uploaded to L2 in the background. Keeps the newest 3 per tier."""
    default_manager().save(state, step)


def restore(into: Optional[Mapping[str, Any]] = None) -> Optional[Checkpoint]:
    """The newest valid checkpoint (L1, or a newer complete one from L2), or ``None``.

    Objects in ``into`` (same keys as the saved state) are loaded in place
    where the framework allows; ``Checkpoint.state`` holds every loaded value.
    """
    return default_manager().restore(into)


def flush(timeout: Optional[float] = None) -> bool:
    """Wait for pending L2 uploads; False when ``timeout`` (seconds) ran out first."""
    return default_manager().flush(timeout)
