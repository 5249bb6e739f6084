"""The store fails; the numbers stay true: lost replies, outages, restarts, flushes."""

from __future__ import annotations

import threading
import time

import metricache
import pytest
from metricache.snapshot import HistogramSample, Sample
from metricache.sync.keyspace import TRACE_PREFIX, series_id
from metricache.sync.syncer import Syncer

from tests.support.faulty import Faulty
from tests.support.proxy import ReplyLossProxy
from tests.support.servers import MemcachedServer, RedisServer


def counter_value(view: metricache.Snapshot, name: str, *labels: str) -> float:
    sample = view[name].sample(*labels)
    assert isinstance(sample, Sample), f"{name}{labels} missing from the view"
    return sample.value


def test_a_batch_whose_reply_is_lost_is_applied_exactly_once(
    redis_server: RedisServer, namespace: str
) -> None:
    proxy = ReplyLossProxy(redis_server.port)
    try:
        registry = metricache.Registry()
        counter = metricache.Counter("payments", "Payments", registry=registry)
        histogram = metricache.Histogram(
            "amounts", "Amounts", buckets=(1.0, 10.0), registry=registry
        )
        via_proxy = metricache.open_store(
            "redis", url=f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=2.0
        )
        direct = metricache.open_store("redis", url=redis_server.url)
        syncer = Syncer(registry, via_proxy, interval=60, namespace=namespace)
        counter.inc(3)
        assert syncer.flush().ok  # loads the script; the next call is a plain EVALSHA

        counter.inc(4)
        histogram.observe(2.5)
        proxy.lose_next_reply_to(b"EVALSHA")
        lost = syncer.flush()
        assert not lost.ok
        assert proxy.replies_lost == 1
        # Redis did apply the batch: only its answer was lost.
        assert (
            counter_value(metricache.merged_snapshot(direct, namespace=namespace), "payments") == 7
        )

        counter.inc(10)
        again = syncer.flush()
        assert again.ok, again.error
        view = metricache.merged_snapshot(direct, namespace=namespace)
        assert counter_value(view, "payments") == 17
        amounts = view["amounts"].samples[0]
        assert isinstance(amounts, HistogramSample)
        assert (amounts.count, amounts.sum) == (1, 2.5)
        retries = registry.snapshot()["metricache_sync_batch_retries"].samples[0]
        assert isinstance(retries, Sample)
        assert retries.value == 1
    finally:
        proxy.close()


def _hammer(
    counter: metricache.Counter, stop: threading.Event, done: list[int], errors: list[BaseException]
) -> None:
    n = 0
    try:
        while not stop.is_set():
            counter.labels("x").inc()
            n += 1
            if n % 1000 == 0:
                time.sleep(0.001)
    except BaseException as exc:  # the test asserts there is none
        errors.append(exc)
    done.append(n)


@pytest.mark.parametrize("comes_back", ["empty", "paused"])
def test_an_outage_never_reaches_the_application_and_totals_are_exact_after(
    fresh_redis: RedisServer, namespace: str, comes_back: str
) -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("hits", "Hits", ["page"], registry=registry)
    store = metricache.open_store(
        "redis", url=fresh_redis.url, socket_timeout=0.5, connect_timeout=0.5
    )
    syncer = Syncer(registry, store, interval=0.1, namespace=namespace, jitter=0.0)
    stop, done, errors = threading.Event(), [], []  # type: ignore[var-annotated]
    app = threading.Thread(target=_hammer, args=(counter, stop, done, errors))
    with syncer:
        app.start()
        time.sleep(0.5)
        before = counter.labels("x").get()
        if comes_back == "empty":
            fresh_redis.kill()
        else:
            fresh_redis.pause()
        time.sleep(1.5)  # many sync intervals with the store gone
        during = counter.labels("x").get()
        failed = [r for r in [syncer.last_report] if r is not None and not r.ok]
        if comes_back == "empty":
            fresh_redis.start()
        else:
            fresh_redis.resume()
        time.sleep(0.5)
        stop.set()
        app.join()
    assert not errors
    assert during > before  # the application kept counting through the outage
    assert failed, "the syncer should have reported failed syncs during the outage"
    final = syncer.flush()
    assert final.ok, final.error
    view = metricache.merged_snapshot(
        metricache.open_store("redis", url=fresh_redis.url), namespace=namespace
    )
    assert counter_value(view, "hits", "x") == done[0] == counter.labels("x").get()
    pending = registry.snapshot()["metricache_sync_pending_series"].samples[0]
    assert isinstance(pending, Sample)
    assert pending.value == 0


