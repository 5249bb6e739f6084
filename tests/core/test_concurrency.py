"""No lost update under threads, and histogram observations that appear atomically."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from metricache import Counter, Histogram, Registry
from metricache.snapshot import HistogramSample, Sample

THREADS = 8
PER_THREAD = 100_000


@pytest.fixture(autouse=True)
def frequent_switches() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so races get their chance."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def run_threads(count: int, target: Callable[[], None]) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def body() -> None:
        try:
            start.wait()
            target()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_eight_threads_on_a_bound_child_lose_no_increment() -> None:
    registry = Registry()
    child = Counter("work", "Work", ["kind"], registry=registry).labels("a")

    def hammer() -> None:
        inc = child.inc
        for _ in range(PER_THREAD):
            inc()

    run_threads(THREADS, hammer)
    assert child.get() == THREADS * PER_THREAD
    assert registry.snapshot()["work"].sample("a") == Sample(("a",), 800_000.0)


def test_eight_threads_through_labels_lose_no_increment() -> None:
    registry = Registry()
    counter = Counter("work", "Work", ["kind", "zone"], registry=registry)

    def hammer() -> None:
        labels = counter.labels
        for _ in range(PER_THREAD):
            labels("a", "b").inc()

    run_threads(THREADS, hammer)
    assert registry.snapshot()["work"].sample("a", "b") == Sample(("a", "b"), 800_000.0)


def test_threads_creating_the_same_new_series_get_one_series() -> None:
    registry = Registry()
    counter = Counter("created", "Created", ["n"], registry=registry)

    def create() -> None:
        for n in range(2_000):
            counter.labels(str(n)).inc()

    run_threads(THREADS, create)
    family = registry.snapshot()["created"]
    assert len(family.samples) == 2_000
    assert {s.value for s in family.samples if isinstance(s, Sample)} == {float(THREADS)}


def test_histogram_snapshots_racing_observations_always_agree() -> None:
    registry = Registry()
    histogram = Histogram("work_seconds", "Work", ["kind"], buckets=[0.5, 1, 2], registry=registry)
    child = histogram.labels("a")
    observers, per_observer = 4, 25_000
    done = threading.Event()
    raced = threading.Event()  # a snapshot was taken while observations went on
    observed: list[int] = []
    problems: list[str] = []

    def observe() -> None:
        n = 0
        while n < per_observer or not raced.is_set():
            child.observe(1.0)
            n += 1
        observed.append(n)

    def watch() -> None:
        last = 0
        while not done.is_set():
            sample = registry.snapshot()["work_seconds"].sample("a")
            assert isinstance(sample, HistogramSample)
            # Every observation is 1.0: the sum is the count, and it lands in le="1".
            if not (
                sample.count == sample.buckets[-1] == sample.buckets[1] == sample.buckets[2]
                and sample.buckets[0] == 0
                and sample.sum == sample.count
                and sample.count >= last
            ):
                problems.append(repr(sample))
            if sample.count > 0 and len(observed) < observers:
                raced.set()
            last = sample.count

    watchers = [threading.Thread(target=watch) for _ in range(2)]
    for w in watchers:
        w.start()
    try:
        run_threads(observers, observe)
    finally:
        done.set()
        for w in watchers:
            w.join()
    assert problems == []
    total = sum(observed)
    assert total >= observers * per_observer
    final = registry.snapshot()["work_seconds"].sample("a")
    assert final == HistogramSample(("a",), (0, total, total, total), float(total), total)
