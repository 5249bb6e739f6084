"""distributed_basic on a real memcached (claims, and what they cannot promise); local_only."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import metricache
import metricache_json
from metricache.export import ExportCoordinator, TickAction, Timing
from metricache_memcached.keys import safe_key
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.export_coordination.support import FlakyExporter, ManualClock
from tests.support.servers import MemcachedServer

TIMING = Timing(retention=120, safety_margin=10, export_timeout=10, interval=60, retries=0)


def sync_orders(store: metricache.Store, namespace: str, instance: str, count: float) -> None:
    registry = metricache.Registry()
    metricache.Counter("orders", "Orders", registry=registry).inc(count)
    syncer = metricache.Syncer(
        registry, store, namespace=namespace, instance_id=instance, retention=120
    )
    assert syncer.flush().ok


def coordinators(
    store: metricache.Store, namespace: str, clock: ManualClock, *exporters: FlakyExporter
) -> list[ExportCoordinator]:
    return [
        ExportCoordinator(
            store,
            [exporter],
            format="json",
            namespace=namespace,
            timing=TIMING,
            instance_id=f"web-{n}",
            clock=clock,
            registry=metricache.Registry(),
        )
        for n, exporter in enumerate(exporters)
    ]


def test_distributed_basic_claims_give_each_period_to_one_instance(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = metricache.open_store("memcached", url=memcached_server.url)
    sync_orders(store, namespace, "web-9", 7)
    clock = ManualClock(6_000.0)
    exporters = [FlakyExporter(), FlakyExporter(), FlakyExporter()]
    fleet = coordinators(store, namespace, clock, *exporters)
    assert {c.strategy for c in fleet} == {metricache.Strategy.DISTRIBUTED_BASIC}
    for period in range(100, 105):
        clock.now = period * 60.0 + 1
        # The three instances claim the period at the same moment.
        barrier = threading.Barrier(len(fleet))

        def tick(
            coordinator: ExportCoordinator, barrier: threading.Barrier = barrier
        ) -> TickAction:
            barrier.wait()
            return coordinator.tick().action

        with ThreadPoolExecutor(len(fleet)) as pool:
            actions = list(pool.map(tick, fleet))
        assert sorted(actions) == [
            TickAction.DONE_ELSEWHERE,
            TickAction.DONE_ELSEWHERE,
            TickAction.EXPORTED,
        ]
    assert sum(len(e.payloads) for e in exporters) == 5
    payload = next(e.payloads[0] for e in exporters if e.payloads)
    exported = metricache_json.parse(payload)
    assert exported["orders"].samples == (metricache.Sample((), 7.0),)


def test_distributed_basic_loses_a_period_whose_claimant_fails(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = metricache.open_store("memcached", url=memcached_server.url)
    sync_orders(store, namespace, "web-9", 1)
    clock = ManualClock(6_000.0)
    failing, healthy = FlakyExporter(failures=1), FlakyExporter()
    claimant, other = coordinators(store, namespace, clock, failing, healthy)
    assert claimant.tick().action is TickAction.GAVE_UP  # claimed, then failed (retries=0)
    assert other.tick().action is TickAction.DONE_ELSEWHERE  # nobody exports period 100
    assert healthy.calls == 0
    clock.now = 6_060.0
    assert other.tick().action is TickAction.EXPORTED  # the next period covers the data


def test_distributed_basic_exports_twice_when_a_claim_disappears(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = metricache.open_store("memcached", url=memcached_server.url)
    sync_orders(store, namespace, "web-9", 1)
    clock = ManualClock(6_000.0)
    first, second = FlakyExporter(), FlakyExporter()
    one, two = coordinators(store, namespace, clock, first, second)
    assert one.tick().action is TickAction.EXPORTED
    # Memcached evicts or restarts: the claim of period 100 is gone.
    raw = Client(("127.0.0.1", memcached_server.port))
    assert raw.delete(safe_key(f"{namespace}:export:default:claim:100".encode()), noreply=False)
    raw.close()
    assert two.tick().action is TickAction.EXPORTED
    assert (len(first.payloads), len(second.payloads)) == (1, 1)


def test_local_only_each_instance_exports_its_own_view(tmp_path: Path, namespace: str) -> None:
    store = metricache.open_store("file", path=str(tmp_path / "store"))
    sync_orders(store, namespace, "web-0", 2)
    sync_orders(store, namespace, "web-1", 5)
    clock = ManualClock(6_000.0)
    exporters = [FlakyExporter(), FlakyExporter()]
    fleet = coordinators(store, namespace, clock, *exporters)
    assert {c.strategy for c in fleet} == {metricache.Strategy.LOCAL_ONLY}
    assert [c.tick().action for c in fleet] == [TickAction.EXPORTED, TickAction.EXPORTED]
    views = [metricache_json.parse(e.payloads[0]) for e in exporters]
    assert [(v.view, v.instance) for v in views] == [
        (metricache.ViewKind.INSTANCE, "web-0"),
        (metricache.ViewKind.INSTANCE, "web-1"),
    ]
    assert [v["orders"].samples for v in views] == [
        (metricache.Sample((), 2.0),),
        (metricache.Sample((), 5.0),),
    ]
