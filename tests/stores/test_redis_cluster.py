"""The Redis store on a Redis Cluster (3 masters, 3 replicas, started on loopback ports).

Series spread over the slots by shard hash tags, every script call within one slot,
batches split per master and applied exactly once, a reader that asks every master
and never uses ``KEYS``, a shard that lost its data re-sent alone, and batches that
count only once replicas acknowledged them (``min_replicas``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import metricache
import pytest
import redis
from metricache.errors import StoreError
from metricache.snapshot import Sample
from metricache.sync.keyspace import Keyspace, hash_tag, series_id
from metricache.sync.syncer import Syncer
from metricache_conformance.topologies import ClusterTopology, RedisNode
from metricache_redis.topology import Kind, parse_url
from redis.crc import key_slot

from tests.support.topologies import cluster


@pytest.fixture(scope="module")
def topology() -> Iterator[ClusterTopology]:
    """One cluster for the module; tests that break it restore it before they end."""
    with cluster() as found:
        yield found


def client(node: RedisNode) -> Any:
    """A plain redis-py client of one node (the backdoor: what really is there)."""
    return redis.Redis(port=node.port)


def sync_counters(
    url: str, namespace: str, series: int, **options: object
) -> tuple[metricache.Counter, Syncer]:
    registry = metricache.Registry(cardinality_limit=series + 100)
    counter = metricache.Counter("jobs", "Jobs", ["id"], registry=registry)
    for n in range(series):
        counter.labels(str(n)).inc(n % 7 + 1)
    store = metricache.open_store("redis", url=url, **options)
    syncer = Syncer(registry, store, interval=3600, namespace=namespace)
    return counter, syncer


def totals(view: metricache.Snapshot) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in view["jobs"].samples if isinstance(s, Sample)}


def local(counter: metricache.Counter, series: int) -> dict[tuple[str, ...], float]:
    return {(str(n),): counter.labels(str(n)).get() for n in range(series)}


def master_of(topology: ClusterTopology, key: bytes) -> RedisNode:
    """The master that serves the slot of ``key`` (as CLUSTER NODES says)."""
    slot = key_slot(key)
    for entry in topology.cluster_nodes():
        if entry["role"] != "master" or entry["failed"]:
            continue
        for span in entry["slots"].split():
            if span.startswith("["):
                continue
            low, _, high = span.partition("-")
            if int(low) <= slot <= int(high or low):
                return topology.node(int(entry["port"]))
    raise AssertionError(f"no master serves slot {slot}")


def test_urls_name_the_cluster_and_the_sentinels_and_mask_passwords() -> None:
    found = parse_url("redis+cluster://u:s3cret@10.0.0.1:7000,10.0.0.2")
    assert found.kind is Kind.CLUSTER
    assert found.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379))
    assert (found.username, found.password) == ("u", "s3cret")
    sentinel = parse_url("redis+sentinel://:pw@h1:26380,[::1]/mymaster/2")
    assert sentinel.kind is Kind.SENTINEL
    assert sentinel.nodes == (("h1", 26380), ("::1", 26379))
    assert (sentinel.service, sentinel.db, sentinel.password) == ("mymaster", 2, "pw")
    store = metricache.open_store("redis", url="redis+cluster://:s3cret@127.0.0.1:1")
    assert store.describe() == "redis redis+cluster://:***@127.0.0.1:1"
    for bad in (
        "redis+cluster://:s3cret@h:1/3",
        "redis+sentinel://:s3cret@h:1",
        "redis+sentinel://:s3cret@h:1,h:1/m",
        "redis+fleet://:s3cret@h:1",
    ):
        with pytest.raises(metricache.errors.ConfigError) as problem:
            metricache.open_store("redis", url=bad)
        assert "s3cret" not in str(problem.value)
        assert "***" in str(problem.value)


def test_series_spread_over_every_master_one_slot_per_shard(
    topology: ClusterTopology, namespace: str
) -> None:
    counter, syncer = sync_counters(topology.url, namespace, 3000)
    assert syncer.flush().ok
    keyspace = Keyspace(namespace)
    per_master: dict[int, int] = {}
    slots_of_shard: dict[str, set[int]] = {}
    for node in topology.masters():
        keys = list(client(node).scan_iter(match=f"{{{namespace}/*", count=1000))
        per_master[node.port] = len(keys)
        for key in keys:
            tag = hash_tag(key).decode()
            slots_of_shard.setdefault(tag, set()).add(key_slot(key))
    # 256 shards (and their markers) over 3 masters: every master has a fair share.
    assert len(per_master) == 3
    assert all(count > 3000 / 3 * 0.6 for count in per_master.values()), per_master
    assert len(slots_of_shard) > 200
    assert all(len(slots) == 1 for slots in slots_of_shard.values())
    # The epoch and the registrations share the control tag: one slot, one master.
    control = [keyspace.epoch(), keyspace.families(keyspace.generation())]
    assert len({key_slot(k) for k in control}) == 1
    view = metricache.merged_snapshot(syncer.store, namespace=namespace)
    assert totals(view) == local(counter, 3000)
    syncer.stop()


def test_a_merged_read_asks_every_master_and_never_uses_keys(
    topology: ClusterTopology, namespace: str
) -> None:
    counter, syncer = sync_counters(topology.url, namespace, 2000)
    assert syncer.flush().ok
    masters = topology.masters()
    for node in masters:
        client(node).config_resetstat()
    reader = metricache.open_store("redis", url=topology.url)
    view = metricache.merged_snapshot(reader, namespace=namespace)
    assert totals(view) == local(counter, 2000)
    for node in masters:
        stats = client(node).info("commandstats")
        assert stats.get("cmdstat_evalsha", {}).get("calls", 0) > 0, node.port
        assert "cmdstat_keys" not in stats
        assert "cmdstat_scan" not in stats
    syncer.stop()


def test_a_master_frozen_mid_batch_leaves_it_in_doubt_and_the_retry_applies_it_once(
    topology: ClusterTopology, namespace: str
) -> None:
    series = 1000
    counter, syncer = sync_counters(topology.url, namespace, series, socket_timeout=0.3)
    assert syncer.flush().ok
    keyspace = Keyspace(namespace)
    control = master_of(topology, keyspace.epoch())
    frozen = next(n for n in topology.masters() if n is not control)
    for n in range(series):
        counter.labels(str(n)).inc(10)
    frozen.pause()  # its calls go out and wait in its socket; their answers never come
    try:
        failed = syncer.flush()
    finally:
        frozen.resume()  # it now applies what it had received
    assert not failed.ok
    assert "OutcomeUnknown" in (failed.error or "")
    again = syncer.flush()  # the same batch as a retry: what ran is recognised
    assert again.ok, again.error
    view = metricache.merged_snapshot(syncer.store, namespace=namespace)
    assert totals(view) == local(counter, series)
    retries = syncer.registry.snapshot()["metricache_sync_batch_retries"].samples
    assert sum(s.value for s in retries if isinstance(s, Sample)) >= 1
    syncer.stop()


def test_a_shard_that_lost_its_data_is_checked_and_resent_alone(
    topology: ClusterTopology, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    series = 1500
    counter, syncer = sync_counters(topology.url, namespace, series)
    assert syncer.flush().ok
    keyspace = Keyspace(namespace)
    control = master_of(topology, keyspace.epoch())
    flushed = next(n for n in topology.masters() if n is not control)
    lost = [
        n
        for n in range(series)
        if master_of(topology, keyspace.series(series_id("jobs", (str(n),)))) is flushed
    ]
    assert 0 < len(lost) < series
    client(flushed).flushall()  # its replica follows: the shards it serves lose their data
    # Half the series change; the others (in every shard) are only held.
    for n in range(0, series, 2):
        counter.labels(str(n)).inc(100)
    first = syncer.flush()
    assert first.ok, first.error
    assert first.resent_totals
    second = syncer.flush()
    assert second.ok, second.error
    view = metricache.merged_snapshot(syncer.store, namespace=namespace)
    assert totals(view) == local(counter, series)  # held-only series of lost shards too
    assert "lost the series of" in caplog.text
    assert "has lost its data" not in caplog.text  # the epoch's shard was untouched
    # Only what lived there went again, whole; the rest of the store was not re-checked
    # in full (no registration again, no refresh of every series).
    resent = first.series + second.series
    assert resent < len(lost) + series // 2 + 100
    syncer.stop()


def test_with_more_replicas_asked_than_exist_batches_stay_unconfirmed_and_apply_once(
    topology: ClusterTopology, namespace: str
) -> None:
    counter, syncer = sync_counters(
        topology.url, namespace, 200, min_replicas=2, replica_timeout=0.1
    )
    reports = [syncer.flush() for _ in range(3)]
    assert not any(r.ok for r in reports)
    assert all("1 of 2 replicas acknowledged" in (r.error or "") for r in reports)
    # Each master applied the batch once, however many times it was sent again.
    view = metricache.merged_snapshot(syncer.store, namespace=namespace)
    assert totals(view) == local(counter, 200)
    syncer.stop(timeout=1)


def test_a_cluster_that_cannot_be_reached_is_unavailable_not_an_error_in_the_app() -> None:
    store = metricache.open_store(
        "redis", url="redis+cluster://127.0.0.1:1", socket_timeout=0.2, connect_timeout=0.2
    )
    with pytest.raises(StoreError):
        store.ping()
    registry = metricache.Registry()
    metricache.Counter("x", "X", registry=registry).inc()
    report = Syncer(registry, store, interval=3600).flush()
    assert not report.ok


def test_a_slot_migrating_mid_sync_is_waited_for_redirected_then_moved(
    topology: ClusterTopology, namespace: str
) -> None:
    series = 600
    counter, syncer = sync_counters(topology.url, namespace, series, socket_timeout=0.5)
    assert syncer.flush().ok
    keyspace = Keyspace(namespace)
    shard = keyspace.shard(series_id("jobs", ("0",)))
    slot = key_slot(keyspace.shard_epoch(shard))
    source = master_of(topology, keyspace.shard_epoch(shard))
    target = next(n for n in topology.masters() if n is not source)
    source_id, target_id = topology.node_id(source), topology.node_id(target)
    client(target).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    client(source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    keys = client(source).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10_000)
    assert len(keys) >= 2

    def migrate(some: list[bytes]) -> None:
        client(source).execute_command(
            "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *some
        )

    migrate(keys[: len(keys) // 2])
    for n in range(series):
        counter.labels(str(n)).inc(10)
    # The shard's keys are split between the two masters: its call is answered
    # TRYAGAIN until the batch gives up; the other shards were applied.
    split = syncer.flush()
    assert not split.ok
    assert "TryAgainError" in (split.error or "")
    migrate(keys[len(keys) // 2 :])
    # Every key moved, the slot still migrating: the source answers ASK, and the call
    # goes to the target after ASKING. The retry applies only what had not run.
    assert syncer.flush().ok
    for node in (target, source, *[n for n in topology.masters() if n not in (source, target)]):
        client(node).execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    for n in range(series):
        counter.labels(str(n)).inc(1)
    assert syncer.flush().ok  # the slot's calls are now MOVED to the target
    view = metricache.merged_snapshot(syncer.store, namespace=namespace)
    assert totals(view) == local(counter, series)
    assert client(target).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) >= len(keys)
    syncer.stop()
