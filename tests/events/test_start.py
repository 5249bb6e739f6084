"""metricache.start() builds the event router from the configuration and installs it.

Each case runs in a subprocess of its own: ``start()`` installs process-wide state (the
default router, the default registry's rules, a syncer thread).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.events.cli import clean_env, run_cli

RULE_NOBODY_ROUTES = """
[[events]]
event = "payment.*"
backends = ["traces"]

[[event_routing.rules]]
event = "payment.captured"
metric = "payment_amount"
type = "histogram"
value = "amount"

[[event_routing.rules]]
event = "refund.*"
metric = "refunds"
"""


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_env()
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_publish_before_start_routes_with_the_defaults_then_start_installs_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "metricache.toml").write_text(
        '[[events]]\nevent = "task.completed"\nenabled = false\n'
        '[[events]]\nevent = "order.*"\nbackends = ["metrics", "traces"]\n'
    )
    code = """
import json
import metricache
import metricache.events as events

before = events.default_router()
kept_before = events.publish("task.completed", {"namespace": "n", "status": "ok"})
syncer = metricache.start()
after = events.default_router()
kept_after = events.publish("task.completed", {"namespace": "n", "status": "ok"})
order = events.publish("order.placed", {"namespace": "shop"}, sampling_key="o-1")
after.flush()
view = metricache.REGISTRY.snapshot()
print(json.dumps({
    "kept": [kept_before, kept_after, order],
    "replaced": before is not after,
    "first_closed": before.publish("task.started") and before.stats().backends["traces"].dropped,
    "completed": [s.value for s in view["task_completed"].samples],
    "order": [s.value for s in view["order_placed"].samples] if "order_placed" in view else [],
    "traced": [r.event.name for r in after.traces.records()],
}))
syncer.stop()
"""
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Before start(): the defaults route task.completed to metrics, and it is counted;
    # after: the file disables it. order.placed follows the file's mapping.
    assert report["kept"] == [True, False, True]
    assert report["replaced"] is True
    assert report["first_closed"] == 1  # start() closed the first router: its queues refuse
    assert report["completed"] == [1.0]
    assert report["order"] == []  # order.placed is no conventional status: traced only
    assert report["traced"] == ["order.placed"]


def test_start_raises_config_error_naming_rules_no_mapping_routes_to_metrics(
    tmp_path: Path,
) -> None:
    (tmp_path / "metricache.toml").write_text(RULE_NOBODY_ROUTES)
    code = """
import json
import threading
import metricache
try:
    metricache.start()
except metricache.ConfigError as exc:
    names = [t.name for t in threading.enumerate()]
    print(json.dumps({"problems": exc.problems, "source": exc.source, "threads": names}))
"""
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == str(tmp_path / "metricache.toml")
    assert report["problems"] == [
        "event_routing.rules[0].event: no mapping routes 'payment.captured' to metrics "
        "(events[0] ('payment.*') applies to it: it sends it to traces); the rule for "
        "metric 'payment_amount' would never apply. Add an [[events]] entry for it with "
        '"metrics" among its backends',
        "event_routing.rules[1].event: no mapping routes any event matching 'refund.*' to "
        "metrics; the rule for metric 'refunds' would never apply. Add an [[events]] entry "
        'for them with "metrics" among its backends',
    ]
    assert "metricache-syncer" not in report["threads"]  # nothing started


def test_status_exits_2_naming_the_path_of_the_contradiction(tmp_path: Path) -> None:
    path = tmp_path / "contradiction.toml"
    path.write_text(RULE_NOBODY_ROUTES)
    done = run_cli("--config", str(path), "status", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert str(path) in done.stderr
    assert "event_routing.rules[0].event: no mapping routes 'payment.captured' to metrics" in (
        done.stderr
    )
    assert "event_routing.rules[1].event" in done.stderr


def test_status_shows_the_event_routing_of_a_valid_configuration(tmp_path: Path) -> None:
    (tmp_path / "metricache.toml").write_text(
        '[[events]]\nevent = "payment.*"\n'
        '[[event_routing.rules]]\nevent = "payment.captured"\nmetric = "payments"\n'
    )
    done = run_cli("status", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["event_mappings"] == "29 (1 configured)"
    assert status["event_rules"] == 1


@pytest.mark.parametrize(
    ("rule_event", "routed"),
    [
        ("task.completed", True),  # a default mapping
        ("payment.captured", True),  # the file's glob
        ("payment.*", True),
        ("*.captured", True),  # overlaps payment.*
        ("step.before_handle", False),  # a default mapping that traces only
        ("shipment.[!a-z]*", False),
        ("audit.?", False),
    ],
)
def test_a_rule_is_accepted_exactly_when_some_mapping_can_route_its_events_to_metrics(
    tmp_path: Path, rule_event: str, routed: bool
) -> None:
    from metricache.config import load_config
    from metricache.errors import ConfigError
    from metricache.events import event_settings

    path = tmp_path / "metricache.toml"
    path.write_text(
        '[[events]]\nevent = "payment.*"\n'
        f'[[event_routing.rules]]\nevent = "{rule_event}"\nmetric = "m"\n'
    )
    config = load_config(path, environ={})
    if routed:
        assert event_settings(config).routing.rules[0].event == rule_event
    else:
        with pytest.raises(ConfigError, match=r"event_routing\.rules\[0\]\.event: no mapping"):
            event_settings(config)


def test_a_metrics_mapping_when_no_plugin_handles_events_is_reported_at_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "metricache.toml").write_text(
        '[[events]]\nevent = "order.*"\nbackends = ["metrics", "logs"]\n'
        '[[events]]\nevent = "audit.*"\nbackends = ["logs"]\n'
    )
    code = """
import metricache
try:
    metricache.start()
except metricache.ConfigError as exc:
    print("\\n".join(exc.problems))
"""
    # Only the memory store: the built-in 'events' plugin (the metrics handler) is left out.
    done = run_python(code, tmp_path, METRICACHE_PLUGINS="memory")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "events[0].backends: 'metrics' is served by no plugin: no installed plugin handles "
        "metrics events (none implements metricache_handle_event; METRICACHE_PLUGINS may "
        "leave out the built-in 'events' plugin of the metricache distribution)"
    ]
    done = run_python(code, tmp_path, METRICACHE_PLUGINS="memory,events")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
