"""Redis Cluster and Redis Sentinel lose a master while worker processes keep counting.

Every topology is started on loopback ports by the test (see
:mod:`metricache_conformance.topologies`) and stopped after:

* a Redis Cluster of 3 masters and 3 replicas: a master is SIGKILLed (its replica is
  promoted, the killed node comes back as a replica), then 2,000 slots are migrated
  with ``redis-cli --cluster reshard``, while 4 processes x 4 threads count and sync
  every 0.2 s with ``min_replicas = 1``;
* Sentinel (1 master, 1 replica, 3 sentinels): the master is SIGKILLed mid-run;
* Sentinel again, with the replica's link clogged when the master dies: what the
  master had confirmed without a replica's acknowledgement is lost with it, unless
  ``min_replicas = 1`` kept the batch unconfirmed (then it is sent to the new master).

The merged view is compared, series by series, with the tallies the workers kept.
"""

from __future__ import annotations

import time
from typing import Any

import metricache
import pytest
import redis
from metricache.snapshot import Sample
from metricache.sync.syncer import Syncer
from metricache_conformance.topologies import RedisNode

from tests.faults.fleet import Fleet, compare, wait_until
from tests.faults.records import FaultRecord
from tests.faults.test_redis_faults import HOT_PATH_BOUND
from tests.support.topologies import cluster, sentinel

SOCKET_TIMEOUT = 1.0


def _options(url: str, **more: Any) -> dict[str, Any]:
    return {
        "url": url,
        "socket_timeout": SOCKET_TIMEOUT,
        "connect_timeout": 0.5,
        "replica_timeout": 0.5,
        **more,
    }


def _self_total(finals: list[dict[str, Any]], prefix: str) -> int:
    return int(sum(v for f in finals for k, v in f["self"].items() if k.startswith(prefix)))


def test_a_redis_cluster_losing_a_master_and_migrating_slots_loses_and_doubles_nothing(
    namespace: str, fault: FaultRecord
) -> None:
    with cluster() as topology:
        fleet = Fleet(
            4,
            store="redis",
            options=_options(topology.url, min_replicas=1),
            namespace=namespace,
            instance="clustered",
            interval=0.2,
            threads=4,
            labels=200,  # 200 label values: series in most of the 256 shards
            final_timeout=60.0,
        )
        with fleet:
            time.sleep(1.5)
            victim = topology.masters()[0]
            promoted = topology.fail_over(victim)
            time.sleep(0.5)
            topology.restart(victim)  # back, empty, as the promoted master's replica
            topology.wait_replicas_synced()
            time.sleep(0.5)
            source, target = (n for n in topology.masters() if n is not promoted)
            topology.reshard(source, target, 2000)
            time.sleep(1.0)
            finals = fleet.command("stop", timeout=120)
        reader = metricache.open_store("redis", url=topology.url)
        result = compare(metricache.merged_snapshot(reader, namespace=namespace), finals)

    assert all(f["final_ok"] for f in finals), [f["final_error"] for f in finals]
    assert not [e for f in finals for e in f["errors"]]
    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    worst = max(f["worst_call"] for f in finals)
    assert worst < HOT_PATH_BOUND
    failed = _self_total(finals, "metricache_syncs{failed}")
    retries = _self_total(finals, "metricache_sync_batch_retries")
    assert failed > 0  # the failover was felt,
    assert retries > 0  # and the batches were re-sent
    syncs = _self_total(finals, "metricache_syncs{ok}")

    fault.fault = (
        "Redis Cluster (3 masters, 3 replicas): a master SIGKILLed (its replica promoted), "
        "then 2,000 slots migrated by redis-cli --cluster reshard, while 4 processes x 4 "
        "threads count; min_replicas = 1"
    )
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        f"{failed} of {failed + syncs} syncs failed or were not acknowledged by a replica "
        f"in time; their batches were re-sent as retries ({retries}) and each shard "
        "recognised what it had applied; redirections to the promoted master and to the "
        "slots' new master were followed"
    )
    fault.compare_fleet(result, worst, "nothing lost, nothing doubled")
    fault.seen_in = [
        "metricache_sync_errors_total{error=OutcomeUnknown}",
        "metricache_sync_batch_retries_total",
        "log: sync to redis ... failed",
    ]


