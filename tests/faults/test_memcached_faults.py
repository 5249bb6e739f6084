"""Memcached restarts empty: the totals become the sum over the instances still alive.

``distributed_basic`` promises (docs/sync.md): after the store loses its data every
live instance re-sends its cumulative totals within one sync, so the merged counters
equal the sum over live instances; what instances that are gone had counted is gone
with the store; and a restart in the middle of a sync can count that sync's delta
twice.
"""

from __future__ import annotations

import logging
from collections import Counter

import metricache
import pytest
from metricache.snapshot import Sample
from metricache.sync.batch import SyncBatch, SyncOutcome
from metricache.sync.keyspace import Keyspace, series_id
from metricache.sync.syncer import Syncer
from metricache_memcached import MemcachedStore
from metricache_memcached.store import MemcachedOptions

from tests.faults.fleet import Fleet, compare
from tests.faults.records import FaultRecord
from tests.faults.test_redis_faults import HOT_PATH_BOUND
from tests.support.servers import MemcachedServer


def _fleet(server: MemcachedServer, namespace: str, count: int, name: str) -> Fleet:
    # No background syncer: the test says when each worker syncs, so each restart
    # falls between two syncs and the result does not depend on timing.
    return Fleet(
        count,
        store="memcached",
        options={"url": server.url, "timeout": 0.5, "connect_timeout": 0.5},
        namespace=namespace,
        instance=name,
        interval=None,
        threads=2,
        labels=4,
    )


def test_memcached_restarted_empty_keeps_the_sum_over_live_instances(
    fresh_memcached: MemcachedServer, namespace: str, fault: FaultRecord
) -> None:
    with _fleet(fresh_memcached, namespace, 1, "gone") as gone:
        gone_final = gone.command("stop")[0]
    assert gone_final["final_ok"]
    gone_sent = sum(gone_final["tally"].values())
    reader = metricache.open_store("memcached", url=fresh_memcached.url)
    assert compare(metricache.merged_snapshot(reader, namespace=namespace), [gone_final]).exact

    with _fleet(fresh_memcached, namespace, 3, "live") as fleet:
        resent = 0
        for _ in range(3):
            assert all(a["ok"] for a in fleet.command("sync"))
            fresh_memcached.restart()
            # The first sync after the restart finds the store empty and re-sends.
            answers = fleet.command("sync")
            assert all(a["ok"] for a in answers), answers
            resent += len(answers)
        finals = fleet.command("stop")
    view = metricache.merged_snapshot(reader, namespace=namespace)
    result = compare(view, finals)

    assert all(f["final_ok"] for f in finals)
    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    # The exited instance counted the same series: exact totals of the live ones alone
    # mean that nothing of it is left.
    resets = sum(f["self"].get("metricache_store_resets", 0) for f in finals)
    assert resets == 3 * len(finals)
    worst = max(f["worst_call"] for f in finals)
    assert worst < HOT_PATH_BOUND
    assert "has lost its data" in "".join(fleet.stderr)

    fault.fault = (
        "memcached restarted empty 3 times between syncs; 3 processes count, 1 exited before"
    )
    fault.store = "memcached"
    fault.strategy = "distributed_basic"
    fault.happened = (
        f"each live instance found the store empty on its next sync and re-sent its "
        f"totals ({int(resets)} resets); the exited instance's {gone_sent} increments "
        "left the totals with the first restart"
    )
    fault.sent = result.sent
    fault.counted = result.counted
    fault.compared = (
        f"{result.sent:,} counter increments, {result.observations:,} histogram observations "
        "and a fractional sum of the live instances, per series"
    )
    fault.lost = result.lost
    fault.doubled = result.doubled
    fault.allowed = "nothing of live instances; an exited instance's counts go with the store"
    fault.worst_call_ms = round(worst * 1000, 2)
    fault.seen_in = ["metricache_store_resets_total", "log: store ... has lost its data"]


class RestartingStore(MemcachedStore):
    """The memcached store; restarts its server (empty) after the ``at``-th increment."""

    def __init__(self, options: MemcachedOptions, server: MemcachedServer) -> None:
        super().__init__(options)
        self.server = server
        self.at: int | None = None
        self.increments = 0
        self.after_restart: Counter[bytes] = Counter()

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        value = super().incr(key, amount, ttl)
        if self.at is not None:
            self.increments += 1
            if self.increments > self.at:
                self.after_restart[key] += amount
            elif self.increments == self.at:
                self.server.restart()
        return value

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        outcome = super().apply_sync(batch)
        if self.at is not None and self.increments >= self.at:
            self.at = None  # the rest of the batch the restart cut through is recorded
        return outcome


def test_memcached_restarted_in_the_middle_of_a_sync_counts_that_syncs_rest_twice(
    fresh_memcached: MemcachedServer,
    namespace: str,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    registry = metricache.Registry()
    orders = metricache.Counter("orders", "Orders", ["shop"], registry=registry)
    shops = [f"s{n}" for n in range(6)]
    store = RestartingStore(MemcachedOptions(url=fresh_memcached.url), fresh_memcached)
    syncer = Syncer(registry, store, interval=3600, namespace=namespace, instance_id="one")
    for n, shop in enumerate(shops):
        orders.labels(shop).inc(10 * (n + 1))
    assert syncer.flush().ok
    for n, shop in enumerate(shops):
        orders.labels(shop).inc(n + 1)
    store.at = 3  # the server restarts after the third increment of the next sync
    interrupted = syncer.flush()
    assert interrupted.ok  # the increments after the restart landed in the empty store
    # The same sync found its instance header gone, went on, met the store's new epoch,
    # checked every series it holds, and sent again the ones the restart lost.
    assert interrupted.resent_totals
    after = syncer.flush()
    assert after.ok
    view = metricache.merged_snapshot(store, namespace=namespace)

    keyspace = Keyspace(namespace)
    sent = counted = doubled = expected_double = 0
    for shop in shops:
        local = orders.labels(shop).get()
        sample = view["orders"].sample(shop)
        assert isinstance(sample, Sample)
        twice = store.after_restart[keyspace.part(series_id("orders", (shop,)), "i")]
        assert sample.value == local + twice  # exactly the documented double, no more
        sent += int(local)
        counted += int(sample.value)
        doubled += int(sample.value - local)
        expected_double += twice
    assert doubled == expected_double > 0
    assert "has lost its data" in caplog.text
    syncer.stop()

    fault.fault = "memcached restarted empty in the middle of a sync"
    fault.store = "memcached"
    fault.strategy = "distributed_basic"
    fault.happened = (
        "the increments after the restart landed in the empty store; the same sync "
        "found it empty and re-sent the lost series whole, which include them again"
    )
    fault.sent = sent
    fault.counted = counted
    fault.compared = f"one counter, {len(shops)} series"
    fault.lost = 0
    fault.doubled = doubled
    fault.allowed = f"that sync's increments after the restart counted twice ({expected_double})"
    fault.seen_in = ["metricache_store_resets_total", "log: store ... has lost its data"]
