"""Export destinations are down: the export is retried and counted, the rest delivers.

An export coordinator on Redis delivers each period to three exporters: an HTTP
collector whose port nobody listens on, one that answers 500, and a file. The first
attempt delivers the file and fails both collectors (logged, counted in
``metricache_export_failures_total``), extends the TTL of what the export covers and
schedules a retry; the application keeps counting meanwhile. Once both collectors
are back, the retry delivers to them alone, with every increment made until then.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import metricache
import metricache_json
import pytest
from metricache.export.coordinator import ExportCoordinator, TickAction
from metricache.exporters import open_exporter
from metricache.snapshot import Sample
from metricache.sync.syncer import Syncer

from tests.export_coordination.support import ManualClock
from tests.faults.records import FaultRecord
from tests.faults.test_redis_faults import HOT_PATH_BOUND
from tests.support.servers import RedisServer, free_port


class Collector:
    """An HTTP server on ``port`` answering POSTs with :attr:`status`, keeping good bodies."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.status = status
        self.bodies: list[bytes] = []
        self.requests = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                collector.requests += 1
                if collector.status < 300:
                    collector.bodies.append(body)
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _exported_orders(body: bytes) -> float:
    sample = metricache_json.parse(body)["orders"].samples[0]
    assert isinstance(sample, Sample)
    return sample.value


def _value(registry: metricache.Registry, name: str, *labels: str) -> float:
    family = registry.snapshot().get(name)
    if family is None:
        return 0.0
    return sum(s.value for s in family.samples if isinstance(s, Sample) and s.labels == labels)


def test_export_destinations_down_are_retried_and_counted_while_the_others_deliver(
    redis_server: RedisServer,
    namespace: str,
    tmp_path: Path,
    fault: FaultRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="metricache")
    registry = metricache.Registry()
    orders = metricache.Counter("orders", "Orders", registry=registry)
    store = metricache.open_store("redis", url=redis_server.url)
    syncer = Syncer(registry, store, interval=3600, namespace=namespace, instance_id="exporter")
    closed_port = free_port()  # nobody listens here until the collector comes back
    failing = Collector(status=500)
    export_file = tmp_path / "export.json"
    coordinator = ExportCoordinator(
        store,
        [
            open_exporter("http", {"url": f"http://127.0.0.1:{closed_port}/ingest", "timeout": 2}),
            open_exporter("http", {"url": failing.url, "timeout": 2}),
            open_exporter("file", {"path": str(export_file)}),
        ],
        format="json",
        namespace=namespace,
        syncer=syncer,
        clock=ManualClock(0.0),
        registry=registry,
    )

    stop = threading.Event()
    counted = [0]
    worst = [0.0]
    errors: list[BaseException] = []

    def app() -> None:
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                orders.inc()
                worst[0] = max(worst[0], time.perf_counter() - t0)
                counted[0] += 1
                if counted[0] % 100 == 0:
                    time.sleep(0.001)
        except BaseException as exc:  # asserted empty below
            errors.append(exc)

    thread = threading.Thread(target=app)
    thread.start()
    try:
        first = coordinator.tick(0.0)
        stop.set()
        thread.join()
        assert first.action is TickAction.RETRYING
        assert first.retry_in == 30.0
        assert first.extended_by is not None  # what the export covers outlives the retry
        assert first.outcome is not None
        assert [r.exporter for r, _ in first.outcome.completed] == ["file"]
        assert len(first.outcome.failed) == 2
        assert _value(registry, "metricache_export_failures", "http") == 2
        assert _value(registry, "metricache_exports", "retried") == 1
        assert caplog.text.count("exporter http failed to deliver") == 2
        assert "Connection refused" in caplog.text
        assert "answered 500" in caplog.text
        file_written = export_file.stat().st_mtime_ns
        in_file = _exported_orders(export_file.read_bytes())

        back = Collector(port=closed_port)
        failing.status = 200
        try:
            second = coordinator.tick(30.0)
        finally:
            back.close()
    finally:
        stop.set()
        failing.close()
    assert second.action is TickAction.EXPORTED
    assert second.attempt == 2
    assert export_file.stat().st_mtime_ns == file_written  # delivered once, not again
    assert len(back.bodies) == len(failing.bodies) == 1
    assert failing.requests == 2
    assert back.bodies == failing.bodies
    exported = _exported_orders(back.bodies[0])
    assert not errors
    assert worst[0] < HOT_PATH_BOUND
    assert exported == counted[0] == _value(registry, "orders")
    assert in_file <= exported
    assert _value(registry, "metricache_exports", "completed") == 1
    syncer.stop()

    fault.fault = "2 of 3 export destinations down (a closed port, a collector answering 500)"
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        "attempt 1 delivered to the file and failed both collectors (2 failures counted); "
        "the TTL of what it covers was extended by the retry delay plus the margin; "
        "attempt 2, once they were back, delivered to them alone"
    )
    fault.sent = counted[0]
    fault.counted = int(exported)
    fault.compared = "one counter, in the retried export's payload"
    fault.lost = counted[0] - int(exported)
    fault.doubled = 0
    fault.allowed = "nothing lost; the application untouched"
    fault.worst_call_ms = round(worst[0] * 1000, 2)
    fault.seen_in = [
        "metricache_export_failures_total{exporter=http}",
        "metricache_exports_total{result=retried}",
        "log: exporter http failed to deliver",
    ]
