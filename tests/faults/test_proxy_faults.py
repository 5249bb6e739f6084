"""The network between the syncer and the store loses replies, stalls and resets connections.

Two instances (each with an application thread that keeps counting) sync many times
through a :class:`~tests.faults.chaos_proxy.ChaosProxy` that breaks connections at
random points. Redis promises exactly once: the totals must be exact. Memcached
(``distributed_basic``) promises at least once: nothing may be lost, and only an
increment whose outcome was unknown (its request went out, no answer came back) may
be counted twice, at most by its own amount.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import metricache
import pytest
from metricache.config import Seconds
from metricache.snapshot import HistogramSample, Sample
from metricache.sync.keyspace import Keyspace, series_id
from metricache.sync.syncer import Syncer
from metricache_memcached import MemcachedStore
from metricache_memcached.store import MemcachedOptions

from tests.faults.chaos_proxy import ChaosProxy
from tests.faults.fleet import compare
from tests.faults.records import FaultRecord
from tests.faults.test_redis_faults import HOT_PATH_BOUND
from tests.faults.worker import App
from tests.support.servers import MemcachedServer, RedisServer

SOCKET_TIMEOUT = 0.2
STALL = 2 * SOCKET_TIMEOUT


class InDoubtRecordingStore(MemcachedStore):
    """The memcached store, remembering every increment whose outcome was unknown."""

    def __init__(self, options: MemcachedOptions) -> None:
        super().__init__(options)
        self.in_doubt: Counter[bytes] = Counter()

    def increment_in_doubt(self, key: bytes, amount: int) -> None:
        self.in_doubt[key] += amount


class Instance:
    """One application (a counting thread of its own) and its syncer."""

    def __init__(self, store: metricache.Store, namespace: str, name: str) -> None:
        self.registry = metricache.Registry()
        self.app = App(self.registry, threads=1, labels=4)
        self.store = store
        self.syncer = Syncer(
            self.registry, store, interval=3600, namespace=namespace, instance_id=name
        )

    def final(self) -> dict[str, Any]:
        """Stop counting, sync until confirmed; return the tallies as a worker would."""
        self.app.finish()
        for _ in range(50):
            if self.syncer.flush().ok:
                break
        else:
            raise AssertionError(f"{self.syncer.instance.id} never synced after the faults")
        tally: Counter[str] = Counter()
        observed: Counter[str] = Counter()
        for counts in self.app.tallies:
            tally.update(counts)
        for counts in self.app.observed:
            observed.update(counts)
        return {"tally": dict(tally), "observed": dict(observed)}

    def self_total(self, prefix: str) -> float:
        total = 0.0
        for family in self.registry.snapshot().families:
            for sample in family.samples:
                if isinstance(sample, Sample):
                    key = family.name + "".join(f"{{{v}}}" for v in sample.labels)
                    if key.startswith(prefix):
                        total += sample.value
        return total


def _run(instances: list[Instance], proxy: ChaosProxy, rounds: int) -> int:
    for instance in instances:
        assert instance.syncer.flush().ok  # scripts loaded, epoch known: a clean start
        instance.app.start()
    proxy.arm()
    failed = 0
    for _ in range(rounds):
        for instance in instances:
            if not instance.syncer.flush().ok:
                failed += 1
        time.sleep(0.002)
    proxy.disarm()
    return failed


@pytest.fixture
def sync_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="metricache")
    return caplog


def test_redis_behind_a_proxy_that_drops_stalls_and_resets_applies_every_batch_once(
    redis_server: RedisServer,
    namespace: str,
    fault: FaultRecord,
    sync_logs: pytest.LogCaptureFixture,
) -> None:
    proxy = ChaosProxy(
        redis_server.port,
        {"reset_request": 0.04, "drop_reply": 0.04, "stall_reply": 0.02, "reset_reply": 0.04},
        seed=11,
        stall=STALL,
    )
    url = f"redis://127.0.0.1:{proxy.port}/0"
    instances = [
        Instance(
            metricache.open_store(
                "redis", url=url, socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT
            ),
            namespace,
            f"proxied-{n}",
        )
        for n in range(2)
    ]
    try:
        failed = _run(instances, proxy, rounds=150)
        finals = [i.final() for i in instances]
    finally:
        proxy.close()
    reader = metricache.open_store("redis", url=redis_server.url)
    result = compare(metricache.merged_snapshot(reader, namespace=namespace), finals)

    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    worst = max(w for i in instances for w in i.app.worst)
    assert worst < HOT_PATH_BOUND
    assert not [e for i in instances for e in i.app.errors]
    assert proxy.injected["drop_reply"] > 0
    assert proxy.injected["stall_reply"] > 0
    assert proxy.injected["reset_reply"] > 0
    assert proxy.injected["reset_request"] > 0
    retries = sum(i.self_total("metricache_sync_batch_retries") for i in instances)
    unknown = sum(i.self_total("metricache_sync_errors{OutcomeUnknown}") for i in instances)
    errors = sum(i.self_total("metricache_sync_errors") for i in instances)
    assert retries > 0
    # Every failure was an unknown outcome (the request may have been applied): no other
    # error, and never a half-applied batch.
    assert errors == unknown >= failed > 0
    assert any("failed: OutcomeUnknown" in r.getMessage() for r in sync_logs.records)

    injected = ", ".join(
        f"{proxy.injected[k]} {k.replace('_', ' ')}" for k in sorted(proxy.injected)
    )
    fault.fault = f"a TCP proxy breaks 2 instances' connections to Redis at random, {300} syncs"
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        f"{injected}; {failed} syncs failed with an unknown outcome, their batches were "
        f"re-sent unchanged ({int(retries)} re-sends)"
    )
    fault.compare_fleet(result, worst, "nothing lost, nothing doubled")
    fault.seen_in = [
        "metricache_sync_errors_total{error=OutcomeUnknown}",
        "metricache_sync_batch_retries_total",
        "log: sync to redis ... failed",
    ]


def _series_keys(
    namespace: str, family: str, kinds: Iterable[str], parts: list[str]
) -> list[bytes]:
    keyspace = Keyspace(namespace)
    return [keyspace.part(series_id(family, (kind,)), p) for kind in kinds for p in parts]


def test_memcached_behind_a_proxy_that_drops_stalls_and_resets_doubles_only_what_was_in_doubt(
    memcached_server: MemcachedServer,
    namespace: str,
    fault: FaultRecord,
    sync_logs: pytest.LogCaptureFixture,
) -> None:
    proxy = ChaosProxy(
        memcached_server.port,
        {"reset_request": 0.01, "drop_reply": 0.01, "stall_reply": 0.004, "reset_reply": 0.01},
        seed=5,
        stall=STALL,
    )
    stores = [
        InDoubtRecordingStore(
            MemcachedOptions(
                url=f"memcached://127.0.0.1:{proxy.port}",
                timeout=Seconds(SOCKET_TIMEOUT),
                connect_timeout=Seconds(SOCKET_TIMEOUT),
            )
        )
        for _ in range(2)
    ]
    instances = [Instance(s, namespace, f"proxied-{n}") for n, s in enumerate(stores)]
    try:
        failed = _run(instances, proxy, rounds=100)
        finals = [i.final() for i in instances]
    finally:
        proxy.close()
    reader = metricache.open_store("memcached", url=memcached_server.url)
    view = metricache.merged_snapshot(reader, namespace=namespace)
    result = compare(view, finals)
    kinds = instances[0].app.kinds
    in_doubt: Counter[bytes] = Counter()
    for store in stores:
        in_doubt.update(store.in_doubt)

    # Per counter series: never less than counted, at most the increments in doubt more.
    doubled = 0
    bound = 0
    for kind in kinds:
        expected = sum(f["tally"].get(kind, 0) for f in finals)
        sample = view["work_done"].sample(kind)
        assert isinstance(sample, Sample)
        excess = int(sample.value) - expected
        (key,) = _series_keys(namespace, "work_done", [kind], ["i"])
        assert 0 <= excess <= in_doubt[key], (kind, excess, in_doubt[key])
        doubled += excess
        bound += in_doubt[key]
        # Histogram counts: the sum of the bucket keys, each doubled at most by its doubt.
        histogram = view["work_size"].sample(kind)
        assert isinstance(histogram, HistogramSample)
        observed = sum(
            n for f in finals for k, n in f["observed"].items() if k.partition("|")[0] == kind
        )
        bucket_keys = _series_keys(namespace, "work_size", [kind], ["b0", "b1", "b2", "b3"])
        excess = histogram.count - observed
        assert 0 <= excess <= sum(in_doubt[k] for k in bucket_keys)
        doubled += excess
        bound += sum(in_doubt[k] for k in bucket_keys)
    assert result.lost == 0, result.mismatches
    worst = max(w for i in instances for w in i.app.worst)
    assert worst < HOT_PATH_BOUND
    assert not [e for i in instances for e in i.app.errors]
    assert sum(proxy.injected.values()) > 0
    partial = sum(i.self_total("metricache_sync_errors{PartialApply}") for i in instances)
    assert partial > 0
    assert any("failed" in r.getMessage() for r in sync_logs.records)

    injected = ", ".join(
        f"{proxy.injected[k]} {k.replace('_', ' ')}" for k in sorted(proxy.injected)
    )
    fault.fault = f"a TCP proxy breaks 2 instances' connections to memcached at random, {200} syncs"
    fault.store = "memcached"
    fault.strategy = "distributed_basic"
    fault.happened = (
        f"{injected}; {failed} syncs failed ({int(partial)} half way), "
        f"{sum(1 for v in in_doubt.values() if v)} keys had increments in doubt "
        f"(amount {bound:,} on the compared series)"
    )
    fault.sent = result.sent + result.observations
    fault.counted = result.counted + sum(
        s.count for s in view["work_size"].samples if isinstance(s, HistogramSample)
    )
    fault.compared = (
        f"{result.sent:,} counter increments and {result.observations:,} histogram "
        "observations, per series"
    )
    fault.lost = result.lost
    fault.doubled = doubled
    fault.allowed = f"nothing lost; at most the {bound:,} increments in doubt doubled"
    fault.worst_call_ms = round(worst * 1000, 2)
    fault.seen_in = [
        "metricache_sync_errors_total{error=PartialApply|OutcomeUnknown}",
        "log: sync to memcached ... failed",
    ]
