"""One instance of the soak: a process recording for a long while with a running syncer.

Run as ``python -m tests.faults.soak_worker '{...}'``. It records what an application
that runs for weeks records, compressed: a counter incremented once and then left
alone (``quiet``, its own label), a counter everyone increments (``work``), a counter
of billionths (``paid``, +0.01 at a time), a histogram whose lowest bucket is hit once
and never again (``latency``), and a gauge set to 1 (``level``, merged by sum). A
syncer at ``interval`` with a 2 s retention runs all along. On SIGTERM it stops the
syncer (a final sync) and writes its local values, the ground truth, to ``out``.

With ``fork_at`` (a step number) the worker forks there, its syncer running: the
child inherits every series and the gauge, records only ``work{kind="child"}`` and a
quiet counter of its own, and on its parent's SIGTERM writes its own series to
``out`` + ``.child``. What the parent recorded before the fork must be counted once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import metricache
from metricache.snapshot import HistogramSample, MetricType, Sample

BUCKETS = (0.1, 1.0, 10.0)
STEP = 0.02
"""Seconds between two increments of ``work`` (so at most 1 / STEP a second)."""


def _values(registry: metricache.Registry) -> dict[str, Any]:
    """The registry's counters and histogram, as plain numbers."""
    found: dict[str, Any] = {}
    for family in registry.snapshot().families:
        if family.name.startswith("metricache_"):
            continue
        for sample in family.samples:
            key = f"{family.name}|{','.join(sample.labels)}"
            if isinstance(sample, HistogramSample):
                found[key] = {"buckets": list(sample.buckets), "sum": sample.sum}
            elif isinstance(sample, Sample) and family.type is not MetricType.GAUGE:
                found[key] = sample.value
    return found


def main(args: dict[str, Any]) -> None:
    """Record until SIGTERM, then stop the syncer and write the ground truth."""
    name = str(args["instance"])
    registry = metricache.Registry()
    quiet = metricache.Counter("quiet", "Set once, then left alone", ["who"], registry=registry)
    work = metricache.Counter("work", "Everyone's work", ["kind"], registry=registry)
    paid = metricache.Counter("paid", "Billionths", registry=registry)
    latency = metricache.Histogram("latency", "Latency", buckets=BUCKETS, registry=registry)
    level = metricache.Gauge("level", "One per worker", registry=registry)
    store = metricache.open_store(str(args["store"]), url=str(args["url"]))
    syncer = metricache.Syncer(
        registry,
        store,
        interval=float(args["interval"]),
        retention=float(args["retention"]),
        namespace=str(args["namespace"]),
        instance_id=name,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    quiet.labels(name).inc(5)
    level.set(1)
    latency.observe(0.05)  # the rarely hit bucket: once
    syncer.start()
    sys.stdout.write(json.dumps({"ready": name}) + "\n")
    sys.stdout.flush()
    step = 0
    fork_at = int(args.get("fork_at", 0))
    child = 0  # the child's pid, in the parent
    is_child = False
    while not stop.wait(STEP):
        step += 1
        if is_child:
            work.labels("child").inc()
            continue
        work.labels("shared").inc()
        if step % 5 == 0:
            paid.inc(0.01)
            latency.observe(5.0)
        if step == fork_at:
            child = os.fork()
            if child == 0:
                is_child = True
                quiet.labels(f"{name}-child").inc(3)
    report = syncer.stop(timeout=10)
    if is_child:
        own = {"work|child", f"quiet|{name}-child"}
        values = {k: v for k, v in _values(registry).items() if k in own}
        done = {"values": values, "final_sync_ok": report is not None and report.ok}
        Path(str(args["out"]) + ".child").write_text(json.dumps(done))
        os._exit(0)
    if child:
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
    out = {
        "instance": name,
        "values": _values(registry),
        "final_sync_ok": report is not None and report.ok,
    }
    Path(args["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
