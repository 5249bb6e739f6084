"""Fork safety of bridged prometheus_client metrics, with real forks.

The rule is metricache's: what a process recorded before ``fork()`` is counted once,
by that process; a child reports only what it records itself.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import metricache
import prometheus_client
import pytest
from metricache.snapshot import HistogramSample, Sample, Snapshot
from metricache_prometheus_client import Bridge, bridge, unbridge

from tests.support.servers import RedisServer


class App:
    """A prometheus_client-instrumented program, bridged, with a syncer on redis."""

    def __init__(self, url: str, namespace: str) -> None:
        self.peer = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "requests", "Requests", ["route"], registry=self.peer
        )
        self.latency = prometheus_client.Histogram(
            "latency_seconds", "Latency", buckets=(1.0,), registry=self.peer
        )
        self.size = prometheus_client.Summary("size_bytes", "Size", registry=self.peer)
        self.up = prometheus_client.Gauge(
            "processes_up", "Up", registry=self.peer, multiprocess_mode="livesum"
        )
        self.version = prometheus_client.Gauge(
            "app_version", "Version", registry=self.peer, multiprocess_mode="max"
        )
        self.pid = prometheus_client.Gauge("worker_pid", "Pid", registry=self.peer)
        self.build = prometheus_client.Info("build", "Build", registry=self.peer)
        self.registry = metricache.Registry()
        self.bridge: Bridge = bridge(self.peer, self.registry)
        self.store = metricache.open_store("redis", url=url)
        self.namespace = namespace
        self.syncer = metricache.Syncer(
            self.registry, self.store, namespace=namespace, interval=3600
        )

    def view(self) -> Snapshot:
        return metricache.merged_snapshot(self.store, namespace=self.namespace)

    def close(self) -> None:
        self.syncer.stop()
        unbridge(self.bridge)
        self.store.close()


@pytest.fixture
def app(redis_server: RedisServer, namespace: str) -> Iterator[App]:
    made = App(redis_server.url, namespace)
    yield made
    made.close()


def fork_children(count: int, work: Callable[[int], None]) -> None:
    """Fork ``count`` children running ``work(i)``; fail when one fails or hangs."""
    pids = []
    for i in range(count):
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                signal.alarm(20)  # a child that hangs (a lock held at fork) fails the test
                work(i)
                status = 0
            finally:
                os._exit(status)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def values(view: Snapshot, family: str) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in view[family].samples if isinstance(s, Sample)}


def test_counts_recorded_before_a_fork_are_counted_once_by_the_parent(app: App) -> None:
    app.syncer.start()  # running in the parent, as with gunicorn --preload
    app.requests.labels("/").inc(5)
    app.latency.observe(0.5)

    def worker(i: int) -> None:
        for _ in range(100):
            app.requests.labels("/").inc()
        app.latency.observe(2.0)
        app.syncer.stop()  # the final sync a worker makes when it exits

    fork_children(3, worker)
    assert app.syncer.flush().ok
    view = app.view()
    assert values(view, "requests") == {("/",): 305.0}
    assert view["latency_seconds"].sample() == HistogramSample((), (1, 4), 6.5, 4)


def test_summaries_recorded_before_a_fork_are_counted_once_by_the_parent(app: App) -> None:
    app.size.observe(10)

    def worker(i: int) -> None:
        app.size.observe(1)
        assert app.syncer.flush().ok

    fork_children(3, worker)
    assert app.syncer.flush().ok
    assert app.view()["size_bytes"].sample() == HistogramSample((), (4,), 13.0, 4)


def test_a_child_starts_from_zero_and_the_parent_keeps_its_own_values(app: App) -> None:
    app.requests.labels("/").inc(5)

    def worker(i: int) -> None:
        assert app.requests.labels("/")._value.get() == 0.0
        app.requests.labels("/").inc(2)
        assert app.syncer.flush().ok

    fork_children(1, worker)
    assert app.requests.labels("/")._value.get() == 5.0
    assert app.syncer.flush().ok
    assert values(app.view(), "requests") == {("/",): 7.0}


def test_gauges_set_before_a_fork_are_reported_by_the_parent_alone(app: App) -> None:
    app.up.set(1)
    app.version.set(42)
    app.pid.set(os.getpid())
    app.build.info({"version": "1.2"})
    assert app.syncer.flush().ok
    parent = app.syncer.instance.id
    read_end, write_end = os.pipe()

    def worker(i: int) -> None:
        app.up.inc()  # each worker counts itself in: a sum of what each recorded
        if i == 1:
            app.pid.set(os.getpid())  # this worker reports its own value
        assert app.syncer.flush().ok
        os.write(write_end, f"{i} {app.syncer.instance.id}\n".encode())

    fork_children(3, worker)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        children = dict(line.split() for line in pipe.read().splitlines())
    view = app.view()
    assert values(view, "processes_up") == {(): 4.0}  # the parent's 1 + one per worker
    assert values(view, "app_version") == {(): 42.0}
    assert values(view, "build_info") == {("1.2",): 1.0}
    pids = values(view, "worker_pid")
    assert set(pids) == {(parent,), (children["1"],)}  # the others set nothing themselves
    assert pids[(parent,)] == float(os.getpid())


def test_an_inherited_nan_gauge_stays_out_until_the_child_sets_a_number(app: App) -> None:
    app.pid.set(math.nan)

    def worker(i: int) -> None:
        families = {f.name: f for f in app.bridge()}
        assert families["worker_pid"].samples == ()  # NaN, as inherited: the parent's
        app.pid.set(7)
        families = {f.name: f for f in app.bridge()}
        assert [s.value for s in families["worker_pid"].samples] == [7.0]  # type: ignore[union-attr]

    fork_children(1, worker)


def test_a_lock_held_by_another_thread_at_fork_is_free_in_the_child(app: App) -> None:
    child_series = app.requests.labels("/")
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with app.peer._lock, child_series._value._lock, app.requests._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:

        def worker(i: int) -> None:
            app.requests.labels("/").inc()
            prometheus_client.Counter("late", "Declared in the child", registry=app.peer).inc()
            assert app.syncer.flush().ok

        fork_children(1, worker)
    finally:
        release.set()
        holder.join()
    view = app.view()
    assert values(view, "requests") == {("/",): 1.0}
    assert values(view, "late") == {(): 1.0}


def _pool_work(n: int) -> int:
    made: App = _POOL_APP[0]
    for _ in range(n):
        made.requests.labels("/pool").inc()
    assert made.syncer.flush().ok
    return os.getpid()


_POOL_APP: list[Any] = []


def test_multiprocessing_fork_workers_count_what_they_record(app: App) -> None:
    app.requests.labels("/pool").inc(7)
    _POOL_APP.append(app)
    try:
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=_pool_work, args=(50,)) for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
    finally:
        _POOL_APP.clear()
    assert app.syncer.flush().ok
    assert values(app.view(), "requests") == {("/pool",): 157.0}


def test_a_fork_while_the_bridge_collects_leaves_the_child_a_working_bridge(app: App) -> None:
    for i in range(2000):
        app.requests.labels(f"/{i}").inc()
    stop = threading.Event()

    def collect_forever() -> None:
        while not stop.is_set():
            app.bridge()

    collector = threading.Thread(target=collect_forever)
    collector.start()
    try:
        time.sleep(0.05)

        def worker(i: int) -> None:
            app.requests.labels("/0").inc(3)
            assert app.syncer.flush().ok

        fork_children(2, worker)
    finally:
        stop.set()
        collector.join()
    assert app.syncer.flush().ok
    assert values(app.view(), "requests")[("/0",)] == 7.0
