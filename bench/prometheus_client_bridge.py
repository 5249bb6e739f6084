"""The prometheus_client bridge against native metricache metrics, side by side in one run.

Run: ``uv run python bench/prometheus_client_bridge.py`` (needs redis-server on PATH;
the script starts one on a free port).

Reports:

* **sync**: the time of one sync (``Syncer.flush()``, collection included) of 10,000
  prometheus_client series read through the bridge, against one sync of the same
  10,000 series declared with metricache itself, each in its own registry, syncer and
  key namespace on the same redis-server. Every series changed since the previous
  sync. Two shapes: counters only (two labels), and a mix (counters, gauges and
  histograms with the default buckets). Rounds alternate which side goes first; the
  figure is the best round, the median is printed too. The time the bridge alone
  takes to read the 10,000 series (``Bridge.__call__``) is printed beside it: the
  rest of the difference is the syncer's handling of collector series.
* **hot path**: ``inc()`` on a bound prometheus_client counter child whose registry is
  bridged and synced every 0.2 s, against the same on a registry no bridge reads,
  alternating. The bridge never touches prometheus_client's hot path, so this is
  prometheus_client's own cost either way.

This is a benchmark, not a test: it reports and never asserts a speed.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import metricache
import prometheus_client
from metricache.sync.syncer import Syncer
from metricache_prometheus_client import bridge
from sync import redis_server  # bench/sync.py: run as `python bench/...`

SERIES = 10_000


@dataclass
class Side:
    """One registry, its syncer, and how to change every one of its series."""

    syncer: Syncer
    change: Callable[[], None]


def native_side(url: str, shape: str, namespace: str) -> Side:
    registry = metricache.Registry(cardinality_limit=2 * SERIES)
    children: list[Callable[[], None]] = []
    counter = metricache.Counter("jobs", "Jobs", ["queue", "id"], registry=registry)
    if shape == "counters":
        children = [counter.labels(str(i % 100), str(i)).inc for i in range(SERIES)]
    else:
        gauge = metricache.Gauge("depth", "Depth", ["queue", "id"], registry=registry)
        hist = metricache.Histogram("wait", "Wait", ["queue", "id"], registry=registry)
        third = SERIES // 3
        children = [counter.labels(str(i % 100), str(i)).inc for i in range(SERIES - 2 * third)]
        children += [gauge.labels(str(i % 100), str(i)).inc for i in range(third)]
        children += [_observer(hist.labels(str(i % 100), str(i)).observe) for i in range(third)]
    store = metricache.open_store("redis", url=url)
    return Side(Syncer(registry, store, interval=3600, namespace=namespace), _all(children))


def bridged_side(url: str, shape: str, namespace: str) -> Side:
    peer = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("jobs", "Jobs", ["queue", "id"], registry=peer)
    children: list[Callable[[], None]]
    if shape == "counters":
        children = [_incrementer(counter.labels(str(i % 100), str(i))) for i in range(SERIES)]
    else:
        gauge = prometheus_client.Gauge(
            "depth", "Depth", ["queue", "id"], registry=peer, multiprocess_mode="livesum"
        )
        hist = prometheus_client.Histogram("wait", "Wait", ["queue", "id"], registry=peer)
        third = SERIES // 3
        children = [counter.labels(str(i % 100), str(i)).inc for i in range(SERIES - 2 * third)]
        children += [gauge.labels(str(i % 100), str(i)).inc for i in range(third)]
        children += [_observer(hist.labels(str(i % 100), str(i)).observe) for i in range(third)]
    registry = metricache.Registry()
    bridge(peer, registry)
    store = metricache.open_store("redis", url=url)
    return Side(Syncer(registry, store, interval=3600, namespace=namespace), _all(children))


def _incrementer(child: prometheus_client.Counter | prometheus_client.Gauge) -> Callable[[], None]:
    return cast(Callable[[], None], child.inc)


def _observer(observe: Callable[..., None]) -> Callable[[], None]:
    return lambda: observe(0.3)


def _all(children: list[Callable[[], None]]) -> Callable[[], None]:
    def change() -> None:
        for child in children:
            child()

    return change


def timed_sync(side: Side) -> float:
    side.change()
    gc.collect()
    start = time.perf_counter()
    report = side.syncer.flush()
    elapsed = time.perf_counter() - start
    assert report.ok, report.error
    return elapsed


def sync_round(url: str, shape: str, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """Return the seconds of each round: native sync, bridged sync, the bridge's reading."""
    ours = native_side(url, shape, f"bench-native-{shape}")
    theirs = bridged_side(url, shape, f"bench-bridge-{shape}")
    for side in (ours, theirs):  # registrations, then metricache's own metrics
        side.change()
        side.syncer.flush()
        side.syncer.flush()
    native: list[float] = []
    bridged: list[float] = []
    reading: list[float] = []
    (read,) = theirs.syncer.registry.collectors()
    for i in range(rounds):
        if i % 2:
            native.append(timed_sync(ours))
            bridged.append(timed_sync(theirs))
        else:
            bridged.append(timed_sync(theirs))
            native.append(timed_sync(ours))
        gc.collect()
        start = time.perf_counter()
        read()
        reading.append(time.perf_counter() - start)
    ours.syncer.store.close()
    theirs.syncer.store.close()
    return native, bridged, reading


def hot_path(url: str, rounds: int) -> tuple[float, float]:
    """Return ns/op of a bound prometheus_client inc(): unbridged, bridged and syncing."""
    plain_registry = prometheus_client.CollectorRegistry()
    plain = prometheus_client.Counter("plain", "P", ["a"], registry=plain_registry).labels("x")
    bridged_registry = prometheus_client.CollectorRegistry()
    bridged = prometheus_client.Counter("b", "B", ["a"], registry=bridged_registry).labels("x")
    registry = metricache.Registry()
    bridge(bridged_registry, registry)
    store = metricache.open_store("redis", url=url)
    syncer = Syncer(registry, store, interval=0.2, namespace="bench-bridge-hot").start()
    number = 1_000_000
    without: list[float] = []
    with_bridge: list[float] = []
    for i in range(rounds):
        pair = [("plain", plain), ("bridged", bridged)]
        for name, child in pair if i % 2 else reversed(pair):
            seconds = timeit.timeit(child.inc, number=number)
            (without if name == "plain" else with_bridge).append(seconds / number * 1e9)
    syncer.stop()
    store.close()
    return min(without), min(with_bridge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per comparison")
    args = parser.parse_args()
    with redis_server() as url:
        print(f"redis-server at {url}; {SERIES:,} series per side")
        for shape in ("counters", "mixed"):
            native, bridged, reading = sync_round(url, shape, args.rounds)
            print(
                f"sync, {shape}: native {min(native) * 1000:.1f} ms, bridged "
                f"{min(bridged) * 1000:.1f} ms -> {min(bridged) / min(native):.2f}x "
                f"(target <= 1.5x); medians {statistics.median(native) * 1000:.1f} / "
                f"{statistics.median(bridged) * 1000:.1f} ms; of the bridged sync, the "
                f"bridge's own reading: {min(reading) * 1000:.1f} ms"
            )
        without, with_bridge = hot_path(url, args.rounds)
        print(
            f"hot path, prometheus_client child inc(): {without:.0f} ns/op unbridged, "
            f"{with_bridge:.0f} ns/op bridged and syncing every 0.2 s -> "
            f"{with_bridge / without:.2f}x"
        )


if __name__ == "__main__":
    main()
