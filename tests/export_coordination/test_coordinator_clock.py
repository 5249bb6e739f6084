"""The coordinator driven by a controllable clock: the timing table, retries, give-up, hooks."""

from __future__ import annotations

import logging
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import metricache
import metricache_json
import pytest
from metricache.config import load_config
from metricache.errors import ConfigError, FormatNotFound, StoreUnavailable
from metricache.export import ExportCoordinator, TickAction, TickResult, Timing
from metricache.instance import instance_key
from metricache.sync.keyspace import Keyspace

from tests.export.recorder import recording
from tests.export_coordination.support import FlakyExporter, ManualClock, TouchRecordingStore

INSTANCE = "web-1"


class Setup:
    """A local_only store with one instance's saved view, and a coordinator on a clock."""

    def __init__(self, timing: Timing, exporters: list[metricache.exporters.Exporter]) -> None:
        self.registry = metricache.Registry()
        self.orders = metricache.Counter("orders", "Orders", ["region"], registry=self.registry)
        self.orders.labels("eu").inc(3)
        self.store = TouchRecordingStore()
        self.syncer = metricache.Syncer(
            self.registry,
            self.store,
            instance_id=INSTANCE,
            retention=timing.retention,
            # The saved view lives as long as shared data would, so the TTL arithmetic
            # below is the retention window's (an extension starts from the longest life
            # a key can have had).
            local_state_ttl=timing.retention,
        )
        assert self.syncer.flush().ok
        self.clock = ManualClock(0.0)
        self.self_metrics = metricache.Registry()
        self.coordinator = ExportCoordinator(
            self.store,
            exporters,
            format="json",
            timing=timing,
            syncer=self.syncer,
            clock=self.clock,
            registry=self.self_metrics,
        )
        self.store.touches.clear()

    def tick(self, now: float) -> TickResult:
        self.clock.now = now
        return self.coordinator.tick()

    def counted(self, family: str) -> dict[tuple[str, ...], float]:
        found = self.self_metrics.snapshot()[family]
        return {s.labels: s.value for s in found.samples}  # type: ignore[union-attr]

    @property
    def local_key(self) -> bytes:
        return Keyspace().local(instance_key(INSTANCE))


@pytest.fixture
def exporter() -> FlakyExporter:
    return FlakyExporter()


@pytest.fixture
def setup(exporter: FlakyExporter) -> Iterator[Setup]:
    built = Setup(Timing(interval=60), [exporter])
    yield built
    built.syncer.stop()


def test_on_time_exports_happen_at_each_period_start_without_extension(
    setup: Setup, exporter: FlakyExporter
) -> None:
    first = setup.tick(0.0)
    assert (first.action, first.period, first.attempt) == (TickAction.EXPORTED, 0, 1)
    assert (first.late_by, first.extended_by) == (0.0, None)
    assert first.next_at == 60.0
    idle = setup.tick(59.9)
    assert (idle.action, idle.next_at) == (TickAction.IDLE, 60.0)
    second = setup.tick(60.0)
    assert (second.action, second.period, second.late_by) == (TickAction.EXPORTED, 1, 0.0)
    assert exporter.calls == 2
    assert setup.store.touches == []  # nothing was extended
    assert setup.counted("metricache_exports") == {("completed",): 2.0}
    exported = metricache_json.parse(exporter.payloads[-1])
    assert exported["orders"].samples == (metricache.Sample(("eu",), 3.0),)
    assert exported.instance == INSTANCE


def test_a_late_export_extends_the_ttl_by_the_overdue_time_plus_margin_and_runs_at_once(
    setup: Setup, exporter: FlakyExporter
) -> None:
    setup.tick(0.0)
    setup.tick(60.0)  # the reference: latest start of the next export is 60 + 120 = 180
    late = setup.tick(300.0)  # the process was frozen for four minutes
    assert (late.action, late.period, late.attempt) == (TickAction.EXPORTED, 5, 1)
    assert late.late_by == 120.0
    assert late.extended_by == 180.0  # overdue 120 + margin 60
    # A real TTL refresh of the saved view: retention + extension, values untouched.
    ttl, present = setup.store.touches[0]
    assert ttl == 300.0 + 180.0
    assert present == {setup.local_key}
    assert exporter.calls == 3
    assert setup.counted("metricache_export_ttl_extensions") == {("late",): 1.0}
    # The export read the store after the extension, and the next one is on time again.
    assert setup.tick(360.0).late_by == 0.0


