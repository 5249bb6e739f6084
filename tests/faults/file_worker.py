"""A process on the file store for the fault tests: a write limit, then a restart.

``python -m tests.faults.file_worker PHASE DIRECTORY``, printing one JSON line:

``limit``   count into 40 series and sync; lower ``RLIMIT_FSIZE`` to just above the
            saved view's size (SIGXFSZ ignored, so writes fail with EFBIG instead of
            killing the process); count into 400 more series so the view no longer
            fits, and sync five times while an application thread keeps counting;
            read the saved view; raise the limit again and sync.
``resume``  open the same directory with the same instance id and report what the
            previous run's view gave back, after counting one more.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import metricache
from metricache.instance import instance_key
from metricache.snapshot import Sample
from metricache.sync.keyspace import Keyspace
from metricache_file.store import file_name

INSTANCE = "file-worker"


def saved_file(directory: str) -> Path:
    """The file that holds the worker's saved view."""
    return Path(directory) / file_name(Keyspace().local(instance_key(INSTANCE)))


def _setup(directory: str) -> tuple[metricache.Registry, metricache.Counter, metricache.Syncer]:
    registry = metricache.Registry()
    events = metricache.Counter("events", "Events", ["kind"], registry=registry)
    store = metricache.open_store("file", path=directory)
    syncer = metricache.Syncer(registry, store, interval=3600, instance_id=INSTANCE)
    return registry, events, syncer


def _saved(syncer: metricache.Syncer) -> dict[str, float]:
    view = metricache.merged_snapshot(syncer.store, instance_id=INSTANCE)
    family = view.get("events")
    if family is None:
        return {}
    return {s.labels[0]: s.value for s in family.samples if isinstance(s, Sample)}


def _self(registry: metricache.Registry) -> dict[str, float]:
    figures: dict[str, float] = {}
    for source in (registry, metricache.REGISTRY):
        for family in source.snapshot().families:
            if family.name.startswith("metricache_"):
                for sample in family.samples:
                    if isinstance(sample, Sample):
                        key = family.name + "".join(f"{{{v}}}" for v in sample.labels)
                        figures[key] = figures.get(key, 0.0) + sample.value
    return figures


def limit(directory: str) -> dict[str, Any]:
    """Run the ``limit`` phase."""
    registry, events, syncer = _setup(directory)
    for n in range(40):
        events.labels(f"first-{n}").inc(n + 1)
    first = syncer.flush()
    good_size = saved_file(directory).stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (good_size + 2048, hard))

    stop = threading.Event()
    worst = [0.0]
    calls = [0]
    errors: list[str] = []

    def app() -> None:
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                events.labels("busy").inc()
                worst[0] = max(worst[0], time.perf_counter() - t0)
                calls[0] += 1
                if calls[0] % 100 == 0:
                    time.sleep(0.001)
        except BaseException as exc:  # the test asserts there is none
            errors.append(repr(exc))

    thread = threading.Thread(target=app)
    thread.start()
    for n in range(400):
        events.labels(f"second-{n}").inc()
    failed = [syncer.flush() for _ in range(5)]
    during = _saved(syncer)
    stop.set()
    thread.join()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    recovered = syncer.flush()
    local = {s.labels[0]: s.value for s in registry.snapshot()["events"].samples}  # type: ignore[union-attr]
    result = {
        "first_ok": first.ok,
        "good_size": good_size,
        "failed": [r.error for r in failed if not r.ok],
        "kept": during == {f"first-{n}": float(n + 1) for n in range(40)},
        "recovered_ok": recovered.ok,
        "saved_after": _saved(syncer),
        "local": local,
        "worst_call": worst[0],
        "calls": calls[0],
        "errors": errors,
        "self": _self(registry),
    }
    syncer.stop()
    return result


def resume(directory: str) -> dict[str, Any]:
    """Run the ``resume`` phase."""
    registry, events, syncer = _setup(directory)
    resumed = _saved(syncer)
    events.labels("first-0").inc()
    report = syncer.flush()
    result = {
        "resumed": resumed,
        "ok": report.ok,
        "after": _saved(syncer),
        "self": _self(registry),
    }
    syncer.stop()
    return result


def main() -> None:
    """Run the phase named on the command line."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    phase, directory = sys.argv[1], sys.argv[2]
    result = limit(directory) if phase == "limit" else resume(directory)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
