"""A process running one export coordinator against redis, for the cross-process tests.

Run as ``python -m tests.export_coordination.worker '{...}'``. Its clock is the wall
clock minus ``t0``, so every worker of a test numbers periods alike and period 0
starts at ``t0``. With ``go`` (a path), the worker reports ``ready`` once set up and
reads ``t0`` from that file when the test writes it, so slow process starts never
eat into the periods. Each result that is not idle is appended to ``report`` as one JSON
line. With ``block``, its exporter writes ``block`` (a marker file) and then hangs
for ever; otherwise it writes the Prometheus text to ``out_dir``. It stops at
virtual time ``stop_at``, or on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import metricache
from metricache.export import ExportCoordinator, TickResult, Timing
from metricache.exporters import Exporter, ExportRequest, open_exporter


class HangingExporter(Exporter):
    """Announces that an export started, then never finishes it."""

    name = "hanging"

    def __init__(self, marker: Path) -> None:
        super().__init__(None)
        self.marker = marker

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        self.marker.write_text("exporting\n")
        threading.Event().wait()
        return "never"


def main(args: dict[str, Any]) -> None:
    """Run a coordinator as ``args`` say until ``stop_at`` or SIGTERM."""
    instance = str(args["instance"])
    report = Path(args["report"])
    t0 = float(args.get("t0") or 0.0)

    def clock() -> float:
        return time.time() - t0

    def record(result: TickResult) -> None:
        line = {
            "instance": instance,
            "action": result.action.value,
            "period": result.period,
            "attempt": result.attempt,
            "at": clock(),
            "destinations": [r.destination for _, r in result.outcome.completed]
            if result.outcome is not None
            else [],
        }
        with report.open("a") as handle:
            handle.write(json.dumps(line) + "\n")

    exporter: Exporter
    if args.get("block"):
        exporter = HangingExporter(Path(args["block"]))
    else:
        exporter = open_exporter("file", {"path": f"{args['out_dir']}/{{unix}}-{instance}.prom"})
    timing = Timing(
        retention=float(args["retention"]),
        safety_margin=float(args["margin"]),
        export_timeout=float(args["timeout"]),
        interval=float(args["interval"]),
        lease_ttl=float(args["lease_ttl"]),
    )
    coordinator = ExportCoordinator(
        metricache.open_store("redis", url=str(args["url"])),
        [exporter],
        namespace=str(args["namespace"]),
        timing=timing,
        instance_id=instance,
        clock=clock,
        registry=metricache.Registry(),
        on_result=record,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    if args.get("go"):
        go = Path(args["go"])
        with report.open("a") as handle:
            handle.write(json.dumps({"instance": instance, "action": "ready"}) + "\n")
        while not go.exists() and not stop.wait(0.02):
            pass
        t0 = float(go.read_text())
    stop.wait(max(0.0, -clock()))  # every worker begins with period 0
    coordinator.start()
    stop_at = args.get("stop_at")
    while not stop.is_set() and (stop_at is None or clock() < float(stop_at)):
        stop.wait(0.05)
    coordinator.stop()
    with report.open("a") as handle:
        handle.write(json.dumps({"instance": instance, "action": "stopped"}) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
