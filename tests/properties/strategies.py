"""Hypothesis strategies and settings shared by the property tests.

Example counts stay moderate so the whole suite stays fast; set
``METRICACHE_PROPERTY_SCALE`` (a factor, e.g. ``10``) to run more.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "QUICK",
    "STORES",
    "FamilySpec",
    "family_specs",
    "label_values",
    "scaled",
]

_SCALE = float(os.environ.get("METRICACHE_PROPERTY_SCALE", "1"))


def scaled(examples: int) -> int:
    """Return ``examples`` times ``METRICACHE_PROPERTY_SCALE`` (at least 1)."""
    return max(1, round(examples * _SCALE))


_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
QUICK = settings(max_examples=scaled(40), deadline=None, suppress_health_check=_HEALTH)
"""Tests that stay in process: a few milliseconds per example."""
STORES = settings(max_examples=scaled(12), deadline=None, suppress_health_check=_HEALTH)
"""Tests that sync through a real store and read it back: tens of milliseconds each."""

# Python 3.10's csv reader rejects NUL characters (3.11 reads them).
_BANNED = "\x00" if sys.version_info < (3, 11) else ""
_HOSTILE = (
    "",
    '"',
    "\\",
    '\\"',
    "\n",
    "\r\n",
    "\x00",
    "\x1b[31m",
    "line\nbreak",
    "a,b=c{d}",
    "+Inf",
    "NaN",
    "\u2028",
    "ünïcødé ✓ 日本語 🎉",
    "*3\r\n$3\r\nDEL\r\n",
    "\r\nflush_all\r\n",
    "x" * 300,
)
# Every character but lone surrogates (refused at declaration: see test_label_values):
# control characters, quotes, backslashes, line breaks, any plane.
label_values = st.one_of(
    st.sampled_from([v for v in _HOSTILE if not (set(v) & set(_BANNED))]),
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=_BANNED),
        max_size=24,
    ),
)
label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,6}", fullmatch=True)
help_texts = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=_BANNED), max_size=40
)
counter_amounts = st.one_of(
    st.integers(0, 10**6).map(float),
    st.floats(0, 2, allow_nan=False, allow_infinity=False),  # digits beyond 1e-9
    st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
)
any_floats = st.floats(allow_nan=True, allow_infinity=True)
observations = st.one_of(
    st.floats(-2, 2, allow_nan=False, allow_infinity=False),
    st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
)
# Bucket layouts as users write them, valid or not: unsorted, repeated, NaN, infinite.
bucket_layouts = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6)


@attrs.frozen
class FamilySpec:
    """What a test declares and does to one metric."""

    kind: str
    labelnames: tuple[str, ...]
    documentation: str
    merge: str | None
    buckets: tuple[float, ...]
    # per label set: counter amounts, gauge readings or observations
    series: tuple[tuple[tuple[str, ...], tuple[float, ...]], ...]


@st.composite
def family_specs(draw: st.DrawFn) -> FamilySpec:
    """One metric: its type, labels, help, merge mode or buckets, and what it records."""
    kind = draw(st.sampled_from(["counter", "gauge", "histogram"]))
    labelnames = tuple(draw(st.lists(label_names, unique=True, max_size=3)))
    if kind == "histogram":
        labelnames = tuple(n for n in labelnames if n != "le")
    merge = (
        draw(st.sampled_from(["sum", "max", "min", "last", "per_instance"]))
        if kind == "gauge"
        else None
    )
    if merge == "per_instance":
        labelnames = tuple(n for n in labelnames if n != "instance")
    buckets: tuple[float, ...] = ()
    if kind == "histogram":
        buckets = tuple(draw(bucket_layouts))
    values: Any = {"counter": counter_amounts, "gauge": any_floats, "histogram": observations}[kind]
    label_sets = draw(
        st.lists(st.tuples(*[label_values] * len(labelnames)), unique=True, max_size=3)
        if labelnames
        else st.just([()])
    )
    series = tuple(
        (labels, tuple(draw(st.lists(values, min_size=1, max_size=4)))) for labels in label_sets
    )
    return FamilySpec(kind, labelnames, draw(help_texts), merge, buckets, series)
