"""The syncer's clocks: monotonic for its own schedule, wall time for the store's.

Tests that compress weeks into seconds give the syncer (and the reader, and the
reference store) one controllable clock instead of the system's.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock"]


class Clock(Protocol):
    """Where the syncer reads the time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (refresh schedule, timeouts)."""
        ...

    def time(self) -> float:
        """Unix time in seconds (registration generations, gauge stamps of collectors)."""
        ...


class _SystemClock:
    """The process's clocks."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """Return ``time.time()``."""
        return time.time()


SYSTEM_CLOCK: Clock = _SystemClock()
"""The clock every syncer uses unless given another."""
