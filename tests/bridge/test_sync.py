"""Bridged prometheus_client metrics of several instances add up in a real store."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import metricache
import prometheus_client
import pytest
from metricache.snapshot import HistogramSample, Sample, Snapshot
from metricache.store import Store
from metricache_prometheus_client import Bridge, bridge, unbridge

from tests.support.servers import MemcachedServer, RedisServer


class Instance:
    """One process's prometheus_client instrumentation, bridged and synced."""

    def __init__(self, store: Store, namespace: str, instance_id: str) -> None:
        self.peer = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "http_requests", "Requests", ["route", "status"], registry=self.peer
        )
        self.latency = prometheus_client.Histogram(
            "latency_seconds", "Latency", ["route"], buckets=(0.1, 1.0), registry=self.peer
        )
        self.size = prometheus_client.Summary("size_bytes", "Size", registry=self.peer)
        self.gauges = {
            mode: prometheus_client.Gauge(
                f"g_{mode}",
                f"A {mode} gauge",
                registry=self.peer,
                multiprocess_mode=mode,  # type: ignore[arg-type]
            )
            for mode in ("livesum", "max", "min", "all", "mostrecent")
        }
        self.registry = metricache.Registry()
        self.bridge: Bridge = bridge(self.peer, self.registry)
        self.syncer = metricache.Syncer(
            self.registry, store, namespace=namespace, instance_id=instance_id, interval=3600
        )

    def close(self) -> None:
        unbridge(self.bridge)


@pytest.fixture(params=["redis", "memcached"])
def store(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
) -> Iterator[Store]:
    server = redis_server if request.param == "redis" else memcached_server
    opened = metricache.open_store(request.param, url=server.url)
    yield opened
    opened.close()


def read(store: Store, namespace: str) -> Snapshot:
    return metricache.merged_snapshot(store, namespace=namespace)


def value(view: Snapshot, family: str, *labels: str) -> float:
    sample = view[family].sample(*labels)
    assert isinstance(sample, Sample), (family, labels, sample)
    return sample.value


def test_counters_and_histograms_of_two_instances_add_up(store: Store, namespace: str) -> None:
    a = Instance(store, namespace, "a")
    b = Instance(store, namespace, "b")
    try:
        a.requests.labels("/", "200").inc(3)
        b.requests.labels("/", "200").inc(4)
        b.requests.labels("/x", "404").inc()
        for seconds in (0.05, 0.5):
            a.latency.labels("/").observe(seconds)
        b.latency.labels("/").observe(5.0)
        for syncer in (a.syncer, b.syncer):
            assert syncer.flush().ok
        view = read(store, namespace)
        assert value(view, "http_requests", "/", "200") == 7.0
        assert value(view, "http_requests", "/x", "404") == 1.0
        assert view["latency_seconds"].buckets == (0.1, 1.0, math.inf)
        assert view["latency_seconds"].sample("/") == HistogramSample(("/",), (1, 2, 3), 5.55, 3)
        # A second round sends only what changed since: deltas, never running totals.
        a.requests.labels("/", "200").inc(10)
        for syncer in (a.syncer, b.syncer):
            assert syncer.flush().ok
        assert value(read(store, namespace), "http_requests", "/", "200") == 17.0
    finally:
        a.close()
        b.close()


def test_summaries_of_two_instances_add_their_counts_and_sums(store: Store, namespace: str) -> None:
    a = Instance(store, namespace, "a")
    b = Instance(store, namespace, "b")
    try:
        a.size.observe(100)
        b.size.observe(50)
        b.size.observe(25)
        for syncer in (a.syncer, b.syncer):
            assert syncer.flush().ok
        view = read(store, namespace)
        assert view["size_bytes"].buckets == (math.inf,)
        assert view["size_bytes"].sample() == HistogramSample((), (3,), 175.0, 3)
    finally:
        a.close()
        b.close()


def test_gauges_merge_as_their_multiprocess_mode_says(store: Store, namespace: str) -> None:
    a = Instance(store, namespace, "a")
    b = Instance(store, namespace, "b")
    try:
        for instance, number in ((a, 3.0), (b, 5.0)):
            for mode in ("livesum", "max", "min", "all"):
                instance.gauges[mode].set(number)
        a.gauges["mostrecent"].set(1.0)
        assert a.syncer.flush().ok
        time.sleep(0.01)  # a later change: "last" is b's
        b.gauges["mostrecent"].set(2.0)
        assert b.syncer.flush().ok
        view = read(store, namespace)
        assert value(view, "g_livesum") == 8.0
        assert value(view, "g_max") == 5.0
        assert value(view, "g_min") == 3.0
        assert value(view, "g_mostrecent") == 2.0
        per_instance = view["g_all"]
        by_instance = {s.labels[-1]: s.value for s in per_instance.samples if isinstance(s, Sample)}
        assert by_instance == {"a": 3.0, "b": 5.0}
    finally:
        a.close()
        b.close()


def test_bridged_and_native_metrics_sync_side_by_side(store: Store, namespace: str) -> None:
    a = Instance(store, namespace, "a")
    try:
        native = metricache.Counter("native_jobs", "Native", registry=a.registry)
        native.inc(2)
        a.requests.labels("/", "200").inc()
        assert a.syncer.flush().ok
        view = read(store, namespace)
        assert value(view, "native_jobs") == 2.0
        assert value(view, "http_requests", "/", "200") == 1.0
    finally:
        a.close()
