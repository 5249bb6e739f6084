"""Publishing from many threads while the mappings change, and routers across fork."""

from __future__ import annotations

import os
import threading
import time

import pytest
from metricache.events import EventMapping
from metricache.registry import Registry
from metricache.snapshot import Sample

from tests.events.conftest import RouterFactory

TO_METRICS = [EventMapping(event="job.completed", backends=["metrics"])]
TO_TRACES = [EventMapping(event="job.*", backends=["traces"])]


def test_each_event_sees_one_whole_table_while_another_thread_swaps_them(
    make_router: RouterFactory, registry: Registry
) -> None:
    publishers, per_thread = 4, 5_000
    total = publishers * per_thread
    # Room for every event: this test is about tables, not shedding.
    router = make_router(mappings=TO_METRICS, trace_capacity=total, queue_size=total)
    done = threading.Event()
    swaps = [0]

    def swap() -> None:
        while not done.is_set():
            router.replace(TO_TRACES)
            time.sleep(0.0001)
            router.replace(TO_METRICS)
            time.sleep(0.0001)
            swaps[0] += 2

    def publish() -> None:
        for _ in range(per_thread):
            router.publish("job.completed", {"namespace": "n"})

    swapper = threading.Thread(target=swap)
    threads = [threading.Thread(target=publish) for _ in range(publishers)]
    swapper.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    swapper.join()
    assert router.flush(timeout=60)

    stats = router.stats()
    metrics, traces = stats.backends["metrics"], stats.backends["traces"]
    assert stats.published == stats.kept == total
    # Every event went to exactly one of the two backends: no event saw half a table.
    assert metrics.routed + traces.routed == total
    assert metrics.routed > 0, swaps[0]
    assert traces.routed > 0, swaps[0]
    counted = registry.snapshot()["job_completed"].samples[0]
    assert isinstance(counted, Sample)
    assert counted.value == metrics.routed
    assert traces.dropped == 0
    assert router.traces.recorded == traces.routed


def test_concurrent_map_calls_lose_no_mapping(make_router: RouterFactory) -> None:
    router = make_router(mappings=[])

    def add(prefix: str) -> None:
        for i in range(300):
            router.map(f"{prefix}.{i}", ["metrics"])

    threads = [threading.Thread(target=add, args=(p,)) for p in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(router.mappings) == 900
    assert all(router.routes_to_metrics(f"{p}.{i}") for p in "abc" for i in range(300))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_gets_its_own_queues_and_workers(
    make_router: RouterFactory,
) -> None:
    router = make_router(mappings=[EventMapping(event="e.*", backends=["metrics", "traces"])])
    router.publish("e.parent")
    assert router.flush(timeout=30)
    pid = os.fork()
    if pid == 0:  # the child: publish, flush, report by exit status
        status = 1
        try:
            for _ in range(10):
                router.publish("e.child")
            if router.flush(timeout=30) and router.traces.recorded == 11:
                status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert router.traces.recorded == 1  # the child's events stayed in the child
