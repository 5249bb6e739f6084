"""Series that custom collectors report: read at sync time, held while they are reported.

A collector (``Registry.register_collector``) returns families when asked; the syncer
asks at every sync. Its counters and histograms are cumulative values of this process
and become deltas like any series; its gauges become entries of this instance's gauge
pages. A series a collector stops reporting is no longer held: its record is dropped
(memory stays bounded by what collectors report now) and, if it comes back, it is a
new series starting from what it then reports. A counter or histogram whose value goes
down has restarted from zero (a reset, a metric created again): what it reports from
then on is added to what the store has, so a shared total never goes back. A
collector that raises keeps its previous series until it answers again.

In a forked child the records start empty: a collector's values in a child are the
child's own (a process's CPU time, a bridged library's metrics reset at fork).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from metricache.registry import Registry
from metricache.snapshot import Family, HistogramSample, MetricType, Sample, SampleColumns
from metricache.sync.keyspace import FamilyMeta
from metricache.sync.series import (
    SeriesState,
    float_values,
    gauge_entry,
    meta_of_family,
    sample_values,
)

__all__ = ["CollectedSeries"]

log = logging.getLogger("metricache.sync")


class CollectedState(SeriesState):
    """The record of a collector's series: also who reports it and what it last said."""

    __slots__ = ("owner", "round", "seen")

    def __init__(
        self, family: str, kind: MetricType, labels: tuple[str, ...], nbuckets: int
    ) -> None:
        super().__init__(family, kind, labels, nbuckets)
        self.owner = 0  # id() of the collector that reports it
        self.round = 0  # the last collection that reported it
        self.seen: object = None  # the value it last reported (skips unchanged series)


class CollectedSeries:
    """The records of the series every collector of a registry reports."""

    def __init__(self) -> None:
        # family name -> label values -> record: no tuple is made per sample.
        self.states: dict[str, dict[tuple[str, ...], CollectedState]] = {}
        self._round = 0

    def collect(
        self,
        registry: Registry,
        changed: Callable[[SeriesState, tuple[int, ...]], None],
        gauge: Callable[[SeriesState, str | None], None],
    ) -> None:
        """Ask every collector; report what changed.

        ``changed(state, values)`` is called for a counter or histogram series whose
        cumulative integers differ from what the store confirmed (or that is new);
        ``gauge(state, entry)`` for a gauge series whose value changed, and
        ``gauge(state, None)`` for one no longer reported.
        """
        self._round += 1
        now = time.time()
        answered: set[int] = set()
        failed: set[int] = set()
        for collector in registry.collectors():
            ident = id(collector)
            try:
                families = list(collector())
            except Exception:
                log.exception("a custom collector failed; its families are left out")
                failed.add(ident)
                continue
            answered.add(ident)
            for fam in families:
                self._family(fam, ident, changed, gauge, now)
        # What a collector that answered no longer reports is dropped; so is every series
        # of a collector that was unregistered. One that raised keeps its series.
        keep = answered | failed
        for name, by_labels in list(self.states.items()):
            stale = [
                st
                for st in by_labels.values()
                if st.round != self._round and (st.owner not in keep or st.owner in answered)
            ]
            for st in stale:
                del by_labels[st.labels]
                if st.kind is MetricType.GAUGE:
                    gauge(st, None)
            if not by_labels:
                del self.states[name]

    def _family(
        self,
        fam: Family,
        ident: int,
        changed: Callable[[SeriesState, tuple[int, ...]], None],
        gauge: Callable[[SeriesState, str | None], None],
        now: float,
    ) -> None:
        by_labels = self.states.setdefault(fam.name, {})
        samples = fam.samples
        kind = fam.type
        nbuckets = len(fam.buckets)
        meta: FamilyMeta | None = None
        current = self._round
        if isinstance(samples, SampleColumns):
            pairs: Iterable[tuple[tuple[str, ...], object]] = zip(samples.labelsets, samples.values)
        else:
            pairs = ((sample.labels, sample) for sample in samples)
        for labels, item in pairs:
            state = by_labels.get(labels)
            if state is None:
                state = CollectedState(fam.name, kind, labels, nbuckets)
                meta = meta or meta_of_family(fam)
                state.meta = meta
                by_labels[labels] = state
            state.owner = ident
            state.round = current
            if item == state.seen and state.life:
                continue  # unchanged since the last collection, and confirmed
            if kind is MetricType.GAUGE:
                value = item.value if isinstance(item, Sample) else item
                if isinstance(value, float | int) and state.seen != value:
                    state.seen = value
                    gauge(state, gauge_entry(float(value), now))
                continue
            if isinstance(item, (Sample, HistogramSample)):
                values = sample_values(item)
            else:
                values = float_values(cast(float, item))
            if len(values) != len(state.parts):
                continue
            if _restarted(state, values):
                # The source started again from zero (reset, recreated): what it
                # reports now is added to what the store already has.
                state.sent = (0,) * len(values)
            if values != state.sent or not state.life:
                changed(state, values)  # (seen is set when the store confirms it)
            else:
                state.seen = item

    def holds(self, state: SeriesState) -> bool:
        """Return whether a collector still reports ``state``."""
        return self.states.get(state.family, {}).get(state.labels) is state

    def all_states(self) -> list[Any]:
        """Return every record (for a store that lost its data)."""
        return [st for by_labels in self.states.values() for st in by_labels.values()]


def _restarted(state: SeriesState, values: tuple[int, ...]) -> bool:
    """Whether a cumulative series went down: its source restarted from zero."""
    sent = state.sent
    if state.kind is MetricType.COUNTER:
        # (whole units, billionths in [0, 1e9)) compare in order like the values.
        return values < sent
    # A histogram's bucket counts only grow; its sum may go down (negative observations).
    return any(v < s for v, s in zip(values[:-2], sent[:-2]))
