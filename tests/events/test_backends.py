"""The backends: handler plugins, the trace recorder and tracing plugins, structured logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from metricache import hookimpl
from metricache.events import Event, EventMapping, TraceRecorder
from metricache.plugins import get_plugin_manager, plugin_infos
from metricache.registry import Registry
from metricache.snapshot import Sample

from tests.events.cli import clean_env
from tests.events.conftest import RouterFactory


def values(registry: Registry, family: str) -> dict[tuple[str, ...], float]:
    found = registry.snapshot().get(family)
    if found is None:
        return {}
    return {s.labels: s.value for s in found.samples if isinstance(s, Sample)}


def test_the_default_handler_is_the_builtin_events_plugin_loaded_by_entry_point(
    clean_plugins: None,
) -> None:
    infos = {info.name: info for info in plugin_infos()}
    assert infos["events"].distribution == "metricache"
    assert infos["events"].kinds == ("event-handler",)
    assert infos["events"].hooks == ("metricache_event_recorder", "metricache_handle_event")


def test_without_the_builtin_plugin_events_make_no_metrics(tmp_path: Path) -> None:
    code = """
import json
from metricache.events import EventRouter
from metricache.registry import Registry
registry = Registry()
router = EventRouter(registry)
router.publish("task.completed", {"namespace": "n"})
print(json.dumps(sorted(f.name for f in registry.snapshot().families)))
"""
    env = clean_env()
    names = []
    for allowed in ("memory", "memory,events"):
        env["METRICACHE_PLUGINS"] = allowed
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        names.append(json.loads(done.stdout))
    assert "task_completed" not in names[0]
    assert "task_completed" in names[1]


class Recorder:
    """An event-handler and tracing plugin that records what it gets."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.traced: list[tuple[str, str]] = []

    @hookimpl
    def metricache_handle_event(self, event: Event, registry: Registry) -> None:
        self.handled.append(event.name)

    @hookimpl
    def metricache_trace_event(self, event: Event, mapping: EventMapping) -> None:
        self.traced.append((event.name, mapping.priority.value))


class Broken:
    """A plugin whose event hooks always raise."""

    @hookimpl
    def metricache_handle_event(self, event: Event) -> None:
        raise RuntimeError("handler bug")

    @hookimpl
    def metricache_trace_event(self, event: Event) -> None:
        raise KeyError("tracer bug")


