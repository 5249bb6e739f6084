"""Numbers that stay right for longer than the retention window, on real servers.

Each test is one of the reproductions of the longevity issue, run as a new user would:
a 2 s retention, a running syncer at ``interval=0.4``, a real redis-server or memcached,
and waits several retention windows long. Before series liveness, each failed: a quiet
counter vanished and came back from zero, a counter's billionths outlived its whole
units, a rarely hit bucket expired under a growing count, a batch retried after a long
partition was applied twice, and a gauge set before ``fork()`` was counted by every
child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import metricache
import pytest
from metricache.snapshot import HistogramSample, Sample
from metricache.sync.keyspace import Keyspace, join_fixed, split_fixed
from metricache.sync.reader import extend_retention
from metricache.sync.syncer import Syncer

from tests.support.faulty import Faulty
from tests.support.servers import MemcachedServer, RedisServer

RETENTION = 2.0
INTERVAL = 0.4


@pytest.fixture(params=["redis", "memcached"])
def store_url(
    request: pytest.FixtureRequest, redis_server: RedisServer, memcached_server: MemcachedServer
) -> tuple[str, str]:
    server = redis_server if request.param == "redis" else memcached_server
    return request.param, server.url


def open_store(store_url: tuple[str, str]) -> metricache.Store:
    name, url = store_url
    return metricache.open_store(name, url=url)


def view(store: metricache.Store, namespace: str) -> metricache.Snapshot:
    return metricache.merged_snapshot(store, namespace=namespace, retention=RETENTION)


def counter(snapshot: metricache.Snapshot, name: str, *labels: str) -> float | None:
    family = snapshot.get(name)
    if family is None:
        return None
    for sample in family.samples:
        if sample.labels == labels and isinstance(sample, Sample):
            return sample.value
    return None


def syncer(registry: metricache.Registry, store: metricache.Store, namespace: str) -> Syncer:
    return Syncer(
        registry,
        store,
        interval=INTERVAL,
        retention=RETENTION,
        namespace=namespace,
        jitter=0.0,
    )


def test_a_quiet_counter_stays_while_its_process_lives_and_never_resets(
    store_url: tuple[str, str], namespace: str
) -> None:
    store = open_store(store_url)
    registry = metricache.Registry()
    errors = metricache.Counter("errors", "Errors", registry=registry)
    level = metricache.Gauge("level", "A gauge that never changes", registry=registry)
    errors.inc(5)
    level.set(3)
    seen: list[float | None] = []
    with syncer(registry, store, namespace):
        deadline = time.monotonic() + 4 * RETENTION
        while time.monotonic() < deadline:
            time.sleep(0.25)
            snapshot = view(store, namespace)
            seen.append(counter(snapshot, "errors"))
            assert counter(snapshot, "level") in (None, 3.0)
        assert seen[-1] == 5
        assert all(v == 5 for v in seen[2:])  # never gone, never reset
        assert counter(view(store, namespace), "level") == 3  # never changed, still there
        errors.inc()
        time.sleep(3 * INTERVAL)
        assert counter(view(store, namespace), "errors") == 6


def test_a_counter_keeps_its_whole_units_while_only_billionths_change(
    store_url: tuple[str, str], namespace: str
) -> None:
    store = open_store(store_url)
    registry = metricache.Registry()
    paid = metricache.Counter("paid", "Amount paid", registry=registry)
    paid.inc(5)
    with syncer(registry, store, namespace) as running:
        deadline = time.monotonic() + 3 * RETENTION
        while time.monotonic() < deadline:
            paid.inc(0.01)
            time.sleep(0.1)
        running.flush()
        local = paid._only_child().get()
        # What the store keeps is the fixed-point value of the local one, exactly.
        assert counter(view(store, namespace), "paid") == join_fixed(*split_fixed(local))
        assert local > 5.2


def test_a_rarely_hit_bucket_never_expires_under_a_growing_count(
    store_url: tuple[str, str], namespace: str
) -> None:
    store = open_store(store_url)
    registry = metricache.Registry()
    latency = metricache.Histogram(
        "latency", "Latency", registry=registry, buckets=(0.1, 1.0, 10.0)
    )
    latency.observe(0.05)  # once, in the le=0.1 bucket
    with syncer(registry, store, namespace) as running:
        deadline = time.monotonic() + 3 * RETENTION
        while time.monotonic() < deadline:
            latency.observe(5.0)
            time.sleep(0.1)
            family = view(store, namespace).get("latency")
            if family is None or not family.samples:
                continue
            (sample,) = family.samples
            assert isinstance(sample, HistogramSample)
            assert sample.buckets[0] == 1
            assert sample.buckets[-1] == sample.count
        running.flush()
        (sample,) = view(store, namespace)["latency"].samples
        assert isinstance(sample, HistogramSample)
        local = latency._only_child().read()[0]
        assert sample.buckets == (1, 1, sum(local), sum(local))


def test_a_batch_retried_after_a_partition_longer_than_retention_counts_once(
    redis_server: RedisServer, namespace: str
) -> None:
    a_store = Faulty(metricache.open_store("redis", url=redis_server.url))
    a_registry = metricache.Registry()
    a_jobs = metricache.Counter("jobs", "Jobs", registry=a_registry)
    a = syncer(a_registry, a_store, namespace)
    b_store = metricache.open_store("redis", url=redis_server.url)
    b_registry = metricache.Registry()
    b_jobs = metricache.Counter("jobs", "Jobs", registry=b_registry)
    a_jobs.inc(100)
    b_jobs.inc(10)
    with syncer(b_registry, b_store, namespace):
        a_store.lose_reply_next = True
        assert not a.flush().ok  # applied; its answer lost
        a_store.partitioned = True  # cut off longer than the retention
        deadline = time.monotonic() + 3 * RETENTION
        while time.monotonic() < deadline:
            assert not a.flush().ok
            b_jobs.inc()  # b keeps counting and syncing: the series stays
            time.sleep(INTERVAL)
        a_store.partitioned = False
        assert a.flush().ok  # the retry
        assert a.flush().ok
        time.sleep(3 * INTERVAL)
        assert counter(view(b_store, namespace), "jobs") == 100 + b_jobs._only_child().get()


FORKING_APP = """
import os, sys, time
import metricache

