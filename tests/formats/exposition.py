"""Helpers for the Prometheus and OpenMetrics tests: a hostile registry, parsed expositions."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from metricache import Counter, Gauge, Histogram, Registry
from metricache.snapshot import HistogramSample, MetricType, Sample, Snapshot
from metricache_prometheus import format_value

HOSTILE = (
    'say "hi"',
    "back\\slash",
    "new\nline",
    "ünïcødé ✓ 日本語 🎉",
    "\\n is two characters",
    '\\"',
    '"',
    "\\",
    "",
    "trailing\\",
    "crlf\r\n",
    "a,b=c{d}",
    "+Inf",
    "__overflow__-like",
)
HOSTILE_HELP = 'Help with "quotes", a back\\slash,\na newline and ünïcødé'


def hostile_registry() -> Registry:
    """Labelled counters, gauges and histograms whose label values and help are hostile."""
    registry = Registry()
    requests = Counter("http_requests", HOSTILE_HELP, ["method", "path"], registry=registry)
    sent = Counter("sent", "Bytes sent", ["peer"], unit="bytes", registry=registry)
    temperature = Gauge("temperature", "Temperature", ["zone"], registry=registry)
    latency = Histogram("latency", "Latency of 'jobs'", ["path"], unit="seconds", registry=registry)
    sizes = Histogram("size", "Sizes", ["kind", "zone"], buckets=[1, 10, 1e6], registry=registry)
    Counter("never_used", "A labelled counter without series", ["kind"], registry=registry)
    Gauge("up", "Unlabelled gauge", registry=registry).set(1)
    for i, value in enumerate(HOSTILE):
        other = HOSTILE[-1 - i]
        requests.labels(value, other).inc(0.1 * (i + 1))
        requests.labels(value, other).inc(0.2)
        sent.labels(value).inc(1e300 / (i + 1))
        temperature.labels(value).set(-1.5 * i + 0.1)
        for observation in (0.0001, 0.3 * i, 7.5, 12.0 + i):
            latency.labels(value).observe(observation)
        sizes.labels(value, other).observe(i * 100.0)
    for zone, reading in (("inf", math.inf), ("-inf", -math.inf), ("nan", math.nan)):
        temperature.labels(zone).set(reading)
    temperature.labels("negative zero").set(-0.0)
    temperature.labels("tiny").set(5e-324)
    return registry


def same(a: float, b: float) -> bool:
    """Return whether two floats are the same number (NaN equals NaN)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


Key = tuple[str, tuple[tuple[str, str], ...]]


def expected_samples(snapshot: Snapshot) -> dict[Key, float]:
    """Return every sample line a snapshot must produce: ``(name, labels) -> value``."""
    out: dict[Key, float] = {}
    for family in snapshot:
        for s in family.samples:
            labels = list(zip(family.labelnames, s.labels))
            if isinstance(s, HistogramSample):
                assert family.type is MetricType.HISTOGRAM
                for bound, count in zip(family.buckets, s.buckets):
                    key = (
                        f"{family.name}_bucket",
                        tuple(sorted([*labels, ("le", format_value(bound))])),
                    )
                    out[key] = float(count)
                out[(f"{family.name}_sum", tuple(sorted(labels)))] = s.sum
                out[(f"{family.name}_count", tuple(sorted(labels)))] = float(s.count)
            else:
                assert isinstance(s, Sample)
                suffix = "_total" if family.type is MetricType.COUNTER else ""
                out[(family.name + suffix, tuple(sorted(labels)))] = s.value
    return out


def parsed_samples(families: Iterable[Any]) -> dict[Key, float]:
    """Return the samples of parsed prometheus_client families, refusing duplicates."""
    out: dict[Key, float] = {}
    for family in families:
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"sample {key} appears twice"
            out[key] = sample.value
    return out


def assert_same_samples(got: dict[Key, float], expected: dict[Key, float]) -> None:
    """Assert both hold the same keys and, key by key, the very same number."""
    assert set(got) == set(expected)
    different = {k: (got[k], expected[k]) for k in got if not same(got[k], expected[k])}
    assert different == {}
