"""A point in time before which work must stop, so a Lambda never dies mid-report.

Example::

    deadline = Deadline.from_context(context)          # remaining Lambda time minus a safety margin
    while work and not deadline.expired():
        ...
    if deadline.allows(delay):
        sleep(delay)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

#: Time kept back from the Lambda's remaining time: enough to write outcomes and reports after the
#: last Kendra call returns.
DEFAULT_SAFETY_MARGIN_SECONDS = 10.0

#: Budget used when there is no Lambda context (local runs, tests that pass ``None``).
DEFAULT_BUDGET_SECONDS = 60.0


class Deadline:
    """A monotonic deadline; ``clock`` is injectable so tests never sleep."""

    __slots__ = ("_at", "_clock")

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        """A deadline ``seconds`` from now (negative values mean already expired)."""
        self._clock = clock
        self._at = clock() + seconds

    @classmethod
    def from_context(
        cls,
        context: Any,
        *,
        margin_seconds: float = DEFAULT_SAFETY_MARGIN_SECONDS,
        fallback_seconds: float = DEFAULT_BUDGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """From a Lambda context: ``get_remaining_time_in_millis()`` minus ``margin_seconds``.

        A missing context (or one without that method) gets ``fallback_seconds``. The margin is
        capped at half the remaining time so a short-timeout function still gets to try.
        """
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if remaining_ms is None:
            return cls(fallback_seconds, clock=clock)
        remaining = remaining_ms() / 1000.0
        return cls(remaining - min(margin_seconds, remaining / 2), clock=clock)

    @classmethod
    def never(cls, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """A deadline that never expires (attempt limits still apply)."""
        return cls(math.inf, clock=clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - self._clock())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.remaining() <= 0.0

    def allows(self, seconds: float) -> bool:
        """True when waiting ``seconds`` still leaves time before the deadline."""
        return seconds < self.remaining()

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
