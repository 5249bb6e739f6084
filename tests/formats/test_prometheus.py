"""Prometheus text 0.0.4: what prometheus_client's own parser reads back is what we hold."""

from __future__ import annotations

import math
import re

import metricache
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metricache import Counter, Family, FormatNotFound, Gauge, Histogram, MetricType, Registry
from metricache.snapshot import HistogramSample, Sample, SampleColumns, Snapshot
from metricache_prometheus import escape_label_value, format_value, render_prometheus
from prometheus_client.parser import text_string_to_metric_families

from tests.formats.exposition import (
    HOSTILE,
    HOSTILE_HELP,
    assert_same_samples,
    expected_samples,
    hostile_registry,
    parsed_samples,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(snapshot: Snapshot) -> str:
    return metricache.render(snapshot, "prometheus").decode("utf-8")


def test_every_value_of_a_hostile_registry_parses_back_identical() -> None:
    snapshot = hostile_registry().snapshot()
    text = render(snapshot)
    families = list(text_string_to_metric_families(text))
    assert_same_samples(parsed_samples(families), expected_samples(snapshot))
    by_name = {f.name: f for f in families}
    # The parser names a counter family without _total, as we do.
    assert sorted(by_name) == sorted(f.name for f in snapshot)
    for family in snapshot:
        parsed = by_name[family.name]
        assert parsed.type == family.type.value
        assert parsed.documentation == family.documentation
    assert by_name["http_requests"].documentation == HOSTILE_HELP
    # Every hostile value came back in both label positions.
    paths = {s.labels["path"] for s in by_name["http_requests"].samples}
    assert paths == set(HOSTILE)


def test_counts_sums_and_every_bucket_match_the_snapshot() -> None:
    snapshot = hostile_registry().snapshot()
    parsed = parsed_samples(text_string_to_metric_families(render(snapshot)))
    latency = snapshot["latency_seconds"]
    assert len(latency.samples) == len(HOSTILE)
    for s in latency.samples:
        assert isinstance(s, HistogramSample)
        labels = (("path", s.labels[0]),)
        assert parsed[("latency_seconds_count", labels)] == s.count == 4
        assert parsed[("latency_seconds_sum", labels)] == s.sum
        assert parsed[("latency_seconds_bucket", (("le", "+Inf"), *labels))] == 4
        assert [
            parsed[("latency_seconds_bucket", tuple(sorted([*labels, ("le", format_value(b))])))]
            for b in latency.buckets
        ] == list(s.buckets)


def test_one_help_and_type_per_family_and_total_on_counters() -> None:
    text = render(hostile_registry().snapshot())
    helps = re.findall(r"^# HELP (\S+) ", text, flags=re.MULTILINE)
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE)
    assert sorted(helps) == sorted(set(helps))
    assert [name for name, _ in types] == helps
    assert dict(types) == {
        "http_requests_total": "counter",
        "latency_seconds": "histogram",
        "never_used_total": "counter",
        "sent_bytes_total": "counter",
        "size": "histogram",
        "temperature": "gauge",
        "up": "gauge",
    }
    samples = [line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[0] != "#"]
    assert {s for s in samples if s.startswith(("http_requests", "sent_bytes"))} == {
        "http_requests_total",
        "sent_bytes_total",
    }
    assert "never_used" not in samples  # a family without series has only its header


def test_escaping_is_exactly_backslash_quote_and_newline() -> None:
    registry = Registry()
    Gauge("g", 'Doc "quoted" back\\slash\nnext', ["v"], registry=registry).labels(
        'a"b\\c\nd\te'
    ).set(1)
    assert render(registry.snapshot()) == (
        '# HELP g Doc "quoted" back\\\\slash\\nnext\n# TYPE g gauge\ng{v="a\\"b\\\\c\\nd\te"} 1.0\n'
    )
    assert escape_label_value('\\"\n') == '\\\\\\"\\n'


def test_histogram_lines_are_bucket_sum_count_with_inf() -> None:
    registry = Registry()
    h = Histogram("h", "H", ["k"], buckets=[0.5, 2], registry=registry)
    h.labels("x").observe(1)
    h.labels("x").observe(3)
    Histogram("plain", "P", buckets=[1], registry=registry).observe(0.25)
    assert render(registry.snapshot()) == (
        "# HELP h H\n"
        "# TYPE h histogram\n"
        'h_bucket{k="x",le="0.5"} 0\n'
        'h_bucket{k="x",le="2.0"} 1\n'
        'h_bucket{k="x",le="+Inf"} 2\n'
        'h_sum{k="x"} 4.0\n'
        'h_count{k="x"} 2\n'
        "# HELP plain P\n"
        "# TYPE plain histogram\n"
        'plain_bucket{le="1.0"} 1\n'
        'plain_bucket{le="+Inf"} 1\n'
        "plain_sum 0.25\n"
        "plain_count 1\n"
    )


