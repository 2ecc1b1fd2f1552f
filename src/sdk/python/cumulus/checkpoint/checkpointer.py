"""Checkpointer: save every N steps and/or every T seconds from a training loop."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional, Union

from cumulus.checkpoint import signals
from cumulus.checkpoint.core import DEFAULT_KEEP_LAST, Checkpoint, CheckpointManager
from cumulus.checkpoint.errors import CheckpointConfigError
from cumulus.checkpoint.manifest import check_step

__all__ = ["Checkpointer", "DEFAULT_EVERY_N_STEPS", "StateArg"]

#: What ``maybe_save`` accepts: the state, or a function that builds it.
StateArg = Union[Mapping[str, Any], Callable[[], Mapping[str, Any]]]

#: Interval when neither ``every_n_steps`` nor ``every_seconds`` is given.
#: docs/checkpoints.md and ``deno task bench`` show what it costs.
DEFAULT_EVERY_N_STEPS = 2000


class Checkpointer:
    """Decides when to checkpoint; call :meth:`maybe_save` after every training step.

    A checkpoint is taken when ``step`` is a multiple of ``every_n_steps``
    (so a resumed run checkpoints at the same steps as an uninterrupted one)
    or when ``every_seconds`` have passed since the last one. With neither,
    every :data:`DEFAULT_EVERY_N_STEPS` steps. ``keep_last`` checkpoints are
    kept in L1 and in L2.

    With ``save_on_preempt`` (default), SIGTERM makes the next
    :meth:`maybe_save` save that step whatever the interval, run the
    :func:`~cumulus.checkpoint.on_preempt` hooks, flush L2 and exit with 143.
    Create it in the main thread.

    >>> ckpt = Checkpointer(every_n_steps=100)             # doctest: +SKIP
    >>> restored = ckpt.restore(into={"model": model, "opt": opt})  # doctest: +SKIP
    >>> for step in range(restored.step + 1 if restored else 0, steps):  # doctest: +SKIP
    ...     train_one_step()
    ...     ckpt.maybe_save(lambda: {"model": model, "opt": opt, "rng": rng_state()}, step)
    """

    def __init__(
        self,
        every_n_steps: Optional[int] = None,
        every_seconds: Optional[float] = None,
        keep_last: int = DEFAULT_KEEP_LAST,
        *,
        save_on_preempt: bool = True,
        manager: Optional[CheckpointManager] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_n_steps is not None and (
            isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 1
        ):
            raise CheckpointConfigError(f"every_n_steps: must be an integer >= 1, got {every_n_steps!r}")
        if every_seconds is not None and not (isinstance(every_seconds, (int, float)) and every_seconds > 0):
            raise CheckpointConfigError(f"every_seconds: must be > 0, got {every_seconds!r}")
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise CheckpointConfigError(f"keep_last: must be an integer >= 1, got {keep_last!r}")
        if every_n_steps is None and every_seconds is None:
            every_n_steps = DEFAULT_EVERY_N_STEPS
        self.every_n_steps = every_n_steps
        self.every_seconds = every_seconds
        self.keep_last = keep_last
        self.save_on_preempt = save_on_preempt
        self._manager = manager
        self._clock = clock
        self._last_time = clock()
        self.last_step: Optional[int] = None
        if save_on_preempt:
            signals.want_safe_points()

    @property
    def manager(self) -> CheckpointManager:
        """The manager it saves through (the process default unless one was given)."""
        if self._manager is None:
            from cumulus.checkpoint import default_manager

            self._manager = default_manager()
        return self._manager

    def due(self, step: int) -> bool:
        """Whether :meth:`maybe_save` would save at ``step`` now."""
        if step == self.last_step:
            return False
        if self.every_n_steps is not None and step % self.every_n_steps == 0:
            return True
        return self.every_seconds is not None and self._clock() - self._last_time >= self.every_seconds

    def maybe_save(self, state: StateArg, step: int) -> bool:
        """Save when due (see the class docstring); True when it saved.

        ``state`` may be a function returning the mapping: it is then only
        called when a checkpoint is taken (worth it when building the state
        costs, e.g. ``rng_state()`` on every step).
        After SIGTERM this saves ``step`` and does not return (the process exits 143).
        """
        step = check_step(step)
        saved = False
        if self.due(step):
            self.save(_resolve(state), step)
            saved = True
        if self.save_on_preempt and signals.preempted():
            if self.last_step != step:
                self.save(_resolve(state), step)
            signals.run_preemption()
        return saved

    def save(self, state: StateArg, step: int) -> None:
        """Save now, whatever the interval."""
        self.manager.save(_resolve(state), step, keep_last=self.keep_last)
        self.last_step = check_step(step)
        self._last_time = self._clock()

    def restore(self, into: Optional[Mapping[str, Any]] = None) -> Optional[Checkpoint]:
        """:meth:`CheckpointManager.restore` of this checkpointer's manager."""
        restored = self.manager.restore(into)
        if restored is not None:
            self.last_step = restored.step
        return restored

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait for pending L2 uploads; False when ``timeout`` ran out."""
        return self.manager.flush(timeout)


def _resolve(state: StateArg) -> Mapping[str, Any]:
    return state() if callable(state) else state
