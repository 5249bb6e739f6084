"""Worker processes for the sync tests: each is one metricache instance.

Run as ``python -m tests.sync.workers KIND JSON_ARGS``; a worker prints one JSON line
with what it did when it finishes (or ``ready`` and waits for SIGTERM, for gauges).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

import metricache
from metricache.sync.syncer import Syncer

# Observed values are exact in binary, so sums add up exactly whatever the order.
OBSERVED = (0.0625, 0.25, 0.5, 1.0, 3.0, 12.0)


def _store(args: dict[str, Any]) -> metricache.Store:
    return metricache.open_store(args["store"], **args.get("options", {}))


def aggregate(args: dict[str, Any]) -> dict[str, Any]:
    """Increment counters over label sets and observe a histogram from several threads."""
    registry = metricache.Registry()
    counter = metricache.Counter("jobs", "Jobs done", ["kind"], registry=registry)
    histogram = metricache.Histogram(
        "job_size", "Job sizes", ["kind"], buckets=(0.1, 0.5, 1.0, 5.0), registry=registry
    )
    labels = [f"k{i}" for i in range(args["labels"])]
    syncer = Syncer(
        registry,
        _store(args),
        interval=args["interval"],
        namespace=args["namespace"],
        instance_id=args["instance"],
        jitter=0.0,
    )
    syncer.start()
    per_thread = args["increments"]
    chunks = args["chunks"]
    pause = args["pause"]

    def work() -> None:
        for i in range(per_thread):
            kind = labels[i % len(labels)]
            counter.labels(kind).inc()
            if i % 5 == 0:
                histogram.labels(kind).observe(OBSERVED[i % len(OBSERVED)])
            if i % (per_thread // chunks) == 0:
                time.sleep(pause)

    threads = [threading.Thread(target=work) for _ in range(args["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = syncer.stop(timeout=30)
    return {
        "syncs": syncer._syncs,
        "final_ok": final is not None and final.ok,
        "instance": syncer.instance.id,
    }


def gauges(args: dict[str, Any]) -> None:
    """Set one gauge per merge mode and a counter, sync, then wait for SIGTERM."""
    registry = metricache.Registry()
    value = float(args["value"])
    for mode in ("sum", "max", "min", "last", "per_instance"):
        gauge = metricache.Gauge(
            f"g_{mode}", f"merge {mode}", ["room"], registry=registry, merge=mode
        )
        gauge.labels("a").set(value)
    metricache.Counter("visits", "Visits", registry=registry).inc(args["visits"])
    syncer = Syncer(
        registry,
        _store(args),
        interval=args["interval"],
        namespace=args["namespace"],
        instance_id=args["instance"],
        liveness_ttl=args["liveness"],
        jitter=0.0,
    )
    syncer.start()
    report = syncer.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"ready": report.ok}), flush=True)
    stop.wait(120)
    syncer.stop()


def main() -> None:
    kind, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    if kind == "aggregate":
        print(json.dumps(aggregate(args)), flush=True)
    elif kind == "gauges":
        gauges(args)
    else:
        raise SystemExit(f"unknown worker {kind!r}")


if __name__ == "__main__":
    main()