def test_a_failing_plugin_is_counted_and_the_others_still_run(
    clean_plugins: None,
    make_router: RouterFactory,
    registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder, broken = Recorder(), Broken()
    manager = get_plugin_manager()
    manager.register(recorder, name="recorder")
    manager.register(broken, name="broken")
    router = make_router(
        mappings=[EventMapping(event="task.*", backends=["metrics", "traces"], priority="high")]
    )
    with caplog.at_level(logging.DEBUG, logger="metricache.events"):
        for _ in range(3):
            assert router.publish("task.completed", {"namespace": "n"}) is True
        assert router.flush(timeout=30)
    assert recorder.handled == ["task.completed"] * 3
    assert recorder.traced == [("task.completed", "high")] * 3
    assert values(registry, "task_completed") == {("n", "", ""): 3}  # the built-in handler ran
    assert values(registry, "metricache_event_handler_errors") == {
        ("metrics", "broken"): 3,
        ("traces", "broken"): 3,
    }
    stats = router.stats().backends
    assert (stats["metrics"].errors, stats["traces"].errors) == (3, 3)
    assert (stats["metrics"].delivered, stats["traces"].delivered) == (3, 3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # once per backend, plugin and error type; then debug
    assert "plugin 'broken' failed: RuntimeError: handler bug" in warnings[0].getMessage()


def test_the_trace_recorder_keeps_only_the_latest_events(make_router: RouterFactory) -> None:
    router = make_router(
        mappings=[EventMapping(event="step.*", backends=["traces"])], trace_capacity=5
    )
    for i in range(12):
        router.publish(f"step.{i}", {"i": i})
    assert router.flush(timeout=30)
    records = router.traces.records()
    assert [r.event.name for r in records] == [f"step.{i}" for i in range(7, 12)]
    assert (router.traces.recorded, router.traces.evicted, len(router.traces)) == (12, 7, 5)
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        TraceRecorder(0)


def test_logs_carry_the_event_in_structured_extra_fields(
    make_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    router = make_router()  # the defaults log failures at warning level
    with caplog.at_level(logging.INFO, logger="metricache.events"):
        router.publish("task.failed", {"namespace": "billing", "task_id": "t-9", "duration": 2.0})
        router.publish("task.completed", {"namespace": "billing"})  # not logged by default
        assert router.flush(timeout=30)
    records = [r for r in caplog.records if r.name == "metricache.events"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "event task.failed namespace='billing' task_id='t-9' duration=2.0"
    )
    assert record.event_name == "task.failed"  # type: ignore[attr-defined]
    assert record.event_payload == {  # type: ignore[attr-defined]
        "namespace": "billing",
        "task_id": "t-9",
        "duration": 2.0,
    }
    assert record.event_priority == "high"  # type: ignore[attr-defined]
    assert record.event_metadata == {"log_level": "warning"}  # type: ignore[attr-defined]
    assert isinstance(record.event_timestamp, float)  # type: ignore[attr-defined]


def test_closing_drains_the_queues_and_counts_what_arrives_later(
    make_router: RouterFactory, registry: Registry
) -> None:
    router = make_router(mappings=[EventMapping(event="e", backends=["metrics", "traces"])])
    for _ in range(50):
        router.publish("e")
    router.close(timeout=30)
    assert router.traces.recorded == 50
    router.publish("e")  # metrics still work; the traces queue is closed
    assert values(registry, "metricache_events_dropped") == {("normal", "traces"): 1}
    assert router.stats().backends["metrics"].delivered == 51


class FastAndSlow:
    """A plugin with a recorder for 'fast.*' events and an Event handler for the rest."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, object]] = []
        self.handled: list[str] = []
        self.asked: list[str] = []

    @hookimpl
    def metricache_event_recorder(self, event_name: str, registry: Registry) -> object:
        self.asked.append(event_name)
        if event_name == "fast.broken":
            raise RuntimeError("no recorder today")
        if not event_name.startswith("fast."):
            return None
        return lambda payload: self.recorded.append(dict(payload))

    @hookimpl
    def metricache_handle_event(self, event: Event, registry: Registry) -> None:
        self.handled.append(event.name)


def test_a_recorder_replaces_its_plugins_handler_for_the_names_it_covers(
    clean_plugins: None, make_router: RouterFactory, registry: Registry
) -> None:
    plugin = FastAndSlow()
    get_plugin_manager().register(plugin, name="fast-and-slow")
    router = make_router(mappings=[EventMapping(event="*", backends=["metrics"])])
    for _ in range(3):
        router.publish("fast.path", {"n": 1})
        router.publish("slow.path", {"n": 2})
    router.publish("fast.broken")
    assert plugin.recorded == [{"n": 1}] * 3
    assert plugin.handled == ["slow.path"] * 3 + ["fast.broken"]  # no recorder: Events
    assert sorted(set(plugin.asked)) == ["fast.broken", "fast.path", "slow.path"]
    assert plugin.asked.count("fast.path") == 1  # asked once per name
    assert values(registry, "metricache_event_handler_errors") == {
        ("metrics", "fast-and-slow"): 1.0
    }
    # A plugin registered later is asked too: the router notices the plugins changed.
    late = FastAndSlow()
    get_plugin_manager().register(late, name="late")
    router.publish("fast.path", {"n": 3})
    assert late.recorded == [{"n": 3}]
    assert plugin.recorded[-1] == {"n": 3}
