"""Bytes written into metricache's keys behind its back: readers skip, syncs repair, no restart.

Something else writes into a key metricache owns (another program sharing the
database, a botched migration, an operator's ``SET``). The reader must never crash:
it skips what it cannot read, logs it and counts it in
``metricache_store_corrupt_values_total``. The next sync that touches the key replaces
it, and the system goes on without a restart. What the key held before is gone: that
loss is documented (docs/sync.md, "Failure, in one place") and measured here.
"""

from __future__ import annotations

import logging
import time

import metricache
import pytest
import redis
from metricache.snapshot import Sample
from metricache.sync import keyspace as keyspace_module
from metricache.sync.keyspace import Keyspace, series_id
from metricache.sync.syncer import Syncer
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.faults.records import FaultRecord
from tests.support.servers import MemcachedServer, RedisServer

GARBAGE = b"\xff\x00garbage"


def corrupt_values() -> float:
    """The total of ``metricache_store_corrupt_values`` in the default registry."""
    family = metricache.REGISTRY.snapshot().get("metricache_store_corrupt_values")
    if family is None:
        return 0.0
    return sum(s.value for s in family.samples if isinstance(s, Sample))


def value_of(view: metricache.Snapshot, name: str, *labels: str) -> float | None:
    family = view.get(name)
    if family is None:
        return None
    for sample in family.samples:
        if sample.labels == labels and isinstance(sample, Sample):
            return sample.value
    return None


class Shop:
    """One instance counting orders per shop into a store, and a reader of the store."""

    def __init__(self, store_name: str, url: str, namespace: str, retention: float = 300.0):
        self.registry = metricache.Registry()
        self.orders = metricache.Counter("orders", "Orders", ["shop"], registry=self.registry)
        self.store = metricache.open_store(store_name, url=url)
        self.namespace = namespace
        self.retention = retention
        self.syncer = Syncer(
            self.registry,
            self.store,
            interval=3600,
            namespace=namespace,
            instance_id="shop",
            retention=retention,
        )
        self.reader = metricache.open_store(store_name, url=url)
        self.keyspace = Keyspace(namespace, retention)

    def sync(self) -> None:
        report = self.syncer.flush()
        assert report.ok, report.error

    def view(self) -> metricache.Snapshot:
        return metricache.merged_snapshot(
            self.reader, namespace=self.namespace, retention=self.retention
        )

    def series_key(self, shop: str) -> bytes:
        """The key of a series: a hash in Redis, its life record in memcached."""
        return self.keyspace.series(series_id("orders", (shop,)))

    def part_key(self, shop: str) -> bytes:
        """The key of a counter's whole units in memcached."""
        return self.keyspace.part(series_id("orders", (shop,)), "i")


@pytest.mark.parametrize("garbage", ["bytes", "hash"])
def test_garbage_in_a_redis_series_key_is_skipped_then_replaced_and_resent(
    redis_server: RedisServer,
    namespace: str,
    garbage: str,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    shop = Shop("redis", redis_server.url, namespace)
    shop.orders.labels("a").inc(5)
    shop.orders.labels("b").inc(7)
    shop.sync()
    raw = redis.Redis(port=redis_server.port)
    key = shop.series_key("a")
    if garbage == "bytes":
        raw.delete(key)
        raw.set(key, GARBAGE)
    else:
        raw.delete(key)
        raw.hset(key, "field", "value")
    before = corrupt_values()

    damaged = shop.view()  # never raises
    read_counted = corrupt_values() - before
    assert value_of(damaged, "orders", "a") is None  # skipped
    assert value_of(damaged, "orders", "b") == 7  # the rest is intact
    if garbage == "bytes":
        assert read_counted == 1
        assert "skipping a corrupt store value" in caplog.text
    else:
        # A hash without a life reads as a series that is not there: nothing to count
        # on reading. The sync below counts the repair.
        assert read_counted == 0

    shop.orders.labels("a").inc(2)
    shop.sync()
    assert corrupt_values() - before == read_counted + 1
    assert "replaced 1 keys that held something metricache did not write" in caplog.text
    assert raw.type(key) == b"hash"
    # The series had lost its life: the instance sent its whole contribution again.
    assert value_of(shop.view(), "orders", "a") == 7

    shop.orders.labels("a").inc(3)
    shop.sync()
    view = shop.view()
    assert (value_of(view, "orders", "a"), value_of(view, "orders", "b")) == (10, 7)
    shop.syncer.stop()

    what = "bytes b'\\xff\\x00garbage'" if garbage == "bytes" else "a hash without a life"
    fault.fault = f"{what} written over a counter's series key in Redis"
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        "the reader skipped the series"
        + (" and counted it" if garbage == "bytes" else " (read as absent: not counted)")
        + "; the next sync replaced the key inside its script, counted the repair, found "
        "the series' life gone and sent the instance's whole contribution again"
    )
    fault.sent = 5 + 2 + 3 + 7
    fault.counted = 5 + 2 + 3 + 7
    fault.compared = "one counter, 2 series"
    fault.lost = 0
    fault.doubled = 0
    fault.allowed = "nothing lost: live instances send their contributions again"
    fault.seen_in = [
        "metricache_store_corrupt_values_total",
        "log: replaced 1 keys that held something metricache did not write",
    ]


