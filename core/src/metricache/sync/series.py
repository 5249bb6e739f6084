"""What the syncer remembers per series: its store keys and what the store confirmed.

For a counter the integers are ``[whole units, billionths]`` of its cumulative value;
for a histogram ``[count of bucket 0, ..., count of bucket n, sum units, sum
billionths]``. ``sent`` holds the cumulative integers the store has confirmed, so a
delta is always ``current - sent``: a failed sync simply leaves ``sent`` alone, and
the next sync sends everything since the last confirmation (nothing accumulates but
these few integers per series).

A series is either a live child of a metric (the usual case, found through the
change tracker) or a sample produced by a custom collector at sync time (``child``
is None; its values come from the sample).
"""

from __future__ import annotations

import json
import math
from typing import Any

from metricache.metrics import GaugeChild, MetricBase
from metricache.snapshot import Family, HistogramSample, MetricType, Sample
from metricache.sync.keyspace import FamilyMeta, series_id, split_fixed

__all__ = [
    "COUNTER_PARTS",
    "SeriesState",
    "current_values",
    "family_meta",
    "gauge_entry",
    "gauge_sample_entry",
    "meta_of_family",
    "sample_values",
    "value_parts",
]


def family_meta(metric: MetricBase[Any]) -> FamilyMeta:
    """Return the metadata of a live metric as the store keeps it."""
    return FamilyMeta(
        name=metric.name,
        type=metric._type,
        documentation=metric.documentation,
        labelnames=metric.labelnames,
        unit=metric.unit,
        buckets=getattr(metric, "buckets", ()),
        merge=getattr(metric, "merge", None),
    )


def meta_of_family(family: Family) -> FamilyMeta:
    """Return the metadata of a snapshot family (a custom collector's)."""
    return FamilyMeta(
        family.name,
        family.type,
        family.documentation,
        family.labelnames,
        family.unit,
        family.buckets,
        family.merge,
    )


COUNTER_PARTS = ("i", "f")
_HISTOGRAM_PARTS: dict[int, tuple[str, ...]] = {}


def value_parts(kind: MetricType, nbuckets: int) -> tuple[str, ...]:
    """Return the integer parts of a series (shared tuples: one per layout)."""
    if kind is MetricType.COUNTER:
        return COUNTER_PARTS
    if kind is MetricType.HISTOGRAM:
        parts = _HISTOGRAM_PARTS.get(nbuckets)
        if parts is None:
            parts = (*(f"b{k}" for k in range(nbuckets)), "si", "sf")
            _HISTOGRAM_PARTS[nbuckets] = parts
        return parts
    return ()


class SeriesState:
    """The syncer's record of one series."""

    __slots__ = ("base", "child", "family", "gen", "kind", "labels", "parts", "sent", "sid")

    def __init__(
        self,
        family: str,
        kind: MetricType,
        labels: tuple[str, ...],
        nbuckets: int,
        child: Any = None,
    ) -> None:
        self.child = child
        self.family = family
        self.kind = kind
        self.labels = labels
        self.sid = series_id(family, labels)
        self.parts = value_parts(kind, nbuckets)
        self.sent = [0] * len(self.parts)
        # What a forked child inherited: the parent's to send, so never this instance's,
        # not even when a store that lost its data needs every total again.
        self.base = [0] * len(self.parts)
        self.gen = -1  # registration generation in the current epoch; -1: none

    @classmethod
    def for_child(cls, child: Any) -> SeriesState:
        """Return the record of a live metric child."""
        family: MetricBase[Any] = child.family
        nbuckets = len(child._upper) if family._type is MetricType.HISTOGRAM else 0
        return cls(family.name, family._type, child._labels, nbuckets, child)

    def detached(self) -> bool:
        """Return whether the series was removed from its metric."""
        child = self.child
        if child is None:
            return False
        return bool(child.family._children.get(child._labels) is not child)


def _fixed(value: float, fallback: list[int]) -> list[int]:
    return list(split_fixed(value)) if math.isfinite(value) else fallback


def current_values(state: SeriesState) -> list[int]:
    """Return the cumulative integers of a live counter or histogram series now."""
    child = state.child
    if state.kind is MetricType.COUNTER:
        return _fixed(child._value, state.sent)
    counts, total = child.read()
    return [*counts, *_fixed(total, state.sent[-2:])]


def sample_values(sample: Sample | HistogramSample) -> list[int]:
    """Return the cumulative integers of a collector's counter or histogram sample."""
    if isinstance(sample, Sample):
        return _fixed(sample.value, [0, 0])
    counts = []
    previous = 0
    for cumulative in sample.buckets:
        counts.append(cumulative - previous)
        previous = cumulative
    return [*counts, *_fixed(sample.sum, [0, 0])]


def gauge_entry(child: GaugeChild) -> str:
    """Return the gauge map entry of a gauge series: ``[value text, stamp]`` as JSON."""
    value, stamp = child.read()
    return json.dumps([repr(value), stamp])


def gauge_sample_entry(sample: Sample, stamp: float) -> str:
    """Return the gauge map entry of a collector's gauge sample."""
    return json.dumps([repr(sample.value), stamp])
