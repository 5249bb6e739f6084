"""The Redis store behind Redis Sentinel (1 master, 1 replica, 3 sentinels on loopback).

The store asks the sentinels for the master of the service, and asks again after a
failover: a syncer keeps syncing to the new master without a restart.
"""

from __future__ import annotations

import metricache
import pytest
import redis
from metricache.errors import StoreError
from metricache.snapshot import Sample
from metricache.sync.syncer import Syncer

from tests.faults.fleet import wait_until
from tests.support.topologies import sentinel


def test_a_syncer_follows_the_master_the_sentinels_name_across_a_failover(
    namespace: str,
) -> None:
    with sentinel() as topology:
        store = metricache.open_store(
            "redis", url=topology.url, socket_timeout=0.5, connect_timeout=0.5
        )
        registry = metricache.Registry()
        orders = metricache.Counter("orders", "Orders", ["shop"], registry=registry)
        syncer = Syncer(registry, store, interval=3600, namespace=namespace)
        orders.labels("a").inc(3)
        assert syncer.flush().ok
        first = topology.master()
        assert redis.Redis(port=first.port).exists(b"{" + namespace.encode() + b"}:epoch")
        promoted = topology.fail_over()
        assert promoted is not first
        orders.labels("a").inc(4)
        orders.labels("b").inc(1)
        # The first syncs may meet the dead master's closed connections; then the
        # sentinels' answer leads to the new one. No restart, no new store.
        assert wait_until(lambda: syncer.flush().ok, 20, step=0.2)
        view = metricache.merged_snapshot(store, namespace=namespace)
        values = {s.labels: s.value for s in view["orders"].samples if isinstance(s, Sample)}
        assert values == {("a",): 7.0, ("b",): 1.0}
        assert redis.Redis(port=promoted.port).exists(b"{" + namespace.encode() + b"}:epoch")
        syncer.stop()


def test_sentinels_that_cannot_be_reached_make_the_store_unavailable() -> None:
    store = metricache.open_store(
        "redis",
        url="redis+sentinel://:s3cret@127.0.0.1:1,127.0.0.1:2/mymaster",
        socket_timeout=0.2,
        connect_timeout=0.2,
    )
    assert store.describe() == "redis redis+sentinel://:***@127.0.0.1:1,127.0.0.1:2/mymaster"
    with pytest.raises(StoreError) as problem:
        store.ping()
    assert "s3cret" not in str(problem.value)
    registry = metricache.Registry()
    metricache.Counter("x", "X", registry=registry).inc()
    report = Syncer(registry, store, interval=3600).flush()
    assert not report.ok
    assert "s3cret" not in (report.error or "")
