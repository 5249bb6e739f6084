"""The example plugin packages install through their entry points and do their job.

They are workspace members (``examples/*``) that the root project depends on, so
``uv sync`` installs them as any user would install a plugin: their only link to
metricache is the entry point in the group ``metricache``. Each is exercised here:
the format renders and parses, the exporter delivers, the event handler records a
metric from a published event. The guides in ``docs/plugins/`` show their code,
exactly.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import metricache
import metricache_http_events
import metricache_ndjson
import pytest
from metricache.events import EventMapping, EventRouter
from metricache.exporters import open_exporter
from metricache.exporting import export_snapshot
from metricache.snapshot import HistogramSample, Sample

from tests.docs.markdown import ROOT, code_blocks
from tests.docs.test_code_blocks import clean_env

EXAMPLES = {
    # distribution: (directory, entry point, module, kind in `metricache plugins`, guide)
    "metricache-ndjson-example": (
        "format_plugin",
        "ndjson",
        "metricache_ndjson",
        "format",
        "writing-a-format.md",
    ),
    "metricache-pushgateway-example": (
        "exporter_plugin",
        "pushgateway",
        "metricache_pushgateway",
        "exporter",
        "writing-an-exporter.md",
    ),
    "metricache-http-events-example": (
        "event_handler_plugin",
        "http_events",
        "metricache_http_events",
        "event-handler",
        "writing-an-event-handler.md",
    ),
}

HOSTILE = [
    'quote " backslash \\ newline \n return \r tab \t',
    "line separator \u2028 next line \x85 unicode ünïcode ✓",
    "",
    '}{"],[\n',
]


def metricache_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- installed through their entry points ----------------------------------------------------


@pytest.mark.parametrize("distribution", sorted(EXAMPLES))
def test_the_example_is_installed_with_its_entry_point(distribution: str) -> None:
    directory, entry, module, _, _ = EXAMPLES[distribution]
    points = metadata.distribution(distribution).entry_points
    assert [(p.group, p.name, p.value) for p in points] == [("metricache", entry, module)]
    # installed from this repository's directory (an editable workspace member)
    loaded = __import__(module)
    assert loaded.__file__ is not None
    assert Path(loaded.__file__).resolve().is_relative_to(ROOT / "examples" / directory)


def test_metricache_plugins_lists_the_examples(tmp_path: Path) -> None:
    done = metricache_cli("plugins", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = {info["name"]: info for info in json.loads(done.stdout)}
    for distribution, (_, entry, _, kind, _) in EXAMPLES.items():
        assert listed[entry]["distribution"] == distribution
        assert listed[entry]["kinds"] == [kind]


@pytest.mark.parametrize("distribution", sorted(EXAMPLES))
def test_the_guide_shows_the_package_exactly(distribution: str) -> None:
    directory, _, module, _, guide = EXAMPLES[distribution]
    blocks = list(code_blocks(ROOT / "docs" / "plugins" / guide))
    package = ROOT / "examples" / directory
    source = (package / "src" / module / "__init__.py").read_text(encoding="utf-8")
    pyproject = (package / "pyproject.toml").read_text(encoding="utf-8")
    assert any(b.language == "python" and b.text == source for b in blocks), (
        f"docs/plugins/{guide} no longer shows {module}/__init__.py as it is"
    )
    assert any(b.language == "toml" and b.text == pyproject for b in blocks), (
        f"docs/plugins/{guide} no longer shows {directory}/pyproject.toml as it is"
    )


# -- the format renders and parses ---------------------------------------------------------


def hostile_registry() -> metricache.Registry:
    registry = metricache.Registry()
    counter = metricache.Counter("requests", "Requests", ["path", "code"], registry=registry)
    for number, value in enumerate(HOSTILE):
        counter.labels(value, str(200 + number)).inc(number + 0.5)
    gauges = metricache.Gauge("reading", "Readings", ["sensor"], registry=registry, merge="max")
    gauges.labels("hot").set(math.inf)
    gauges.labels("cold").set(-math.inf)
    gauges.labels("broken").set(math.nan)
    histogram = metricache.Histogram(
        "latency", "Latency", ["route"], buckets=(0.1, 1.0), unit="seconds", registry=registry
    )
    histogram.labels(HOSTILE[0]).observe(0.05)
    histogram.labels(HOSTILE[0]).observe(3.0)
    metricache.Counter("never_used", "A labelled family without series", ["x"], registry=registry)
    return registry


def expected_records(snapshot: metricache.Snapshot) -> list[tuple[str, str, dict[str, str], float]]:
    """What the NDJSON of ``snapshot`` must hold, sample by sample, built independently."""
    records = []
    for family in snapshot:
        for sample in family.samples:
            labels = dict(zip(family.labelnames, sample.labels))
            if isinstance(sample, HistogramSample):
                for bound, count in zip(family.buckets, sample.buckets):
                    le = "+Inf" if math.isinf(bound) else repr(bound)
                    records.append(
                        (f"{family.name}_bucket", family.name, {**labels, "le": le}, float(count))
                    )
                records.append((f"{family.name}_sum", family.name, labels, sample.sum))
                records.append((f"{family.name}_count", family.name, labels, float(sample.count)))
            else:
                suffix = "_total" if family.type.value == "counter" else ""
                records.append((family.name + suffix, family.name, labels, sample.value))
    return records


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_the_format_renders_every_sample_on_its_own_line_and_parses_back() -> None:
    snapshot = hostile_registry().snapshot()
    data = metricache.render(snapshot, "ndjson")
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""  # every record ends with a newline, nothing follows
    for line in lines[:-1]:
        json.loads(line)  # each line on its own is a JSON document
    parsed = metricache_ndjson.parse(data)
    expected = expected_records(snapshot)
    assert len(parsed) == len(expected) == len(lines) - 1
    for record, (sample, family, labels, value) in zip(parsed, expected):
        assert (record.sample, record.family, record.labels) == (sample, family, labels)
        assert same(record.value, value), (record, value)
        assert record.timestamp == snapshot.timestamp
    assert b"NaN" in data
    assert b"Infinity" not in data  # JSON has no such literal; the strings are used


def test_the_format_is_negotiated_and_exported_from_the_command_line(tmp_path: Path) -> None:
    negotiated = metricache.negotiate("application/x-ndjson")
    assert negotiated is not None
    assert negotiated.name == "ndjson"
    registry = hostile_registry()
    store = metricache.open_store("file", path=str(tmp_path / "store"))
    syncer = metricache.Syncer(registry, store, instance_id="web-1")
    assert syncer.flush().ok
    syncer.stop()
    done = metricache_cli(
        "export",
        "--store",
        "file",
        "--option",
        "path=store",
        "--format",
        "ndjson",
        "--output",
        "out/m-{instance}.{ext}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    parsed = metricache_ndjson.parse((tmp_path / "out" / "m-web-1.ndjson").read_bytes())
    by_labels = {
        (r.sample, r.labels.get("path")): r.value for r in parsed if r.family == "requests"
    }
    for number, value in enumerate(HOSTILE):
        assert by_labels[("requests_total", value)] == number + 0.5


def test_parse_names_the_line_of_the_first_problem() -> None:
    good = metricache.render(hostile_registry().snapshot(), "ndjson")
    with pytest.raises(ValueError, match=r"^line 3: not JSON"):
        metricache_ndjson.parse(b"\n".join([*good.split(b"\n")[:2], b"{oops"]))
    with pytest.raises(ValueError, match="line 1: value: expected a number"):
        metricache_ndjson.parse(
            b'{"sample":"x","family":"x","type":"gauge","labels":{},'
            b'"value":"Infinity","timestamp":0}\n'
        )


# -- the exporter delivers -----------------------------------------------------------------------


class Pushgateway(BaseHTTPRequestHandler):
    """A stand-in Pushgateway: records each request, answers with the server's status."""

    server: RecordingServer

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.command, self.path, self.headers["Content-Type"], body))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class RecordingServer(ThreadingHTTPServer):
    """What the stand-in Pushgateway received, and the status it answers with."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Pushgateway)
        self.received: list[tuple[str, str, str, bytes]] = []
        self.status = 200


@pytest.fixture
def pushgateway() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_the_exporter_delivers_from_the_command_line(
    tmp_path: Path, pushgateway: RecordingServer
) -> None:
    registry = metricache.Registry()
    metricache.Counter("batches", "Batches run", ["kind"], registry=registry).labels("nightly").inc(
        7
    )
    store = metricache.open_store("file", path=str(tmp_path / "store"))
    syncer = metricache.Syncer(registry, store, instance_id="batch-1")
    assert syncer.flush().ok
    syncer.stop()
    url = f"http://127.0.0.1:{pushgateway.server_port}"
    done = metricache_cli(
        "export",
        "--store",
        "file",
        "--option",
        "path=store",
        "--exporter",
        "pushgateway",
        "--exporter-option",
        f"url={url}",
        "--exporter-option",
        "job=nightly batch",
        "--exporter-option",
        "grouping=region=eu",
        "--exporter-option",
        "grouping=tier=web/api",
        "--exporter-option",
        "grouping=empty=",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    [(method, path, content_type, body)] = pushgateway.received
    assert method == "PUT"
    assert path == (
        "/metrics/job@base64/bmlnaHRseSBiYXRjaA==/region/eu/tier@base64/d2ViL2FwaQ==/empty@base64/="
    )
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert 'batches_total{kind="nightly"} 7.0' in body.decode()


def test_the_exporter_fails_loudly(tmp_path: Path, pushgateway: RecordingServer) -> None:
    pushgateway.status = 500
    url = f"http://127.0.0.1:{pushgateway.server_port}"
    done = metricache_cli(
        "export",
        "--exporter",
        "pushgateway",
        "--exporter-option",
        f"url={url}",
        "--exporter-option",
        "job=j",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "exporter pushgateway failed" in done.stderr
    refused = metricache_cli(
        "export",
        "--format",
        "json",
        "--exporter",
        "pushgateway",
        "--exporter-option",
        f"url={url}",
        "--exporter-option",
        "job=j",
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "takes the prometheus format, not 'json'" in refused.stderr
    bad = metricache_cli(
        "export",
        "--exporter",
        "pushgateway",
        "--exporter-option",
        "url=ftp://x",
        "--exporter-option",
        "job=j",
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert "url: expected an http:// or https:// URL" in bad.stderr


def test_the_exporter_in_process_counts_a_failure(pushgateway: RecordingServer) -> None:
    pushgateway.status = 503
    registry = metricache.Registry()
    exporter = open_exporter(
        "pushgateway", {"url": f"http://127.0.0.1:{pushgateway.server_port}", "job": "j"}
    )
    outcome = export_snapshot(registry.snapshot(), "prometheus", [exporter], registry=registry)
    assert not outcome.ok
    failures = registry.snapshot()["metricache_export_failures"].sample("pushgateway")
    assert isinstance(failures, Sample)
    assert failures.value == 1.0


# -- the event handler records metrics from published events ------------------------------------


def test_the_event_handler_records_a_metric_from_a_published_event() -> None:
    registry = metricache.Registry()
    router = EventRouter(registry, [EventMapping(event="http.*", backends=["metrics"])])
    router.publish("http.request", {"method": "get", "status": 200, "duration": 0.25})
    router.publish("http.request", {"method": "POST", "status": 503, "duration": 2.0})
    router.publish("http.request", {"method": "GET", "status": True, "duration": "slow"})
    router.publish("http.response_sent", {"method": "GET", "status": 200})  # not its event
    router.close()
    snapshot = registry.snapshot()
    requests = snapshot["http_requests"].samples
    counts = {s.labels: s.value for s in requests if isinstance(s, Sample)}
    assert counts == {("GET", "2xx"): 1.0, ("POST", "5xx"): 1.0, ("GET", "unknown"): 1.0}
    observed = snapshot["http_request_duration_seconds"].samples
    durations = {s.labels: (s.count, s.sum) for s in observed if isinstance(s, HistogramSample)}
    assert durations == {("GET",): (1, 0.25), ("POST",): (1, 2.0)}
    assert router.stats().kept == 4


def test_the_event_handler_leaves_other_events_and_registries_alone() -> None:
    registry = metricache.Registry()
    router = EventRouter(registry, [EventMapping(event="task.completed")])
    router.publish("task.completed", {"namespace": "billing", "status": "ok", "handler": "h"})
    router.close()
    assert registry.get("http_requests") is None
    assert metricache_http_events.status_class(404) == "4xx"
    assert metricache_http_events.status_class(99) == "unknown"