registry = metricache.Registry()
workers = metricache.Gauge("workers_up", "Set once by the master", registry=registry)
served = metricache.Counter("served", "Requests", registry=registry)
store = metricache.open_store({name!r}, url={url!r})
syncer = metricache.Syncer(
    registry, store, interval=0.2, retention=30.0, namespace={namespace!r}, jitter=0.0
)
workers.set(1)
served.inc(7)
syncer.start()
time.sleep(0.5)
children = []
for n in range(3):
    pid = os.fork()
    if pid == 0:
        served.inc(n + 1)  # each child's own requests
        time.sleep(1.0)
        syncer.stop()
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
syncer.stop()
print("done")
"""


def test_a_gauge_that_never_changes_never_leaves_while_its_page_keeps_changing(
    store_url: tuple[str, str], namespace: str
) -> None:
    # One gauge is set once; another of the same instance changes at every sync, so the
    # page they share (one page on Redis) is changed, not merely touched, at every sync.
    # The page must outlive the liveness TTL all the same: the merged view never loses
    # the quiet gauge, for several liveness TTLs (5 s here).
    registry = metricache.Registry()
    level = metricache.Gauge("level", "Set once", registry=registry)
    busy = metricache.Gauge("busy", "Changes all the time", registry=registry)
    level.set(7)
    store = open_store(store_url)
    running = syncer(registry, store, namespace)
    running.start()
    try:
        missing: list[str] = []
        started = time.monotonic()
        time.sleep(2 * INTERVAL)
        while (elapsed := time.monotonic() - started) < 3 * running.liveness_ttl:
            busy.inc()
            if counter(view(store, namespace), "level") != 7:
                missing.append(f"{elapsed:.1f} s")
            time.sleep(0.1)
        assert missing == []
    finally:
        running.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_gauge_set_before_fork_is_counted_once_by_the_process_that_set_it(
    store_url: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    name, url = store_url
    script = tmp_path / "forking_app.py"
    script.write_text(textwrap.dedent(FORKING_APP.format(name=name, url=url, namespace=namespace)))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout
    snapshot = metricache.merged_snapshot(open_store(store_url), namespace=namespace, retention=30)
    assert counter(snapshot, "workers_up") == 1  # the master's; children reported none
    assert counter(snapshot, "served") == 7 + 1 + 2 + 3


def test_an_export_extension_never_keeps_a_dead_instances_gauges_in_the_view(
    redis_server: RedisServer, namespace: str
) -> None:
    store = metricache.open_store("redis", url=redis_server.url)
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs", registry=registry).inc(3)
    metricache.Gauge("busy", "Busy workers", registry=registry).set(2)
    dead = Syncer(
        registry,
        store,
        interval=INTERVAL,
        retention=RETENTION,
        namespace=namespace,
        liveness_ttl=1.0,
    )
    assert dead.flush().ok  # its last sync: the instance dies right after
    keyspace = Keyspace(namespace, RETENTION)
    # An export that keeps failing pushes expiry back, far past the liveness TTL.
    assert extend_retention(store, keyspace, extra=60.0) > 0
    time.sleep(1.5)
    snapshot = view(store, namespace)
    assert counter(snapshot, "busy") is None  # the dead instance's gauges left on time
    assert counter(snapshot, "jobs") == 3  # what the export covers stayed
    time.sleep(RETENTION)
    assert counter(view(store, namespace), "jobs") == 3  # and outlives the retention
