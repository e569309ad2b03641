"""The clock boundary: what time it is, as one injectable object instead of
`datetime.now(UTC)` scattered through the run path.

    clock.now()        # aware UTC datetime: record times (created_at, started_at, …)
    clock.monotonic()  # seconds for deadlines and durations, never going back

`SYSTEM_CLOCK` reads the host's clocks; tests pass a fake that jumps
(tests/fakes/clock.py), and tests/unit/test_clock.py holds both to this contract.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, durations)."""
        ...


class SystemClock:
    """The host's clocks."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
