"""What the bridge reads from a prometheus_client registry: each type, mapped as documented."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import metricache
import prometheus_client
import pytest
from metricache.snapshot import Family, GaugeMerge, HistogramSample, MetricType, Sample
from metricache_prometheus_client import Bridge, bridge, unbridge
from metricache_prometheus_client.reading import family_of_metric
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
)


@pytest.fixture
def peer() -> prometheus_client.CollectorRegistry:
    return prometheus_client.CollectorRegistry()


@pytest.fixture
def bridged(peer: prometheus_client.CollectorRegistry) -> Iterator[Bridge]:
    made = bridge(peer, metricache.Registry())
    yield made
    unbridge(made)


def families(made: Bridge) -> dict[str, Family]:
    return {family.name: family for family in made()}


def values(family: Family) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in family.samples if isinstance(s, Sample)}


def test_a_counter_keeps_its_name_labels_unit_and_values(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    sent = prometheus_client.Counter(
        "sent", "Bytes sent", ["route"], unit="bytes", namespace="app", registry=peer
    )
    sent.labels("/a").inc(1500)
    sent.labels("/b").inc(0.25)
    family = families(bridged)["app_sent_bytes"]
    assert family.type is MetricType.COUNTER
    assert family.documentation == "Bytes sent"
    assert family.labelnames == ("route",)
    assert family.unit == "bytes"
    assert values(family) == {("/a",): 1500.0, ("/b",): 0.25}


def test_a_histogram_keeps_its_bounds_cumulative_buckets_sum_and_count(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    latency = prometheus_client.Histogram(
        "latency_seconds", "Latency", ["route"], buckets=(0.1, 1.0), registry=peer
    )
    for value in (0.05, 0.5, 0.7, 3.0):
        latency.labels("/a").observe(value)
    family = families(bridged)["latency_seconds"]
    assert family.type is MetricType.HISTOGRAM
    assert family.buckets == (0.1, 1.0, math.inf)
    assert family.samples == (HistogramSample(("/a",), (1, 3, 4), 4.25, 4),)


def test_a_summary_becomes_a_histogram_of_one_bound_with_its_count_and_sum(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    size = prometheus_client.Summary("request_size_bytes", "Size", ["route"], registry=peer)
    size.labels("/a").observe(100)
    size.labels("/a").observe(50)
    family = families(bridged)["request_size_bytes"]
    assert family.type is MetricType.HISTOGRAM
    assert family.buckets == (math.inf,)
    assert family.samples == (HistogramSample(("/a",), (2,), 150.0, 2),)


@pytest.mark.parametrize(
    ("mode", "merge"),
    [
        ("all", GaugeMerge.PER_INSTANCE),
        ("liveall", GaugeMerge.PER_INSTANCE),
        ("sum", GaugeMerge.SUM),
        ("livesum", GaugeMerge.SUM),
        ("max", GaugeMerge.MAX),
        ("livemax", GaugeMerge.MAX),
        ("min", GaugeMerge.MIN),
        ("livemin", GaugeMerge.MIN),
        ("mostrecent", GaugeMerge.LAST),
        ("livemostrecent", GaugeMerge.LAST),
    ],
)
def test_a_gauge_merges_as_its_multiprocess_mode_says(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge, mode: str, merge: GaugeMerge
) -> None:
    gauge = prometheus_client.Gauge("g", "G", registry=peer, multiprocess_mode=mode)  # type: ignore[arg-type]
    gauge.set(7)
    family = families(bridged)["g"]
    assert family.type is MetricType.GAUGE
    assert family.merge is merge
    assert values(family) == {(): 7.0}


def test_a_gauge_without_a_mode_merges_per_instance_like_prometheus_clients_default(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    prometheus_client.Gauge("g", "G", registry=peer).set(1)
    assert families(bridged)["g"].merge is GaugeMerge.PER_INSTANCE


def test_the_merge_option_overrides_a_gauges_mode(
    peer: prometheus_client.CollectorRegistry,
) -> None:
    prometheus_client.Gauge("g", "G", registry=peer).set(1)
    made = bridge(peer, metricache.Registry(), merge={"g": "max"})
    try:
        assert families(made)["g"].merge is GaugeMerge.MAX
    finally:
        unbridge(made)


def test_a_gauge_with_a_function_is_read_when_collected(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    items: list[int] = [1, 2]
    prometheus_client.Gauge("queue", "Q", registry=peer).set_function(lambda: len(items))
    assert values(families(bridged)["queue"]) == {(): 2.0}
    items.append(3)
    assert values(families(bridged)["queue"]) == {(): 3.0}


def test_an_info_is_a_gauge_of_value_1_per_label_set_merged_by_max(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    build = prometheus_client.Info("build", "Build", ["service"], registry=peer)
    build.labels("web").info({"version": "1.2", "commit": "abc"})
    family = families(bridged)["build_info"]
    assert family.type is MetricType.GAUGE
    assert family.merge is GaugeMerge.MAX
    assert family.labelnames == ("service", "commit", "version")
    assert values(family) == {("web", "abc", "1.2"): 1.0}


def test_an_enum_is_one_series_per_state_merged_per_instance(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    state = prometheus_client.Enum(
        "task_state", "State", ["queue"], states=["idle", "busy"], registry=peer
    )
    state.labels("q1").state("busy")
    family = families(bridged)["task_state"]
    assert family.merge is GaugeMerge.PER_INSTANCE
    assert family.labelnames == ("queue", "task_state")
    assert values(family) == {("q1", "idle"): 0.0, ("q1", "busy"): 1.0}


def test_target_info_is_bridged_as_an_info(bridged: Bridge) -> None:
    bridged.registry.set_target_info({"service": "web"})
    family = families(bridged)["target_info"]
    assert family.merge is GaugeMerge.MAX
    assert values(family) == {("web",): 1.0}


def test_a_counter_reset_or_recreated_never_goes_back(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    jobs = prometheus_client.Counter("jobs", "Jobs", ["queue"], registry=peer)
    jobs.labels("q").inc(5)
    assert values(families(bridged)["jobs"]) == {("q",): 5.0}
    jobs.labels("q").reset()
    jobs.labels("q").inc(2)  # back to 2: a restart after 5
    assert values(families(bridged)["jobs"]) == {("q",): 7.0}
    jobs.remove("q")
    jobs.labels("q").inc(10)  # removed and recreated between two reads: a restart too
    assert values(families(bridged)["jobs"]) == {("q",): 17.0}
    jobs.labels("q").inc(1)
    assert values(families(bridged)["jobs"]) == {("q",): 18.0}


def test_a_series_gone_for_one_read_starts_again_from_its_own_value(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    jobs = prometheus_client.Counter("jobs", "Jobs", ["queue"], registry=peer)
    jobs.labels("q").inc(5)
    families(bridged)
    jobs.remove("q")
    assert values(families(bridged)["jobs"]) == {}
    jobs.labels("q").inc(2)
    assert values(families(bridged)["jobs"]) == {("q",): 2.0}


def test_a_histogram_reset_never_goes_back(
    peer: prometheus_client.CollectorRegistry, bridged: Bridge
) -> None:
    latency = prometheus_client.Histogram("lat", "L", ["r"], buckets=(1.0,), registry=peer)
    latency.labels("a").observe(0.5)
    latency.labels("a").observe(2.0)
    families(bridged)
    latency.remove("a")
    latency.labels("a").observe(0.5)
    assert families(bridged)["lat"].samples == (HistogramSample(("a",), (2, 3), 3.0, 3),)


def test_custom_collectors_are_skipped_with_one_warning_naming_them(
    peer: prometheus_client.CollectorRegistry,
    bridged: Bridge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class QueueDepth:
        def describe(self) -> list[GaugeMetricFamily]:
            return [GaugeMetricFamily("queue_depth", "Depth")]

        def collect(self) -> list[GaugeMetricFamily]:
            return [GaugeMetricFamily("queue_depth", "Depth", value=3)]

    peer.register(QueueDepth())
    prometheus_client.Counter("jobs", "Jobs", registry=peer).inc()
    with caplog.at_level(logging.WARNING, logger="metricache.prometheus_client"):
        first = families(bridged)
        second = families(bridged)
    assert "queue_depth" not in first
    assert "queue_depth" not in second
    assert "jobs" in first
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "QueueDepth (queue_depth)" in warnings[0]
    assert "include_custom=True" in warnings[0]


def test_prometheus_clients_default_collectors_are_skipped_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = prometheus_client.CollectorRegistry()
    prometheus_client.ProcessCollector(registry=peer)
    prometheus_client.PlatformCollector(registry=peer)
    prometheus_client.GCCollector(registry=peer)
    made = bridge(peer, metricache.Registry())
    try:
        with caplog.at_level(logging.WARNING, logger="metricache.prometheus_client"):
            assert made() == []
        assert caplog.records == []
    finally:
        unbridge(made)


def test_custom_collectors_are_read_with_include_custom(
    peer: prometheus_client.CollectorRegistry,
) -> None:
    class Custom:
        def collect(self) -> list[Metric]:
            done = CounterMetricFamily("done", "Done", labels=["kind"])
            done.add_metric(["a"], 4)
            return [done, GaugeMetricFamily("depth", "Depth", value=3)]

    peer.register(Custom())
    made = bridge(peer, metricache.Registry(), include_custom=True)
    try:
        found = families(made)
        assert values(found["done"]) == {("a",): 4.0}
        assert found["depth"].merge is GaugeMerge.PER_INSTANCE
        assert values(found["depth"]) == {(): 3.0}
    finally:
        unbridge(made)


def test_a_failing_custom_collector_is_left_out_and_logged_once(
    peer: prometheus_client.CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def collect(self) -> list[Metric]:
            raise OSError("no such file")

    peer.register(Broken())
    prometheus_client.Counter("jobs", "Jobs", registry=peer).inc()
    made = bridge(peer, metricache.Registry(), include_custom=True)
    try:
        with caplog.at_level(logging.WARNING, logger="metricache.prometheus_client"):
            assert set(families(made)) == {"jobs"}
            assert set(families(made)) == {"jobs"}
        assert len(caplog.records) == 1
        assert "Broken" in caplog.records[0].getMessage()
    finally:
        unbridge(made)


def test_a_family_named_like_a_native_metric_is_left_out_with_a_warning(
    peer: prometheus_client.CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    into = metricache.Registry()
    metricache.Counter("jobs", "Native jobs", registry=into)
    prometheus_client.Counter("jobs", "Bridged jobs", registry=peer).inc()
    prometheus_client.Counter("other", "Other", registry=peer).inc()
    made = bridge(peer, into)
    try:
        with caplog.at_level(logging.WARNING, logger="metricache.prometheus_client"):
            assert set(families(made)) == {"other"}
            assert set(families(made)) == {"other"}
        assert len(caplog.records) == 1
        assert "'jobs'" in caplog.records[0].getMessage()
    finally:
        unbridge(made)


def test_a_name_metricache_rejects_is_left_out_with_a_warning(
    peer: prometheus_client.CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        prometheus_client.Counter("caf\u00e9", "UTF-8 name", registry=peer).inc()
    except ValueError:
        pytest.skip("this prometheus_client version refuses UTF-8 names itself")
    made = bridge(peer, metricache.Registry())
    try:
        with caplog.at_level(logging.WARNING, logger="metricache.prometheus_client"):
            assert families(made) == {}
        assert "caf\u00e9" in caplog.records[0].getMessage()
    finally:
        unbridge(made)


def test_bridging_a_pair_twice_returns_the_same_bridge_registered_once(
    peer: prometheus_client.CollectorRegistry,
) -> None:
    into = metricache.Registry()
    first = bridge(peer, into)
    try:
        assert bridge(peer, into) is first
        assert into.collectors().count(first) == 1
    finally:
        unbridge(first)
    assert first not in into.collectors()


def test_the_bridged_families_join_the_registry_snapshot(
    peer: prometheus_client.CollectorRegistry,
) -> None:
    into = metricache.Registry()
    prometheus_client.Counter("jobs", "Jobs", registry=peer).inc(3)
    made = bridge(peer, into)
    try:
        assert into.snapshot()["jobs"].samples[0].value == 3.0  # type: ignore[union-attr]
    finally:
        unbridge(made)


# -- the general path, for custom collectors ----------------------------------------------


def test_custom_families_of_every_type_map_as_documented() -> None:
    histogram = HistogramMetricFamily("h", "H", labels=["r"])
    histogram.add_metric(["a"], [("0.5", 1), ("+Inf", 3)], sum_value=4.0)
    summary = SummaryMetricFamily("s", "S", labels=["r"])
    summary.add_metric(["a"], count_value=2, sum_value=1.5)
    info = InfoMetricFamily("b", "B", value={"v": "1"})
    states = StateSetMetricFamily("st", "St", value={"on": True, "off": False})
    found = {f.name: f for f in map(family_of_metric, [histogram, summary, info, states]) if f}
    assert found["h"].buckets == (0.5, math.inf)
    assert found["h"].samples == (HistogramSample(("a",), (1, 3), 4.0, 3),)
    assert found["s"].buckets == (math.inf,)
    assert found["s"].samples == (HistogramSample(("a",), (2,), 1.5, 2),)
    assert found["b_info"].merge is GaugeMerge.MAX
    assert values(found["b_info"]) == {("1",): 1.0}
    assert found["st"].merge is GaugeMerge.PER_INSTANCE
    assert values(found["st"]) == {("on",): 1.0, ("off",): 0.0}


def test_a_gauge_histogram_cannot_be_added_up_and_is_left_out() -> None:
    family = GaugeHistogramMetricFamily("gh", "GH", buckets=[("+Inf", 1)], gsum_value=1)
    assert family_of_metric(family) is None
