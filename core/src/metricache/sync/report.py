"""The report of one sync attempt, given to the ``metricache_cache_synced`` hook."""

from __future__ import annotations

import attrs

__all__ = ["SyncReport"]


@attrs.frozen
class SyncReport:
    """What one sync attempt did.

    ``series`` counts the series whose changes were sent; ``error`` is None on
    success and a one-line description on failure (the deltas are then kept for the
    next attempt).
    """

    instance: str
    store: str
    strategy: str
    started: float
    duration: float
    series: int
    ok: bool
    error: str | None = None
    resent_totals: bool = False
