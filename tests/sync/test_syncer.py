"""The syncer's semantics, in one process: deltas not totals, failures, chunks, collectors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import metricache
import pytest
from metricache.snapshot import Family, HistogramSample, MetricType, Sample
from metricache.sync import shared as shared_module
from metricache.sync.keyspace import series_id
from metricache.sync.shared import SharedSync
from metricache.sync.strategy import Strategy
from metricache.sync.syncer import Syncer

from tests.support.servers import RedisServer
from tests.support.shared_store import SharedStore


def shared(syncer: Syncer) -> SharedSync:
    engine = syncer._shared
    assert engine is not None
    return engine


def pending(syncer: Syncer) -> set[Any]:
    return shared(syncer).pending


def value(view: metricache.Snapshot, name: str, *labels: str) -> float:
    sample = view[name].sample(*labels)
    assert isinstance(sample, Sample)
    return sample.value


def test_repeated_syncs_send_deltas_never_running_totals(namespace: str) -> None:
    store = SharedStore()
    registry = metricache.Registry()
    counter = metricache.Counter("done", "Done", registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    counter.inc(5)
    for _ in range(4):  # the seed engine re-added 5 on every pass
        assert syncer.flush().ok
    assert value(metricache.merged_snapshot(store, namespace=namespace), "done") == 5
    counter.inc(2)
    assert syncer.flush().ok
    assert value(metricache.merged_snapshot(store, namespace=namespace), "done") == 7


def test_instances_fold_into_shared_keys(namespace: str) -> None:
    store = SharedStore()
    syncers = []
    for n in range(3):
        registry = metricache.Registry()
        metricache.Counter("c", "c", ["k"], registry=registry).labels("x").inc(n + 1)
        syncers.append(Syncer(registry, store, namespace=namespace, instance_id=f"i{n}"))
    for s in syncers:
        assert s.strategy is Strategy.DISTRIBUTED_BASIC
        assert s.flush().ok
    assert value(metricache.merged_snapshot(store, namespace=namespace), "c", "x") == 6


def test_a_failed_sync_keeps_its_deltas_and_nothing_grows(namespace: str) -> None:
    store = SharedStore()
    registry = metricache.Registry()
    counter = metricache.Counter("c", "c", ["k"], registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    assert syncer.flush().ok
    store.down = True
    sizes = []
    for _ in range(50):
        counter.labels("a").inc()
        counter.labels("b").inc(2)
        assert not syncer.flush().ok
        sizes.append(len(pending(syncer)))
    # What waits is one entry per changed series, however long the outage.
    assert {c for c in pending(syncer) if c.family is counter} == {
        counter.labels("a"),
        counter.labels("b"),
    }
    assert sizes[-1] == sizes[1]
    store.down = False
    assert syncer.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert (value(view, "c", "a"), value(view, "c", "b")) == (50, 100)
    assert not pending(syncer)


def test_a_half_applied_batch_resends_only_what_was_not_confirmed(namespace: str) -> None:
    store = SharedStore()
    registry = metricache.Registry()
    counter = metricache.Counter("c", "c", ["k"], registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    assert syncer.flush().ok
    for k in "abcdef":
        counter.labels(k).inc(10)
    store.fail_key, store.fail_mode = series_id("c", ["d"]).encode(), "down"
    report = syncer.flush()
    assert not report.ok
    assert "StoreUnavailable" in (report.error or "")
    assert syncer.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert {k: value(view, "c", k) for k in "abcdef"} == dict.fromkeys("abcdef", 10.0)


def test_an_increment_in_doubt_is_sent_again_at_least_once(namespace: str) -> None:
    store = SharedStore()
    registry = metricache.Registry()
    counter = metricache.Counter("c", "c", ["k"], registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    assert syncer.flush().ok
    for k in "abc":
        counter.labels(k).inc(10)
    store.fail_key, store.fail_mode = series_id("c", ["b"]).encode(), "unknown"
    assert not syncer.flush().ok
    assert syncer.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    # distributed_basic promises at least once: exactly the in-doubt delta is doubled.
    assert {k: value(view, "c", k) for k in "abc"} == {"a": 10, "b": 20, "c": 10}


def test_large_syncs_go_in_several_confirmed_batches(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, namespace: str
) -> None:
    monkeypatch.setattr(shared_module, "MAX_SERIES_PER_BATCH", 10)
    store = metricache.open_store("redis", url=redis_server.url)
    registry = metricache.Registry()
    counter = metricache.Counter("c", "c", ["k"], registry=registry)
    gauge = metricache.Gauge("g", "g", ["k"], registry=registry)
    for n in range(35):
        counter.labels(str(n)).inc(n)
        gauge.labels(str(n)).set(n)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    seq_before = shared(syncer).seq
    assert syncer.flush().ok
    assert shared(syncer).seq - seq_before >= 4  # 35 counters + 35 gauges + own metrics / 10
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert {s.labels[0]: s.value for s in view["c"].samples} == {  # type: ignore[union-attr]
        str(n): float(n) for n in range(35)
    }
    assert len(view["g"].samples) == 35


def test_custom_collectors_are_synced_as_deltas(namespace: str) -> None:
    store = SharedStore()
    registry = metricache.Registry()
    numbers = {"count": 5.0, "level": 2.0, "sum": 2.5}
    buckets = {"now": (1, 3)}

    def collector() -> list[Family]:
        sizes = HistogramSample((), buckets["now"], numbers["sum"], buckets["now"][-1])
        events = Sample(("x",), numbers["count"])
        level = Sample((), numbers["level"])
        return [
            Family("coll_events", MetricType.COUNTER, "Events", ("src",), [events]),
            Family(
                "coll_level",
                MetricType.GAUGE,
                "Level",
                (),
                [level],
                merge=metricache.GaugeMerge.SUM,
            ),
            Family(
                "coll_sizes",
                MetricType.HISTOGRAM,
                "Sizes",
                (),
                [sizes],
                buckets=(1.0, float("inf")),
            ),
        ]

    registry.register_collector(collector)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    assert syncer.flush().ok
    numbers.update(count=8.0, level=7.0, sum=4.0)
    buckets["now"] = (2, 5)
    assert syncer.flush().ok
    assert syncer.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert value(view, "coll_events", "x") == 8
    assert value(view, "coll_level") == 7
    sizes = view["coll_sizes"].samples[0]
    assert isinstance(sizes, HistogramSample)
    assert (sizes.buckets, sizes.sum, sizes.count) == ((2, 5), 4.0, 5)


def test_local_only_saves_the_view_and_resumes_it_under_the_same_id(namespace: str) -> None:
    store = metricache.open_store("memory")
    first = metricache.Registry()
    metricache.Counter("c", "c", registry=first).inc(3)
    metricache.Gauge("g", "g", registry=first).set(9)
    s1 = Syncer(first, store, namespace=namespace, instance_id="web-1")
    assert s1.strategy is Strategy.LOCAL_ONLY
    assert s1.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace, instance_id="web-1")
    assert (value(view, "c"), value(view, "g")) == (3, 9)

    second = metricache.Registry()  # the same instance, restarted
    metricache.Counter("c", "c", registry=second).inc(1)
    metricache.Gauge("g", "g", registry=second).set(4)
    s2 = Syncer(second, store, namespace=namespace, instance_id="web-1")
    assert s2.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace, instance_id="web-1")
    assert value(view, "c") == 4  # counters resume
    assert value(view, "g") == 4  # gauges start over


def test_a_removed_series_still_sends_what_it_counted(namespace: str) -> None:
    store = SharedStore()
    registry = metricache.Registry()
    counter = metricache.Counter("c", "c", ["k"], registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace=namespace)
    counter.labels("gone").inc(4)
    counter.remove("gone")
    assert syncer.flush().ok
    assert value(metricache.merged_snapshot(store, namespace=namespace), "c", "gone") == 4


def test_a_running_syncer_makes_its_final_sync_at_interpreter_exit(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import metricache\n"
        "registry = metricache.Registry()\n"
        "c = metricache.Counter('at_exit', 'Counted just before exit', registry=registry)\n"
        f"store = metricache.open_store('redis', url={redis_server.url!r})\n"
        f"metricache.Syncer(registry, store, interval=3600, namespace={namespace!r}).start()\n"
        "c.inc(9)\n"  # no stop(), no flush(): the interpreter exits
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    store = metricache.open_store("redis", url=redis_server.url)
    assert value(metricache.merged_snapshot(store, namespace=namespace), "at_exit") == 9
