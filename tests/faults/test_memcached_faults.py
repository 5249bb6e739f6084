"""Memcached restarts empty: the totals become the sum over the instances still alive.

``distributed_basic`` promises (docs/sync.md): after the store loses its data every
live instance re-sends its cumulative totals within one sync, so the merged counters
equal the sum over live instances; what instances that are gone had counted is gone
with the store; and a restart in the middle of a sync can count twice what that sync
sent to the series it was joining. With several servers, one that restarts empty
loses the shards it held: the instances re-send what lived there, and only that
(the epoch and the registrations live on one server; if that one restarts, every
instance checks everything, as after a flush).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import metricache
import pytest
from metricache.snapshot import Sample
from metricache.sync.keyspace import Keyspace
from metricache.sync.syncer import Syncer
from metricache_memcached import MemcachedStore
from metricache_memcached.keys import safe_key
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


@pytest.mark.parametrize("which", ["a-shard-server", "the-epoch-server"])
def test_a_memcached_fleet_with_a_server_restarted_empty_keeps_the_sum_over_live_instances(
    which: str, namespace: str, fault: FaultRecord
) -> None:
    with MemcachedServer() as one, MemcachedServer() as two, MemcachedServer() as three:
        servers = [one, two, three]
        url = "memcached://" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
        probe = MemcachedStore(MemcachedOptions(url=url))
        epoch_port = probe.route(safe_key(Keyspace(namespace).epoch())).address[1]
        on_epoch = which == "the-epoch-server"
        victim = next(s for s in servers if (s.port == epoch_port) is on_epoch)
        fleet = Fleet(
            3,
            store="memcached",
            options={"url": url, "timeout": 0.5, "connect_timeout": 0.5},
            namespace=namespace,
            instance="fleet",
            interval=None,  # restarts fall between syncs: nothing is in doubt
            threads=2,
            labels=64,
        )
        with fleet:
            for _ in range(3):
                assert all(a["ok"] for a in fleet.command("sync"))
            victim.restart()
            for _ in range(3):
                answers = fleet.command("sync")
                assert all(a["ok"] for a in answers), answers
            finals = fleet.command("stop")
        result = compare(metricache.merged_snapshot(probe, namespace=namespace), finals)

    assert all(f["final_ok"] for f in finals)
    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    resets = sum(f["self"].get("metricache_store_resets", 0) for f in finals)
    assert resets >= len(finals)
    logs = "".join(fleet.stderr)
    worst = max(f["worst_call"] for f in finals)
    assert worst < HOT_PATH_BOUND
    if on_epoch:
        assert "has lost its data" in logs
        noticed = "the epoch was gone: every instance checked every series it holds"
        seen = "log: store ... has lost its data"
    else:
        assert "lost the series of" in logs
        assert "has lost its data" not in logs
        noticed = (
            "the shards' markers were gone: every instance checked the series it holds "
            "there, and only those"
        )
        seen = "log: store ... has lost the series of N shard(s)"

    fault.fault = (
        f"a fleet of 3 memcached servers, {which.replace('-', ' ')} restarted empty between "
        "two syncs; 3 processes count"
    )
    fault.store = "memcached"
    fault.strategy = "distributed_basic"
    fault.happened = f"{noticed}, and re-sent what the server had held ({int(resets)} resets)"
    fault.compare_fleet(result, worst, "nothing lost, nothing doubled (nothing was in doubt)")
    fault.seen_in = ["metricache_store_resets_total", seen]


class RestartingStore(MemcachedStore):
    """The memcached store; restarts its server (empty) right after a batch read its lives.

    That is the middle of a sync: the batch has decided, series by series, which life
    each write goes into, and its increments have not gone out yet.
    """

    def __init__(self, options: MemcachedOptions, server: MemcachedServer) -> None:
        super().__init__(options)
        self.server = server
        self.armed = False

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = list(keys)
        found = super().get_many(wanted)
        if self.armed and any(b":s:" in key for key in wanted):
            self.armed = False
            self.server.restart()
        return found


def test_memcached_restarted_in_the_middle_of_a_sync_doubles_only_the_series_it_was_joining(
    fresh_memcached: MemcachedServer,
    namespace: str,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    options = MemcachedOptions(url=fresh_memcached.url)
    # Instance B creates the series "new-*"; instance A holds "s*" and joins "new-*"
    # in the very sync the server restarts in.
    held = [f"s{n}" for n in range(6)]
    joined = ["new-0", "new-1"]
    registry_b = metricache.Registry()
    orders_b = metricache.Counter("orders", "Orders", ["shop"], registry=registry_b)
    b = Syncer(registry_b, MemcachedStore(options), namespace=namespace, instance_id="b")
    registry_a = metricache.Registry()
    orders_a = metricache.Counter("orders", "Orders", ["shop"], registry=registry_a)
    store = RestartingStore(options, fresh_memcached)
    a = Syncer(registry_a, store, interval=3600, namespace=namespace, instance_id="a")
    for n, shop in enumerate(held):
        orders_a.labels(shop).inc(10 * (n + 1))
    assert a.flush().ok
    for n, shop in enumerate(joined):
        orders_b.labels(shop).inc(100 * (n + 1))
    assert b.flush().ok
    for n, shop in enumerate(held):
        orders_a.labels(shop).inc(n + 1)
    for n, shop in enumerate(joined):
        orders_a.labels(shop).inc(1000 * (n + 1))
    store.armed = True
    interrupted = a.flush()  # the server restarts between the lives read and the increments
    assert not store.armed
    assert interrupted.ok
    for _ in range(3):  # every instance finds out and re-sends what the store lost
        assert b.flush().ok
        assert a.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)

    sent = counted = doubled = expected_double = 0
    for shop in held + joined:
        local = orders_a.labels(shop).get() + orders_b.labels(shop).get()
        sample = view["orders"].sample(shop)
        assert isinstance(sample, Sample)
        twice = orders_a.labels(shop).get() if shop in joined else 0
        assert sample.value == local + twice  # exactly the documented double, no more
        sent += int(local)
        counted += int(sample.value)
        doubled += int(sample.value - local)
        expected_double += int(twice)
    assert doubled == expected_double > 0
    assert "has lost its data" in caplog.text
    a.stop()
    b.stop()

    fault.fault = (
        "memcached restarted empty in the middle of a sync (after the batch read the "
        "lives, before its increments)"
    )
    fault.store = "memcached"
    fault.strategy = "distributed_basic"
    fault.happened = (
        "increments to series the instance held found their parts gone and were not "
        "applied (the series were re-sent whole); increments joining series another "
        "instance had created re-created their parts in the empty store, and were "
        "counted again when the instance re-sent its whole contribution"
    )
    fault.sent = sent
    fault.counted = counted
    fault.compared = f"one counter, {len(held) + len(joined)} series, 2 instances"
    fault.lost = 0
    fault.doubled = doubled
    fault.allowed = (
        f"the increments of the series that sync was joining counted twice ({expected_double})"
    )
    fault.seen_in = ["metricache_store_resets_total", "log: store ... has lost its data"]