@pytest.mark.parametrize("store_name", ["redis", "memcached"])
def test_every_live_instance_resends_its_totals_when_the_store_is_flushed(
    store_name: str,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
) -> None:
    server = redis_server if store_name == "redis" else memcached_server
    syncers, counters = [], []
    for n in range(3):
        registry = metricache.Registry()
        counter = metricache.Counter("orders", "Orders", ["shop"], registry=registry)
        counter.labels("a").inc(n + 1)
        counters.append(counter)
        syncers.append(
            Syncer(
                registry,
                metricache.open_store(store_name, url=server.url),
                interval=60,
                namespace=namespace,
                instance_id=f"i{n}",
            )
        )
    for s in syncers:
        assert s.flush().ok
    reader = metricache.open_store(store_name, url=server.url)
    assert (
        counter_value(metricache.merged_snapshot(reader, namespace=namespace), "orders", "a") == 6
    )

    _flush_everything(store_name, server)
    assert metricache.merged_snapshot(reader, namespace=namespace).get("orders") is None
    counters[0].labels("a").inc(10)
    reports = [s.flush() for s in syncers]
    assert all(r.ok for r in reports)
    assert all(r.resent_totals for r in reports)
    assert (
        counter_value(metricache.merged_snapshot(reader, namespace=namespace), "orders", "a") == 16
    )


def _flush_everything(store_name: str, server: RedisServer | MemcachedServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"FLUSHALL\r\n" if store_name == "redis" else b"flush_all\r\n")
        assert sock.recv(100).startswith((b"+OK", b"OK"))


HOSTILE = [
    "\r\nflush_all\r\n",
    "with spaces and\ttabs",
    "x" * 300,
    "naïve – 日本語 – emoji 🎉",
    '"quoted" \\ back\\slash',
    "*3\r\n$3\r\nDEL\r\n",
    "",
]


@pytest.mark.parametrize("store_name", ["redis", "memcached"])
def test_hostile_label_values_round_trip_and_touch_no_other_key(
    store_name: str,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
) -> None:
    server = redis_server if store_name == "redis" else memcached_server
    store = metricache.open_store(store_name, url=server.url)
    canary = f"{namespace}-canary".encode()
    store.set(canary, b"still here", 60)
    registry = metricache.Registry()
    counter = metricache.Counter("odd", "Odd labels", ["value"], registry=registry)
    gauge = metricache.Gauge("odd_level", "Odd labels", ["value"], registry=registry)
    for n, value in enumerate(HOSTILE):
        counter.labels(value).inc(n + 1)
        gauge.labels(value).set(n * 1.5)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    assert syncer.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert {s.labels[0]: s.value for s in view["odd"].samples} == {  # type: ignore[union-attr]
        v: float(n + 1) for n, v in enumerate(HOSTILE)
    }
    assert {s.labels[0]: s.value for s in view["odd_level"].samples} == {  # type: ignore[union-attr]
        v: n * 1.5 for n, v in enumerate(HOSTILE)
    }
    assert store.get(canary) == b"still here"


@pytest.mark.parametrize("garbage", [b"99999999999999", b"not a number"])
def test_a_trace_overwritten_behind_our_back_never_drops_a_retried_batch(
    redis_server: RedisServer, namespace: str, garbage: bytes
) -> None:
    store = Faulty(metricache.open_store("redis", url=redis_server.url))
    registry = metricache.Registry()
    counter = metricache.Counter("kept", "Kept", registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    counter.inc(2)
    assert syncer.flush().ok
    counter.inc(3)
    store.lose_next = True  # the request never reaches Redis, the outcome is unknown
    assert not syncer.flush().ok
    # A trace of this incarnation that no batch of it wrote: it proves nothing.
    series = syncer.keyspace.series(series_id("kept", ()))
    trace = (TRACE_PREFIX + syncer.instance.token).encode()
    store.inner._client.hset(series, trace, garbage)  # type: ignore[attr-defined]
    assert syncer.flush().ok  # the retry
    counter.inc(4)
    assert syncer.flush().ok
    assert counter_value(metricache.merged_snapshot(store.inner, namespace=namespace), "kept") == 9
