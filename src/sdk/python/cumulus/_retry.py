"""Capped exponential backoff for calls that may be repeated across an orchestrator restart.

The orchestrator is crash-only: a supervisor restarts it at once and the new
process re-attaches running jobs. What a client sees meanwhile is
``UNAVAILABLE`` (connection refused or reset) for a few seconds. Calls that
are safe to repeat (reads, and the job runtime's reports, which the
orchestrator stores idempotently) wait it out with :class:`Backoff`: delays
grow from ``initial`` by ``multiplier`` up to ``maximum``, and the attempts
stop once ``budget`` seconds have passed since the first failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["DEFAULT_RETRY_TIMEOUT", "Backoff", "Retrier"]

#: Seconds an idempotent call keeps retrying while the orchestrator is unreachable.
DEFAULT_RETRY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Backoff:
    """How long to wait between attempts and when to stop.

    Attributes:
        budget: Seconds from the first failure after which no new attempt
            starts (0 turns retrying off).
        initial: The first delay in seconds.
        maximum: The largest delay in seconds.
        multiplier: Each delay is the previous one times this.
    """

    budget: float = DEFAULT_RETRY_TIMEOUT
    initial: float = 0.1
    maximum: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        for name in ("budget", "initial", "maximum"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name}: must be a number >= 0, got {value!r}")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier: must be a number >= 1, got {self.multiplier!r}")


class Retrier:
    """The state of one retried operation: call :meth:`next_delay` after each failure.

    Args:
        backoff: The policy.
        clock: Monotonic seconds (injected for tests).

    Example:
        >>> r = Retrier(Backoff(budget=1.0, initial=0.1), clock=lambda: 0.0)
        >>> r.next_delay(), r.next_delay(), r.next_delay()
        (0.1, 0.2, 0.4)
    """

    def __init__(self, backoff: Backoff, clock: Callable[[], float] = time.monotonic) -> None:
        self._backoff = backoff
        self._clock = clock
        self._since: Optional[float] = None
        self._delay = backoff.initial
        #: Failures seen since the last :meth:`reset`.
        self.failures = 0

    def reset(self) -> None:
        """The operation made progress: the next failure starts a fresh budget."""
        self._since = None
        self._delay = self._backoff.initial
        self.failures = 0

    def next_delay(self) -> Optional[float]:
        """Seconds to sleep before the next attempt, or ``None`` when the budget is spent.

        The delay never carries an attempt past the budget's end: the last one
        starts right at it.
        """
        now = self._clock()
        if self._since is None:
            self._since = now
        self.failures += 1
        left = self._since + self._backoff.budget - now
        if left <= 0:
            return None
        delay = min(self._delay, self._backoff.maximum, left)
        self._delay = min(self._delay * self._backoff.multiplier, self._backoff.maximum)
        return delay
