"""Worker processes for the store tests: each is one real process using a real store.

Run as ``python -m tests.stores.workers KIND JSON_ARGS``; a worker prints one JSON
line with what it did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import metricache
from metricache.snapshot import HistogramSample, Sample

ROOT = Path(__file__).resolve().parents[2]

# Label values that must never become part of a store command.
HOSTILE_LABELS = (
    "\r\nflush_all\r\n",
    "with spaces and\ttabs",
    "x" * 300,
    "ключ значение ✓",
    "",
)
# Observed values are exact in binary, so sums add up exactly whatever the order.
OBSERVED = (0.25, 0.5, 1.5, 4.0, 0.125)


def amount(thread: int, i: int) -> int:
    """The amount thread ``thread`` adds in its ``i``-th call (mixed signs and sizes)."""
    return (i % 7 - 3) * (1 + thread) + (10**12 if i % 11 == 0 else 0)


def incr(args: dict[str, Any]) -> dict[str, Any]:
    """Call ``incr`` from several threads sharing one store; report what was added."""
    store = metricache.open_store("memcached", url=args["url"])
    keys = [f"{args['namespace']}:n:{k}".encode() for k in range(args["keys"])]
    sent = [0] * len(keys)
    lock = threading.Lock()

    def work(thread: int) -> None:
        mine = [0] * len(keys)
        for i in range(args["rounds"]):
            k = (i + thread) % len(keys)
            a = amount(thread, i)
            store.incr(keys[k], a, 60)
            mine[k] += a
        with lock:
            for k, v in enumerate(mine):
                sent[k] += v

    threads = [threading.Thread(target=work, args=(t,)) for t in range(args["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"sent": sent}


def aggregate(args: dict[str, Any]) -> dict[str, Any]:
    """Count over hostile label sets and observe a histogram while a syncer runs."""
    registry = metricache.Registry()
    counter = metricache.Counter("events", "Events seen", ["source"], registry=registry)
    histogram = metricache.Histogram(
        "event_size", "Event sizes", ["source"], buckets=(0.5, 1.0, 2.0), registry=registry
    )
    store = metricache.open_store(args["store"], **args["options"])
    syncer = metricache.Syncer(
        registry,
        store,
        interval=args["interval"],
        namespace=args["namespace"],
        instance_id=args["instance"],
        jitter=0.0,
    )
    syncer.start()

    def work() -> None:
        for i in range(args["increments"]):
            source = HOSTILE_LABELS[i % len(HOSTILE_LABELS)]
            counter.labels(source).inc()
            if i % 3 == 0:
                histogram.labels(source).observe(OBSERVED[i % len(OBSERVED)])
            if i % args["every"] == 0:
                time.sleep(args["pause"])

    threads = [threading.Thread(target=work) for _ in range(args["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = syncer.stop(timeout=30)
    return {"syncs": syncer._syncs, "final_ok": final is not None and final.ok}


def file_run(args: dict[str, Any]) -> dict[str, Any]:
    """Count into a syncer on the file store, stop, and report the instance's view."""
    registry = metricache.Registry()
    counter = metricache.Counter("restarts", "Work done", ["kind"], registry=registry)
    histogram = metricache.Histogram(
        "work_size", "Work sizes", buckets=(1.0, 2.0), registry=registry
    )
    store = metricache.open_store("file", path=args["path"])
    syncer = metricache.Syncer(registry, store, interval=60.0, jitter=0.0)
    for kind, n in args["counts"].items():
        counter.labels(kind).inc(n)
    for value in args["observe"]:
        histogram.observe(value)
    report = syncer.stop()
    view = syncer.snapshot()
    counts = {s.labels[0]: s.value for s in view["restarts"].samples if isinstance(s, Sample)}
    sizes = view["work_size"].samples[0]
    assert isinstance(sizes, HistogramSample)
    return {
        "ok": report is not None and report.ok,
        "strategy": syncer.strategy.value,
        "instance": syncer.instance.id,
        "counts": counts,
        "buckets": list(sizes.buckets),
        "sum": sizes.sum,
    }


def merge(args: dict[str, Any]) -> dict[str, Any]:
    """Merge entries of one's own into one map, one call per entry."""
    store = metricache.open_store(args["store"], **args["options"])
    me = args["me"]
    for i in range(args["entries"]):
        store.merge_map(args["key"].encode(), {f"{me}-{i}": str(i)}, 60)
    return {"done": args["entries"]}


def run_workers(
    kind: str, args: list[dict[str, Any]], env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run one worker process per item of ``args`` at the same time; return their reports."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.stores.workers", kind, json.dumps(a)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for a in args
    ]
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def main() -> None:
    kind, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    jobs = {"incr": incr, "aggregate": aggregate, "file_run": file_run, "merge": merge}
    if kind not in jobs:
        raise SystemExit(f"unknown worker {kind!r}")
    print(json.dumps(jobs[kind](args)), flush=True)


if __name__ == "__main__":
    main()