def test_a_non_integer_in_a_memcached_value_key_is_skipped_then_replaced(
    memcached_server: MemcachedServer,
    namespace: str,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    shop = Shop("memcached", memcached_server.url, namespace)
    shop.orders.labels("a").inc(5)
    shop.orders.labels("b").inc(7)
    shop.sync()
    raw = Client(("127.0.0.1", memcached_server.port))
    key = shop.part_key("a")
    assert raw.get(key) is not None  # a plain ASCII key: memcached's own key is the same
    assert raw.set(key, b"not a number \xff", expire=300, noreply=False)
    before = corrupt_values()

    damaged = shop.view()
    assert corrupt_values() - before == 1
    assert value_of(damaged, "orders", "a") is None
    assert value_of(damaged, "orders", "b") == 7
    assert "does not hold an integer" in caplog.text

    shop.orders.labels("a").inc(2)
    shop.sync()
    assert corrupt_values() - before == 2
    assert "not an integer; replaced" in caplog.text
    assert value_of(shop.view(), "orders", "a") == 2

    shop.orders.labels("a").inc(3)
    shop.sync()
    view = shop.view()
    assert (value_of(view, "orders", "a"), value_of(view, "orders", "b")) == (5, 7)
    shop.syncer.stop()
    raw.close()

    fault.fault = "a non-integer written over a counter's value key in memcached"
    fault.store = "memcached"
    fault.strategy = "distributed_basic"
    fault.happened = (
        "the reader skipped the series and counted it; the next sync's incr replaced "
        "the item and counted the repair; later syncs added up again"
    )
    fault.sent = 5 + 2 + 3 + 7
    fault.counted = 5 + 7
    fault.compared = "one counter, 2 series"
    fault.lost = 5
    fault.doubled = 0
    fault.allowed = "what the overwritten key held (5)"
    fault.seen_in = [
        "metricache_store_corrupt_values_total",
        "log: skipping a corrupt store value",
    ]


@pytest.mark.parametrize("store_name", ["redis", "memcached"])
def test_garbage_in_a_registration_map_hides_its_families_until_the_next_generation(
    store_name: str,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    server = redis_server if store_name == "redis" else memcached_server
    # Registration generations last minutes; shortened here, the test sees the next one.
    retention = 2.0
    monkeypatch.setattr(keyspace_module, "GENERATION", retention, raising=False)
    # Start early in a generation, so the damage is not healed at once by the next.
    time.sleep(retention - time.time() % retention)
    shop = Shop(store_name, server.url, namespace, retention=retention)
    shop.orders.labels("a").inc(5)
    shop.sync()
    key = shop.keyspace.families(shop.keyspace.generation())
    if store_name == "redis":
        redis.Redis(port=server.port).set(key, GARBAGE, keepttl=True)
    else:
        assert Client(("127.0.0.1", server.port)).set(key, GARBAGE, expire=60, noreply=False)
    before = corrupt_values()

    damaged = shop.view()
    assert damaged.get("orders") is None  # its family's registration is unreadable
    assert corrupt_values() > before
    damaged_at = time.monotonic()
    total = 5
    hidden_syncs = 0
    while shop.view().get("orders") is None:
        assert time.monotonic() - damaged_at < 3 * retention, "never recovered"
        shop.orders.labels("a").inc()
        total += 1
        shop.sync()
        hidden_syncs += 1
        time.sleep(0.05)
    recovered_after = time.monotonic() - damaged_at
    assert value_of(shop.view(), "orders", "a") == total  # the values were never touched
    assert recovered_after < 2 * retention
    shop.syncer.stop()

    fault.fault = f"bytes written over the current generation's families map ({store_name})"
    fault.store = store_name
    fault.strategy = "distributed_atomic" if store_name == "redis" else "distributed_basic"
    fault.happened = (
        f"the reader counted the map and left its families out; {hidden_syncs} syncs "
        f"later ({recovered_after:.1f} s; generations shortened to {retention:g} s for the "
        "test) the next generation registered them again and the view was whole"
    )
    fault.sent = total
    fault.counted = total
    fault.compared = "one counter"
    fault.lost = 0
    fault.doubled = 0
    fault.allowed = "nothing lost; the map's families hidden until the next generation"
    fault.seen_in = ["metricache_store_corrupt_values_total", "log: skipping a corrupt"]


EPOCH_DAMAGE = {
    # case: (store, what is written over the epoch key)
    "redis-empty": ("redis", "an empty string"),
    "redis-bytes": ("redis", "bytes b'\\xff\\xfe' (not ASCII)"),
    "redis-hash": ("redis", "a hash"),
    "memcached-empty": ("memcached", "an empty string"),
}


@pytest.mark.parametrize("case", ["redis-empty", "redis-bytes", "redis-hash", "memcached-empty"])
def test_garbage_in_the_epoch_key_is_replaced_and_syncing_goes_on(
    case: str,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    store_name, what = EPOCH_DAMAGE[case]
    server = redis_server if store_name == "redis" else memcached_server
    shop = Shop(store_name, server.url, namespace)
    shop.orders.labels("a").inc(5)
    shop.sync()
    key = shop.keyspace.epoch()
    # Written without a TTL: waiting for it to expire is no way out.
    if store_name == "redis":
        raw = redis.Redis(port=server.port)
        if case == "redis-hash":
            raw.delete(key)
            raw.hset(key, "field", "value")
        else:
            raw.set(key, b"" if case == "redis-empty" else b"\xff\xfe")
    else:
        assert Client(("127.0.0.1", server.port)).set(key, b"", expire=0, noreply=False)
    before = corrupt_values()

    assert value_of(shop.view(), "orders", "a") == 5  # readers do not need the epoch
    shop.orders.labels("a").inc(2)
    first = shop.syncer.flush()
    assert first.ok, first.error  # never stuck behind a key it cannot read
    assert first.resent_totals  # an unreadable epoch is another epoch: every series checked
    assert corrupt_values() - before == 1
    shop.orders.labels("a").inc(3)
    shop.sync()
    # The store had not lost the series: its life was still there, nothing was re-sent.
    assert value_of(shop.view(), "orders", "a") == 5 + 2 + 3
    assert "has lost its data" in caplog.text
    shop.syncer.stop()

    fault.fault = f"{what} written over the store's epoch key ({store_name}), without a TTL"
    fault.store = store_name
    fault.strategy = "distributed_atomic" if store_name == "redis" else "distributed_basic"
    fault.happened = (
        "the next sync counted the key and replaced it with a new epoch; as after any "
        "change of epoch, every instance checked the lives of the series it holds, found "
        "them all there, and sent nothing twice"
    )
    fault.sent = 5 + 2 + 3
    fault.counted = 5 + 2 + 3
    fault.compared = "one counter"
    fault.lost = 0
    fault.doubled = 0
    fault.allowed = "nothing: a series whose life is still there keeps every contribution"
    fault.seen_in = [
        "metricache_store_corrupt_values_total",
        "metricache_store_resets_total",
        "log: store ... has lost its data",
    ]
