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
from collections.abc import Callable
from typing import Any

from metricache.registry import Registry
from metricache.snapshot import MetricType, Sample
from metricache.sync.keyspace import FamilyMeta, join_fixed
from metricache.sync.series import SeriesState, gauge_sample_entry, meta_of_family, sample_values

__all__ = ["CollectedSeries"]

log = logging.getLogger("metricache.sync")

VKey = tuple[str, tuple[str, ...]]


class CollectedSeries:
    """The records of the series every collector of a registry reports."""

    def __init__(self) -> None:
        self.states: dict[VKey, SeriesState] = {}
        # Which series each collector reported last time (to drop those it stopped).
        self._reported: dict[int, set[VKey]] = {}
        self._values: dict[str, str] = {}  # gauge series id -> value text last seen

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
        collectors = registry.collectors()
        now = time.time()
        seen_collectors: set[int] = set()
        for collector in collectors:
            ident = id(collector)
            seen_collectors.add(ident)
            try:
                families = list(collector())
            except Exception:
                log.exception("a custom collector failed; its families are left out")
                continue
            reported: set[VKey] = set()
            for fam in families:
                meta: FamilyMeta | None = None
                nbuckets = len(fam.buckets)
                for sample in fam.samples:
                    vkey = (fam.name, sample.labels)
                    reported.add(vkey)
                    state = self.states.get(vkey)
                    if state is None:
                        state = SeriesState(fam.name, fam.type, sample.labels, nbuckets)
                        meta = meta or meta_of_family(fam)
                        state.meta = meta
                        self.states[vkey] = state
                    if fam.type is MetricType.GAUGE:
                        if isinstance(sample, Sample):
                            text = repr(sample.value)
                            if self._values.get(state.sid) != text:
                                self._values[state.sid] = text
                                gauge(state, gauge_sample_entry(sample, now))
                        continue
                    values = sample_values(sample)
                    if len(values) != len(state.parts):
                        continue
                    if _restarted(state, values):
                        # The source started again from zero (reset, recreated): what it
                        # reports now is added to what the store already has.
                        state.sent = (0,) * len(values)
                    if values != state.sent or not state.life:
                        changed(state, values)
            for vkey in self._reported.get(ident, set()) - reported:
                self._drop(vkey, gauge)
            self._reported[ident] = reported
        for ident in set(self._reported) - seen_collectors:  # unregistered collectors
            for vkey in self._reported.pop(ident):
                self._drop(vkey, gauge)

    def _drop(self, vkey: VKey, gauge: Callable[[SeriesState, str | None], None]) -> None:
        state = self.states.pop(vkey, None)
        if state is None:
            return
        if state.kind is MetricType.GAUGE:
            self._values.pop(state.sid, None)
            gauge(state, None)

    def holds(self, state: SeriesState) -> bool:
        """Return whether a collector still reports ``state``."""
        return self.states.get((state.family, state.labels)) is state

    def reset(self) -> None:
        """Forget every record (a forked child, whose collectors report its own values)."""
        self.states.clear()
        self._reported.clear()
        self._values.clear()

    def all_states(self) -> list[Any]:
        """Return every record (for a store that lost its data)."""
        return list(self.states.values())


def _restarted(state: SeriesState, values: tuple[int, ...]) -> bool:
    """Whether a cumulative series went down: its source restarted from zero."""
    sent = state.sent
    if state.kind is MetricType.COUNTER:
        return join_fixed(values[0], values[1]) < join_fixed(sent[0], sent[1])
    # A histogram's bucket counts only grow; its sum may go down (negative observations).
    return any(v < s for v, s in zip(values[:-2], sent[:-2]))
