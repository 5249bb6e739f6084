"""Sync benchmarks against a real redis-server (started here on a free port).

Reports:
* hot-path cost with the syncer running (interval 1 s, 10,000 series) against the
  same loop without a syncer, measured in alternating rounds in one process;
* the time of one sync of 100,000 changed series, and of a sync with nothing
  changed (100,000 series exist);
* a sync with one changed gauge while 10,000 gauge series exist, against a sync with
  nothing changed (the same 10,000 exist), side by side;
* one liveness refresh round of 100,000 held series (every one due at once);
* a merged read of 10,000 series.

Run: ``uv run python bench/sync.py`` (needs redis-server on PATH).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import metricache
from metricache.sync.syncer import Syncer


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="metricache-bench-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def hot_path(url: str, rounds: int) -> tuple[float, float]:
    """Return ns/op of ``labels(...)`` + inc over 10,000 series: without, with a syncer."""
    registry = metricache.Registry(cardinality_limit=20_000)
    counter = metricache.Counter("requests", "Requests", ["route", "code"], registry=registry)
    keys = [(f"/r{i // 10}", str(200 + i % 10)) for i in range(10_000)]
    children = [counter.labels(*k) for k in keys]
    store = metricache.open_store("redis", url=url)
    syncer = Syncer(registry, store, interval=1.0, namespace="bench-hot")
    syncer.flush()

    def loop() -> float:
        start = time.perf_counter()
        for _ in range(20):
            for child in children:
                child.inc()
        return (time.perf_counter() - start) / (20 * len(children)) * 1e9

    without: list[float] = []
    with_syncer: list[float] = []
    for _ in range(rounds):
        without.append(loop())
        syncer.start()
        # Long enough for the syncer to run several times during the measurement.
        samples = []
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            samples.append(loop())
        with_syncer.append(statistics.mean(samples))
        syncer.stop()
        samples = []
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            samples.append(loop())
        without.append(statistics.mean(samples))
    store.close()
    return statistics.median(without), statistics.median(with_syncer)


def timed(func: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def sync_costs(url: str, repeat: int) -> tuple[float, float]:
    """Return seconds for a sync of 100,000 changed series and of 0 changed series."""
    registry = metricache.Registry(cardinality_limit=200_000)
    counter = metricache.Counter("jobs", "Jobs", ["queue", "id"], registry=registry)
    children = [counter.labels(str(i % 100), str(i)) for i in range(100_000)]
    store = metricache.open_store("redis", url=url)
    syncer = Syncer(registry, store, interval=3600, namespace="bench-sync")
    syncer.flush()  # registers the 100,000 series
    syncer.flush()  # and metricache's own metrics it just updated

    def changed() -> None:
        for child in children:
            child.inc()

    def sync_all_changed() -> None:
        report = syncer.flush()
        assert report.ok, report.error

    best_changed = float("inf")
    for _ in range(repeat):
        changed()
        gc.collect()
        start = time.perf_counter()
        sync_all_changed()
        best_changed = min(best_changed, time.perf_counter() - start)
    syncer.flush()
    best_idle = timed(syncer.flush, repeat * 3)
    store.close()
    return best_changed, best_idle


def gauge_costs(url: str, repeat: int) -> tuple[float, float]:
    """Return seconds for a sync with 1 changed gauge and with none (10,000 exist)."""
    registry = metricache.Registry(cardinality_limit=20_000)
    depth = metricache.Gauge("depth", "Queue depth", ["queue"], registry=registry)
    children = [depth.labels(f"q{i}") for i in range(10_000)]
    for n, child in enumerate(children):
        child.set(n)
    store = metricache.open_store("redis", url=url)
    syncer = Syncer(registry, store, interval=3600, namespace="bench-gauges")
    syncer.flush()
    syncer.flush()
    one: list[float] = []
    none: list[float] = []
    for n in range(repeat * 3):
        # Alternate, so that noise hits both.
        children[n % len(children)].set(-n)
        gc.collect()
        start = time.perf_counter()
        syncer.flush()
        one.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        syncer.flush()
        none.append(time.perf_counter() - start)
    store.close()
    return min(one), min(none)


def refresh_round(url: str, repeat: int) -> float:
    """Return seconds for one sync that refreshes 100,000 held series (all due)."""
    registry = metricache.Registry(cardinality_limit=200_000)
    counter = metricache.Counter("held", "Held", ["id"], registry=registry)
    for i in range(100_000):
        counter.labels(str(i)).inc()
    store = metricache.open_store("redis", url=url)
    syncer = Syncer(registry, store, interval=3600, namespace="bench-refresh")
    syncer.flush()
    syncer.flush()
    engine = syncer._shared
    assert engine is not None
    best = float("inf")
    for _ in range(repeat):
        engine.refresh.expedite()  # every series held is due now
        gc.collect()
        start = time.perf_counter()
        report = syncer.flush()
        best = min(best, time.perf_counter() - start)
        assert report.ok, report.error
        assert len(engine.refresh) >= 100_000
    store.close()
    return best


def merged_read(url: str, repeat: int) -> tuple[float, int]:
    """Return seconds to read the merged view of 10,000 series, and the series read."""
    registry = metricache.Registry(cardinality_limit=20_000)
    counter = metricache.Counter("visits", "Visits", ["page"], registry=registry)
    for i in range(10_000):
        counter.labels(f"/page/{i}").inc(i)
    store = metricache.open_store("redis", url=url)
    Syncer(registry, store, interval=3600, namespace="bench-read").flush()
    view = metricache.merged_snapshot(store, namespace="bench-read")
    seconds = timed(lambda: metricache.merged_snapshot(store, namespace="bench-read"), repeat)
    store.close()
    return seconds, view.series_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (best is kept)")
    parser.add_argument("--rounds", type=int, default=3, help="hot-path rounds")
    args = parser.parse_args()
    with redis_server() as url:
        print(f"redis-server at {url}")
        without, with_syncer = hot_path(url, args.rounds)
        print(
            f"hot path, 10,000 series, labels child inc(): {without:.0f} ns/op without a "
            f"syncer, {with_syncer:.0f} ns/op with a syncer at 1 s -> "
            f"{with_syncer / without:.3f}x (target <= 1.05x)"
        )
        changed, idle = sync_costs(url, args.repeat)
        print(f"sync of 100,000 changed series: {changed * 1000:.0f} ms (target <= 350 ms)")
        print(f"sync of 0 changed series (100,000 exist): {idle * 1000:.2f} ms (target <= 5 ms)")
        one, none = gauge_costs(url, args.repeat)
        print(
            f"sync with 1 changed gauge among 10,000: {one * 1000:.2f} ms, with none changed: "
            f"{none * 1000:.2f} ms -> {one / none:.2f}x (target <= 2x)"
        )
        refresh = refresh_round(url, args.repeat)
        print(
            f"liveness refresh round of 100,000 held series: {refresh * 1000:.0f} ms "
            "(target <= 300 ms)"
        )
        read, series = merged_read(url, args.repeat)
        print(f"merged read of {series:,} series: {read * 1000:.1f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
