"""export_snapshot: one rendering, every exporter, failures isolated, logged, counted, hooked."""

from __future__ import annotations

import logging
from pathlib import Path

import metricache
import metricache_json
import pytest
from metricache.errors import FormatNotFound
from metricache.exporters import open_exporter
from metricache.exporting import export_snapshot, failures_counter
from metricache.formats import Format
from metricache.plugins import get_plugin_manager
from metricache.snapshot import Sample, Snapshot

from tests.export.recorder import recording


def snapshot() -> Snapshot:
    registry = metricache.Registry()
    orders = metricache.Counter("orders", "Orders", ["region"], registry=registry)
    orders.labels("eu").inc(3)
    return registry.snapshot(instance="web-1", strategy="local_only")


def failures(registry: metricache.Registry, exporter: str) -> float:
    sample = failures_counter(registry).labels(exporter)
    return sample.get()


def test_one_rendering_goes_to_every_exporter(tmp_path: Path, clean_plugins: None) -> None:
    shot = snapshot()
    first = open_exporter("file", {"path": str(tmp_path / "a.json")})
    second = open_exporter("file", {"path": str(tmp_path / "b-{instance}.{ext}")})
    outcome = export_snapshot(shot, "json", [first, second], registry=metricache.Registry())
    assert outcome.ok
    assert (tmp_path / "a.json").read_bytes() == metricache_json.render(shot)
    assert (tmp_path / "b-web-1.json").read_bytes() == metricache_json.render(shot)
    assert [r.destination for _, r in outcome.completed] == [
        str(tmp_path / "a.json"),
        str(tmp_path / "b-web-1.json"),
    ]
    request, report = outcome.completed[0]
    assert (request.format, request.exporter, request.instance) == ("json", "file", "web-1")
    assert request.content_type == "application/json"
    assert report.size == len(metricache_json.render(shot))


def test_a_failing_exporter_never_stops_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, clean_plugins: None
) -> None:
    registry = metricache.Registry()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    broken = open_exporter("file", {"path": str(blocked / "m.json")})
    refused = open_exporter("http", {"url": "http://127.0.0.1:1/", "timeout": "2"})
    working = open_exporter("file", {"path": str(tmp_path / "ok.json")})
    with caplog.at_level(logging.WARNING, logger="metricache.export"):
        outcome = export_snapshot(snapshot(), "json", [broken, refused, working], registry=registry)
    assert not outcome.ok
    assert [f.request.exporter for f in outcome.failed] == ["file", "http"]
    assert isinstance(outcome.failed[0].error, OSError)
    assert [r.destination for _, r in outcome.completed] == [str(tmp_path / "ok.json")]
    assert (tmp_path / "ok.json").exists()
    assert failures(registry, "file") == 1
    assert failures(registry, "http") == 1
    logged = [r.getMessage() for r in caplog.records]
    assert any("exporter file failed" in m for m in logged)
    assert any("exporter http failed" in m for m in logged)
    # The counter is part of what the registry exports.
    counted = registry.snapshot()["metricache_export_failures"]
    assert counted.samples == (Sample(("file",), 1.0), Sample(("http",), 1.0))


def test_lifecycle_hooks_are_called_in_order(tmp_path: Path, clean_plugins: None) -> None:
    good = open_exporter("file", {"path": str(tmp_path / "m.csv")})
    bad = open_exporter("file", {"path": str(tmp_path)})  # a directory: cannot be replaced
    with recording() as recorder:
        export_snapshot(
            snapshot(),
            "csv",
            [good, bad],
            attempt=2,
            will_retry=True,
            registry=metricache.Registry(),
        )
    size = (tmp_path / "m.csv").stat().st_size
    assert recorder.calls == [
        ("requested", "file", "csv"),
        ("requested", "file", "csv"),
        ("completed", "file", size),
        ("failed", "file", ("IsADirectoryError", 2, True)),
    ]


def test_a_raising_hook_never_breaks_the_export(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, clean_plugins: None
) -> None:
    exporter = open_exporter("file", {"path": str(tmp_path / "m.json")})
    with recording(raise_in="requested") as recorder, caplog.at_level(logging.ERROR):
        outcome = export_snapshot(snapshot(), "json", [exporter], registry=metricache.Registry())
    assert outcome.ok
    assert [c[0] for c in recorder.calls] == ["requested", "completed"]
    assert any("metricache_export_requested hook raised" in r.getMessage() for r in caplog.records)


class _BrokenFormat(Format):
    name = "broken"
    content_type = "text/plain"

    def render(self, snapshot: Snapshot) -> bytes:
        raise RuntimeError("this format cannot render")


class _BrokenFormatPlugin:
    @metricache.hookimpl
    def metricache_formats(self) -> list[Format]:
        return [_BrokenFormat()]


def test_a_render_failure_fails_every_delivery(tmp_path: Path, clean_plugins: None) -> None:
    registry = metricache.Registry()
    plugin = _BrokenFormatPlugin()
    manager = get_plugin_manager()
    manager.register(plugin, name="test-broken-format")
    try:
        exporters = [
            open_exporter("file", {"path": str(tmp_path / "m.txt")}),
            open_exporter("stdout"),
        ]
        with recording() as recorder:
            outcome = export_snapshot(snapshot(), "broken", exporters, registry=registry)
    finally:
        manager.unregister(plugin)
    assert [f.request.exporter for f in outcome.failed] == ["file", "stdout"]
    assert not (tmp_path / "m.txt").exists()
    assert [c[0] for c in recorder.calls] == ["requested", "requested", "failed", "failed"]
    assert failures(registry, "stdout") == 1


def test_an_unknown_format_raises_before_anything_starts(clean_plugins: None) -> None:
    with (
        recording() as recorder,
        pytest.raises(FormatNotFound, match="installed formats: csv, json"),
    ):
        export_snapshot(snapshot(), "yaml", [open_exporter("stdout")])
    assert recorder.calls == []


def test_unknown_exporters_and_options_are_named(clean_plugins: None) -> None:
    with pytest.raises(
        metricache.ConfigError,
        match=r"unknown exporter 'ftp'; installed exporters: file, http, .*stdout",
    ):
        open_exporter("ftp")
    with pytest.raises(metricache.ConfigError, match="--exporter stdout: unknown option"):
        open_exporter("stdout", {"path": "x"}, where="--exporter stdout")
