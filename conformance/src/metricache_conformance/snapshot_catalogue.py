"""The snapshots a format must render: each one hostile in its own way.

:func:`hostile_snapshots` returns them by name; :func:`flat_samples` turns a snapshot
into the samples its exposition holds (Prometheus naming: ``name_total`` for a
counter, ``name_bucket`` with an ``le`` label, ``name_sum``, ``name_count``), which
is what a format's parse-back hook returns for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)

__all__ = ["HOSTILE_LABEL_VALUES", "FlatSample", "flat_samples", "hostile_snapshots"]

HOSTILE_LABEL_VALUES = (
    "",
    '"',
    'a "quoted" word',
    "back\\slash\\",
    "\\n is not a newline",
    "line\nbreak",
    "carriage\rreturn\r\n",
    "tab\there",
    "ünïcödé ✓ 日本語 🎉",
    "line separator \u2028 and next line \x85",
    "comma, and more, commas",
    "{braces}=[brackets];semi # hash",
    "  leading and trailing spaces  ",
    "+Inf",
    "NaN",
    "=cmd|' /C calc'!A0",
    "null\x00byte",
)
"""Label values that break a format which does not quote or escape them."""

_TIMESTAMP = 1_718_000_000.25


def _snapshot(*families: Family, view: ViewKind = ViewKind.MERGED) -> Snapshot:
    return Snapshot(families, timestamp=_TIMESTAMP, view=view, strategy="distributed_atomic")


def _empty() -> Snapshot:
    return _snapshot()


def _special_values() -> Snapshot:
    values = {
        "nan": math.nan,
        "plus_inf": math.inf,
        "minus_inf": -math.inf,
        "zero": 0.0,
        "minus_zero": -0.0,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "negative": -12.5,
        "big_integer": 2.0**63,
        "third": 1 / 3,
    }
    readings = Family(
        "reading",
        MetricType.GAUGE,
        "Readings with every special value",
        ("kind",),
        [Sample((name,), value) for name, value in values.items()],
        merge=GaugeMerge.LAST,
    )
    total = Family("total", MetricType.COUNTER, "A counter at +Inf", (), [Sample((), math.inf)])
    return _snapshot(readings, total)


def _hostile_labels() -> Snapshot:
    values = HOSTILE_LABEL_VALUES
    requests = Family(
        "requests",
        MetricType.COUNTER,
        "Requests by hostile labels",
        ("path", "method"),
        [Sample((v, values[-1 - i]), float(i) + 0.5) for i, v in enumerate(values)],
    )
    latency = Family(
        "latency_seconds",
        MetricType.HISTOGRAM,
        "Latency by hostile labels",
        ("route",),
        [HistogramSample((v,), (1, 2), 0.75, 2) for v in values[:4]],
        unit="seconds",
        buckets=(0.5, math.inf),
    )
    return _snapshot(requests, latency)


def _hostile_help() -> Snapshot:
    helps = [
        'quotes "here", a \\ backslash, \\n literally',
        "a real\nnewline and a\r\nCRLF",
        "ünïcödé ✓ and # a hash",
        "",
    ]
    return _snapshot(
        *(
            Family(f"helped_{i}", MetricType.GAUGE, text, (), [Sample((), float(i))])
            for i, text in enumerate(helps)
        )
    )


def _units() -> Snapshot:
    # A family's name already ends with its unit: the format never appends it again.
    return _snapshot(
        Family(
            "request_duration_seconds",
            MetricType.HISTOGRAM,
            "Time to serve",
            ("route",),
            [HistogramSample(("/",), (3, 7, 9), 4.5, 9)],
            unit="seconds",
            buckets=(0.1, 1.0, math.inf),
        ),
        Family(
            "payload_bytes",
            MetricType.COUNTER,
            "Bytes sent",
            (),
            [Sample((), 1024.0)],
            unit="bytes",
        ),
        Family(
            "room_temperature_celsius",
            MetricType.GAUGE,
            "Temperature",
            ("room",),
            [Sample(("a",), -3.5)],
            unit="celsius",
            merge=GaugeMerge.MAX,
        ),
    )


def _many_buckets() -> Snapshot:
    bounds = (*(0.001 * 1.5**i for i in range(120)), math.inf)
    counts = (*(min(i * 3, 300) for i in range(len(bounds) - 1)), 300)
    return _snapshot(
        Family(
            "wide_histogram_seconds",
            MetricType.HISTOGRAM,
            "A histogram with 121 buckets",
            ("shard",),
            [
                HistogramSample(("0",), counts, 1234.5, 300),
                HistogramSample(("1",), (0,) * len(bounds), 0.0, 0),
            ],
            unit="seconds",
            buckets=bounds,
        )
    )


def _zero_samples() -> Snapshot:
    return _snapshot(
        Family("unused", MetricType.COUNTER, "Declared, never incremented", ("path",), []),
        Family("idle", MetricType.GAUGE, "A gauge without series", (), [], merge=GaugeMerge.SUM),
        Family(
            "quiet_seconds",
            MetricType.HISTOGRAM,
            "A histogram without series",
            ("route",),
            [],
            unit="seconds",
            buckets=(1.0, math.inf),
        ),
        Family("after", MetricType.GAUGE, "A family after the empty ones", (), [Sample((), 1.0)]),
    )


def _many_series() -> Snapshot:
    return _snapshot(
        Family(
            "jobs",
            MetricType.COUNTER,
            "Many series",
            ("queue", "worker"),
            [Sample((f"q{i % 17}", f"w{i}"), float(i)) for i in range(2000)],
        ),
        view=ViewKind.INSTANCE,
    )


_CATALOGUE = {
    "empty": _empty,
    "special_values": _special_values,
    "hostile_labels": _hostile_labels,
    "hostile_help": _hostile_help,
    "units": _units,
    "many_buckets": _many_buckets,
    "zero_samples": _zero_samples,
    "many_series": _many_series,
}


def hostile_snapshots() -> dict[str, Snapshot]:
    """Return a fresh copy of every snapshot of the catalogue, by name.

    ``empty`` (no family), ``special_values`` (NaN, ±Inf, -0.0, subnormal and huge
    values), ``hostile_labels`` (quotes, backslashes, line breaks, unicode, NUL in
    label values), ``hostile_help`` (the same in help texts), ``units`` (families
    whose names end with their unit), ``many_buckets`` (a histogram with 121
    buckets), ``zero_samples`` (families without series) and ``many_series``.
    """
    return {name: make() for name, make in _CATALOGUE.items()}


def _label_dict(labels: Mapping[str, str]) -> dict[str, str]:
    return dict(labels)


@attrs.frozen
class FlatSample:
    """One sample of an exposition: its name, labels and value."""

    name: str
    labels: Mapping[str, str] = attrs.field(converter=_label_dict, hash=False)
    value: float

    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The sample's identity: its name and its labels, sorted, ``le`` as a number."""
        return self.name, tuple(sorted((k, _comparable(k, v)) for k, v in self.labels.items()))


def _comparable(name: str, value: str) -> str:
    if name != "le":
        return value
    try:
        return repr(float(value))
    except ValueError:
        return value


def flat_samples(snapshot: Snapshot) -> list[FlatSample]:
    """Return the samples the exposition of ``snapshot`` holds, family by family."""
    out: list[FlatSample] = []
    for family in snapshot:
        out.extend(_family_samples(family))
    return out


def _family_samples(family: Family) -> Iterable[FlatSample]:
    for sample in family.samples:
        labels = dict(zip(family.labelnames, sample.labels))
        if isinstance(sample, HistogramSample):
            for bound, count in zip(family.buckets, sample.buckets):
                le = "+Inf" if math.isinf(bound) else repr(float(bound))
                yield FlatSample(f"{family.name}_bucket", {**labels, "le": le}, float(count))
            yield FlatSample(f"{family.name}_sum", labels, sample.sum)
            yield FlatSample(f"{family.name}_count", labels, float(sample.count))
        else:
            suffix = "_total" if family.type is MetricType.COUNTER else ""
            yield FlatSample(family.name + suffix, labels, sample.value)