def test_a_failed_export_extends_the_ttl_and_backs_off_30_60_120_then_gives_up(
    setup: Setup, exporter: FlakyExporter, clean_plugins: None
) -> None:
    exporter.failures = 10
    results = []
    with recording() as hooks:
        for now in (0.0, 29.9, 30.0, 89.9, 90.0, 209.9, 210.0):
            results.append(setup.tick(now))
    seen = [(r.action, r.attempt, r.retry_in, r.extended_by, r.next_at) for r in results]
    assert seen == [
        (TickAction.RETRYING, 1, 30.0, 90.0, 30.0),
        (TickAction.IDLE, 1, None, None, 30.0),
        (TickAction.RETRYING, 2, 60.0, 120.0, 90.0),
        (TickAction.IDLE, 2, None, None, 90.0),
        (TickAction.RETRYING, 3, 120.0, 180.0, 210.0),
        (TickAction.IDLE, 3, None, None, 210.0),
        (TickAction.GAVE_UP, 4, None, None, 210.0),  # period 3 is due right away
    ]
    assert all(r.period == 0 for r in results)
    assert "OSError: the collector is down" in (results[-1].error or "")
    # Each failure refreshed the TTL of the saved view to retention + delay + margin.
    assert [ttl for ttl, keys in setup.store.touches if setup.local_key in keys] == [
        390.0,
        420.0,
        480.0,
    ]
    assert exporter.calls == 4
    assert [c for c in hooks.calls if c[0] == "failed"] == [
        ("failed", "flaky", ("OSError", 1, True)),
        ("failed", "flaky", ("OSError", 2, True)),
        ("failed", "flaky", ("OSError", 3, True)),
        ("failed", "flaky", ("OSError", 4, False)),
    ]
    assert setup.counted("metricache_exports") == {("retried",): 3.0, ("gave_up",): 1.0}
    assert setup.counted("metricache_export_ttl_extensions") == {("failed",): 3.0}
    # The next period starts afresh.
    exporter.failures = 0
    after = setup.tick(210.0)
    assert (after.action, after.period, after.attempt) == (TickAction.EXPORTED, 3, 1)


def test_the_backoff_is_capped() -> None:
    exporter = FlakyExporter(failures=100)
    built = Setup(Timing(interval=60, retries=6, backoff_cap=100.0), [exporter])
    now = 0.0
    delays = []
    while True:
        result = built.tick(now)
        if result.action is TickAction.GAVE_UP:
            break
        assert result.action is TickAction.RETRYING
        assert result.retry_in is not None
        delays.append(result.retry_in)
        now = result.next_at
    assert delays == [30.0, 60.0, 100.0, 100.0, 100.0, 100.0]
    assert exporter.calls == 7
    built.syncer.stop()


def test_a_retry_that_succeeds_ends_the_job_and_a_period_it_ran_into_is_due_at_once(
    setup: Setup, exporter: FlakyExporter
) -> None:
    exporter.failures = 2
    assert setup.tick(0.0).action is TickAction.RETRYING
    assert setup.tick(30.0).action is TickAction.RETRYING
    done = setup.tick(90.0)  # inside period 1 by now
    assert (done.action, done.period, done.attempt, done.next_at) == (
        TickAction.EXPORTED,
        0,
        3,
        90.0,
    )
    follow = setup.tick(90.0)
    assert (follow.action, follow.period, follow.attempt) == (TickAction.EXPORTED, 1, 1)
    assert setup.tick(90.0).action is TickAction.IDLE
    assert len(exporter.payloads) == 2


def test_only_the_exporters_that_failed_are_retried() -> None:
    steady = FlakyExporter()
    shaky = FlakyExporter(failures=1)
    built = Setup(Timing(interval=60), [steady, shaky])
    first = built.tick(0.0)
    assert first.action is TickAction.RETRYING
    assert first.outcome is not None
    assert [r.exporter for r, _ in first.outcome.completed] == ["flaky"]
    second = built.tick(30.0)
    assert second.action is TickAction.EXPORTED
    assert (steady.calls, shaky.calls) == (1, 2)
    assert len(steady.payloads) == len(shaky.payloads) == 1
    built.syncer.stop()


def test_each_export_includes_the_latest_changes_of_the_local_syncer(
    setup: Setup, exporter: FlakyExporter
) -> None:
    setup.tick(0.0)
    setup.orders.labels("us").inc(5)  # not synced: the coordinator flushes first
    setup.tick(60.0)
    exported = metricache_json.parse(exporter.payloads[-1])
    assert exported["orders"].samples == (
        metricache.Sample(("eu",), 3.0),
        metricache.Sample(("us",), 5.0),
    )