def test_special_values_are_written_as_prometheus_does() -> None:
    assert [format_value(v) for v in (math.inf, -math.inf, math.nan, 0.0, -0.0, 3, 1e300)] == [
        "+Inf",
        "-Inf",
        "NaN",
        "0.0",
        "-0.0",
        "3.0",
        "1e+300",
    ]
    snapshot = Snapshot(
        families=[
            Family(
                "odd",
                MetricType.GAUGE,
                "Collector values",
                ["k"],
                [Sample(("a",), math.nan), Sample(("b",), 7), Sample(("c",), -math.inf)],
            )
        ]
    )
    assert render(snapshot).splitlines()[2:] == [
        'odd{k="a"} NaN',
        'odd{k="b"} 7.0',
        'odd{k="c"} -Inf',
    ]


def test_columns_and_tuples_render_the_same_bytes() -> None:
    labelsets = [(v,) for v in HOSTILE]
    values = [float(i) for i in range(len(HOSTILE))]
    columns = Family("c", MetricType.COUNTER, "C", ["k"], SampleColumns(labelsets, values))
    plain = Family("c", MetricType.COUNTER, "C", ["k"], list(SampleColumns(labelsets, values)))
    assert isinstance(plain.samples, tuple)
    assert render_prometheus(Snapshot([columns])) == render_prometheus(Snapshot([plain]))


def test_an_empty_snapshot_renders_nothing() -> None:
    assert metricache.render(Registry().snapshot()) == b""


def test_render_and_content_type_through_the_format_plugins() -> None:
    registry = Registry()
    Counter("c", "C", registry=registry).inc()
    snapshot = registry.snapshot()
    assert metricache.render(snapshot) == metricache.render(snapshot, "prometheus")
    assert metricache.render(snapshot) == render_prometheus(snapshot)
    assert metricache.content_type() == CONTENT_TYPE
    assert metricache.content_type("prometheus") == CONTENT_TYPE
    with pytest.raises(
        FormatNotFound, match=r"unknown format 'nope'; installed formats: .*openmetrics"
    ):
        metricache.render(snapshot, "nope")


@pytest.fixture
def only_prometheus_plugin(clean_plugins: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negotiate among the two formats of this plugin only (others may add formats)."""
    monkeypatch.setenv("METRICACHE_PLUGINS", "prometheus")


@pytest.mark.usefixtures("only_prometheus_plugin")
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "prometheus"),
        ("", "prometheus"),
        ("*/*", "prometheus"),
        ("text/plain", "prometheus"),
        ("text/plain; version=0.0.4", "prometheus"),
        ("text/*", "prometheus"),
        ("application/openmetrics-text", "openmetrics"),
        ("Application/OpenMetrics-Text; Version=1.0.0", "openmetrics"),
        ("application/*", "openmetrics"),
        ("text/plain;q=0.5, application/openmetrics-text;q=0.9", "openmetrics"),
        ("application/openmetrics-text;q=0.2, text/plain;q=0.8", "prometheus"),
        ("application/openmetrics-text;q=0, */*;q=0.1", "prometheus"),
        ("image/png, text/plain;q=0.1", "prometheus"),
        ("text/plain;q=0.5, application/openmetrics-text;q=0.5", "prometheus"),
        ("application/openmetrics-text;q=0.5, text/plain;q=0.5", "openmetrics"),
        # What a Prometheus server sends.
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "openmetrics",
        ),
        ("image/png", None),
        ("application/json;q=1, image/*", None),
        ("text/plain;q=0", None),
        ("text/plain;q=zero", None),
    ],
)
def test_negotiate_picks_by_accept_header(accept: str | None, expected: str | None) -> None:
    chosen = metricache.negotiate(accept)
    assert (chosen.name if chosen is not None else None) == expected


# -- any registry --------------------------------------------------------------------------

label_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))


@settings(max_examples=60, deadline=None)
@given(
    counters=st.lists(
        st.tuples(label_text, label_text, st.floats(0, 1e12, allow_nan=False)), max_size=6
    ),
    gauges=st.lists(st.tuples(label_text, st.floats()), max_size=6),
    observations=st.lists(st.tuples(label_text, st.floats(-1e9, 1e9, allow_nan=False)), max_size=8),
)
def test_any_registry_parses_back_identical(
    counters: list[tuple[str, str, float]],
    gauges: list[tuple[str, float]],
    observations: list[tuple[str, float]],
) -> None:
    registry = Registry()
    c = Counter("c", "C", ["a", "b"], registry=registry)
    g = Gauge("g", "G", ["a"], registry=registry)
    h = Histogram("h", "H", ["a"], buckets=[-1, 0, 0.5, 100], registry=registry)
    for a, b, amount in counters:
        c.labels(a, b).inc(amount)
    for a, reading in gauges:
        g.labels(a).set(reading)
    for a, observation in observations:
        h.labels(a).observe(observation)
    snapshot = registry.snapshot()
    families = text_string_to_metric_families(render(snapshot))
    assert_same_samples(parsed_samples(families), expected_samples(snapshot))
