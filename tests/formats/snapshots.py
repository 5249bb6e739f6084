"""Snapshots for format tests: a hand-made hostile one, a hypothesis strategy, exact equality."""

from __future__ import annotations

import math
import sys
from typing import Any

from hypothesis import strategies as st
from metricache.snapshot import (
    AnySample,
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)

HOSTILE_VALUES = (
    "",
    '"',
    '""',
    "a\"b'c",
    "back\\slash\\",
    "\\n is not a newline",
    "comma, and more, commas",
    "line\nbreak",
    "carriage\rreturn",
    "crlf\r\nend\r\n",
    "\n",
    "ünïcödé ✓ 日本語 🎉",
    "  leading and trailing spaces  ",
    "{braces}=[brackets];semi",
    "+Inf",
    "NaN",
    "=cmd|' /C calc'!A0",
    "tab\there",
)


def hostile_snapshot() -> Snapshot:
    """Every kind of family, hostile label values and help, non-finite values, an empty family."""
    values = HOSTILE_VALUES
    requests = Family(
        name="http_requests",
        type=MetricType.COUNTER,
        documentation='Requests "served", with a \\ backslash,\na newline and ünïcödé',
        labelnames=("method", "path"),
        samples=[Sample((v, values[-1 - i]), float(i) + 0.5) for i, v in enumerate(values)],
    )
    temperature = Family(
        name="temperature",
        type=MetricType.GAUGE,
        documentation="",
        labelnames=("zone",),
        samples=[
            Sample(("hot",), math.inf),
            Sample(("cold",), -math.inf),
            Sample(("broken",), math.nan),
            Sample(("zero",), -0.0),
            Sample(("",), 1e-300),
            Sample(("big",), 1.7976931348623157e308),
        ],
        unit="celsius",
        merge=GaugeMerge.MAX,
    )
    unmerged = Family(
        name="queue_depth",
        type=MetricType.GAUGE,
        documentation="no merge mode",
        samples=[Sample((), 3.0)],
    )
    bounds = (0.005, 0.1, 1.0, 2.5, 1e6, math.inf)
    latency = Family(
        name="latency_seconds",
        type=MetricType.HISTOGRAM,
        documentation="Latency",
        labelnames=("path", "method"),
        samples=[
            HistogramSample(("a,b", "GET"), (0, 1, 2, 2, 3, 3), 4.125, 3),
            HistogramSample(('"q"\n', ""), (5, 5, 5, 5, 5, 7), math.inf, 7),
            HistogramSample(("", "\r"), (0, 0, 0, 0, 0, 0), 0.0, 0),
            HistogramSample(("nan", "x"), (1, 1, 1, 1, 1, 1), math.nan, 1),
        ],
        unit="seconds",
        buckets=bounds,
    )
    unused = Family(
        name="never_observed",
        type=MetricType.HISTOGRAM,
        documentation="A histogram with labels and no series yet",
        labelnames=("path",),
        buckets=(1.0, 10.0, math.inf),
    )
    idle = Family(
        name="idle_total_things",
        type=MetricType.COUNTER,
        documentation="A counter with labels and no series yet",
        labelnames=("kind",),
    )
    return Snapshot(
        families=[requests, temperature, unmerged, latency, unused, idle],
        timestamp=1718000000.123456,
        view=ViewKind.MERGED,
        instance=None,
        strategy="distributed_atomic",
    )


def _float(value: float) -> str:
    # float.hex tells -0.0 from 0.0 and makes every NaN equal to every other NaN.
    return float(value).hex()


def _sample(sample: AnySample) -> tuple[Any, ...]:
    if isinstance(sample, HistogramSample):
        assert all(type(c) is int for c in sample.buckets)
        assert type(sample.count) is int
        return ("histogram", sample.labels, sample.buckets, _float(sample.sum), sample.count)
    return ("value", sample.labels, _float(sample.value))


def exact(snapshot: Snapshot) -> tuple[Any, ...]:
    """Return a comparable form of ``snapshot`` in which every float is exact (NaN too)."""
    families = tuple(
        (
            f.name,
            f.type,
            f.documentation,
            f.labelnames,
            f.unit,
            tuple(_float(b) for b in f.buckets),
            f.merge,
            tuple(_sample(s) for s in f.samples),
        )
        for f in snapshot.families
    )
    return (
        _float(snapshot.timestamp),
        snapshot.view,
        snapshot.instance,
        snapshot.strategy,
        families,
    )


# -- hypothesis ------------------------------------------------------------------------

# Python 3.10's csv reader rejects NUL characters (3.11 reads them).
_BANNED = "\x00" if sys.version_info < (3, 11) else ""
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=_BANNED))
label_values = st.one_of(st.sampled_from(HOSTILE_VALUES), _text)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True)
family_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
any_float = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def families(draw: st.DrawFn, name: str) -> Family:
    """A random valid family called ``name``."""
    kind = draw(st.sampled_from(MetricType))
    names = tuple(draw(st.lists(label_names, unique=True, max_size=3)))
    label_sets = draw(
        st.lists(st.tuples(*[label_values] * len(names)), unique=True, max_size=4)
        if names
        else st.lists(st.just(()), max_size=1)
    )
    help_text = draw(_text)
    unit = draw(st.sampled_from(["", "seconds", "bytes"]))
    if kind is MetricType.HISTOGRAM:
        finite = draw(
            st.lists(st.floats(allow_nan=False, allow_infinity=False), unique=True, max_size=5).map(
                sorted
            )
        )
        bounds = (*finite, math.inf)
        samples: list[AnySample] = []
        for labels in label_sets:
            increments = draw(
                st.lists(st.integers(0, 10**12), min_size=len(bounds), max_size=len(bounds))
            )
            cumulative = []
            total = 0
            for step in increments:
                total += step
                cumulative.append(total)
            samples.append(HistogramSample(labels, tuple(cumulative), draw(any_float), total))
        return Family(name, kind, help_text, names, samples, unit=unit, buckets=bounds)
    merge = draw(st.none() | st.sampled_from(GaugeMerge)) if kind is MetricType.GAUGE else None
    samples = [Sample(labels, draw(any_float)) for labels in label_sets]
    return Family(name, kind, help_text, names, samples, unit=unit, merge=merge)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """A random valid snapshot: unique family names, any floats, hostile text."""
    names = draw(st.lists(family_names, unique=True, max_size=4))
    return Snapshot(
        families=[draw(families(n)) for n in names],
        timestamp=draw(st.floats(min_value=0, max_value=4e9)),
        view=draw(st.sampled_from(ViewKind)),
        instance=draw(st.none() | _text.filter(bool)),
        strategy=draw(
            st.none() | st.sampled_from(["local_only", "distributed_basic", "distributed_atomic"])
        ),
    )
