"""``metricache demo``: the simulated engine, its live summary, and its ground-truth check."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import metricache
from metricache import hookimpl
from metricache.cli.demo_command import LiveSummary, check_totals
from metricache.events import Event, EventRouter, RuleSet
from metricache.events.rules import convention_names
from metricache.events.simulation import CONTEXT_KEYS, SimulatedWorker, Tally
from metricache.plugins import get_plugin_manager
from metricache.registry import Registry
from metricache.snapshot import Sample

from tests.events.cli import clean_env, run_cli
from tests.support.servers import RedisServer

_SERVING = re.compile(r"serving (http://\S+/metrics)")
_ROW = re.compile(r"^\s+(\w+)\s+(\d+)\s+(\S+)\s+(ok|MISMATCH)$")


def check_rows(stdout: str) -> dict[str, tuple[int, float, str]]:
    rows = {}
    for line in stdout.splitlines():
        found = _ROW.match(line)
        if found:
            rows[found[1]] = (int(found[2]), float(found[3]), found[4])
    return rows


class PayloadRecorder:
    """Records every event that reaches the metrics backend."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def metricache_handle_event(self, event: Event) -> None:
        self.events.append(event)


def test_the_demo_publishes_exactly_the_keys_the_rules_read(clean_plugins: None) -> None:
    recorder = PayloadRecorder()
    get_plugin_manager().register(recorder, name="payload-recorder")
    registry = Registry()
    with EventRouter(registry) as router:
        worker = SimulatedWorker(router, "w1", seed=7, time_scale=0.0, failure_rate=0.4)
        for _ in range(300):
            worker.run_task()
    rules = RuleSet()  # what the demo's registry uses: the conventions, default labels
    names = {event.name for event in recorder.events}
    assert names == {
        f"{e}.{s}"
        for e in ("task", "step")
        for s in ("started", "completed", "failed", "cancelled")
    }
    for event in recorder.events:
        read = rules.fields_read(event)
        published = set(event.payload)
        assert read <= published, (event.name, read - published)  # nothing read is missing
        assert published - CONTEXT_KEYS == read, event.name  # nothing published goes unread
        ends_a_run = event.name.endswith((".completed", ".failed"))
        assert ("duration" in published) == ends_a_run, event.name
    # The tally counts what was published, so the check has a ground truth to hold.
    assert sum(worker.tally.outcomes.values()) == len(recorder.events)


def test_the_check_compares_every_outcome_and_duration_count() -> None:
    registry = Registry()
    with EventRouter(registry) as router:
        worker = SimulatedWorker(router, "w1", seed=3, time_scale=0.0)
        for _ in range(50):
            worker.run_task()
    view = registry.snapshot()
    rows = check_totals(worker.tally, view)
    assert [r.name for r in rows] == [
        *(
            f"{e}_{s}_total"
            for e in ("task", "step")
            for s in ("started", "completed", "failed", "cancelled")
        ),
        "task_duration_seconds_count",
        "step_duration_seconds_count",
    ]
    assert all(r.ok for r in rows)
    assert rows[0].expected == 50
    # One event fewer in the ground truth, and the check fails on that very total.
    short = Tally.from_json(worker.tally.to_json())
    short.outcomes["step.completed"] -= 1
    failed = [r.name for r in check_totals(short, view) if not r.ok]
    assert failed == ["step_completed_total"]
    assert convention_names("step.completed") == ("step_completed", "step_duration_seconds")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_summary_redraws_in_place_on_a_terminal_and_prints_lines_otherwise() -> None:
    terminal = _Terminal()
    live = LiveSummary(terminal)
    live.show(["a", "b"], "plain 1")
    live.show(["c", "d"], "plain 2")
    assert terminal.getvalue() == "a\nb\n\x1b[2F\x1b[Jc\nd\n"
    pipe = io.StringIO()
    plain = LiveSummary(pipe)
    plain.show(["a"], "plain 1")
    plain.show(["b"], "plain 2")  # within the period: not printed
    assert pipe.getvalue() == "plain 1\n"


def test_demo_on_the_memory_store_serves_metrics_and_passes_its_check(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "metricache.cli.main", "demo", "--duration", "3", "--port", "0"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    url = None
    for line in process.stdout:
        lines.append(line)
        found = _SERVING.search(line)
        if found:
            url = found[1]
            break
    assert url is not None, "".join(lines)
    # Scrape while the demo runs, until a sync has put the task counters in the view.
    scraped = ""
    while process.poll() is None and "task_started_total" not in scraped:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                scraped = response.read().decode()
        except OSError:
            break  # the demo has finished and stopped serving
        threading.Event().wait(0.2)
    rest, errors = process.communicate(timeout=120)
    stdout = "".join(lines) + rest
    assert process.returncode == 0, stdout + errors
    assert "task_started_total" in scraped
    assert "# TYPE task_duration_seconds histogram" in scraped
    assert "PASS: the merged view adds up" in stdout
    assert re.search(r"^demo: \d", stdout, re.MULTILINE)  # plain progress lines, not a TTY
    rows = check_rows(stdout)
    assert len(rows) == 10
    assert all(state == "ok" for _, _, state in rows.values())
    assert rows["task_started_total"][0] > 0


def test_demo_with_four_worker_processes_on_redis_adds_up(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    done = run_cli(
        "demo",
        "--store",
        "redis",
        "--option",
        f"url={redis_server.url}",
        "--workers",
        "4",
        "--duration",
        "3",
        "--port",
        "0",
        cwd=tmp_path,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 worker process(es)" in done.stdout
    assert "4 instance(s)" in done.stdout
    assert "PASS: the merged view adds up" in done.stdout
    rows = check_rows(done.stdout)
    assert all(state == "ok" for _, _, state in rows.values())
    # Read the store ourselves: the merged totals are what the demo printed.
    namespace = re.search(r"namespace (\S+),", done.stdout)
    assert namespace is not None
    store = metricache.open_store("redis", url=redis_server.url)
    try:
        view = metricache.merged_snapshot(store, namespace=namespace[1])
    finally:
        store.close()
    for family, column in (
        ("task_started", "task_started_total"),
        ("step_failed", "step_failed_total"),
    ):
        total = sum(s.value for s in view[family].samples if isinstance(s, Sample))
        assert total == rows[column][0] == rows[column][1]
