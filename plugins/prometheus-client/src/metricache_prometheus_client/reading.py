"""prometheus_client's ``Metric`` families, read as metricache families.

What a collector's ``collect()`` returns (``Metric`` objects holding ``Sample`` rows)
becomes :class:`~metricache.snapshot.Family` objects here. This is the general path:
a row carries its full name (``x_total``, ``x_bucket``, ``x_sum``) and its labels as
a dict, so rows are grouped back into series. The bridge reads prometheus_client's
own metric classes more directly (see :mod:`.bridging`) and arrives at the same
families.

The mapping, type by type:
* ``counter`` -> a counter (``_created`` rows are dropped: metricache never writes
  them);
* ``gauge`` and ``unknown`` -> a gauge merged by the mode given (per instance by
  default);
* ``histogram`` -> a histogram with the same bounds;
* ``summary`` -> a histogram with the single bound ``+Inf``: its ``_count`` and
  ``_sum`` keep their names and add up; quantiles computed in one process cannot be
  added up and are dropped;
* ``info`` -> a gauge named ``<name>_info`` of value 1, merged by ``max``;
* ``stateset`` -> a gauge with a label named after the family, one series per
  state, merged per instance;
* ``gaugehistogram`` -> nothing: its buckets are gauges, which no merge mode adds up
  into a histogram (:func:`family_of_metric` returns None).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from metricache.snapshot import Family, GaugeMerge, HistogramSample, MetricType, Sample
from prometheus_client.metrics_core import Metric

from metricache_prometheus_client.modes import DEFAULT_MERGE, ENUM_MERGE, INFO_MERGE

__all__ = ["SUMMARY_BUCKETS", "family_of_metric", "labelnames_of", "parse_bound"]

SUMMARY_BUCKETS: tuple[float, ...] = (math.inf,)
"""The bounds of a summary read as a histogram: ``+Inf`` alone (count and sum)."""

_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def parse_bound(text: str) -> float:
    """Return the upper bound an ``le`` label holds (``+Inf`` included)."""
    return float(text)


def labelnames_of(rows: Iterable[Any], skip: Sequence[str] = ()) -> tuple[str, ...]:
    """Return every label name of ``rows``, in order of first appearance, minus ``skip``."""
    seen: dict[str, None] = {}
    for row in rows:
        for name in row.labels:
            if name not in skip:
                seen.setdefault(name)
    return tuple(seen)


def _key(labels: dict[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(labels.get(name, "")) for name in names)


def family_of_metric(metric: Metric, merge: GaugeMerge | None = None) -> Family | None:
    """Return ``metric`` (what a collector's ``collect()`` yields) as a family, or None.

    ``merge`` overrides the merge mode of a gauge (or of an info or stateset).
    """
    kind = metric.type
    name = metric.name
    rows = metric.samples
    unit = metric.unit or ""
    if kind == "counter":
        wanted = {name + "_total", name}
        kept = [row for row in rows if row.name in wanted]
        names = labelnames_of(kept)
        samples = [Sample(_key(row.labels, names), float(row.value)) for row in kept]
        return Family(name, MetricType.COUNTER, metric.documentation, names, samples, unit=unit)
    if kind in ("gauge", "unknown"):
        kept = [row for row in rows if row.name == name]
        names = labelnames_of(kept)
        samples = [Sample(_key(row.labels, names), float(row.value)) for row in kept]
        return Family(
            name,
            MetricType.GAUGE,
            metric.documentation,
            names,
            samples,
            unit=unit,
            merge=merge or DEFAULT_MERGE,
        )
    if kind == "info":
        kept = [row for row in rows if row.name == name + "_info"]
        names = labelnames_of(kept)
        samples = [Sample(_key(row.labels, names), float(row.value)) for row in kept]
        return Family(
            name + "_info",
            MetricType.GAUGE,
            metric.documentation,
            names,
            samples,
            merge=merge or INFO_MERGE,
        )
    if kind == "stateset":
        kept = [row for row in rows if row.name == name]
        names = labelnames_of(kept)
        samples = [Sample(_key(row.labels, names), float(row.value)) for row in kept]
        return Family(
            name, MetricType.GAUGE, metric.documentation, names, samples, merge=merge or ENUM_MERGE
        )
    if kind == "histogram":
        return _histogram(metric, unit)
    if kind == "summary":
        return _summary(metric, unit)
    return None


def _histogram(metric: Metric, unit: str) -> Family:
    name = metric.name
    bucket_row, sum_row = name + "_bucket", name + "_sum"
    wanted = {name + s for s in _HISTOGRAM_SUFFIXES}
    rows = [row for row in metric.samples if row.name in wanted]
    names = labelnames_of(rows, skip=("le",))
    buckets: dict[tuple[str, ...], dict[float, float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    for row in rows:
        key = _key(row.labels, names)
        if row.name == bucket_row:
            buckets.setdefault(key, {})[parse_bound(row.labels["le"])] = float(row.value)
        elif row.name == sum_row:
            sums[key] = float(row.value)
        else:
            buckets.setdefault(key, {})
    bounds = sorted({bound for per_series in buckets.values() for bound in per_series})
    if not bounds or bounds[-1] != math.inf:
        bounds.append(math.inf)
    samples = []
    for key, per_series in buckets.items():
        cumulative = []
        previous = 0
        for bound in bounds:
            # A bound one series lacks holds what the bound below it holds.
            previous = int(per_series.get(bound, previous))
            cumulative.append(previous)
        samples.append(HistogramSample(key, tuple(cumulative), sums.get(key, 0.0), cumulative[-1]))
    return Family(
        name,
        MetricType.HISTOGRAM,
        metric.documentation,
        names,
        samples,
        unit=unit,
        buckets=tuple(bounds),
    )


def _summary(metric: Metric, unit: str) -> Family:
    name = metric.name
    count_row = name + "_count"
    wanted = (count_row, name + "_sum")
    rows = [row for row in metric.samples if row.name in wanted]
    names = labelnames_of(rows, skip=("quantile",))
    counts: dict[tuple[str, ...], int] = {}
    sums: dict[tuple[str, ...], float] = {}
    for row in rows:
        key = _key(row.labels, names)
        if row.name == count_row:
            counts[key] = int(row.value)
        else:
            sums[key] = float(row.value)
            counts.setdefault(key, 0)
    samples = [
        HistogramSample(key, (count,), sums.get(key, 0.0), count) for key, count in counts.items()
    ]
    return Family(
        name,
        MetricType.HISTOGRAM,
        metric.documentation,
        names,
        samples,
        unit=unit,
        buckets=SUMMARY_BUCKETS,
    )
