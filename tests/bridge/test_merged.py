"""The reverse direction: prometheus_client's own exposition serves the merged view."""

from __future__ import annotations

import io
import logging
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

import metricache
import prometheus_client
import pytest
from metricache.store import Store
from metricache_prometheus_client import (
    MergedCollector,
    bridge,
    expose_merged,
    unbridge,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import RedisServer


class Process:
    """A program instrumented with prometheus_client, bridged, syncing to redis."""

    def __init__(self, url: str, namespace: str, instance_id: str) -> None:
        self.peer = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "http_requests", "Requests", ["route"], registry=self.peer
        )
        self.size = prometheus_client.Summary("size_bytes", "Size", registry=self.peer)
        self.latency = prometheus_client.Histogram(
            "latency_seconds", "Latency", buckets=(0.5,), registry=self.peer
        )
        self.workers = prometheus_client.Gauge(
            "workers", "Workers", registry=self.peer, multiprocess_mode="livesum"
        )
        self.registry = metricache.Registry()
        self.bridge = bridge(self.peer, self.registry)
        self.store: Store = metricache.open_store("redis", url=url)
        self.syncer = metricache.Syncer(
            self.registry, self.store, namespace=namespace, instance_id=instance_id, interval=3600
        )

    def close(self) -> None:
        unbridge(self.bridge)
        self.store.close()


@pytest.fixture
def pair(redis_server: RedisServer, namespace: str) -> Iterator[tuple[Process, Process]]:
    a = Process(redis_server.url, namespace, "a")
    b = Process(redis_server.url, namespace, "b")
    a.requests.labels("/").inc(3)
    b.requests.labels("/").inc(4)
    a.size.observe(10)
    b.size.observe(30)
    a.latency.observe(0.1)
    b.latency.observe(1.0)
    a.workers.set(1)
    b.workers.set(1)
    assert b.syncer.flush().ok
    yield a, b
    a.close()
    b.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, f"{key} reported twice"
            found[key] = sample.value
    return found


def family_names(text: str) -> list[str]:
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]


def test_generate_latest_of_the_registry_shows_the_fleet_wide_numbers_once(
    pair: tuple[Process, Process],
) -> None:
    a, _ = pair
    exposition = expose_merged(a.peer, syncer=a.syncer)
    try:
        text = prometheus_client.generate_latest(a.peer).decode()
    finally:
        exposition.close()
    found = samples(text)
    assert found[("http_requests_total", (("route", "/"),))] == 7.0
    assert found[("latency_seconds_bucket", (("le", "0.5"),))] == 1.0
    assert found[("latency_seconds_bucket", (("le", "+Inf"),))] == 2.0
    assert found[("workers", ())] == 2.0
    # prometheus_client's _created series are this process's: never next to merged ones.
    assert not [name for name, _ in found if name.endswith("_created")]
    names = family_names(text)
    assert [n for n, count in Tally(names).items() if count > 1] == []
    text_types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert text_types["latency_seconds"] == "histogram"


def test_a_bridged_summary_comes_back_as_a_summary_of_every_instance(
    pair: tuple[Process, Process],
) -> None:
    a, _ = pair
    exposition = expose_merged(a.peer, syncer=a.syncer)
    try:
        text = prometheus_client.generate_latest(a.peer).decode()
    finally:
        exposition.close()
    found = samples(text)
    assert found[("size_bytes_count", ())] == 2.0
    assert found[("size_bytes_sum", ())] == 40.0
    assert {f.name: f.type for f in text_string_to_metric_families(text)}["size_bytes"] == (
        "summary"
    )


def test_close_shows_the_registrys_own_values_again(pair: tuple[Process, Process]) -> None:
    a, _ = pair
    expose_merged(a.peer, syncer=a.syncer).close()
    found = samples(prometheus_client.generate_latest(a.peer).decode())
    assert found[("http_requests_total", (("route", "/"),))] == 3.0


def test_the_name_filter_of_prometheus_clients_wsgi_app_filters_the_merged_view(
    pair: tuple[Process, Process],
) -> None:
    a, _ = pair
    exposition = expose_merged(a.peer, syncer=a.syncer)
    try:
        app = prometheus_client.make_wsgi_app(a.peer)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/metrics",
            "QUERY_STRING": "name[]=http_requests_total",
            "wsgi.input": io.BytesIO(),
        }
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h: status.append(s)))
    finally:
        exposition.close()
    assert status == ["200 OK"]
    assert samples(body.decode()) == {("http_requests_total", (("route", "/"),)): 7.0}


def test_local_families_nothing_syncs_are_still_shown(pair: tuple[Process, Process]) -> None:
    a, _ = pair

    class Local:
        def collect(self) -> list[Metric]:
            return [GaugeMetricFamily("local_only", "Not synced", value=5)]

    a.peer.register(Local())
    exposition = expose_merged(a.peer, syncer=a.syncer)
    try:
        found = samples(prometheus_client.generate_latest(a.peer).decode())
    finally:
        exposition.close()
    assert found[("local_only", ())] == 5.0
    assert found[("http_requests_total", (("route", "/"),))] == 7.0


def test_with_the_store_down_a_scrape_answers_without_the_bridged_families(
    fresh_redis: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = Process(fresh_redis.url, namespace, "a")
    a.requests.labels("/").inc()
    assert a.syncer.flush().ok
    exposition = expose_merged(a.peer, syncer=a.syncer)
    try:
        fresh_redis.kill()
        with caplog.at_level(logging.WARNING, logger="metricache.prometheus_client"):
            text = prometheus_client.generate_latest(a.peer).decode()
            prometheus_client.generate_latest(a.peer)
        warnings = [r for r in caplog.records if r.name == "metricache.prometheus_client"]
        assert len(warnings) == 1
        assert "merged view" in warnings[0].getMessage()
    finally:
        exposition.close()
        a.close()
    assert "http_requests" not in text  # a gap, never this process's own count


def test_a_merged_collector_in_a_registry_of_its_own(pair: tuple[Process, Process]) -> None:
    a, _ = pair
    served = prometheus_client.CollectorRegistry()
    served.register(MergedCollector(syncer=a.syncer))
    found = samples(prometheus_client.generate_latest(served).decode())
    assert found[("http_requests_total", (("route", "/"),))] == 7.0


def test_a_bridge_never_reads_a_merged_collector_back(pair: tuple[Process, Process]) -> None:
    a, _ = pair
    a.peer.register(MergedCollector(syncer=a.syncer))
    made = bridge(a.peer, metricache.Registry(), include_custom=True)
    try:
        names = {family.name for family in made()}
    finally:
        unbridge(made)
    assert "metricache_syncs" not in names  # only in the merged view, never in a registry
    assert "http_requests" in names
