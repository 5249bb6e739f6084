"""What the syncer remembers per series: its store name, what the store holds of it, its life.

For a counter the integers are ``[whole units, billionths]`` of its cumulative value;
for a histogram ``[count of bucket 0, ..., count of bucket n, sum units, sum
billionths]`` (:func:`~metricache.sync.keyspace.value_parts` names them). ``sent``
holds the cumulative integers the store has confirmed, so a delta is always
``current - sent``: a failed sync leaves ``sent`` alone, and the next sync sends
everything since the last confirmation (nothing accumulates but these few integers
per series).

``life`` is the life of the series in the store that this instance's contributions
went into ("" while it has none); ``base`` is what a forked child inherited (its
parent's to send). When the store no longer has the series in that life (it expired
while nobody held it, or the store lost it), ``sent`` goes back to ``base`` and the
next write sends the whole contribution again.

A series is either a live child of a metric (found through the change tracker) or a
sample produced by a custom collector at sync time (``child`` is None; its values
come from the sample).
"""

from __future__ import annotations

import json
import math
from typing import Any

from metricache.metrics import MetricBase
from metricache.snapshot import Family, HistogramSample, MetricType, Sample
from metricache.sync.keyspace import FamilyMeta, series_id, split_fixed, value_parts

__all__ = [
    "SeriesState",
    "current_values",
    "family_meta",
    "float_values",
    "gauge_entry",
    "inherited_values",
    "meta_of_family",
    "sample_values",
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


class SeriesState:
    """The syncer's record of one series."""

    __slots__ = (
        "base",
        "child",
        "entry",
        "family",
        "gen",
        "kind",
        "labels",
        "life",
        "meta",
        "parts",
        "refresh_due",
        "sent",
        "sid",
    )

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
        self.sent: tuple[int, ...] = (0,) * len(self.parts)
        # What a forked child inherited: the parent's to send, so never this instance's,
        # not even when a store that lost its data needs every total again.
        self.base: tuple[int, ...] = self.sent
        self.gen = -1  # registration generation in the current epoch; -1: none
        self.life = ""  # the series' life this instance's contributions went into
        self.refresh_due = 0.0  # when this instance must next refresh it (0: not held)
        self.entry: str | None = None  # a gauge's entry as last put in the gauge book
        self.meta: FamilyMeta | None = None  # a collector series' family metadata

    @classmethod
    def for_child(cls, child: Any) -> SeriesState:
        """Return the record of a live metric child."""
        family: MetricBase[Any] = child.family
        nbuckets = len(child._upper) if family._type is MetricType.HISTOGRAM else 0
        return cls(family.name, family._type, child._labels, nbuckets, child)

    def detached(self) -> bool:
        """Return whether the series was removed from its metric."""
        child = self.child
        return child is not None and bool(child._gone)

    def forget_life(self) -> None:
        """The store no longer holds this instance's contribution: send it whole again."""
        self.sent = self.base
        self.life = ""


_ZERO = (0, 0)


def _fixed(value: float, fallback: tuple[int, ...]) -> tuple[int, ...]:
    return split_fixed(value) if math.isfinite(value) else fallback


def current_values(state: SeriesState) -> tuple[int, ...]:
    """Return the cumulative integers of a live counter or histogram series now."""
    child = state.child
    if state.kind is MetricType.COUNTER:
        value = child._value
        if value.is_integer():  # most counters hold whole numbers: no split needed
            return (int(value), 0)
        return _fixed(value, state.sent)
    counts, total = child.read()
    return (*counts, *_fixed(total, state.sent[-2:]))


def inherited_values(kind: MetricType, raw: Any) -> tuple[int, ...]:
    """Return the integers of what a counter or histogram series held at a fork.

    ``raw`` is what the registry recorded in the child (the counter's value, or the
    histogram's per-bucket counts and sum).
    """
    if kind is MetricType.COUNTER:
        return _fixed(raw, _ZERO)
    counts, total = raw
    return (*counts, *_fixed(total, _ZERO))


def float_values(value: float) -> tuple[int, ...]:
    """Return the integers of a counter's cumulative value (a collector's)."""
    return _fixed(value, _ZERO)


def sample_values(sample: Sample | HistogramSample) -> tuple[int, ...]:
    """Return the cumulative integers of a collector's counter or histogram sample."""
    if isinstance(sample, Sample):
        return _fixed(sample.value, _ZERO)
    counts = []
    previous = 0
    for cumulative in sample.buckets:
        counts.append(cumulative - previous)
        previous = cumulative
    return (*counts, *_fixed(sample.sum, _ZERO))


def gauge_entry(value: float, stamp: float) -> str:
    """Return the gauge page entry of a gauge series: ``[value text, stamp]`` as JSON.

    For a metricache gauge the value is this process's own (:meth:`GaugeChild.own`):
    in a forked child, what it inherited is left out until it sets the gauge.
    """
    return json.dumps([repr(value), stamp])