def test_redis_sentinel_losing_its_master_loses_and_doubles_nothing_with_min_replicas(
    namespace: str, fault: FaultRecord
) -> None:
    with sentinel() as topology:
        fleet = Fleet(
            3,
            store="redis",
            options=_options(topology.url, min_replicas=1),
            namespace=namespace,
            instance="watched",
            interval=0.2,
            threads=2,
            labels=20,
            final_timeout=60.0,
        )
        with fleet:
            time.sleep(1.5)
            old = topology.master()
            topology.fail_over()
            time.sleep(0.5)
            topology.restart(old)
            time.sleep(1.0)
            finals = fleet.command("stop", timeout=120)
        reader = metricache.open_store("redis", url=topology.url)
        result = compare(metricache.merged_snapshot(reader, namespace=namespace), finals)

    assert all(f["final_ok"] for f in finals), [f["final_error"] for f in finals]
    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    worst = max(f["worst_call"] for f in finals)
    assert worst < HOT_PATH_BOUND
    failed = _self_total(finals, "metricache_syncs{failed}")
    retries = _self_total(finals, "metricache_sync_batch_retries")
    assert failed > 0
    assert retries > 0

    fault.fault = (
        "Redis Sentinel (1 master, 1 replica, 3 sentinels): the master SIGKILLed while "
        "3 processes count, then restarted as a replica; min_replicas = 1"
    )
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        f"{failed} syncs failed during the failover or waited for a replica; their "
        f"batches were re-sent ({retries} retries) to the master the sentinels named "
        "next, without a restart of the workers"
    )
    fault.compare_fleet(result, worst, "nothing lost, nothing doubled")
    fault.seen_in = [
        "metricache_sync_errors_total{error=OutcomeUnknown}",
        "metricache_sync_batch_retries_total",
        "log: sync to redis ... failed",
    ]


def _offsets_equal(master: RedisNode) -> bool:
    info = redis.Redis(port=master.port).info("replication")
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return bool(replicas) and all(r["offset"] == info["master_repl_offset"] for r in replicas)


@pytest.mark.parametrize("replicas", ["min_replicas=0", "min_replicas=1"])
def test_a_master_dying_with_unreplicated_batches_loses_them_unless_min_replicas(
    replicas: str, namespace: str, fault: FaultRecord
) -> None:
    wanted = int(replicas.partition("=")[2])
    shops = [f"shop{n}" for n in range(20)]
    with sentinel() as topology:
        registry = metricache.Registry()
        orders = metricache.Counter("orders", "Orders", ["shop"], registry=registry)
        store = metricache.open_store(
            "redis", **_options(topology.url, min_replicas=wanted, replica_timeout=0.2)
        )
        syncer = Syncer(registry, store, interval=3600, namespace=namespace)
        for n, shop in enumerate(shops):
            orders.labels(shop).inc(50 * (n + 1))
        assert syncer.flush().ok
        master, replica = topology.master(), topology.replicas()[0]
        assert wait_until(lambda: _offsets_equal(master), 10)
        # Clog the link to the replica: it is frozen while the master sends it more
        # than the sockets hold, so what the master writes next waits in its memory.
        replica.pause()
        try:
            redis.Redis(port=master.port).set(b"filler", b"x" * (48 << 20))
            for shop in shops:
                orders.labels(shop).inc(7)
            confirmed = syncer.flush()
            master.kill()
        finally:
            replica.resume()
        assert confirmed.ok is (wanted == 0), confirmed.error
        promoted = topology.wait_promoted(master)
        assert promoted is replica
        # The promoted replica has what was replicated before the link was clogged.
        epoch = b"{" + namespace.encode() + b"}:epoch"
        assert redis.Redis(port=replica.port).exists(epoch), redis.Redis(port=replica.port).info(
            "replication"
        )
        topology.restart(master)  # back, empty, as a replica: WAIT can be satisfied again
        assert wait_until(lambda: syncer.flush().ok, 30, step=0.2)
        view = metricache.merged_snapshot(store, namespace=namespace)
        syncer.stop()

    sent = counted = lost = doubled = 0
    for shop in shops:
        sample = view["orders"].sample(shop)
        assert isinstance(sample, Sample)
        local = int(orders.labels(shop).get())
        sent += local
        counted += int(sample.value)
        lost += max(0, local - int(sample.value))
        doubled += max(0, int(sample.value) - local)
    if wanted:
        assert (lost, doubled) == (0, 0)
    else:
        assert (lost, doubled) == (7 * len(shops), 0)  # exactly the unreplicated batch

    fault.fault = (
        "Redis Sentinel: the master SIGKILLed while its link to the replica was clogged "
        f"(the replica frozen, 48 MB in flight), right after a sync; {replicas}"
    )
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.compared = f"one counter, {len(shops)} series"
    fault.sent = sent
    fault.counted = counted
    fault.lost = lost
    fault.doubled = doubled
    if wanted:
        fault.happened = (
            "the replica did not acknowledge the last batch within the replica timeout, "
            "so the syncer kept it; after the promotion it sent it again to the new "
            "master, once the killed node was back as a replica"
        )
        fault.allowed = "nothing lost, nothing doubled"
        fault.seen_in = [
            "metricache_sync_errors_total{error=OutcomeUnknown}",
            "log: 0 of 1 replicas acknowledged the batch",
        ]
    else:
        fault.happened = (
            "the master confirmed the last batch and died before the replica received "
            "it; the promoted replica never had it"
        )
        fault.allowed = (
            "without min_replicas: what the master confirmed but had not replicated "
            f"when it died (the last batch, {7 * len(shops)})"
        )
        fault.seen_in = ["nothing: the loss is silent (see min_replicas)"]
