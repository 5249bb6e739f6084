"""OpenMetrics 1.0 text: prometheus_client's OpenMetrics parser reads back what we hold."""

from __future__ import annotations

import re

import metricache
from hypothesis import given, settings
from hypothesis import strategies as st
from metricache import Counter, Family, Gauge, Histogram, MetricType, Registry
from metricache.snapshot import HistogramSample, Sample, Snapshot
from metricache_prometheus import render_openmetrics
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)

from tests.formats.exposition import (
    HOSTILE,
    HOSTILE_HELP,
    Key,
    assert_same_samples,
    expected_samples,
    hostile_registry,
    parsed_samples,
)

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def text_string_to_metric_families(text: str) -> list[Metric]:
    """prometheus_client's OpenMetrics parser (untyped there), typed."""
    return list(om_families(text))  # type: ignore[no-untyped-call]


def render(snapshot: Snapshot) -> str:
    return metricache.render(snapshot, "openmetrics").decode("utf-8")


def om_expected(snapshot: Snapshot) -> dict[Key, float]:
    """The samples OpenMetrics must hold: no _sum/_count where negative values are possible."""
    expected = expected_samples(snapshot)
    for family in snapshot:
        if family.type is not MetricType.HISTOGRAM:
            continue
        for s in family.samples:
            assert isinstance(s, HistogramSample)
            if any(b < 0 for b in family.buckets) or s.sum < 0:
                labels = tuple(sorted(zip(family.labelnames, s.labels)))
                del expected[(f"{family.name}_sum", labels)]
                del expected[(f"{family.name}_count", labels)]
    return expected


def test_every_value_help_and_unit_of_a_hostile_registry_parses_back_identical() -> None:
    snapshot = hostile_registry().snapshot()
    families = list(text_string_to_metric_families(render(snapshot)))
    assert_same_samples(parsed_samples(families), om_expected(snapshot))
    by_name = {f.name: f for f in families}
    assert sorted(by_name) == sorted(f.name for f in snapshot)
    for family in snapshot:
        parsed = by_name[family.name]
        assert (parsed.type, parsed.documentation, parsed.unit) == (
            family.type.value,
            family.documentation,
            family.unit,
        )
    assert by_name["http_requests"].documentation == HOSTILE_HELP
    assert by_name["latency_seconds"].unit == "seconds"
    assert by_name["sent_bytes"].unit == "bytes"
    assert {s.labels["zone"] for s in by_name["temperature"].samples} >= set(HOSTILE)


def test_headers_units_and_eof() -> None:
    text = render(hostile_registry().snapshot())
    assert text.endswith("\n# EOF\n")
    assert text.count("# EOF") == 1
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE)
    helps = re.findall(r"^# HELP (\S+) ", text, flags=re.MULTILINE)
    units = re.findall(r"^# UNIT (\S+) (\S+)$", text, flags=re.MULTILINE)
    assert [name for name, _ in types] == helps == sorted(set(helps))
    # OpenMetrics names a counter family without _total; its samples carry it.
    assert ("http_requests", "counter") in types
    assert 'http_requests_total{method="say \\"hi\\""' in text
    assert units == [("latency_seconds", "seconds"), ("sent_bytes", "bytes")]


def test_help_escapes_quotes_too() -> None:
    registry = Registry()
    Gauge("g", 'Doc "quoted" back\\slash\nnext', registry=registry).set(2)
    assert render(registry.snapshot()) == (
        '# TYPE g gauge\n# HELP g Doc \\"quoted\\" back\\\\slash\\nnext\ng 2.0\n# EOF\n'
    )


def test_histogram_with_inf_bucket_sum_and_count() -> None:
    registry = Registry()
    h = Histogram("job", "Jobs", ["k"], unit="seconds", buckets=[1], registry=registry)
    h.labels("x").observe(0.5)
    h.labels("x").observe(4)
    assert render(registry.snapshot()) == (
        "# TYPE job_seconds histogram\n"
        "# UNIT job_seconds seconds\n"
        "# HELP job_seconds Jobs\n"
        'job_seconds_bucket{k="x",le="1.0"} 1\n'
        'job_seconds_bucket{k="x",le="+Inf"} 2\n'
        'job_seconds_sum{k="x"} 4.5\n'
        'job_seconds_count{k="x"} 2\n'
        "# EOF\n"
    )


def test_negative_buckets_or_sums_leave_out_sum_and_count() -> None:
    registry = Registry()
    Histogram("temp", "T", buckets=[-10, 0, 10], registry=registry).observe(5)
    Histogram("delta", "D", buckets=[1, 2], registry=registry).observe(-3)
    Histogram("fine", "F", buckets=[1, 2], registry=registry).observe(3)
    snapshot = registry.snapshot()
    text = render(snapshot)
    assert "temp_sum" not in text
    assert "delta_sum" not in text
    assert "delta_count" not in text
    assert "fine_sum 3.0\nfine_count 1\n" in text
    families = text_string_to_metric_families(text)
    assert_same_samples(parsed_samples(families), om_expected(snapshot))
    # Prometheus 0.0.4 has no such rule and keeps them.
    assert "temp_sum 5.0" in metricache.render(snapshot, "prometheus").decode()


def test_a_unit_the_name_does_not_end_with_is_left_out() -> None:
    family = Family(
        "odd", MetricType.GAUGE, "From a collector", samples=[Sample((), 1.0)], unit="bytes"
    )
    text = render_openmetrics(Snapshot([family])).decode()
    assert "# UNIT" not in text
    assert [f.name for f in text_string_to_metric_families(text)] == ["odd"]


def test_an_empty_snapshot_is_just_eof() -> None:
    assert metricache.render(Registry().snapshot(), "openmetrics") == b"# EOF\n"


def test_content_type_and_name() -> None:
    assert metricache.content_type("openmetrics") == CONTENT_TYPE
    registry = Registry()
    Counter("c", "C", registry=registry).inc()
    snapshot = registry.snapshot()
    assert metricache.render(snapshot, "openmetrics") == render_openmetrics(snapshot)
    assert render_openmetrics(snapshot) != metricache.render(snapshot, "prometheus")


label_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))


@settings(max_examples=60, deadline=None)
@given(
    counters=st.lists(st.tuples(label_text, st.floats(0, 1e12, allow_nan=False)), max_size=6),
    gauges=st.lists(st.tuples(label_text, label_text, st.floats()), max_size=6),
    observations=st.lists(st.tuples(label_text, st.floats(-1e9, 1e9, allow_nan=False)), max_size=8),
)
def test_any_registry_parses_back_identical(
    counters: list[tuple[str, float]],
    gauges: list[tuple[str, str, float]],
    observations: list[tuple[str, float]],
) -> None:
    registry = Registry()
    c = Counter("requests", "R", ["a"], unit="bytes", registry=registry)
    g = Gauge("g", "G", ["a", "b"], registry=registry)
    h = Histogram("h", "H", ["a"], buckets=[0.5, 100], unit="seconds", registry=registry)
    for a, amount in counters:
        c.labels(a).inc(amount)
    for a, b, reading in gauges:
        g.labels(a, b).set(reading)
    for a, observation in observations:
        h.labels(a).observe(observation)
    snapshot = registry.snapshot()
    families = list(text_string_to_metric_families(render(snapshot)))
    assert_same_samples(parsed_samples(families), om_expected(snapshot))
    assert {f.name: f.unit for f in families} == {
        "g": "",
        "h_seconds": "seconds",
        "requests_bytes": "bytes",
    }
