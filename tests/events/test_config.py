"""Event routing from the configuration file: [[events]] and [event_routing]."""

from __future__ import annotations

from pathlib import Path

import pytest
from metricache.config import load_config
from metricache.errors import ConfigError
from metricache.events import (
    DEFAULT_MAPPINGS,
    Backend,
    EventMapping,
    EventRouter,
    Priority,
    event_settings,
)
from metricache.registry import Registry
from metricache.snapshot import HistogramSample, Sample

from tests.events.cli import run_cli

VALID = """
[[events]]
event = "payment.*"
backends = ["metrics", "logs"]
sampling_rate = 0.5
priority = "high"
metadata = { team = "billing", log_level = "error" }

[[events]]
event = "task.completed"
backends = ["traces"]

[event_routing]
labels = ["namespace"]
queue_size = 50
critical_wait = 0
trace_capacity = 7

[[event_routing.rules]]
event = "payment.captured"
metric = "payment_amount"
type = "histogram"
value = "amount"
labels = ["currency"]
buckets = [10, 100]
"""

INVALID = """
[[events]]
event = "task.*"
backends = ["metric"]

[[events]]
event = "step.*"

[[events]]
event = "db.query"
backends = ["traces"]
sampling_rate = 1.5

[[events]]
event = "workflow.*"
priority = "urgent"
sample = 0.5
"""


def test_events_tables_become_mappings_after_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "metricache.toml"
    path.write_text(VALID)
    config = load_config(path, environ={})
    settings = event_settings(config)
    assert settings.configured == (
        EventMapping(
            event="payment.*",
            backends=[Backend.METRICS, Backend.LOGS],
            sampling_rate=0.5,
            priority=Priority.HIGH,
            metadata={"team": "billing", "log_level": "error"},
        ),
        EventMapping(event="task.completed", backends=["traces"]),
    )
    registry = Registry()
    with EventRouter.from_config(config, registry) as router:
        assert router.mappings == (
            *(m for m in DEFAULT_MAPPINGS if m.event != "task.completed"),
            *settings.configured,
        )
        assert not router.routes_to_metrics("task.completed")  # the file overrides it
        assert router.routes_to_logs("payment.refunded")
        assert router.traces.capacity == 7
        router.publish("step.completed", {"namespace": "n", "status": "ok", "duration": 1})
        for _ in range(40):
            router.publish("payment.captured", {"currency": "EUR", "amount": 50})
        kept = router.stats().kept - 1
    snapshot = registry.snapshot()
    assert snapshot["step_completed"].labelnames == ("namespace",)  # [event_routing] labels
    assert [s.value for s in snapshot["step_completed"].samples if isinstance(s, Sample)] == [1]
    amount = snapshot["payment_amount"].samples[0]
    assert isinstance(amount, HistogramSample)
    assert (amount.labels, amount.count, amount.buckets) == (("EUR",), kept, (0, kept, kept))


def test_default_mappings_false_keeps_only_the_files(tmp_path: Path) -> None:
    path = tmp_path / "metricache.toml"
    path.write_text('[event_routing]\ndefault_mappings = false\n[[events]]\nevent = "a.*"\n')
    with EventRouter.from_config(str(path), Registry()) as router:
        assert router.mappings == (EventMapping(event="a.*"),)


def test_every_invalid_entry_is_reported_by_its_path(tmp_path: Path) -> None:
    path = tmp_path / "metricache.toml"
    path.write_text(INVALID)
    config = load_config(path, environ={})  # the events package checks its own tables
    with pytest.raises(ConfigError) as caught:
        event_settings(config)
    assert caught.value.source == str(path)
    assert caught.value.problems == [
        "events[0].backends: unknown backend 'metric'; expected one of 'metrics', 'traces', 'logs'",
        "events[2].sampling_rate: expected a number from 0 to 1, got 1.5",
        "events[3].priority: unknown priority 'urgent'; expected one of 'low', 'normal', "
        "'high', 'critical'",
        "events[3].sample: unknown key",
    ]


def test_status_with_an_invalid_events_entry_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(INVALID)
    done = run_cli("--config", str(path), "status", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "events[2].sampling_rate: expected a number from 0 to 1, got 1.5" in done.stderr
    assert "events[0].backends: unknown backend 'metric'" in done.stderr
    assert str(path) in done.stderr
    assert done.stdout == ""
