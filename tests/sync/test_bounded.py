"""What a process keeps stays bounded, and a sync's work follows what changed.

A registry nobody syncs keeps no record of series it no longer has; a syncer forgets
series removed from their metrics and series its collectors stopped reporting; a sync
with one changed gauge among thousands sends one entry; a store that declares no
capabilities is probed once, not on every read.
"""

from __future__ import annotations

import gc
import tracemalloc

import metricache
from metricache.snapshot import Family, MetricType, Sample
from metricache.store import Capability
from metricache.sync.batch import SyncBatch, SyncOutcome
from metricache.sync.shared import SharedSync
from metricache.sync.syncer import Syncer
from metricache_memory import MemoryStore

from tests.support.shared_store import SharedStore


def engine(syncer: Syncer) -> SharedSync:
    found = syncer._shared
    assert found is not None
    return found


def test_a_registry_without_a_syncer_keeps_nothing_of_removed_series() -> None:
    registry = metricache.Registry()
    requests = metricache.Counter("requests", "Requests", ["user"], registry=registry)
    for n in range(1_000):  # warm up: interned strings, dict sizes
        requests.labels(str(n)).inc()
        requests.remove(str(n))
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for n in range(100_000):
            requests.labels(f"user-{n}").inc()
            requests.remove(f"user-{n}")
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not registry.armed
    assert len(registry.tracker) == 0
    assert requests.children() == []
    # Flat: what 100,000 series would hold (hundreds of bytes each) is not kept.
    assert after - before < 64 * 1024, after - before


def test_a_syncer_forgets_removed_series_and_sends_what_they_counted() -> None:
    store = SharedStore()
    registry = metricache.Registry()
    requests = metricache.Counter("requests", "Requests", ["user"], registry=registry)
    level = metricache.Gauge("level", "Level", ["user"], registry=registry)
    syncer = Syncer(registry, store, interval=60, namespace="bounded")
    for n in range(2_000):
        requests.labels(f"u{n}").inc(2)
        level.labels(f"u{n}").set(n)
        if n % 100 == 99:
            assert syncer.flush().ok
        requests.remove(f"u{n}")
        level.remove(f"u{n}")
    assert syncer.flush().ok
    assert syncer.flush().ok
    records = [s for s in engine(syncer).states.values() if s.family in ("requests", "level")]
    assert records == []
    assert engine(syncer).gauges.entries.keys().isdisjoint({"level"})
    view = metricache.merged_snapshot(store, namespace="bounded")
    assert sum(s.value for s in view["requests"].samples if isinstance(s, Sample)) == 4_000
    assert view["level"].samples == ()  # removed gauges leave the view at once


def test_a_syncer_forgets_series_its_collectors_stopped_reporting() -> None:
    store = SharedStore()
    registry = metricache.Registry()
    round_number = [0]

    def rotating() -> list[Family]:
        n = round_number[0]
        return [
            Family(
                name="jobs",
                type=MetricType.COUNTER,
                documentation="Jobs",
                labelnames=("batch",),
                samples=[Sample((f"b{n}",), 1.0), Sample((f"b{n + 1}",), 2.0)],
            ),
            Family(
                name="queue",
                type=MetricType.GAUGE,
                documentation="Queue",
                labelnames=("batch",),
                samples=[Sample((f"b{n}",), float(n))],
            ),
        ]

    registry.register_collector(rotating)
    syncer = Syncer(registry, store, interval=60, namespace="rotating")
    for n in range(300):
        round_number[0] = n
        assert syncer.flush().ok
    collected = engine(syncer).collected
    assert len(collected.all_states()) == 3  # what the collector reports now, nothing more
    assert len([s for s in engine(syncer).gauges.entries if s]) < 10
    view = metricache.merged_snapshot(store, namespace="rotating")
    assert [s.labels for s in view["queue"].samples] == [("b299",)]


class RecordingStore(SharedStore):
    """Remembers every batch it applies."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[SyncBatch] = []

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        self.batches.append(batch)
        return super().apply_sync(batch)


def test_a_sync_with_one_changed_gauge_sends_one_entry_among_thousands() -> None:
    store = RecordingStore()
    registry = metricache.Registry()
    depth = metricache.Gauge(
        "depth", "Depth", ["queue"], registry=registry, cardinality_limit=20_000
    )
    for n in range(10_000):
        depth.labels(str(n)).set(n)
    syncer = Syncer(registry, store, interval=60, namespace="gauges")
    assert syncer.flush().ok
    assert syncer.flush().ok
    store.batches.clear()
    depth.labels("42").set(-1)
    assert syncer.flush().ok
    (batch,) = store.batches
    assert batch.gauges is not None
    assert not batch.gauges.full
    changed = {sid for changes in batch.gauges.changes.values() for sid in changes}
    own = {s.sid for s in engine(syncer).states.values() if s.family.startswith("metricache_")}
    assert len(changed - own) == 1
    assert len(batch.gauges.contents) <= 1 + len(changed & own)  # pages rewritten: few
    view = metricache.merged_snapshot(store, namespace="gauges")
    assert view["depth"].sample("42") == Sample(("42",), -1.0)
    assert len(view["depth"].samples) == 10_000


class UndeclaredStore(MemoryStore):
    """A store that declares nothing: its capabilities are probed."""

    name = "undeclared-test"
    capabilities = None  # type: ignore[assignment]
    probes = 0

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        if key.startswith(b"metricache:probe:"):
            type(self).probes += 1
        super().set(key, value, ttl)


def test_a_store_that_declares_nothing_is_probed_once_not_on_every_read() -> None:
    store = UndeclaredStore()
    registry = metricache.Registry()
    metricache.Counter("c", "C", registry=registry).inc()
    syncer = Syncer(registry, store, interval=60)
    assert syncer.flush().ok
    for _ in range(5):
        metricache.merged_snapshot(store)
    assert UndeclaredStore.probes == 1
    assert Capability.ATOMIC not in syncer.choice.capabilities
