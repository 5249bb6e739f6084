"""A worker process for the fault tests: one metricache instance whose application counts.

Run as ``python -m tests.faults.worker JSON_ARGS``. Application threads count as fast as
they can, each keeping its own tally in plain integers (the ground truth, independent
of metricache) and timing every metric call. A syncer syncs in the background every
``interval`` seconds (or only when told, with ``interval`` null). Commands come on
stdin, one per line, and each is answered with one JSON line on stdout:

``sync``  sync now; answers ``{"ok": ..., "error": ...}``
``stop``  stop the application threads, sync until the store confirms everything
          (at most ``final_timeout`` seconds), answer with the tallies and figures
``burst N``  after ``stop``: count N more (not synced); answers ``{"burst": N}``
``exit``  exit

The first line printed is ``{"ready": true, ...}``. Logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter
from typing import Any

import metricache
from metricache.snapshot import Sample
from metricache.sync.syncer import Syncer

# Exact in binary, so sums come out the same whatever order instances add them in.
OBSERVED = (0.25, 1.0, 3.0, 12.0)
AMOUNT = 0.125
BUCKETS = (0.5, 1.0, 5.0)


class App:
    """Application threads that count, with their own tallies and the worst call time."""

    def __init__(
        self, registry: metricache.Registry, threads: int, labels: int, pace: int = 200
    ) -> None:
        self.done = metricache.Counter("work_done", "Work done", ["kind"], registry=registry)
        self.size = metricache.Histogram(
            "work_size", "Work sizes", ["kind"], buckets=BUCKETS, registry=registry
        )
        self.amount = metricache.Counter("work_amount", "Fractional amounts", registry=registry)
        self.kinds = [f"k{i}" for i in range(labels)]
        self.pace = pace
        self.stop = threading.Event()
        self.tallies: list[Counter[str]] = [Counter() for _ in range(threads)]
        self.observed: list[Counter[str]] = [Counter() for _ in range(threads)]
        self.calls = [0] * threads
        self.worst = [0.0] * threads
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def run(self, n: int) -> None:
        tally, observed = self.tallies[n], self.observed[n]
        kinds = self.kinds
        worst = 0.0
        i = 0
        clock = time.perf_counter
        pace = self.pace
        try:
            while not self.stop.is_set():
                kind = kinds[i % len(kinds)]
                value = OBSERVED[i % len(OBSERVED)]
                t0 = clock()
                self.done.labels(kind).inc()
                self.size.labels(kind).observe(value)
                self.amount.inc(AMOUNT)
                spent = clock() - t0
                tally[kind] += 1
                observed[f"{kind}|{value!r}"] += 1
                worst = max(worst, spent)
                i += 1
                if i % pace == 0:
                    self.worst[n] = worst
                    self.calls[n] = i
                    time.sleep(0.001)  # two shared cores: leave room for the rest
        except BaseException as exc:  # the tests assert there is none
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.worst[n] = worst
        self.calls[n] = i

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def _self_figures(registry: metricache.Registry) -> dict[str, Any]:
    view = registry.snapshot()
    figures: dict[str, Any] = {}
    for family in view.families:
        if not family.name.startswith("metricache_"):
            continue
        for sample in family.samples:
            if isinstance(sample, Sample):
                key = family.name + "".join(f"{{{v}}}" for v in sample.labels)
                figures[key] = sample.value
    return figures


def main() -> None:
    """Run one worker until told to exit."""
    args: dict[str, Any] = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    registry = metricache.Registry()
    app = App(registry, args.get("threads", 2), args.get("labels", 5))
    store = metricache.open_store(args["store"], **args.get("options", {}))
    interval = args.get("interval")
    syncer = Syncer(
        registry,
        store,
        interval=interval or 3600.0,
        namespace=args["namespace"],
        instance_id=args["instance"],
        jitter=0.0,
    )
    if interval:
        syncer.start()
    app.start()
    print(json.dumps({"ready": True, "instance": syncer.instance.id}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "sync":
            report = syncer.flush()
            print(json.dumps({"ok": report.ok, "error": report.error}), flush=True)
        elif command == "stop":
            app.finish()
            if syncer.running:
                syncer.stop(timeout=30)
            deadline = time.monotonic() + args.get("final_timeout", 30.0)
            report = syncer.flush()
            while not report.ok and time.monotonic() < deadline:
                time.sleep(0.1)
                report = syncer.flush()
            tally: Counter[str] = Counter()
            observed: Counter[str] = Counter()
            for counts in app.tallies:
                tally.update(counts)
            for counts in app.observed:
                observed.update(counts)
            local = {kind: app.done.labels(kind).get() for kind in app.kinds}
            print(
                json.dumps(
                    {
                        "final_ok": report.ok,
                        "final_error": report.error,
                        "tally": dict(tally),
                        "observed": dict(observed),
                        "local": local,
                        "calls": sum(app.calls),
                        "worst_call": max(app.worst),
                        "errors": app.errors,
                        "self": _self_figures(registry),
                    }
                ),
                flush=True,
            )
        elif command.startswith("burst "):
            # Count N more without syncing (after "stop"): what a SIGKILL then loses.
            count = int(command.split()[1])
            for i in range(count):
                kind = app.kinds[i % len(app.kinds)]
                app.done.labels(kind).inc()
                app.size.labels(kind).observe(OBSERVED[i % len(OBSERVED)])
                app.amount.inc(AMOUNT)
            print(json.dumps({"burst": count}), flush=True)
        elif command == "exit":
            return
        else:
            print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)


if __name__ == "__main__":
    main()
