"""The snapshot: immutable families and samples, the one data model of every format."""

from __future__ import annotations

import math

import attrs
import pytest
from metricache import Counter, Family, Gauge, Histogram, MetricType, Registry, Sample, Snapshot
from metricache.snapshot import HistogramSample, SampleColumns, ViewKind


def test_a_snapshot_is_frozen_and_does_not_follow_later_updates() -> None:
    registry = Registry()
    c = Counter("jobs", "Jobs", ["kind"], registry=registry)
    h = Histogram("size", "Size", buckets=[1], registry=registry)
    c.labels("a").inc()
    h.observe(0.5)
    snap = registry.snapshot(instance="host-1", strategy="local_only")
    c.labels("a").inc(10)
    c.labels("b").inc()
    h.observe(3)
    assert list(snap["jobs"].samples) == [Sample(("a",), 1.0)]
    assert snap["size"].samples == (HistogramSample((), (1, 1), 0.5, 1),)
    assert (snap.view, snap.instance, snap.strategy) == (ViewKind.INSTANCE, "host-1", "local_only")
    family = snap["jobs"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        family.name = "other"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap["jobs"].samples[0].labels = ()  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.families = ()  # type: ignore[misc]
    assert isinstance(snap.families, tuple)


def test_families_carry_metadata() -> None:
    registry = Registry()
    Counter("sent", "Bytes sent", ["peer"], unit="bytes", registry=registry)
    Gauge("queue", "Queue depth", merge="max", registry=registry)
    Histogram("latency", "Latency", unit="seconds", buckets=[0.1, 1], registry=registry)
    snap = registry.snapshot()
    sent, queue, latency = snap["sent_bytes"], snap["queue"], snap["latency_seconds"]
    assert (sent.type, sent.documentation, sent.labelnames, sent.unit, sent.buckets) == (
        MetricType.COUNTER,
        "Bytes sent",
        ("peer",),
        "bytes",
        (),
    )
    assert sent.merge is None
    assert (queue.type, queue.merge is not None, queue.merge and queue.merge.value) == (
        MetricType.GAUGE,
        True,
        "max",
    )
    assert latency.buckets == (0.1, 1.0, math.inf)
    assert latency.samples == (HistogramSample((), (0, 0, 0), 0.0, 0),)
    assert snap.get("nope") is None
    with pytest.raises(KeyError):
        snap["nope"]
    assert [f.name for f in snap] == ["latency_seconds", "queue", "sent_bytes"]
    assert len(snap) == 3
    assert snap.series_count() == 2  # the labelled counter has no series yet


def test_sample_lookup_and_flat_values() -> None:
    registry = Registry()
    c = Counter("hits", "Hits", ["method", "path"], registry=registry)
    c.labels("GET", "/").inc(2)
    c.labels("POST", "/x").inc()
    h = Histogram("h", "H", buckets=[1], registry=registry)
    h.observe(2)
    snap = registry.snapshot()
    family = snap["hits"]
    assert family.sample("GET", "/") == Sample(("GET", "/"), 2.0)
    assert family.sample(path="/x", method="POST") == Sample(("POST", "/x"), 1.0)
    assert family.sample("GET", "/nope") is None
    with pytest.raises(ValueError, match="missing 'path'"):
        family.sample(method="GET")
    with pytest.raises(ValueError, match="positionally or by name, not both"):
        family.sample("GET", path="/")
    assert family.by_labels() == {
        ("GET", "/"): Sample(("GET", "/"), 2.0),
        ("POST", "/x"): Sample(("POST", "/x"), 1.0),
    }
    assert snap.values() == {
        ("h", ()): HistogramSample((), (0, 1), 2.0, 1),
        ("hits", ("GET", "/")): 2.0,
        ("hits", ("POST", "/x")): 1.0,
    }


def test_sample_columns_are_an_immutable_sequence_of_samples() -> None:
    columns = SampleColumns([("a",), ("b",), ("c",)], [1.0, 2.5, math.inf])
    plain = (Sample(("a",), 1.0), Sample(("b",), 2.5), Sample(("c",), math.inf))
    assert len(columns) == 3
    assert list(columns) == list(plain)
    assert all(type(s) is Sample for s in columns)
    assert columns == plain
    assert plain == columns
    assert columns == list(plain)
    assert columns != plain[:2]
    assert columns != (Sample(("a",), 1.0), Sample(("b",), 2.5), Sample(("c",), 0.0))
    assert columns == SampleColumns([("a",), ("b",), ("c",)], [1.0, 2.5, math.inf])
    assert hash(columns) == hash(plain)
    assert columns[1] == Sample(("b",), 2.5)
    assert columns[-1] == Sample(("c",), math.inf)
    assert columns[:2] == plain[:2]
    assert columns.index(Sample(("b",), 2.5)) == 1
    assert Sample(("c",), math.inf) in columns
    assert repr(columns) == repr(plain)
    with pytest.raises(IndexError):
        columns[3]
    with pytest.raises(AttributeError, match="immutable"):
        columns.values = ()
    with pytest.raises(ValueError, match="2 label sets but 1 values"):
        SampleColumns([("a",), ("b",)], [1.0])


def test_families_built_by_hand_or_from_columns_are_equal() -> None:
    by_hand = Family(
        "hits", MetricType.COUNTER, "Hits", ["k"], [Sample(("a",), 1.0), Sample(("b",), 2.0)]
    )
    from_columns = Family(
        "hits", MetricType.COUNTER, "Hits", ("k",), SampleColumns([("a",), ("b",)], [1.0, 2.0])
    )
    assert isinstance(by_hand.samples, tuple)
    assert isinstance(from_columns.samples, SampleColumns)
    assert by_hand == from_columns
    assert hash(by_hand) == hash(from_columns)
    assert from_columns.sample("b") == Sample(("b",), 2.0)


def test_a_registry_snapshot_equals_one_built_by_hand() -> None:
    registry = Registry()
    g = Gauge("temperature", "Temperature", ["room"], registry=registry)
    g.labels("kitchen").set(21.5)
    g.labels("hall").set(-2)
    snap = registry.snapshot()
    expected = Family(
        "temperature",
        MetricType.GAUGE,
        "Temperature",
        ("room",),
        [Sample(("kitchen",), 21.5), Sample(("hall",), -2.0)],
        merge=g.merge,
    )
    assert snap.families == (expected,)
    rebuilt = Snapshot(families=[expected], timestamp=snap.timestamp)
    assert rebuilt == snap
