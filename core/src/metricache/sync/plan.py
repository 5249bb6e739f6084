"""One batch in the making: what it carries and what to record when the store answers.

The syncer's engine (:mod:`metricache.sync.shared`) fills a :class:`Plan` with
writes, refreshes and registrations, sends its batch, and hands the store's answer
back to it; the plan remembers, per write, the series and the cumulative integers
it carries, so that only what the store confirmed is recorded.
"""

from __future__ import annotations

from typing import Any

from metricache.sync.batch import GaugeUpdate, SyncBatch
from metricache.sync.series import SeriesState

__all__ = ["Plan"]


class Plan:
    """A batch and what to record when the store confirms it."""

    __slots__ = (
        "batch",
        "considered",
        "dropped",
        "families",
        "gauge_states",
        "gauges",
        "gen",
        "instance",
        "refreshed",
        "registered",
        "registered_set",
        "sent_at",
        "written",
    )

    def __init__(self, batch: SyncBatch, gen: int, sent_at: float) -> None:
        self.batch = batch
        self.gen = gen
        self.sent_at = sent_at  # monotonic time the batch was built and sent
        # One per batch.writes entry: (series, cumulative integers it carries).
        self.written: list[tuple[SeriesState, tuple[int, ...]]] = []
        # One per batch.refresh entry; gauges refreshed for their registration only
        # go to gauge_states.
        self.refreshed: list[SeriesState] = []
        self.gauge_states: list[SeriesState] = []
        self.considered: list[Any] = []  # the pending children this batch covers
        self.dropped: list[Any] = []  # removed children to forget once confirmed
        self.registered: list[SeriesState] = []
        self.registered_set: set[SeriesState] = set()
        self.families: list[str] = []
        self.instance = False
        self.gauges: GaugeUpdate | None = None

    def add_write(self, state: SeriesState, values: tuple[int, ...]) -> None:
        """Add the delta of ``state`` from what the store confirmed to ``values``."""
        sent = state.sent
        if len(values) == 2:  # a counter: the usual case
            deltas: tuple[int, ...] = (values[0] - sent[0], values[1] - sent[1])
        else:
            deltas = tuple([v - s for v, s in zip(values, sent)])
        self.batch.writes.append((state.sid, state.life, state.parts, deltas))
        self.written.append((state, values))
