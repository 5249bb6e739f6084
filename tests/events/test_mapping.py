"""Mappings: validation, which mapping applies to a name, the router's queries."""

from __future__ import annotations

import attrs
import pytest
from metricache.events import (
    DEFAULT_MAPPINGS,
    Backend,
    EventMapping,
    MappingTable,
    Priority,
)
from metricache.events.defaults import LIFECYCLE_ENTITIES
from metricache.events.rules import STATUSES

from tests.events.conftest import RouterFactory


def test_a_mapping_is_frozen_and_takes_names_for_backends_and_priority() -> None:
    mapping = EventMapping(
        event="task.*",
        backends=["metrics", "logs", "metrics"],
        sampling_rate=0.25,
        priority="high",
        metadata={"team": "billing", "log_level": "warning"},
    )
    assert mapping.backends == (Backend.METRICS, Backend.LOGS)  # repeats dropped, order kept
    assert mapping.priority is Priority.HIGH
    assert mapping.sampling_rate == 0.25
    assert mapping.is_glob
    metadata: dict[str, object] = dict(mapping.metadata)
    assert metadata == {"team": "billing", "log_level": "warning"}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        mapping.priority = Priority.LOW  # type: ignore[misc]
    with pytest.raises(TypeError):
        mapping.metadata["team"] = "x"  # type: ignore[index]
    assert hash(mapping) == hash(attrs.evolve(mapping))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event": ""}, "event: expected an event name or glob"),
        ({"event": "task completed"}, "event: expected an event name or glob"),
        ({"event": "x", "backends": ["metric"]}, "backends: unknown backend 'metric'"),
        ({"event": "x", "backends": 3}, "backends: expected a list of backends"),
        ({"event": "x", "sampling_rate": 1.5}, "sampling_rate: expected a number from 0 to 1"),
        ({"event": "x", "sampling_rate": -0.1}, "sampling_rate: expected a number from 0 to 1"),
        ({"event": "x", "sampling_rate": True}, "sampling_rate: expected a number from 0 to 1"),
        ({"event": "x", "priority": "urgent"}, "priority: unknown priority 'urgent'"),
        ({"event": "x", "metadata": {"a": [1]}}, "expected a string, number or boolean"),
    ],
)
def test_an_invalid_mapping_names_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        EventMapping(**fields)  # type: ignore[arg-type]


def test_the_last_matching_mapping_applies_globs_included() -> None:
    table = MappingTable(
        [
            EventMapping(event="task.completed", backends=["metrics"]),
            EventMapping(event="task.*", backends=["traces"]),
            EventMapping(event="*.failed", backends=["logs"]),
            EventMapping(event="step.completed", backends=["metrics", "traces"]),
        ]
    )
    lookup = table.lookup
    assert lookup("task.completed").event == "task.*"  # type: ignore[union-attr]
    assert lookup("task.failed").event == "*.failed"  # type: ignore[union-attr]
    assert lookup("step.failed").event == "*.failed"  # type: ignore[union-attr]
    assert lookup("step.completed").event == "step.completed"  # type: ignore[union-attr]
    assert lookup("workflow.started") is None
    assert lookup("TASK.completed") is None  # case-sensitive
    # Mapping a pattern again replaces it and moves it to the end.
    again = table.with_mappings([EventMapping(event="task.completed", backends=["logs"])])
    assert again.lookup("task.completed").backends == (Backend.LOGS,)  # type: ignore[union-attr]
    assert len(again) == 4
    assert [m.event for m in again.without(["task.*"]).mappings] == [
        "*.failed",
        "step.completed",
        "task.completed",
    ]


def test_defaults_cover_the_task_step_and_workflow_lifecycle(make_router: RouterFactory) -> None:
    router = make_router()
    assert router.mappings == DEFAULT_MAPPINGS
    for entity in LIFECYCLE_ENTITIES:
        for status in STATUSES:
            name = f"{entity}.{status}"
            assert router.routes_to_metrics(name), name
            assert router.routes_to_traces(name), name
            assert router.mapping_for(name).sampling_rate == 1.0  # type: ignore[union-attr]
        assert router.routes_to_logs(f"{entity}.failed")
        assert not router.routes_to_logs(f"{entity}.completed")
    assert router.mapping_for("workflow.failed").priority is Priority.CRITICAL  # type: ignore[union-attr]
    assert router.routes_to_traces("step.before_handle")
    assert not router.routes_to_metrics("step.before_handle")
    assert router.mapping_for("database.query_executed") is None


def test_map_overrides_the_defaults_and_queries_follow(make_router: RouterFactory) -> None:
    router = make_router()
    router.map("task.*", ["logs"], priority="high")
    assert router.routes_to_logs("task.completed")
    assert not router.routes_to_metrics("task.completed")  # the glob came later
    assert router.routes_to_metrics("step.completed")
    router.map("step.completed", "metrics", enabled=False)
    assert not router.routes_to_metrics("step.completed")
    router.map("step.started", ["metrics"], sampling_rate=0.0)
    assert not router.routes_to_metrics("step.started")  # a rate of 0 reaches nothing
    assert "task.*" in router.events_for_backend("logs")
    assert "step.completed" not in router.events_for_backend(Backend.METRICS)
    with pytest.raises(ValueError, match="unknown backend 'metric'"):
        router.events_for_backend("metric")
    router.unmap("task.*")
    assert router.routes_to_metrics("task.completed")


def test_map_many_adds_all_or_nothing(make_router: RouterFactory) -> None:
    router = make_router(mappings=[])
    added = router.map_many(
        [
            {"event": "a.*", "backends": ["metrics"]},
            EventMapping(event="b.done", backends=["traces"], priority="low"),
        ]
    )
    assert [m.event for m in added] == ["a.*", "b.done"]
    assert [m.event for m in router.mappings] == ["a.*", "b.done"]
    with pytest.raises(ValueError, match=r"mappings\[1\]: sampling_rate: expected a number"):
        router.map_many([{"event": "c.x"}, {"event": "d.x", "sampling_rate": 2}])
    with pytest.raises(ValueError, match=r"mappings\[0\]: .*unexpected keyword argument 'rate'"):
        router.map_many([{"event": "c.x", "rate": 1}])
    assert [m.event for m in router.mappings] == ["a.*", "b.done"]


def test_replace_drops_the_defaults(make_router: RouterFactory) -> None:
    router = make_router()
    router.replace([EventMapping(event="order.*", backends=["metrics"])])
    assert router.mappings == (EventMapping(event="order.*", backends=["metrics"]),)
    assert not router.routes_to_metrics("task.completed")
    assert router.routes_to_metrics("order.completed")


def test_unmapped_and_disabled_events_are_counted_not_kept(make_router: RouterFactory) -> None:
    router = make_router(mappings=[EventMapping(event="off", enabled=False)])
    assert router.publish("nobody.maps.this") is False
    assert router.publish("off") is False
    stats = router.stats()
    assert (stats.published, stats.unrouted, stats.kept, stats.sampled_out) == (2, 2, 0, 0)
    with pytest.raises(TypeError, match="an event name is a str"):
        router.publish(42)  # type: ignore[arg-type]
