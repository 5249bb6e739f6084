"""Priority through the router: a blocked backend sheds low events, never critical ones."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from metricache import hookimpl
from metricache.events import Event, EventMapping
from metricache.plugins import get_plugin_manager
from metricache.registry import Registry
from metricache.snapshot import Sample

from tests.events.conftest import RouterFactory


class BlockingTracer:
    """A tracing plugin that blocks on its first event until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []

    @hookimpl
    def metricache_trace_event(self, event: Event, mapping: EventMapping) -> None:
        self.seen.append(event.name)
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(60), "the test never released the tracer"


@pytest.fixture
def tracer(clean_plugins: None) -> Iterator[BlockingTracer]:
    plugin = BlockingTracer()
    get_plugin_manager().register(plugin, name="blocking-tracer")
    yield plugin
    plugin.release.set()


def dropped(registry: Registry) -> dict[tuple[str, ...], float]:
    family = registry.snapshot().get("metricache_events_dropped")
    if family is None:
        return {}
    return {s.labels: s.value for s in family.samples if isinstance(s, Sample)}


MAPPINGS = [
    EventMapping(event="low.*", backends=["traces"], priority="low"),
    EventMapping(event="normal.*", backends=["traces"], priority="normal"),
    EventMapping(event="critical.*", backends=["traces"], priority="critical"),
]


def test_critical_events_are_delivered_while_low_ones_are_shed_and_counted(
    make_router: RouterFactory, registry: Registry, tracer: BlockingTracer
) -> None:
    router = make_router(mappings=MAPPINGS, queue_size=10)
    router.publish("low.first")
    assert tracer.entered.wait(30)  # the worker holds low.first; the queue is empty
    for i in range(10):
        router.publish(f"low.{i}")  # fills the queue
    for i in range(5):
        router.publish(f"critical.{i}")  # each displaces the newest low
    for i in range(20):
        router.publish(f"low.late{i}")  # nothing below low: shed on arrival
    tracer.release.set()
    assert router.flush(timeout=30)

    assert tracer.seen == [
        "low.first",
        *(f"critical.{i}" for i in range(5)),
        *(f"low.{i}" for i in range(5)),
    ]
    assert dropped(registry) == {("low", "traces"): 25.0}
    traces = router.stats().backends["traces"]
    assert (traces.routed, traces.delivered, traces.dropped) == (36, 11, 25)
    assert traces.dropped_by_priority == {"low": 25, "normal": 0, "high": 0, "critical": 0}
    assert [r.event.name for r in router.traces.records()] == tracer.seen


def test_a_critical_event_that_cannot_be_queued_is_counted_and_logged_at_error(
    make_router: RouterFactory,
    registry: Registry,
    tracer: BlockingTracer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = make_router(mappings=MAPPINGS, queue_size=2, critical_wait=0.01)
    router.publish("critical.first")
    assert tracer.entered.wait(30)
    router.publish("normal.a")
    router.publish("critical.a")
    router.publish("critical.b")  # displaces normal.a
    with caplog.at_level(logging.ERROR, logger="metricache.events"):
        router.publish("critical.c")  # full of critical events: waits, then refused
    tracer.release.set()
    assert router.flush(timeout=30)

    assert tracer.seen == ["critical.first", "critical.a", "critical.b"]
    assert dropped(registry) == {("normal", "traces"): 1.0, ("critical", "traces"): 1.0}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "critical event 'critical.c' dropped" in errors[0].getMessage()


class BlockingHandler(logging.Handler):
    """A log handler as slow as a remote log service that hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.unblock = threading.Event()
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.names.append(record.event_name)  # type: ignore[attr-defined]
        if not self.entered.is_set():
            self.entered.set()
            self.unblock.wait(60)


def test_a_hanging_log_handler_never_blocks_the_publisher_or_the_metrics(
    make_router: RouterFactory, registry: Registry
) -> None:
    logger = logging.getLogger("tests.events.hanging")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = BlockingHandler()
    logger.addHandler(handler)
    try:
        router = make_router(
            mappings=[
                EventMapping(event="job.*", backends=["metrics", "logs"], priority="low"),
                EventMapping(event="alarm", backends=["logs"], priority="high"),
            ],
            queue_size=3,
            logger=logger,
        )
        router.publish("job.completed")
        assert handler.entered.wait(30)
        for _ in range(100):
            router.publish("job.completed")  # returns at once: metrics now, logs shed
        router.publish("alarm")
        counted = registry.snapshot()["job_completed"].samples[0]
        assert isinstance(counted, Sample)
        assert counted.value == 101
        handler.unblock.set()
        assert router.flush(timeout=30)
    finally:
        handler.unblock.set()
        logger.removeHandler(handler)
    assert handler.names == ["job.completed", "alarm", "job.completed", "job.completed"]
    assert dropped(registry) == {("low", "logs"): 98.0}