class _DownStore(TouchRecordingStore):
    def get(self, key: bytes) -> bytes | None:
        raise StoreUnavailable("the test store is down")

    def get_many(self, keys: object) -> dict[bytes, bytes]:
        raise StoreUnavailable("the test store is down")


def test_an_unreadable_store_is_a_failed_attempt_and_is_retried() -> None:
    exporter = FlakyExporter()
    coordinator = ExportCoordinator(
        _DownStore(),
        [exporter],
        timing=Timing(interval=60),
        instance_id=INSTANCE,
        clock=ManualClock(0.0),
        registry=metricache.Registry(),
    )
    result = coordinator.tick(0.0)
    assert (result.action, result.retry_in) == (TickAction.RETRYING, 30.0)
    assert result.error == "cannot read the store: the test store is down"
    assert exporter.calls == 0


def test_a_raising_result_callback_never_breaks_the_coordinator(
    exporter: FlakyExporter, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[TickAction] = []

    def callback(result: TickResult) -> None:
        seen.append(result.action)
        raise RuntimeError("a broken observer")

    coordinator = ExportCoordinator(
        metricache.open_store("memory"),
        [exporter],
        timing=Timing(interval=60),
        instance_id=INSTANCE,
        clock=ManualClock(0.0),
        registry=metricache.Registry(),
        on_result=callback,
    )
    with caplog.at_level(logging.ERROR, logger="metricache.export"):
        assert coordinator.tick(0.0).action is TickAction.EXPORTED
        assert coordinator.tick(1.0).action is TickAction.IDLE  # not reported
    assert seen == [TickAction.EXPORTED]
    assert any("on_result callback raised" in r.getMessage() for r in caplog.records)


def test_bad_arguments_fail_at_construction(exporter: FlakyExporter) -> None:
    store = metricache.open_store("memory")
    with pytest.raises(FormatNotFound, match="unknown format 'nope'"):
        ExportCoordinator(store, [exporter], format="nope")
    with pytest.raises(ValueError, match="at least one exporter"):
        ExportCoordinator(store, [])


def test_the_background_thread_exports_every_period_and_stops(exporter: FlakyExporter) -> None:
    timing = Timing(retention=3.0, safety_margin=0.5, export_timeout=0.5, interval=0.2)
    coordinator = ExportCoordinator(
        metricache.open_store("memory"),
        [exporter],
        timing=timing,
        instance_id=INSTANCE,
        registry=metricache.Registry(),
    )
    with coordinator:
        assert coordinator.running
        deadline = time.monotonic() + 30
        while exporter.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not coordinator.running
    assert exporter.calls >= 3
    stamps = [r.snapshot_timestamp for r in exporter.requests]
    assert stamps == sorted(stamps)


def test_from_config_reads_the_export_table(tmp_path: Path, exporter: FlakyExporter) -> None:
    path = tmp_path / "metricache.toml"
    path.write_text(
        textwrap.dedent(
            """
            [sync]
            retention = 600
            namespace = "shop"

            [export]
            format = "csv"
            exporter = "file"
            options = { path = "out/metrics.csv" }
            interval = 60
            safety_margin = 30
            timeout = 90
            retries = 5
            backoff_base = 10
            backoff_cap = 300
            lease_ttl = 45
            """
        )
    )
    config = load_config(path, environ={"METRICACHE_EXPORT_RETRIES": "2"})
    coordinator = ExportCoordinator.from_config(config, metricache.open_store("memory"))
    assert coordinator.timing == Timing(
        retention=600,
        safety_margin=30,
        export_timeout=90,
        interval=60,
        backoff_base=10,
        backoff_cap=300,
        retries=2,
        lease_ttl=45,
    )
    assert (coordinator.format, coordinator.namespace) == ("csv", "shop")
    assert [e.name for e in coordinator.exporters] == ["file"]


def test_from_config_names_an_inconsistent_timing(tmp_path: Path) -> None:
    path = tmp_path / "metricache.toml"
    path.write_text("[sync]\nretention = 100\n[export]\nsafety_margin = 30\ntimeout = 90\n")
    config = load_config(path, environ={})
    with pytest.raises(ConfigError, match=r"export: retention \(100 s\) must be longer"):
        ExportCoordinator.from_config(config, metricache.open_store("memory"))
